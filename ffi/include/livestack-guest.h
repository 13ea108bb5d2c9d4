/*
 * livestack-guest.h — the contract between LiveStack's micro-VMM (ffi/c/vmm/)
 * and the programs it runs as `kind vm` guests (ffi/guest/, scenarios/vm/).
 *
 * A guest runs in 64-bit ring 3 only, with IOPL 3 (KVM-FACTS.md: on this kind
 * of machine guest supervisor code is emulated at ~575 ns an instruction, user
 * code runs at native speed). The VMM sets up everything ring 0 would: page
 * tables identity-mapping guest memory, a GDT, a TSS. There are no interrupts:
 * a guest asks the VMM for everything by hypercall.
 *
 * vCPUs: a guest has `cpus` of them (at most LS_GUEST_VCPUS_MAX). vCPU 0 runs
 * main(); the others wait, parked, until one asks for them (LS_HC_START_CPU).
 * Each vCPU has its own clock page and mailbox page (its per-CPU block; its
 * FS base points there, and the block's `self` field holds its address); the
 * rings and everything else are shared.
 *
 * Hypercall: the guest fills its mailbox page (struct ls_guest_mailbox) and
 * writes the call number with `outl` to LS_GUEST_PORT_HCALL. The VMM answers
 * in mailbox->ret (>= 0, or a negative errno) before the guest resumes. One
 * exit costs 25-80 us of host time on these machines (KVM-FACTS; ~80 on the
 * Intel hosts), so frames never need one: they go through two rings of slots
 * in guest memory (struct ls_guest_rings, in the mailbox page). The guest
 * stamps what it sends with its clock; the VMM takes sent frames at every
 * exit and at the end of every quantum, and puts a frame into the receive
 * ring when the guest's clock reaches its arrival time (a quantum ends there).
 *
 * Time: the clock page (struct ls_guest_clock) gives virtual time without an
 * exit: now = base_ns + ((rdtsc - tsc_base) * mult) >> 32, never above
 * limit_ns, never below last_ns. The VMM rewrites it whenever it resumes the
 * vCPU (seq odd while it writes). Virtual time advances only while the vCPU
 * runs (x cpu_scale), or jumps while it waits. Each vCPU keeps its own time,
 * as parallel simulators keep one per processor: vCPUs of a guest meet at the
 * end of every window and may differ within one by at most a window.
 *
 * Guest memory map (guest physical = guest virtual):
 *   0x000000  not mapped (null pointers fault)
 *   0x001000  GDT, TSS, page tables (VMM-owned; the guest must not write)
 *   0x00f000  shared page: ring indexes (0x00f100), the SDK's ring lock (0x00f140)
 *   0x010000  receive ring    0x030000  send ring
 *   0x050000  per-CPU blocks: vCPU k's clock page at 0x050000 + k * 0x2000, its mailbox page after it
 *   0x070000  ... 0x0fffff    free (scratch)
 *   0x100000  the guest image (ELF, linked here by ffi/guest/guest.ld)
 *   top       vCPU 0's stack, growing down from the end of guest memory;
 *             vCPU k's from LS_GUEST_STACK_BYTES * k below it
 * Shared by C (VMM, guest SDK) and mirrored in TypeScript (runtime/live/vm.ts).
 */
#ifndef LIVESTACK_GUEST_H
#define LIVESTACK_GUEST_H

#include <stdint.h>

#define LS_GUEST_ABI_VERSION 1

#define LS_GUEST_PORT_HCALL   0x0510u
#define LS_GUEST_PORT_SERIAL  0x03f8u /* COM1 data: bytes written here are console output too */

#define LS_GUEST_SHARED_GPA   0x00f000ull
#define LS_GUEST_RINGS_GPA    0x00f100ull
#define LS_GUEST_LOCK_GPA     0x00f140ull
#define LS_GUEST_PERCPU_GPA   0x050000ull
#define LS_GUEST_PERCPU_BYTES 0x2000ull     /* a clock page, then a mailbox page */
#define LS_GUEST_VCPUS_MAX    16u
#define LS_GUEST_STACK_BYTES  (256ull << 10)
#define LS_GUEST_RX_GPA       0x010000ull  /* LS_GUEST_RING_SLOTS slots of LS_GUEST_SLOT_BYTES */
#define LS_GUEST_TX_GPA       0x030000ull
#define LS_GUEST_RING_SLOTS   64u
#define LS_GUEST_SLOT_BYTES   2048u
#define LS_GUEST_IMAGE_GPA    0x100000ull
#define LS_GUEST_MEMORY_MIN   (4ull << 20)
#define LS_GUEST_MEMORY_MAX   (1ull << 30)  /* one page directory of 2 MiB pages */
#define LS_GUEST_FRAME_MAX    2032u         /* a slot's data: an Ethernet frame (1514) with room to spare */
#define LS_GUEST_TEXT_MAX     4096u         /* one print call */

