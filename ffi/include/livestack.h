/*
 * livestack.h — the ABI of liblivestack.so, the C core of LiveStack.
 *
 * Conventions (see STYLE.md):
 *  - Exported functions are `ls_<subsystem>__<verb>`; internal helpers are
 *    `static <subsystem>__<verb>` and never leave their file.
 *  - Functions return 0 (or a count) on success and a negative errno on
 *    failure. The library never calls exit() or abort(): it runs inside Node.
 *  - Structs are plain old data filled by the callee (out-params). Their
 *    layout is mirrored by koffi.struct() in the TypeScript bindings;
 *    ls_sizeof() lets them check that the two agree before the first call.
 *  - Bump LS_ABI_VERSION on any incompatible change to this file.
 */
#ifndef LIVESTACK_H
#define LIVESTACK_H

#ifdef __cplusplus
extern "C" {
#endif

#define LS_API __attribute__((visibility("default")))

#define LS_VERSION "0.1.0"
#define LS_ABI_VERSION 1

/* Fixed string buffers in probe structs: long enough for every controller
 * name the kernel has (~15 of them, space-separated) and for a path. */
#define LS_NAMES_MAX 256
#define LS_PATH_MAX 256

LS_API const char *ls_version(void);
LS_API int ls_abi_version(void);
/* sizeof() of an ABI struct by its name ("ls_kvm_probe", ...), or -ENOENT. */
LS_API long ls_sizeof(const char *type_name);

/* ---- KVM ---------------------------------------------------------------- */

struct ls_kvm_probe {
	int api_version;        /* KVM_GET_API_VERSION; 12 on every kernel since 2.6.22 */
	int can_create_vm;      /* KVM_CREATE_VM + KVM_CREATE_VCPU both succeeded */
	int cap_user_memory;    /* KVM_CHECK_EXTENSION results (0 = absent, >0 = present/value) */
	int cap_immediate_exit;
	int cap_tsc_control;
	int cap_adjust_clock;
	long long vm_create_ns; /* CLOCK_MONOTONIC time for VM + one vCPU; -1 if not created */
	int error;              /* -errno of the first failure, 0 if none */
};

/* Opens /dev/kvm, checks the API and capabilities, creates and destroys a VM
 * with one vCPU. Returns 0 if /dev/kvm answered, else -errno (also in
 * out->error). A failed VM creation is reported in out, not as the result. */
LS_API int ls_kvm__probe(struct ls_kvm_probe *out);

/* ---- cgroups ------------------------------------------------------------ */

/* v1 controllers LiveStack uses, as bits of ls_cgroup_probe.v1_mask. */
#define LS_CG_CPU     (1u << 0)
#define LS_CG_CPUACCT (1u << 1)
#define LS_CG_CPUSET  (1u << 2)
#define LS_CG_MEMORY  (1u << 3)
#define LS_CG_FREEZER (1u << 4)
#define LS_CG_PIDS    (1u << 5)

struct ls_cgroup_probe {
	int v1_hierarchies;     /* number of v1 hierarchies under root */
	unsigned int v1_mask;   /* LS_CG_* bits of the controllers mounted as v1 */
	int v2;                 /* a cgroup2 hierarchy exists (root itself or a child) */
	int v2_at_root;         /* root itself is cgroup2 (pure unified mode) */
	int freezer_v1;         /* a v1 freezer hierarchy is mounted */
	int freezer_v2;         /* non-root v2 cgroups have cgroup.freeze */
	int by_structure;       /* something was recognised by its files only, not by
	                           statfs magic (a fake tree in tests, or odd mounts) */
	int error;              /* -errno of the first unexpected failure, 0 if none */
	char v1_names[LS_NAMES_MAX];       /* every v1 controller, space-separated */
	char v2_path[LS_PATH_MAX];         /* path of the cgroup2 hierarchy, "" if none */
	char v2_controllers[LS_NAMES_MAX]; /* contents of its cgroup.controllers */
};

/* root: a cgroup mount root such as "/sys/fs/cgroup" (NULL = that default).
 * May create and remove one empty child cgroup, livestack-probe-<pid>, under
 * a real cgroup2 root to see whether cgroup.freeze exists. Returns 0, or
 * -errno if root itself cannot be read. */
LS_API int ls_cgroup__probe(const char *root, struct ls_cgroup_probe *out);

/* ---- resctrl (Intel RDT / AMD PQoS) -------------------------------------- */

struct ls_resctrl_probe {
	int root_exists;        /* the directory exists (kernel support, maybe unmounted) */
	int present;            /* resctrl is mounted there (or a tree shaped like it) */
	int by_structure;       /* recognised by files only, not by statfs magic */
	int l3;                 /* info/L3 exists: cache allocation */
	int l3_ways;            /* popcount(info/L3/cbm_mask) */
	unsigned long long l3_cbm_mask;
	int l3_num_closids;
	int mb;                 /* info/MB exists: memory bandwidth allocation */
	int mb_bandwidth_gran;  /* percent steps */
	int mb_min_bandwidth;   /* percent */
	int mb_num_closids;
	int error;              /* -errno of the first unexpected failure, 0 if none */
};

/* root: NULL = "/sys/fs/resctrl". An absent root is not an error (present=0). */
LS_API int ls_resctrl__probe(const char *root, struct ls_resctrl_probe *out);

/* ---- tap / network namespaces -------------------------------------------- */

struct ls_tap_probe {
	int tun_dev;            /* /dev/net/tun opened */
	int tap_error;          /* TUNSETIFF(IFF_TAP|IFF_NO_PI): 0 or -errno */
	int netns_file;         /* /proc/self/ns/net exists */
	int unshare_error;      /* unshare(CLONE_NEWNET) in a forked child: 0 or -errno */
};

/* Never leaves anything behind: the tap is non-persistent and closed at once,
 * the namespace dies with the child. Returns 0 (results are in out). */
LS_API int ls_tap__probe(struct ls_tap_probe *out);

#ifdef __cplusplus
}
#endif

