/*
 * cpu.c — the vCPU: ring-3 long mode, its run loop thread, quantum kicks and
 * virtual-time accounting.
 *
 * Setup: no guest ring-0 code at all (KVM-FACTS.md): identity-mapped user page
 * tables, a GDT with DPL-3 segments and a busy TSS, long-mode CR0/CR4/EFER and
 * RFLAGS.IOPL = 3, all through KVM_SET_SREGS/KVM_SET_REGS.
 *
 * Every vCPU has a thread of its own (pinned), and its own clock: the vCPUs
 * of a guest meet at every window end.
 *
 * Time: a quantum is one KVM_RUN bounded by a per-thread timer signal that
 * sets kvm_run->immediate_exit. The guest's clock advances by the CPU time
 * the vCPU thread spent in that KVM_RUN (CLOCK_THREAD_CPUTIME_ID, so time the
 * host gave to other tasks is not counted), less the calibrated cost of one
 * exit and entry, times cpu_scale. While the guest runs it reads the clock
 * page (base + TSC ticks, capped at the quantum's end); the VMM never lets its
 * own clock fall behind what the guest has read (last_ns), so the guest's time
 * is monotonic and every frame it sends is stamped no earlier than any time
 * it has seen.
 */
#define _GNU_SOURCE
#include "vmm.h"
#include "../util.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

#define PTE_P   0x001ull
#define PTE_RW  0x002ull
#define PTE_US  0x004ull
#define PTE_PS  0x080ull

#define CR0_PE  0x00000001ull
#define CR0_MP  0x00000002ull
#define CR0_ET  0x00000010ull
#define CR0_NE  0x00000020ull
#define CR0_WP  0x00010000ull
#define CR0_PG  0x80000000ull
#define CR4_PAE 0x00000020ull
#define CR4_OSFXSR 0x00000200ull
#define CR4_OSXMMEXCPT 0x00000400ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define RFLAGS_IOPL3 0x3000ull

/* The shortest quantum: an exit's cost, and never under this. A budget shorter
 * than an entry makes the timer fire before the guest runs: KVM_RUN returns at
 * once, the clock does not move, and the loop spins on such quanta (measured:
 * 6,000 of them in one 10 ms window when other tasks shared the core). The
 * overshoot is counted, not lost: the guest runs ahead into the next window. */
#define CPU_QUANTUM_MIN_NS 20000LL
/* TSS: 104 bytes, a bitmap bit for each of 65536 ports, and the 0xff byte that ends it */
#define VMM_TSS_BYTES (104 + 8192 + 1)

static __thread struct kvm_run *cpu__tls_run;

static void cpu__on_kick(int signal)
{
	(void)signal;
	if (cpu__tls_run != NULL)
		cpu__tls_run->immediate_exit = 1;
}

static pthread_once_t cpu__handler_once = PTHREAD_ONCE_INIT;
static int cpu__handler_error;

static void cpu__install_handler(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof action);
	action.sa_handler = cpu__on_kick;
	sigemptyset(&action.sa_mask);
	if (sigaction(VMM_KICK_SIGNAL, &action, NULL) < 0)
		cpu__handler_error = -errno;
}

static int64_t cpu__thread_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void cpu__segment(struct kvm_segment *s, uint16_t selector, uint8_t type, int code)
{
	memset(s, 0, sizeof *s);
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->dpl = 3;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
	s->g = 1;
}