enum ls_guest_call {
	LS_HC_PRINT = 1,      /* a0 = gva of text, a1 = length: console output (lines are logged with their virtual time) */
	LS_HC_NOW = 2,        /* ret = virtual time in ns (the clock page is cheaper) */
	LS_HC_WAIT_UNTIL = 3, /* a0 = virtual ns: idle until then or until a frame is waiting (a1 = 1); ret = 1 if a frame is waiting */
	LS_HC_FLUSH = 4,      /* nothing but an exit: the VMM takes the send ring (the guest calls it when the ring is full) */
	LS_HC_EXIT = 6,       /* a0 = exit code: the guest ends */
	LS_HC_INFO = 7,       /* a0 = gva of struct ls_guest_info, filled by the VMM */
	LS_HC_ARG = 8,        /* a0 = gva of a buffer, a1 = its size: ret = length of the host's `run` command text */
	LS_HC_START_CPU = 9,  /* a0 = vCPU, a1 = rip, a2 = rdi, a3 = rsp: a parked vCPU starts there, at the caller's time (by the next window at the latest) */
	LS_HC_STOP_CPU = 10,  /* this vCPU parks for good (vCPU 0: as LS_HC_EXIT 0) */
};

struct ls_guest_mailbox {
	uint64_t a0, a1, a2, a3;
	int64_t ret;
};

/* Ring indexes (free-running counters; slot = index % LS_GUEST_RING_SLOTS).
 * Receive: the VMM advances rx_head, the guest rx_tail. Send: the guest
 * advances tx_head, the VMM tx_tail. The producer fills a slot before it
 * publishes the new head (release); the consumer reads it after (acquire). */
struct ls_guest_rings {
	uint32_t rx_head, rx_tail;
	uint32_t tx_head, tx_tail;
};

struct ls_guest_slot {
	int64_t time_ns;     /* receive: when it arrived; send: when the guest sent it (its clock) */
	uint32_t length;
	uint32_t reserved;
	uint8_t data[LS_GUEST_FRAME_MAX];
};

struct ls_guest_clock {
	uint32_t seq;        /* odd while the VMM writes */
	uint32_t abi;        /* LS_GUEST_ABI_VERSION */
	uint64_t base_ns;    /* virtual time at tsc_base */
	uint64_t tsc_base;
	uint64_t mult;       /* virtual ns per TSC tick, 32.32 fixed point (cpu_scale included) */
	uint64_t limit_ns;   /* the clock never reads above this (the end of the current run) */
	uint64_t last_ns;    /* written by the guest: the highest time it has read */
	uint64_t self;       /* this page's own address (the SDK finds it at %fs:offsetof(self)) */
	uint32_t cpu;        /* this vCPU's index */
	uint32_t cpus;       /* how many the guest has */
	/* Written by the SDK around every hypercall: the TSC just before its
	 * `out` and just after it returns, with the seq it saw then. Between a
	 * return and the next `out` the guest ran for exactly that many ticks:
	 * its clock counts them instead of an exit's calibrated cost (a median:
	 * entries here take 0-140 us more or less than it), and its readings
	 * start from the return, not from an estimate of the entry. */
	uint64_t exit_tsc;
	uint64_t resume_tsc;
	uint32_t resume_seq;
	uint32_t reserved;
};

struct ls_guest_info {
	uint32_t address;    /* IPv4, host byte order (198.18.0.0/15) */
	uint32_t prefix_length;
	uint8_t mac[6];
	uint16_t host_index;
	uint64_t memory_bytes;
	uint64_t tsc_khz;
};

#endif /* LIVESTACK_GUEST_H */