#endif /* LIVESTACK_H */

/* ---- cells ---------------------------------------------------------------
 * Process cells (ffi/c/cell.c; bindings in ffi/cell.ts). Appended after the
 * main guard so that it can be maintained on its own: it carries its own
 * guard and C++ linkage and needs only LS_API from above. */
#ifndef LIVESTACK_CELLS_H
#define LIVESTACK_CELLS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room a tap read must have to never truncate a frame: the largest MTU a
 * tap accepts (65535) plus the Ethernet header. */
#define LS_CELL_FRAME_MAX (65535 + 14)

/* Creates the non-persistent tap `name` (IFF_TAP|IFF_NO_PI, < IFNAMSIZ
 * bytes) in the caller's network namespace; *out_fd is its fd (O_NONBLOCK,
 * O_CLOEXEC). The device vanishes when the fd is closed, also after the
 * device was moved into another namespace. Returns 0 or -errno. */
LS_API int ls_cell__tap_open(const char *name, int *out_fd);
/* Frames the cell sends are dropped at the tap (they are taken from its ring). */
LS_API int ls_cell__tap_drop_sent(int fd);

/* Reads up to max frames without blocking, packed one after another into
 * buf; lengths[i] is the length of frame i. Reads only while at least
 * LS_CELL_FRAME_MAX bytes of buf are free. Returns the number of frames (0:
 * none waiting) or -errno if the first read failed. */
LS_API int ls_cell__tap_read_batch(int fd, uint8_t *buf, size_t bufsize, uint32_t *lengths, int max);

/* Writes one whole frame (1..LS_CELL_FRAME_MAX bytes). Returns the bytes
 * written or -errno. */
LS_API int ls_cell__tap_write(int fd, const uint8_t *frame, size_t len);