/* Page tables, GDT and TSS in guest memory (see vmm.h for the layout), once per VM. */
static void cpu__tables(struct vmm_vm *vm)
{
	uint64_t *pml4 = vm__guest(vm, VMM_PML4_GPA, 4096);
	uint64_t *pdpt = vm__guest(vm, VMM_PDPT_GPA, 4096);
	uint64_t *pd = vm__guest(vm, VMM_PD_GPA, 4096);
	uint64_t *pt = vm__guest(vm, VMM_PT_GPA, 4096);
	uint64_t *gdt = vm__guest(vm, VMM_GDT_GPA, 4096);
	uint8_t *tss = vm__guest(vm, VMM_TSS_GPA, VMM_TSS_BYTES);
	uint64_t tss_base = VMM_TSS_GPA, big_pages = vm->mem_size >> 21;

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	memset(pd, 0, 4096);
	memset(pt, 0, 4096);
	pml4[0] = VMM_PDPT_GPA | PTE_P | PTE_RW | PTE_US;
	pdpt[0] = VMM_PD_GPA | PTE_P | PTE_RW | PTE_US;
	pd[0] = VMM_PT_GPA | PTE_P | PTE_RW | PTE_US;
	for (uint64_t i = 1; i < big_pages; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
	/* page 0 absent (null pointers fault); the VMM's tables and the
	 * calibration stub read-only; the shared page and everything above writable */
	for (uint64_t j = 1; j < 512; j++) {
		uint64_t gpa = j << 12;
		int vmm_owned = gpa < LS_GUEST_SHARED_GPA;

		pt[j] = gpa | PTE_P | PTE_US | (vmm_owned ? 0 : PTE_RW);
	}

	memset(gdt, 0, 4096);
	gdt[1] = 0x00af9a000000ffffull; /* ring-0 code64 (unused) */
	gdt[2] = 0x00cf92000000ffffull; /* ring-0 data (unused) */
	gdt[3] = 0x00affa000000ffffull; /* ring-3 code64 */
	gdt[4] = 0x00cff2000000ffffull; /* ring-3 data */
	gdt[5] = (uint64_t)(VMM_TSS_BYTES - 1) | ((tss_base & 0xffffffull) << 16) | (0x8bull << 40) | (((tss_base >> 24) & 0xffull) << 56);
	gdt[6] = tss_base >> 32;
	/* An I/O permission bitmap that allows every port: under PVM the guest's
	 * RFLAGS.IOPL reads back as 0 (measured), so IOPL alone is not enough. */
	memset(tss, 0, VMM_TSS_BYTES);
	tss[102] = 104;
	tss[VMM_TSS_BYTES - 1] = 0xff;
}

static uint64_t cpu__percpu_gpa(const struct vmm_vcpu *vcpu)
{
	return LS_GUEST_PERCPU_GPA + (uint64_t)vcpu->index * LS_GUEST_PERCPU_BYTES;
}

volatile struct ls_guest_clock *cpu__clock(struct vmm_vcpu *vcpu)
{
	return vm__guest(vcpu->vm, cpu__percpu_gpa(vcpu), sizeof(struct ls_guest_clock));
}

struct ls_guest_mailbox *cpu__mailbox(struct vmm_vcpu *vcpu)
{
	return vm__guest(vcpu->vm, cpu__percpu_gpa(vcpu) + 0x1000, sizeof(struct ls_guest_mailbox));
}

/* Long mode, ring 3: the segments, control registers and the given rip, rsp
 * and rdi; FS points at the vCPU's per-CPU block. */
static int cpu__set_registers(struct vmm_vcpu *vcpu, uint64_t rip, uint64_t rsp, uint64_t rdi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	cpu__segment(&sregs.cs, VMM_SEL_CODE, 0xb, 1);
	cpu__segment(&sregs.ss, VMM_SEL_DATA, 0x3, 0);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss;
	sregs.fs.base = cpu__percpu_gpa(vcpu);
	memset(&sregs.tr, 0, sizeof sregs.tr);
	sregs.tr.base = VMM_TSS_GPA;
	sregs.tr.limit = VMM_TSS_BYTES - 1;
	sregs.tr.selector = VMM_SEL_TSS;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof sregs.ldt);
	sregs.ldt.type = 2;
	sregs.ldt.unusable = 1;
	sregs.gdt.base = VMM_GDT_GPA;
	sregs.gdt.limit = 7 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr3 = VMM_PML4_GPA;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	memset(&regs, 0, sizeof regs);
	regs.rip = rip;
	regs.rsp = rsp;
	regs.rdi = rdi;
	regs.rflags = 0x2 | RFLAGS_IOPL3;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* vCPU k's stack top: below vCPU 0's, LS_GUEST_STACK_BYTES apart */
static uint64_t cpu__stack_top(const struct vmm_vcpu *vcpu)
{
	return vcpu->vm->mem_size - 64 - (uint64_t)vcpu->index * LS_GUEST_STACK_BYTES;
}

/* The calibration stub: rdtsc into the mailbox page (when the guest really
 * started), then a no-op hypercall, again and again; STUB_SPIN is a `jmp .`
 * for the kick bench. */
static const uint8_t cpu__stub[] = {
	0x0f, 0x31,                                     /* rdtsc */
	0x89, 0x04, 0x25, 0x80, 0xf0, 0x00, 0x00,       /* mov [0xf080], eax */
	0x89, 0x14, 0x25, 0x84, 0xf0, 0x00, 0x00,       /* mov [0xf084], edx */
	0xba, LS_GUEST_PORT_HCALL & 0xff, LS_GUEST_PORT_HCALL >> 8, 0, 0, /* mov edx, port */
	0x31, 0xc0,                                     /* xor eax, eax: call 0 */
	0xef,                                           /* out dx, eax */
	0xeb, 0xe6,                                     /* jmp to the rdtsc */
	0xeb, 0xfe,                                     /* STUB_SPIN: jmp . */
	0x0f, 0x31,                                     /* STUB_CLOCK: rdtsc */
	0x89, 0x04, 0x25, 0x88, 0xf0, 0x00, 0x00,       /* mov [0xf088], eax */
	0x89, 0x14, 0x25, 0x8c, 0xf0, 0x00, 0x00,       /* mov [0xf08c], edx */
	0xeb, 0xee,                                     /* jmp to the rdtsc */
};
#define STUB_TSC_GPA (LS_GUEST_SHARED_GPA + 0x80)
#define STUB_LAST_TSC_GPA (LS_GUEST_SHARED_GPA + 0x88)
#define STUB_SPIN 26
/* the quanta the kick's cost is measured on (KICK_NS=… in experiments) */
#ifndef KICK_CALIBRATION_NS
#define KICK_CALIBRATION_NS 300000
#endif
#define STUB_CLOCK 28

int cpu__setup(struct vmm_vcpu *vcpu)
{
	struct vmm_vm *vm = vcpu->vm;
	volatile struct ls_guest_clock *clock;

	if (vcpu->index == 0) {
		cpu__tables(vm);
		memcpy(vm__guest(vm, VMM_STUB_GPA, sizeof cpu__stub), cpu__stub, sizeof cpu__stub);
	}
	clock = cpu__clock(vcpu);
	clock->abi = LS_GUEST_ABI_VERSION;
	clock->self = cpu__percpu_gpa(vcpu);
	clock->cpu = (uint32_t)vcpu->index;
	/* vCPU 0 starts in the stub (calibration, benches) until it is given the image's entry */
	return cpu__set_registers(vcpu, VMM_STUB_GPA, cpu__stack_top(vcpu), 0);
}

/* ---- exit cost --------------------------------------------------------- */

/* The costs the clocks leave out: an exit and re-entry (a hypercall), a
 * quantum ended by the kick, and the TSC ticks an entry takes. Each is the
 * median of a pool of samples: a batch on the stub of every VM created (the
 * first a large one), so a noisy moment at start does not bias a process's
 * whole life (measured: one batch gave 84-124 us from process to process). */
#define COST_POOL 128

struct cpu__pool {
	int64_t samples[COST_POOL];
	int count;
	int next;
	int64_t median;
};

static pthread_mutex_t cpu__cost_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cpu__pool cpu__exit_pool, cpu__kick_pool, cpu__entry_pool;
static int cpu__calibrated;           /* 1: the pools have samples; -1: no guest could run */
static int64_t cpu__cost_ns;          /* the medians, read without the lock while windows run */
static int64_t cpu__kick_cost_ns;
static int64_t cpu__entry_ticks;
static int64_t cpu__entry_ns;

static int cpu__create_timer(timer_t *timer);
static void cpu__arm(timer_t timer, int64_t ns);
static int cpu__unblock_kick(void);

static int cpu__compare(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void cpu__pool_add(struct cpu__pool *pool, const int64_t *values, int n)
{
	int64_t sorted[COST_POOL];

	for (int i = 0; i < n; i++) {
		pool->samples[pool->next] = values[i];
		pool->next = (pool->next + 1) % COST_POOL;
		if (pool->count < COST_POOL)
			pool->count++;
	}
	if (pool->count == 0)
		return;
	memcpy(sorted, pool->samples, (size_t)pool->count * sizeof sorted[0]);
	qsort(sorted, (size_t)pool->count, sizeof sorted[0], cpu__compare);
	pool->median = sorted[pool->count / 2];
}

/* KVM_RUN round trips of the stub (each ends at its `out`): thread CPU or wall
 * ns each, and (entry_ticks) the TSC ticks from the ioctl to the guest's first
 * instruction. */
static int cpu__stub_runs(struct vmm_vm *vm, int32_t count, int64_t *out_ns, int64_t *entry_ticks, int wall)
{
	volatile uint64_t *guest_tsc = vm__guest(vm, STUB_TSC_GPA, 8);
	struct vmm_vcpu *vcpu = &vm->vcpus[0];

	for (int32_t i = 0; i < count; i++) {
		int64_t before = wall ? util__now_ns() : cpu__thread_ns();
		uint64_t tsc = __rdtsc();

		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0)
			return -errno;
		out_ns[i] = (wall ? util__now_ns() : cpu__thread_ns()) - before;
		if (entry_ticks != NULL)
			entry_ticks[i] = (int64_t)(*guest_tsc - tsc);
		if (vcpu->run->exit_reason != KVM_EXIT_IO || vcpu->run->io.port != LS_GUEST_PORT_HCALL)
			return -EPROTO;
	}
	return 0;
}

/* A kicked quantum costs more than a hypercall: the timer signal's delivery
 * and the interrupted entry. A guest that stores the TSC in a loop shows how
 * long it really ran; the rest of the thread's CPU time is the kick's cost.
 * Returns how many samples it wrote (the first `skip` runs warm up). */
static int cpu__kick_runs(struct vmm_vm *vm, int count, int skip, int64_t *samples)
{
	volatile uint64_t *last = vm__guest(vm, STUB_LAST_TSC_GPA, 8);
	struct vmm_vcpu *vcpu = &vm->vcpus[0];
	struct kvm_run *saved = cpu__tls_run;
	int n = 0;
	timer_t timer;

	if (cpu__unblock_kick() < 0 || cpu__set_registers(vcpu, VMM_STUB_GPA + STUB_CLOCK, cpu__stack_top(vcpu), 0) < 0 || cpu__create_timer(&timer) < 0)
		return 0;
	cpu__tls_run = vcpu->run;
	for (int i = 0; i < count + skip; i++) {
		int64_t before_cpu, ran, guest_ns;
		uint64_t before_tsc;

		*last = 0;
		vcpu->run->immediate_exit = 0;
		cpu__arm(timer, KICK_CALIBRATION_NS);
		before_cpu = cpu__thread_ns();
		before_tsc = __rdtsc();
		if (ioctl(vcpu->fd, KVM_RUN, 0) == 0 || errno != EINTR)
			break;
		ran = cpu__thread_ns() - before_cpu;
		if (i < skip || *last == 0)
			continue; /* warming up, or the guest never ran */
		guest_ns = (int64_t)((double)(*last - before_tsc - (uint64_t)cpu__entry_ticks) * 1e6 / (double)vm->tsc_khz);
		if (ran > guest_ns)
			samples[n++] = ran - guest_ns;
	}
	cpu__arm(timer, 0);
	timer_delete(timer);
	cpu__tls_run = saved;
	/* back to the stub's start (a guest is given its entry at its first window) */
	cpu__set_registers(vcpu, VMM_STUB_GPA, cpu__stack_top(vcpu), 0);
	return n;
}

/* A batch of samples on vCPU 0 of `vm`, still in its stub (cost lock held). */
static void cpu__calibrate_batch(struct vmm_vm *vm, int exits, int kicks)
{
	int64_t samples[64], entries[64];
	int warm = cpu__calibrated == 0 ? 8 : 2, n;

	if (exits + warm > 64 || kicks > 64)
		return;
	if (cpu__stub_runs(vm, exits + warm, samples, entries, 0) != 0) {
		if (cpu__calibrated == 0)
			cpu__calibrated = -1;
		return;
	}
	cpu__pool_add(&cpu__exit_pool, samples + warm, exits);
	cpu__pool_add(&cpu__entry_pool, entries + warm, exits);
	__atomic_store_n(&cpu__cost_ns, cpu__exit_pool.median, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu__entry_ticks, cpu__entry_pool.median > 0 ? cpu__entry_pool.median : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu__entry_ns, (int64_t)((double)cpu__entry_ticks * 1e6 / (double)vm->tsc_khz), __ATOMIC_RELAXED);
	n = cpu__kick_runs(vm, kicks, warm / 2, samples);
	if (n > 0)
		cpu__pool_add(&cpu__kick_pool, samples, n);
	__atomic_store_n(&cpu__kick_cost_ns, cpu__kick_pool.count > 0 ? cpu__kick_pool.median : cpu__cost_ns, __ATOMIC_RELAXED);
	cpu__calibrated = 1;
	if (getenv("LIVESTACK_VM_DEBUG") != NULL)
		fprintf(stderr, "[vmm] costs after %d samples: exit %lld ns, kick %lld ns, entry %lld TSC ticks\n",
			cpu__exit_pool.count, (long long)cpu__cost_ns, (long long)cpu__kick_cost_ns, (long long)cpu__entry_ticks);
}

/* Adds a batch from a new VM (before its threads start, its vCPU 0 in the stub). */
static void cpu__calibrate_vm(struct vmm_vm *vm)
{
	pthread_mutex_lock(&cpu__cost_lock);
	if (cpu__calibrated == 0)
		cpu__calibrate_batch(vm, 48, 24);
	else if (cpu__calibrated > 0)
		cpu__calibrate_batch(vm, 8, 4);
	pthread_mutex_unlock(&cpu__cost_lock);
}

/* LIVESTACK_VM_EXIT_COST_NS: an exit cost to use instead of the calibrated one (-1: none), read once */
static int64_t cpu__fixed_exit_cost(void)
{
	static int64_t fixed = -2;

	if (fixed == -2) {
		const char *text = getenv("LIVESTACK_VM_EXIT_COST_NS");

		fixed = text != NULL ? atoll(text) : -1;
	}
	return fixed;
}

int64_t cpu__exit_cost_ns(void)
{
	int64_t fixed = cpu__fixed_exit_cost();

	pthread_mutex_lock(&cpu__cost_lock);
	if (cpu__calibrated == 0) {
		struct vmm_vm *vm = NULL;

		if (vm__create_bare(&vm, LS_GUEST_MEMORY_MIN, 1) == 0) {
			cpu__calibrate_batch(vm, 48, 24);
			vm__destroy_bare(vm);
		} else {
			cpu__calibrated = -1;
		}
	}
	pthread_mutex_unlock(&cpu__cost_lock);
	return fixed >= 0 ? fixed : cpu__calibrated > 0 ? cpu__cost_ns : 0;
}

/* the costs now (the pools' medians move as VMs are created) */
static int64_t cpu__exit_cost_now(void)
{
	int64_t fixed = cpu__fixed_exit_cost();

	return fixed >= 0 ? fixed : __atomic_load_n(&cpu__cost_ns, __ATOMIC_RELAXED);
}

static int64_t cpu__kick_cost(void)
{
	return __atomic_load_n(&cpu__kick_cost_ns, __ATOMIC_RELAXED);
}

int64_t cpu__kick_cost_ns_get(void)
{
	(void)cpu__exit_cost_ns();
	return cpu__kick_cost();
}

static int64_t cpu__entry_cost_ticks(void)
{
	return __atomic_load_n(&cpu__entry_ticks, __ATOMIC_RELAXED);
}

int cpu__bench_exits(int32_t count, int64_t *out_ns)
{
	struct vmm_vm *vm = NULL;
	int rc;

	if (count <= 0 || out_ns == NULL)
		return -EINVAL;
	rc = vm__create_bare(&vm, LS_GUEST_MEMORY_MIN, 1);
	if (rc < 0)
		return rc;
	rc = cpu__stub_runs(vm, count, out_ns, NULL, 1);
	vm__destroy_bare(vm);
	return rc;
}

static int cpu__create_timer(timer_t *timer)
{
	struct sigevent event;

	memset(&event, 0, sizeof event);
	event.sigev_notify = SIGEV_THREAD_ID;
	event.sigev_signo = VMM_KICK_SIGNAL;
	event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	return timer_create(CLOCK_MONOTONIC, &event, timer) < 0 ? -errno : 0;
}

static void cpu__arm(timer_t timer, int64_t ns)
{
	struct itimerspec spec;

	memset(&spec, 0, sizeof spec);
	spec.it_value.tv_sec = ns / 1000000000LL;
	spec.it_value.tv_nsec = ns % 1000000000LL;
	timer_settime(timer, 0, &spec, NULL);
}

static int cpu__unblock_kick(void)
{
	sigset_t set;

	pthread_once(&cpu__handler_once, cpu__install_handler);
	if (cpu__handler_error < 0)
		return cpu__handler_error;
	sigemptyset(&set);
	sigaddset(&set, VMM_KICK_SIGNAL);
	return -pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int cpu__bench_kicks(int32_t count, int64_t quantum_ns, int64_t *out_overshoot_ns)
{
	struct vmm_vm *vm = NULL;
	struct vmm_vcpu *vcpu;
	struct kvm_run *saved = cpu__tls_run;
	timer_t timer;
	int rc;

	if (count <= 0 || quantum_ns <= 0 || out_overshoot_ns == NULL)
		return -EINVAL;
	rc = cpu__unblock_kick();
	if (rc < 0)
		return rc;
	rc = vm__create_bare(&vm, LS_GUEST_MEMORY_MIN, 1);
	if (rc < 0)
		return rc;
	vcpu = &vm->vcpus[0];
	rc = cpu__set_registers(vcpu, VMM_STUB_GPA + STUB_SPIN, cpu__stack_top(vcpu), 0); /* spins in ring 3 */
	if (rc == 0)
		rc = cpu__create_timer(&timer);
	if (rc < 0) {
		vm__destroy_bare(vm);
		return rc;
	}
	cpu__tls_run = vcpu->run;
	for (int32_t i = 0; i < count && rc == 0; i++) {
		int64_t before;

		vcpu->run->immediate_exit = 0;
		before = util__now_ns();
		cpu__arm(timer, quantum_ns);
		if (ioctl(vcpu->fd, KVM_RUN, 0) == 0 || errno != EINTR)
			rc = -EPROTO;
		out_overshoot_ns[i] = util__now_ns() - before - quantum_ns;
	}
	cpu__arm(timer, 0);
	cpu__tls_run = saved;
	timer_delete(timer);
	vm__destroy_bare(vm);
	return rc;
}

/* ---- the run loop ------------------------------------------------------- */

/* LIVESTACK_VM_TRACE=1: a stderr line per quantum (its exit, the CPU it ran, what its clock was charged) */
static int cpu__trace(void)
{
	static int trace = -1;

	if (trace < 0)
		trace = getenv("LIVESTACK_VM_TRACE") != NULL;
	return trace;
}

static void cpu__write_clock(struct vmm_vcpu *vcpu, int64_t limit_ns)
{
	volatile struct ls_guest_clock *clock = cpu__clock(vcpu);

	clock->seq++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	clock->base_ns = (uint64_t)vcpu->clock_ns;
	clock->mult = vcpu->vm->mult;
	clock->limit_ns = (uint64_t)limit_ns;
	clock->cpus = (uint32_t)vcpu->vm->vcpu_count;
	if (clock->last_ns > (uint64_t)vcpu->clock_ns)
		clock->last_ns = (uint64_t)vcpu->clock_ns;
	/* the guest's time starts when it runs again, an entry after this */
	clock->tsc_base = __rdtsc() + (uint64_t)cpu__entry_cost_ticks();
	__atomic_thread_fence(__ATOMIC_RELEASE);
	clock->seq++;
}

static void cpu__crash_regs(struct vmm_vcpu *vcpu, const char *what)
{
	struct kvm_regs regs;
	char text[LS_VM_ERROR_MAX];

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
		snprintf(text, sizeof text, "%s at rip 0x%llx (rsp 0x%llx, vCPU %d)", what, (unsigned long long)regs.rip, (unsigned long long)regs.rsp, vcpu->index);
	else
		snprintf(text, sizeof text, "%s (vCPU %d)", what, vcpu->index);
	hcall__crash(vcpu, text);
}

/* One KVM_RUN, at most until the vCPU's clock reaches stop_ns. */
static void cpu__quantum(struct vmm_vcpu *vcpu, int64_t stop_ns, int64_t exit_cost_ns)
{
	struct vmm_vm *vm = vcpu->vm;
	volatile struct ls_guest_clock *clock = cpu__clock(vcpu);
	int64_t budget_ns = (int64_t)((double)(stop_ns - vcpu->clock_ns) / vm->config.scale);
	int64_t before, ran, charged, now;
	uint32_t seq;
	int rc, error;
	char what[96];

	if (budget_ns < exit_cost_ns)
		budget_ns = exit_cost_ns;
	if (budget_ns < CPU_QUANTUM_MIN_NS)
		budget_ns = CPU_QUANTUM_MIN_NS;
	cpu__write_clock(vcpu, stop_ns);
	seq = clock->seq;
	pthread_mutex_lock(&vm->io_lock);
	hcall__rx_fill(vcpu);
	pthread_mutex_unlock(&vm->io_lock);
	vcpu->run->immediate_exit = 0;
	/* the guest starts an entry after the timer is armed: one quantum, not a
	 * quantum and a short remainder (each quantum's overhead is a median) */
	cpu__arm(vcpu->timer, budget_ns + __atomic_load_n(&cpu__entry_ns, __ATOMIC_RELAXED));
	before = cpu__thread_ns();
	rc = ioctl(vcpu->fd, KVM_RUN, 0);
	error = errno;
	ran = cpu__thread_ns() - before;
	cpu__arm(vcpu->timer, 0);

	vcpu->ran_ns += ran;
	if (rc == 0 && vcpu->run->exit_reason == KVM_EXIT_IO && vcpu->run->io.port == LS_GUEST_PORT_HCALL &&
	    clock->resume_seq == seq && clock->exit_tsc > clock->resume_tsc) {
		/* from a hypercall's return to the next hypercall: the guest says
		 * when it ran (its TSC on both sides), exactly */
		charged = (int64_t)((double)(clock->exit_tsc - clock->resume_tsc) * 1e6 / (double)vm->tsc_khz);
	} else {
		int64_t overhead = rc < 0 ? cpu__kick_cost() : exit_cost_ns;

		charged = ran > overhead ? ran - overhead : 0;
	}
	now = vcpu->clock_ns + (int64_t)((double)charged * vm->config.scale);
	/* never behind what the guest has read (its reads are capped at stop_ns) */
	if ((int64_t)clock->last_ns > now && (int64_t)clock->last_ns <= stop_ns)
		now = (int64_t)clock->last_ns;
	if (cpu__trace())
		fprintf(stderr, "[vmm] vm %p cpu %d quantum from %lld to stop %lld: rc %d exit %u port %x call %u ran %lld charged %lld exact %d now %lld\n", (void *)vm, vcpu->index,
			(long long)vcpu->clock_ns, (long long)stop_ns, rc, vcpu->run->exit_reason, vcpu->run->io.port,
			*(uint32_t *)((uint8_t *)vcpu->run + vcpu->run->io.data_offset), (long long)ran, (long long)charged,
			clock->resume_seq == seq, (long long)now);
	vcpu->clock_ns = now;
	pthread_mutex_lock(&vm->io_lock);
	hcall__tx_drain(vcpu);
	pthread_mutex_unlock(&vm->io_lock);
	if (rc < 0) {
		if (error == EINTR || error == EAGAIN) {
			vcpu->kicks++;
			if (now - stop_ns > vcpu->overshoot_ns_max)
				vcpu->overshoot_ns_max = now - stop_ns;
			return;
		}
		snprintf(what, sizeof what, "KVM_RUN failed: %s", strerror(error));
		hcall__crash(vcpu, what);
		return;
	}
	switch (vcpu->run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu->exits++;
		hcall__io(vcpu);
		return;
	case KVM_EXIT_INTR:
		vcpu->kicks++;
		return;
	case KVM_EXIT_MMIO:
		snprintf(what, sizeof what, "guest touched unbacked address 0x%llx", (unsigned long long)vcpu->run->mmio.phys_addr);
		cpu__crash_regs(vcpu, what);
		return;
	case KVM_EXIT_SHUTDOWN:
		cpu__crash_regs(vcpu, "guest fault (no handler: a bad pointer, ud2, hlt or a privileged instruction in ring 3)");
		return;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof what, "vCPU entry failed (reason 0x%llx)", (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason);
		cpu__crash_regs(vcpu, what);
		return;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof what, "KVM internal error (suberror %u)", vcpu->run->internal.suberror);
		cpu__crash_regs(vcpu, what);
		return;
	default:
		snprintf(what, sizeof what, "unexpected exit %u", vcpu->run->exit_reason);
		cpu__crash_regs(vcpu, what);
		return;
	}
}

static int cpu__quit(struct vmm_vm *vm)
{
	return __atomic_load_n(&vm->command, __ATOMIC_ACQUIRE) == VMM_CMD_QUIT;
}

static int cpu__ended(struct vmm_vm *vm)
{
	return __atomic_load_n(&vm->state, __ATOMIC_ACQUIRE) != LS_VM_RUNNING;
}

/* A parked vCPU that was asked to start: its registers, and its clock at the asker's time. */
static void cpu__unpark(struct vmm_vcpu *vcpu)
{
	struct vmm_vm *vm = vcpu->vm;
	uint64_t rip, rsp, rdi;
	int64_t at;

	pthread_mutex_lock(&vm->io_lock);
	if (!vcpu->start_pending) {
		pthread_mutex_unlock(&vm->io_lock);
		return;
	}
	rip = vcpu->start_rip;
	rsp = vcpu->start_rsp;
	rdi = vcpu->start_rdi;
	at = vcpu->start_ns;
	vcpu->start_pending = 0;
	pthread_mutex_unlock(&vm->io_lock);
	if (cpu__set_registers(vcpu, rip, rsp, rdi) < 0) {
		hcall__crash(vcpu, "could not set a started vCPU's registers");
		return;
	}
	if (vcpu->clock_ns < at)
		vcpu->clock_ns = at;
	vcpu->state = VMM_CPU_RUNNING;
}

/* Runs this vCPU through [window_start_ns, window_end_ns). */
static void cpu__window(struct vmm_vcpu *vcpu, int64_t exit_cost_ns)
{
	struct vmm_vm *vm = vcpu->vm;
	struct ls_guest_mailbox *mailbox = cpu__mailbox(vcpu);
	int64_t end = vm->window_end_ns;

	if (cpu__ended(vm))
		return;
	if (vcpu->index == 0 && !vm->started) {
		if (vm->config.start_ns >= end)
			return;
		if (cpu__set_registers(vcpu, vm->entry, cpu__stack_top(vcpu), 0) < 0) {
			hcall__crash(vcpu, "could not set the vCPU's registers");
			return;
		}
		vm->started = 1;
		if (vcpu->clock_ns < vm->config.start_ns)
			vcpu->clock_ns = vm->config.start_ns;
	}
	/* a vCPU that was not run (paused, waiting, parked) catches up: its time stood still */
	if (vcpu->clock_ns < vm->window_start_ns)
		vcpu->clock_ns = vm->window_start_ns;
	if (vcpu->state == VMM_CPU_PARKED)
		cpu__unpark(vcpu);
	while (vcpu->clock_ns < end && !cpu__quit(vm) && !cpu__ended(vm)) {
		if (vcpu->state == VMM_CPU_PARKED) {
			vcpu->clock_ns = end;
			return;
		}
		if (vcpu->state == VMM_CPU_WAITING) {
			int64_t wake = vcpu->wait_until_ns;
			int ready;

			pthread_mutex_lock(&vm->io_lock);
			ready = hcall__frame_ready(vcpu);
			if (vcpu->wake_on_frame) {
				int64_t next = ready ? vcpu->clock_ns : hcall__next_frame_ns(vm, vcpu->clock_ns);

				if (next < wake)
					wake = next;
			}
			pthread_mutex_unlock(&vm->io_lock);
			if (wake >= end) {
				vcpu->clock_ns = end;
				return;
			}
			if (wake > vcpu->clock_ns)
				vcpu->clock_ns = wake;
			vcpu->state = VMM_CPU_RUNNING;
			pthread_mutex_lock(&vm->io_lock);
			mailbox->ret = hcall__frame_ready(vcpu) ? 1 : 0;
			pthread_mutex_unlock(&vm->io_lock);
			continue;
		}
		{
			int64_t stop = end, next;

			pthread_mutex_lock(&vm->io_lock);
			next = hcall__next_frame_ns(vm, vcpu->clock_ns);
			pthread_mutex_unlock(&vm->io_lock);
			if (next < stop)
				stop = next;
			cpu__quantum(vcpu, stop, exit_cost_ns);
		}
	}
}

static int cpu__pin(const struct vmm_vcpu *vcpu)
{
	uint64_t mask = vcpu->vm->config.core_mask;
	int count = __builtin_popcountll(mask), want, seen = 0;
	cpu_set_t set;

	if (mask == 0)
		return 0;
	want = vcpu->index % count;
	CPU_ZERO(&set);
	for (int core = 0; core < 64; core++) {
		if (!(mask & (1ull << core)))
			continue;
		if (seen++ == want) {
			CPU_SET(core, &set);
			break;
		}
	}
	return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}

static void *cpu__thread(void *arg)
{
	struct vmm_vcpu *vcpu = arg;
	struct vmm_vm *vm = vcpu->vm;
	int rc;

	cpu__tls_run = vcpu->run;
	rc = cpu__unblock_kick();
	if (rc == 0)
		rc = cpu__pin(vcpu);
	/* Real-time on its core: a host task that preempts the vCPU is not
	 * counted by its clock, but splits the window into several quanta, and
	 * each costs an exit whose calibrated cost is only a median (measured
	 * under load: 20 kicks in a 10 ms window and +-10% on a CPU-bound loop).
	 * Where real-time is refused, the highest ordinary priority. */
	if (rc == 0) {
		struct sched_param param = { .sched_priority = VMM_RT_PRIORITY };

		if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) != 0)
			(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -20);
	}
	if (rc == 0) {
		rc = cpu__create_timer(&vcpu->timer);
		vcpu->timer_created = rc == 0;
	}
	pthread_mutex_lock(&vm->lock);
	vcpu->start_error = rc;
	vm->done++;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (rc < 0)
		return NULL;
	for (;;) {
		int quit;

		pthread_mutex_lock(&vm->lock);
		while (vm->command != VMM_CMD_QUIT && !(vm->command == VMM_CMD_WINDOW && vm->generation != vcpu->generation))
			pthread_cond_wait(&vm->cond, &vm->lock);
		quit = vm->command == VMM_CMD_QUIT;
		vcpu->generation = vm->generation;
		pthread_mutex_unlock(&vm->lock);
		if (quit)
			break;
		cpu__window(vcpu, cpu__exit_cost_now());
		pthread_mutex_lock(&vm->lock);
		vm->done++;
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
	}
	if (vcpu->timer_created)
		timer_delete(vcpu->timer);
	vcpu->timer_created = 0;
	return NULL;
}

