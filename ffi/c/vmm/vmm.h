/*
 * vmm.h — internals of LiveStack's micro-VMM (not part of the ABI).
 *
 * One file per concern, kvmtool-style:
 *   vm.c     the VM: /dev/kvm, guest memory (memfd), the ls_vm__ API
 *   cpu.c    the vCPU: ring-3 long mode, the run loop thread, quantum kicks,
 *            virtual-time accounting, exit-cost calibration
 *   hcall.c  port I/O exits: hypercalls, the console, frames in and out
 *   elf.c    loading a guest image
 */
#ifndef LS_VMM_H
#define LS_VMM_H

#include "livestack.h"
#include "livestack-guest.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Guest page tables and descriptor tables, below the clock page. */
#define VMM_GDT_GPA   0x1000ull
#define VMM_TSS_GPA   0x9000ull  /* 104 bytes + an 8 KiB I/O bitmap: 0x9000-0xb068 */
#define VMM_PML4_GPA  0x3000ull
#define VMM_PDPT_GPA  0x4000ull
#define VMM_PD_GPA    0x5000ull
#define VMM_PT_GPA    0x6000ull  /* 4 KiB pages of the first 2 MiB: page 0 not present */
#define VMM_STUB_GPA  0x8000ull  /* the exit-cost calibration loop */

#define VMM_SEL_CODE  0x1b       /* GDT entry 3, RPL 3 */
#define VMM_SEL_DATA  0x23       /* GDT entry 4, RPL 3 */
#define VMM_SEL_TSS   0x28       /* GDT entries 5-6 */

/* Limits (per VM): frames waiting for the guest, frames it sends in a window,
 * console bytes per window. A guest past them loses frames (counted), never
 * memory of the host. */
#define VMM_RX_MAX       1024
#define VMM_TX_MAX       4096
#define VMM_TX_BYTES     (4u << 20)
#define VMM_CONSOLE_MAX  (64u << 10)
#define VMM_LINE_MAX     512

/* A vCPU thread's SCHED_FIFO priority: below the controller's (ffi/c/live.c, 20). */
#define VMM_RT_PRIORITY  10

/* The kick: a per-thread timer signal (KVM-FACTS: ~24 us overshoot). */
#define VMM_KICK_SIGNAL  (SIGRTMIN + 7)

struct vmm_frame {
	int64_t time_ns;
	uint32_t length;
	uint8_t data[LS_GUEST_FRAME_MAX];
};

struct vmm_vm;

/* One vCPU: its KVM fd, its thread, its clock. */
struct vmm_vcpu {
	struct vmm_vm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	int thread_started;
	int start_error;
	timer_t timer;
	int timer_created;
	uint64_t generation;     /* the last window it ran */

	/* guest state (owned by its thread during a window) */
	int64_t clock_ns;
	int state;               /* VMM_CPU_* */
	int64_t wait_until_ns;
	int wake_on_frame;
	/* a start another vCPU asked for (under the VM's io_lock) */
	int start_pending;
	uint64_t start_rip, start_rdi, start_rsp;
	int64_t start_ns;

	/* its console line */
	char line[VMM_LINE_MAX];
	uint32_t line_used;
	int64_t line_ns;

	/* per window counters */
	int64_t ran_ns;
	int64_t overshoot_ns_max;
	int32_t exits;
	int32_t kicks;
};

enum { VMM_CPU_RUNNING = 0, VMM_CPU_WAITING = 1, VMM_CPU_PARKED = 2 };

struct vmm_vm {
	/* KVM */
	int vm_fd;
	struct vmm_vcpu vcpus[LS_GUEST_VCPUS_MAX];
	int vcpu_count;
	/* guest memory */
	int mem_fd;
	uint8_t *mem;
	uint64_t mem_size;
	uint64_t entry;
	/* configuration */
	struct ls_vm_config config;
	char *arg;
	uint64_t tsc_khz;
	uint64_t mult;           /* 32.32 virtual ns per TSC tick */

	/* the vCPU threads and their handshake with the controller */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int command;             /* VMM_CMD_* */
	uint64_t generation;     /* windows begun */
	int done;                /* vCPUs done with the current window */

	/* the current window (written by ls_vm__begin before the threads run it) */
	int64_t window_start_ns;
	int64_t window_end_ns;

	/* what the vCPUs share, under io_lock while a window runs */
	pthread_mutex_t io_lock;
	int state;               /* LS_VM_RUNNING, LS_VM_EXITED, LS_VM_CRASHED */
	int exit_code;
	int64_t ended_ns;        /* the clock of the vCPU that ended it */
	char error[LS_VM_ERROR_MAX];
	int started;             /* vCPU 0 ran its first instruction */

	/* frames for the guest: a FIFO sorted by time */
	struct vmm_frame *rx;
	uint32_t rx_head;
	uint32_t rx_count;

	/* frames from the guest in this window */
	struct ls_live_frame *tx;
	uint8_t *tx_bytes;
	int32_t tx_count;
	uint32_t tx_used;
	int64_t tx_last_ns;      /* the latest stamp given: frames leave in order */

	/* console lines of this window */
	char *console;
	uint32_t console_used;
	int32_t dropped;
};

enum { VMM_CMD_NONE = 0, VMM_CMD_WINDOW = 1, VMM_CMD_QUIT = 2 };

/* cpu.c */
int cpu__setup(struct vmm_vcpu *vcpu);
int cpu__start_threads(struct vmm_vm *vm);
void cpu__stop_threads(struct vmm_vm *vm);
int64_t cpu__exit_cost_ns(void);
int64_t cpu__kick_cost_ns_get(void);
int cpu__bench_exits(int32_t count, int64_t *out_ns);
int cpu__bench_kicks(int32_t count, int64_t quantum_ns, int64_t *out_overshoot_ns);
/* a vCPU's clock page and mailbox */
volatile struct ls_guest_clock *cpu__clock(struct vmm_vcpu *vcpu);
struct ls_guest_mailbox *cpu__mailbox(struct vmm_vcpu *vcpu);

/* hcall.c: handles a KVM_EXIT_IO (the caller holds no lock) */
void hcall__io(struct vmm_vcpu *vcpu);
/* a frame is waiting for this vCPU: in the receive ring, or due by its clock (io_lock held) */
int hcall__frame_ready(struct vmm_vcpu *vcpu);
int64_t hcall__next_frame_ns(const struct vmm_vm *vm, int64_t after_ns);
/* before a KVM_RUN: due frames into the guest's receive ring; after one: the send ring out (io_lock held) */
void hcall__rx_fill(struct vmm_vcpu *vcpu);
void hcall__tx_drain(struct vmm_vcpu *vcpu);
/* the guest ends as crashed (takes io_lock) */
void hcall__crash(struct vmm_vcpu *vcpu, const char *what);

/* elf.c: copies the image's PT_LOAD segments into guest memory; -ENOEXEC if it is not a guest image. */
int elf__load(struct vmm_vm *vm, const uint8_t *image, uint64_t length);

/* vm.c: the guest's memory, or NULL when [gpa, gpa + length) is outside it */
void *vm__guest(struct vmm_vm *vm, uint64_t gpa, uint64_t length);
/* creates a bare VM (memory + vCPUs, no threads) for calibration and benches */
int vm__create_bare(struct vmm_vm **out, uint64_t memory_bytes, int vcpus);
void vm__destroy_bare(struct vmm_vm *vm);

#endif /* LS_VMM_H */