/* cgroup v1 freezer: writes FROZEN/THAWED to freezer.state (state_fd, open
 * read-write) and re-reads it until that state is reached; a freeze stuck in
 * FREEZING is re-issued every ms (THAWED+FROZEN every other time: a vfork
 * parent otherwise never freezes). Returns the ns from the first write to
 * the state seen, -ETIMEDOUT after timeout_ns (the cgroup may then be left
 * FREEZING: thaw it), or -errno. */
LS_API long long ls_cell__freeze_v1(int state_fd, int frozen, long long timeout_ns);

/* cgroup v2: writes 1/0 to cgroup.freeze and waits until cgroup.events says
 * "frozen 1"/"frozen 0". Returns as ls_cell__freeze_v1. */
LS_API long long ls_cell__freeze_v2(int freeze_fd, int events_fd, int frozen, long long timeout_ns);

#ifdef __cplusplus
}
#endif

#endif /* LIVESTACK_CELLS_H */

/* ---- live windows ----------------------------------------------------------
 * One scheduling window of a group of process cells (ffi/c/live.c; bindings
 * in ffi/live.ts, which lays these structs out by hand: ls_sizeof checks). */
#ifndef LIVESTACK_LIVE_H
#define LIVESTACK_LIVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ls_clock;

/* A cell's outgoing frames, stamped by the kernel when they leave (ffi/c/ring.c):
 * a packet socket with a receive ring, bound to eth0 inside the cell's netns. */
struct ls_ring;

struct ls_ring_stats {
	uint64_t frames;       /* taken from the ring */
	uint64_t truncated;    /* longer than a slot (cut; counted as dropped) */
	uint64_t kernel_drops; /* the ring was full (since the last call) */
	uint32_t slots;
	uint32_t slot_bytes;
};

/* Opens the ring on ifname inside the network namespace at netns_path, with
 * room for frame_count frames of up to frame_max bytes. */
LS_API int ls_ring__open(const char *netns_path, const char *ifname, uint32_t frame_max, uint32_t frame_count, struct ls_ring **out);
LS_API int ls_ring__close(struct ls_ring *ring);
LS_API int ls_ring__stats(struct ls_ring *ring, struct ls_ring_stats *out);

/* One cell of the group. Filled by the caller. */
struct ls_live_cell {
	struct ls_clock *clock;
	struct ls_ring *ring;      /* its outgoing frames */
	int32_t tap_fd;
	int32_t freeze_mode;       /* 1: cgroup v1 (fd_a = freezer.state); 2: v2 (fd_a = cgroup.freeze, fd_b = cgroup.events) */
	int32_t freeze_fd_a;
	int32_t freeze_fd_b;
	double scale;              /* cpu_scale: virtual ns per host ns */
	int32_t deliveries_begin;  /* this cell's deliveries: [begin, end) of the deliveries array, sorted by time */
	int32_t deliveries_end;
	int32_t host_index;        /* the plan's host index: frames written to it carry its MAC */
	int32_t usage_fd;          /* the cell's CPU time: cpuacct.usage (v1, ns) or cpu.stat (v2, usage_usec); -1: none */
	int32_t threads_begin;     /* its (pid, tid) pairs to look at when the window ends: */
	int32_t thread_count;      /* pairs threads[2*begin ...] of ls_live__window's threads */
	int32_t runnable;          /* out: how many of them were running, runnable or in disk sleep
	                            * when the clock stopped, before the freeze (-1: not looked) */
	int32_t usage_kind;        /* 1: usage_fd holds ns (cpuacct.usage); 2: cpu.stat */
	int32_t core;              /* a core of the cell: its spinner (ls_live__keep_awake) writes its deliveries; -1: none */
	int32_t tasks_fd;          /* the cell's thread list (its cgroup v2 cgroup.threads): a quiescent cell
	                            * yields the rest of its turn (live.c, "Yielding"); -1: it never yields */
};

/* A frame to write into a cell's tap at a virtual time. */
struct ls_live_delivery {
	int64_t time_ns;
	uint32_t offset;           /* in the delivery bytes */
	uint32_t length;
};