int cpu__start_threads(struct vmm_vm *vm)
{
	int rc = 0, created = 0;

	/* before the first window, not inside it: a batch of cost samples from this VM's stub (and the
	 * override read once, before the vCPU threads read it) */
	cpu__calibrate_vm(vm);
	(void)cpu__fixed_exit_cost();
	vm->done = 0;
	for (int i = 0; i < vm->vcpu_count; i++) {
		rc = -pthread_create(&vm->vcpus[i].thread, NULL, cpu__thread, &vm->vcpus[i]);
		if (rc < 0)
			break;
		created++;
	}
	pthread_mutex_lock(&vm->lock);
	while (vm->done < created)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	for (int i = 0; i < created; i++) {
		if (vm->vcpus[i].start_error < 0 && rc == 0)
			rc = vm->vcpus[i].start_error;
		vm->vcpus[i].thread_started = vm->vcpus[i].start_error == 0;
		if (!vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
	}
	if (rc < 0)
		cpu__stop_threads(vm);
	return rc;
}

void cpu__stop_threads(struct vmm_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->command = VMM_CMD_QUIT;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	for (int i = 0; i < vm->vcpu_count; i++) {
		struct vmm_vcpu *vcpu = &vm->vcpus[i];

		if (!vcpu->thread_started)
			continue;
		/* a window in progress sees the quit between quanta; a kick ends the current one */
		if (vcpu->timer_created)
			pthread_kill(vcpu->thread, VMM_KICK_SIGNAL);
		pthread_join(vcpu->thread, NULL);
		vcpu->thread_started = 0;
	}
}