/* A frame a cell sent, with the virtual time it was read. */
struct ls_live_frame {
	int64_t time_ns;
	int32_t cell;              /* index in the cells array */
	uint32_t offset;           /* in the output bytes */
	uint32_t length;
	uint32_t reserved;
};

struct ls_live_stats {
	int64_t thaw_ns_max;
	int64_t freeze_ns_max;
	int64_t late_ns_max;       /* how late the latest delivery was written (virtual ns) */
	int32_t late_deliveries;
	int32_t frames_out;
	int32_t frames_dropped;    /* output buffer full */
	int32_t arp_replies;
	int32_t deliveries_written;
	int32_t write_errors;      /* deliveries the tap refused (the cell's kernel dropped them) */
	int32_t ring_truncated;    /* frames longer than a ring slot */
	int32_t holds;             /* times a cell's clock sat at a delivery not yet written (or at the window's end) */
	int64_t held_ns;           /* virtual ns the clocks would have run on while they sat there */
	int32_t yields;            /* times a quiescent cell's clock jumped to its next event (live.c, "Yielding") */
	int32_t yield_checks;      /* quiescence checks made (a thread list read each) */
	int64_t yielded_ns;        /* virtual ns those jumps skipped */
};

LS_API int ls_live__get_affinity(int32_t *cpus, int32_t max);
LS_API int ls_live__set_affinity(const int32_t *cpus, int32_t count);
/* Keeps these cores from halting while cells run (a SCHED_IDLE spinner each); count 0 stops them. */
LS_API int ls_live__keep_awake(const int32_t *cpus, int32_t count);
/* The host time the window loop runs on (CLOCK_MONOTONIC_RAW, ns). */
LS_API int64_t ls_live__host_now(void);
/* Waits (at real-time priority) until the host time until_ns: 1 if it waited, 0 if that time had passed. */
LS_API int ls_live__pace(int64_t until_ns);

LS_API int ls_live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
			   const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
			   struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
			   int32_t host_count, struct ls_live_stats *stats, const int32_t *threads);





/* ---- VM cells: the micro-VMM (ffi/c/vmm/) -------------------------------- */
/* A guest program (livestack-guest.h) in 64-bit ring 3 on 1-16 vCPUs, each
 * driven in virtual-time windows by a C thread of its own. A vCPU's clock
 * advances by the CPU time its thread spent in KVM_RUN (less the calibrated
 * cost of an exit), times scale; it jumps while the vCPU waits. */

struct ls_vm;

struct ls_vm_config {
	uint64_t memory_bytes;     /* guest memory, LS_GUEST_MEMORY_MIN..MAX, a multiple of 2 MiB */
	double scale;              /* cpu_scale: virtual ns per ns a vCPU ran */
	uint64_t core_mask;        /* vCPU k's thread is pinned to the (k mod n)-th of these n cores; 0: not pinned */
	int64_t start_ns;          /* virtual time at which the guest starts */
	int32_t host_index;        /* the plan's host index (the guest's MAC) */
	uint32_t address;          /* IPv4, host byte order */
	uint32_t prefix_length;
	int32_t numa_node;         /* bind guest memory to this node (mbind); -1: no binding */
	int32_t vcpus;             /* 1..LS_GUEST_VCPUS_MAX */
	int32_t reserved;
};

#define LS_VM_RUNNING 0
#define LS_VM_WAITING 1
#define LS_VM_EXITED  2
#define LS_VM_CRASHED 3
#define LS_VM_ERROR_MAX 160

/* What a window did. Filled by ls_vm__end. */
struct ls_vm_result {
	int64_t clock_ns;          /* the guest's virtual time: its latest vCPU's (>= the window end unless it exited) */
	int64_t wait_until_ns;     /* LS_VM_WAITING (every started vCPU waits): the earliest deadline (INT64_MAX: none, waits for a frame) */
	int64_t ran_ns;            /* CPU time its vCPU threads spent in KVM_RUN in this window */
	int64_t overshoot_ns_max;  /* virtual ns a quantum ran past its end (kick latency) */
	int32_t state;             /* LS_VM_* */
	int32_t exit_code;         /* LS_VM_EXITED: the guest's code */
	int32_t frames_out;
	int32_t frames_dropped;    /* output buffer full, or a receive queue full */
	int32_t exits;             /* hypercalls and port writes */
	int32_t kicks;             /* quanta ended by the timer */
	uint32_t console_length;   /* bytes written to the console buffer: lines "VIRTUAL_NS TEXT\n" */
	int32_t wake_on_frame;     /* LS_VM_WAITING: a frame ends the wait */
	char error[LS_VM_ERROR_MAX]; /* LS_VM_CRASHED: what happened, with the guest's RIP */
};

/* Creates the VM and its vCPU thread; the guest (an ELF image for
 * LS_GUEST_IMAGE_GPA, see ffi/guest/guest.ld) starts at config->start_ns. arg
 * is what LS_HC_ARG returns (may be NULL). -ENOEXEC: not a guest image. */
LS_API int ls_vm__create(const struct ls_vm_config *config, const uint8_t *image, uint64_t image_length,
			 const char *arg, struct ls_vm **out);
/* Starts a window [start_ns, end_ns) on the vCPU thread and returns at once.
 * Deliveries are frames for the guest, sorted by time (all >= start_ns). */
LS_API int ls_vm__begin(struct ls_vm *vm, int64_t start_ns, int64_t end_ns,
			const struct ls_live_delivery *deliveries, int32_t delivery_count, const uint8_t *delivery_bytes);
/* Waits for the window to end; frames the guest sent go to out (cell = 0). */
LS_API int ls_vm__end(struct ls_vm *vm, struct ls_vm_result *result, struct ls_live_frame *out, int32_t out_max,
		      uint8_t *out_bytes, uint32_t out_capacity, char *console, uint32_t console_capacity);
/* Stops the vCPU thread and frees everything. */
LS_API int ls_vm__destroy(struct ls_vm *vm);
/* The host CPU cost of one exit and re-entry (KVM_RUN of a guest that only
 * writes a port), calibrated once per process; the clock does not count it. */
LS_API long long ls_vm__exit_cost_ns(void);
/* ...and of a quantum ended by the kick (0 for both: no ring-3 guest runs here). */
LS_API long long ls_vm__kick_cost_ns(void);
/* Distributed sync (ffi/c/sync.c): waits up to budget_ns for one of count
 * (<= 64) sockets to be readable, spinning with sched_yield instead of
 * sleeping, and reads what it holds (up to len bytes) into buf. Returns the
 * bytes read (*which = the socket's index), 0 if the budget ran out, -EPIPE at
 * end of stream or hang-up (nothing consumed), or -errno. */
LS_API long ls_sync__spin_recv(const int32_t *fds, int32_t count, void *buf, int64_t len,
			       int64_t budget_ns, int32_t *which);

/* Bench hooks: KVM_RUN round trips of a guest that only writes a port
 * (count of them, host ns each into out_ns), and a quantum kick's overshoot. */
LS_API int ls_vm__bench_exits(int32_t count, int64_t *out_ns);
LS_API int ls_vm__bench_kicks(int32_t count, int64_t quantum_ns, int64_t *out_overshoot_ns);
/* Baselines (ffi/c/vmm/bench.c): ns for count calls of a trivial C function
 * through a pointer, for count getppid() system calls; a timer signal's
 * overshoot on a spinning host thread. */
LS_API long long ls_vm__bench_calls(int32_t count);
LS_API long long ls_vm__bench_syscalls(int32_t count);
LS_API int ls_vm__bench_timer(int32_t count, int64_t quantum_ns, int64_t *out_overshoot_ns);

#ifdef __cplusplus
}
#endif

#endif /* LIVESTACK_LIVE_H */
