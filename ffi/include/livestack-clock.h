/*
 * livestack-clock.h — the virtual clock page of a cell, shared by the
 * controller (ffi/c/clock.c, inside liblivestack.so, driven by the runtime)
 * and the LD_PRELOAD time shim (ffi/c/shim/, inside every cell process).
 *
 * The page is a file-backed MAP_SHARED mapping, e.g.
 * /dev/shm/livestack-<run>-<host>.clock, LS_CLOCK_PAGE_BYTES long. Its path
 * reaches cell processes in the environment variable LS_CLOCK_ENV.
 *
 * Virtual time "v" is the cell's count of nanoseconds since its virtual start
 * (the scenario's time 0). Programs never see v itself:
 *   CLOCK_MONOTONIC, _RAW, _COARSE, CLOCK_BOOTTIME = boot_offset_ns + v
 *   CLOCK_REALTIME, _COARSE, gettimeofday, time    = realtime_epoch_ns + v
 * While running: v = base_virtual_ns + (host_ns - base_host_ns) * scale,
 * with host_ns = CLOCK_MONOTONIC_RAW of the machine; while frozen:
 * v = base_virtual_ns. The controller never moves v backwards.
 *
 * Concurrency. One writer (the runtime's controller thread) updates the
 * clock fields under a seqlock: seq odd while writing. Readers (the shim,
 * any thread of any process of the cell) retry until they see the same even
 * seq before and after reading. Every shared field is a C11 atomic so that
 * these racy reads are defined; the orders are the ones of the standard
 * seqlock (writer: relaxed odd store, release fence, relaxed fields, release
 * even store; reader: acquire seq, relaxed fields, acquire fence, relaxed
 * seq). After every change that may end a wait (run, freeze, set), the
 * controller increments wake_generation (release) and FUTEX_WAKEs all
 * waiters of that word (a shared futex: never FUTEX_PRIVATE_FLAG). The shim
 * waits with FUTEX_WAIT_BITSET (bit 0: sleeping threads, bit 1: its timer
 * threads), so the controller's plain FUTEX_WAKE reaches all of them; a
 * shim that re-arms a timer also increments wake_generation and wakes bit 1
 * only (a spurious re-check for everyone else).
 *
 * Wait slots are written by the shim: a thread about to block in a timed (or
 * untimed) wait claims a free slot (CAS tid 0 -> its tid), fills it, then
 * sets state to LS_CLOCK_SLOT_WAITING (release); it clears state, then tid,
 * when the wait ends. The controller only reads them (and may reap slots of
 * threads that no longer exist). A cell whose every thread sits in a
 * published wait is idle and may jump to the earliest deadline. More
 * waiters than slots are simply not published: the cell then looks busy,
 * which is always safe.
 */
#ifndef LIVESTACK_CLOCK_H
#define LIVESTACK_CLOCK_H

#include "livestack.h"

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
#error "livestack-clock.h uses C11 atomics; include it from C only"
#endif

#define LS_CLOCK_ENV "LIVESTACK_CLOCK"
/* "LSVCLOCK" read as a little-endian 64-bit integer. */
#define LS_CLOCK_MAGIC 0x4b434f4c4356534cULL
/* Bump on any incompatible change of struct ls_clock_page. */
#define LS_CLOCK_VERSION 3u
#define LS_CLOCK_PAGE_BYTES 4096u
#define LS_CLOCK_WAIT_SLOTS 64u
/* Past runs of the clock kept for mapping kernel timestamps (ls_clock__map_past). */
#define LS_CLOCK_HISTORY 16u
/* scale_q32 = scale * 2^32: virtual ns per host ns in 32.32 fixed point.
 * Exact for 1, 2, 1/2, ...; resolution 2.3e-10. */
#define LS_CLOCK_SCALE_SHIFT 32
#define LS_CLOCK_SCALE_ONE (1ULL << LS_CLOCK_SCALE_SHIFT)
/* deadline_virtual_ns of an untimed wait (poll(-1), epoll_wait(-1), ...). */
#define LS_CLOCK_NO_DEADLINE INT64_MAX
/* Waits on file descriptors cannot also sleep on the futex: the shim cuts
 * them into slices of at most this much host time and re-checks the clock
 * between slices. It bounds how late such a wait notices a jump of the
 * clock (and costs one wake-up per slice per waiting thread). */
#define LS_CLOCK_SLICE_NS 1000000LL

/* What a published wait is doing (struct ls_clock_wait_slot.kind). */
enum ls_clock_wait_kind {
	LS_CLOCK_WAIT_SLEEP = 1,  /* nanosleep, clock_nanosleep, sleep, usleep */
	LS_CLOCK_WAIT_POLL = 2,   /* poll, ppoll */
	LS_CLOCK_WAIT_SELECT = 3, /* select, pselect */
	LS_CLOCK_WAIT_EPOLL = 4,  /* epoll_wait, epoll_pwait, epoll_pwait2 */
	LS_CLOCK_WAIT_TIMER = 5,  /* the shim's timer thread (alarm, setitimer, timerfd) */
	LS_CLOCK_WAIT_COND = 6,   /* pthread_cond_timedwait/clockwait, sem_timedwait/clockwait */
};

enum ls_clock_slot_state {
	LS_CLOCK_SLOT_FILLING = 0, /* claimed (tid != 0) but not yet valid */
	LS_CLOCK_SLOT_WAITING = 1, /* the thread is in (or entering) the wait */
};

struct ls_clock_wait_slot {                  /* 32 bytes; writer: the shim */
	_Atomic int32_t tid;                 /* owner's gettid(), 0 = free */
	_Atomic int32_t pid;                 /* owner's getpid() */
	_Atomic uint32_t state;              /* enum ls_clock_slot_state */
	_Atomic uint32_t kind;               /* enum ls_clock_wait_kind */
	_Atomic int64_t deadline_virtual_ns; /* v at which the wait times out, or
	                                        LS_CLOCK_NO_DEADLINE */
	uint64_t reserved;
};

struct ls_clock_page {
	/* Identity: written by ls_clock__create, magic last (release). */
	_Atomic uint64_t magic;            /* LS_CLOCK_MAGIC */
	uint32_t version;                  /* LS_CLOCK_VERSION */
	uint32_t page_bytes;               /* size of the mapping, bytes */
	uint32_t wait_slot_count;          /* LS_CLOCK_WAIT_SLOTS */
	uint32_t reserved0;

	/* Clock, under the seqlock; writer: the controller. */
	_Atomic uint32_t seq;              /* odd while the controller writes */
	_Atomic uint32_t running;          /* 0 frozen, 1 running */
	_Atomic int64_t base_virtual_ns;   /* v at base_host_ns (running) or now (frozen), ns */
	_Atomic int64_t base_host_ns;      /* host CLOCK_MONOTONIC_RAW when the run began, ns */
	_Atomic uint64_t scale_q32;        /* virtual ns per host ns, 32.32 fixed point */
	_Atomic int64_t realtime_epoch_ns; /* CLOCK_REALTIME at v = 0, ns since 1970 */
	_Atomic int64_t boot_offset_ns;    /* CLOCK_MONOTONIC/BOOTTIME at v = 0, ns */
	_Atomic int64_t limit_virtual_ns;  /* a running clock reads no later than this: it is
	                                      held there until the controller moves it on
	                                      (INT64_MAX: no limit) */
	uint8_t reserved1[128 - 80];

	/* Own cache line: sleepers FUTEX_WAIT_BITSET on it; incremented by
	 * the controller after every run/freeze/set and by the shim when it
	 * re-arms a timer (atomic increments only). */
	_Atomic uint32_t wake_generation;
	uint8_t reserved2[128 - 4];

	/* Writer: the shim (see above). */
	struct ls_clock_wait_slot slots[LS_CLOCK_WAIT_SLOTS];

	/* The clock's last runs, under the seqlock; writer: the controller. A run
	 * ends when the clock freezes or is rebased (a hold released, a set), and
	 * is kept here: segment k % LS_CLOCK_HISTORY is the k-th to end. */
	_Atomic uint64_t history_count;
	struct ls_clock_segment {
		_Atomic int64_t base_host_ns, base_virtual_ns; /* as in the clock fields */
		_Atomic uint64_t scale_q32;
		_Atomic int64_t end_host_ns, end_virtual_ns;   /* where it stopped (after any hold) */
	} history[LS_CLOCK_HISTORY];
};

_Static_assert(offsetof(struct ls_clock_page, seq) == 24, "clock page layout");
_Static_assert(offsetof(struct ls_clock_page, boot_offset_ns) == 64, "clock page layout");
_Static_assert(offsetof(struct ls_clock_page, wake_generation) == 128, "clock page layout");
_Static_assert(offsetof(struct ls_clock_page, slots) == 256, "clock page layout");
_Static_assert(sizeof(struct ls_clock_wait_slot) == 32, "clock slot layout");
_Static_assert(sizeof(struct ls_clock_page) <= LS_CLOCK_PAGE_BYTES, "clock page fits its page");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "the clock page is shared between processes: its atomics must be lock-free");

/* A consistent copy of the clock fields. */
struct ls_clock_snapshot {
	uint32_t running;
	uint32_t generation;  /* wake_generation, read before the fields */
	int64_t base_virtual_ns;
	int64_t base_host_ns;
	uint64_t scale_q32;
	int64_t realtime_epoch_ns;
	int64_t boot_offset_ns;
	int64_t limit_virtual_ns;
};

/* The seqlock's start: its count once even (the writer is not between its
 * two stores, which takes a few ns unless it was preempted there). */
static inline uint32_t ls_clock__seq_even(struct ls_clock_page *page)
{
	for (unsigned int spins = 0;; spins++) {
		uint32_t seq = atomic_load_explicit(&page->seq, memory_order_acquire);

		if (!(seq & 1u))
			return seq;
		if (spins > 64)
			sched_yield();
	}
}

/* The seqlock's end: whether nothing was written since `seq` (else read again). */
static inline int ls_clock__seq_same(struct ls_clock_page *page, uint32_t seq)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&page->seq, memory_order_relaxed) == seq;
}

/* The clock fields, inside a seqlock read. */
static inline void ls_clock__load(struct ls_clock_page *page, struct ls_clock_snapshot *out)
{
	out->running = atomic_load_explicit(&page->running, memory_order_relaxed);
	out->base_virtual_ns = atomic_load_explicit(&page->base_virtual_ns, memory_order_relaxed);
	out->base_host_ns = atomic_load_explicit(&page->base_host_ns, memory_order_relaxed);
	out->scale_q32 = atomic_load_explicit(&page->scale_q32, memory_order_relaxed);
	out->realtime_epoch_ns = atomic_load_explicit(&page->realtime_epoch_ns, memory_order_relaxed);
	out->boot_offset_ns = atomic_load_explicit(&page->boot_offset_ns, memory_order_relaxed);
	out->limit_virtual_ns = atomic_load_explicit(&page->limit_virtual_ns, memory_order_relaxed);
}

/* Reads the clock fields consistently. The generation is read first, so a
 * waiter that decides from this snapshot and then FUTEX_WAITs on
 * snapshot->generation cannot miss a later change. */
static inline void ls_clock__read(struct ls_clock_page *page, struct ls_clock_snapshot *out)
{
	for (;;) {
		uint32_t seq;

		out->generation = atomic_load_explicit(&page->wake_generation, memory_order_acquire);
		seq = ls_clock__seq_even(page);
		ls_clock__load(page, out);
		if (ls_clock__seq_same(page, seq))
			return;
	}
}

/* v at host time host_ns (CLOCK_MONOTONIC_RAW, which the caller reads: the
 * shim through libc's real clock_gettime, never its own), never before the base:
 * a host instant before the current run began maps to the run's start. */
static inline int64_t ls_clock__virtual_at(const struct ls_clock_snapshot *snapshot, int64_t host_ns)
{
	int64_t elapsed_host_ns = host_ns - snapshot->base_host_ns;
	int64_t v;

	if (!snapshot->running || elapsed_host_ns <= 0)
		return snapshot->base_virtual_ns;
	v = snapshot->base_virtual_ns +
	    (int64_t)(((unsigned __int128)elapsed_host_ns * snapshot->scale_q32) >> LS_CLOCK_SCALE_SHIFT);
	/* held at the limit (never below the base: the controller keeps limit >= base) */
	return v > snapshot->limit_virtual_ns && snapshot->limit_virtual_ns >= snapshot->base_virtual_ns ? snapshot->limit_virtual_ns : v;
}

/* v at a past host time host_ns (CLOCK_MONOTONIC_RAW), through the clock's
 * history: what the clock read then, also if it has since been frozen and run
 * again. A kernel receive timestamp is such a time: a frame written into a
 * cell before a freeze and read after the next thaw mapped to the new run's
 * start (ls_clock__virtual_at), and ping under CPU hogs read 29-59 ms over a
 * 20 ms round trip. Host times older than the history map to its oldest run's
 * start. */
static inline int64_t ls_clock__map_past(struct ls_clock_page *page, int64_t host_ns)
{
	for (;;) {
		struct ls_clock_snapshot now;
		uint32_t seq = ls_clock__seq_even(page);
		int64_t v;

		ls_clock__load(page, &now);
		/* in the current stretch (running since base_host_ns, or frozen since then), or no history yet */
		v = ls_clock__virtual_at(&now, host_ns);
		if (host_ns < now.base_host_ns) {
			uint64_t count = atomic_load_explicit(&page->history_count, memory_order_relaxed);
			uint64_t kept = count < LS_CLOCK_HISTORY ? count : LS_CLOCK_HISTORY;

			for (uint64_t k = 1; k <= kept; k++) {
				const struct ls_clock_segment *g = &page->history[(count - k) % LS_CLOCK_HISTORY];
				/* the stretch as a running clock held at where it ended (a frozen one has scale 0) */
				struct ls_clock_snapshot then = {
					.running = 1,
					.base_virtual_ns = atomic_load_explicit(&g->base_virtual_ns, memory_order_relaxed),
					.base_host_ns = atomic_load_explicit(&g->base_host_ns, memory_order_relaxed),
					.scale_q32 = atomic_load_explicit(&g->scale_q32, memory_order_relaxed),
					.limit_virtual_ns = atomic_load_explicit(&g->end_virtual_ns, memory_order_relaxed),
				};

				if (host_ns >= atomic_load_explicit(&g->end_host_ns, memory_order_relaxed)) {
					v = then.limit_virtual_ns; /* stood still after this stretch */
					break;
				}
				v = ls_clock__virtual_at(&then, host_ns); /* before the oldest: its start */
				if (host_ns >= then.base_host_ns)
					break;
			}
		}
		if (ls_clock__seq_same(page, seq))
			return v;
	}
}

/* Host ns that a running clock needs to advance by virtual_ns (rounded up,
 * so a host timer of this length never ends before the virtual instant). */
static inline int64_t ls_clock__host_duration(const struct ls_clock_snapshot *snapshot, int64_t virtual_ns)
{
	unsigned __int128 host_ns;

	if (virtual_ns <= 0)
		return 0;
	if (snapshot->scale_q32 == 0)
		return INT64_MAX;
	host_ns = (((unsigned __int128)virtual_ns << LS_CLOCK_SCALE_SHIFT) + snapshot->scale_q32 - 1) /
		  snapshot->scale_q32;
	return host_ns > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)host_ns;
}

/* The page is usable: right magic, version and size. */
static inline int ls_clock__valid(struct ls_clock_page *page, size_t mapped_bytes)
{
	return mapped_bytes >= sizeof(struct ls_clock_page) &&
	       atomic_load_explicit(&page->magic, memory_order_acquire) == LS_CLOCK_MAGIC &&
	       page->version == LS_CLOCK_VERSION && page->page_bytes >= sizeof(struct ls_clock_page) &&
	       page->page_bytes <= mapped_bytes && page->wait_slot_count == LS_CLOCK_WAIT_SLOTS;
}

/* ---- controller API (liblivestack.so, ffi/c/clock.c) ---------------------
 * All functions return 0 (or a count) or a negative errno. A clock handle is
 * used by one controller thread at a time. */

struct ls_clock;

/* One published wait, as ls_clock__waits reports it. */
struct ls_clock_wait {
	int32_t tid;
	int32_t pid;
	uint32_t kind;                /* enum ls_clock_wait_kind */
	uint32_t slot;                /* index in the page */
	int64_t deadline_virtual_ns;  /* -1 for an untimed wait */
};

struct ls_clock_waits {
	int32_t count;                /* entries filled in waits[] */
	int32_t reserved;
	struct ls_clock_wait waits[LS_CLOCK_WAIT_SLOTS];
};

/* Creates (or truncates) the page file at path, maps it and initialises it
 * frozen at v = 0, scale 1. realtime_epoch_ns: CLOCK_REALTIME at v = 0 (ns
 * since 1970); boot_offset_ns: CLOCK_MONOTONIC at v = 0 (give a plausible
 * uptime: a monotonic clock at 0 breaks programs, e.g. ping). The file is
 * created 0644: cell processes that cannot open it read-write still get the
 * clock but publish no waits. */
LS_API int ls_clock__create(const char *path, int64_t realtime_epoch_ns, int64_t boot_offset_ns,
			    struct ls_clock **out);
/* Stops the clock at virtual_ns (< 0: at its current value). A freeze never
 * moves time backwards: if the running clock already passed virtual_ns, it
 * stops where it is. Wakes all waiters. */
LS_API int ls_clock__freeze(struct ls_clock *clock, int64_t virtual_ns);
/* Runs the clock from virtual_ns (< 0: from its current value) at scale
 * virtual ns per host ns (> 0, <= 1e6; 1.0 normally). -EINVAL if
 * virtual_ns is earlier than now or scale is out of range. Wakes all waiters. */
LS_API int ls_clock__run(struct ls_clock *clock, int64_t virtual_ns, double scale);
/* Holds a running clock at limit_ns: it reads no later than that until a
 * later call moves the limit on (INT64_MAX: no limit; run and set clear it).
 * Time spent held does not count: if the clock sat at the old limit, it runs
 * on from there, as if it had been frozen meanwhile (it never goes back, and a
 * limit below the current value is raised to it). Returns 1 if it had been
 * held (and wakes all waiters: their timers moved), 0 if not, or -errno. */
LS_API int ls_clock__limit(struct ls_clock *clock, int64_t limit_ns);
/* The same; held_ns (if not NULL) gets how far the clock would have run on past the limit it sat at (0 if it was not held). */
LS_API int ls_clock__limit_held(struct ls_clock *clock, int64_t limit_ns, int64_t *held_ns);
/* Jumps to virtual_ns (frozen or running; running clocks continue from
 * there). -EINVAL if earlier than now. Wakes all waiters. */
LS_API int ls_clock__set(struct ls_clock *clock, int64_t virtual_ns);
/* ls_clock__set without the wake-up: for a jump no published wait's deadline
 * lies in. Sleeps (futex waiters) then wake on their own host timeouts, too
 * late by the jump: the caller wakes them (ls_clock__wake) when the clock
 * reaches the earliest of their deadlines. */
LS_API int ls_clock__jump(struct ls_clock *clock, int64_t virtual_ns);
/* Wakes every thread waiting on the clock page. */
LS_API int ls_clock__wake(struct ls_clock *clock);
/* Virtual now, as the shim computes it. */
LS_API int64_t ls_clock__now(struct ls_clock *clock);
/* Number of published waits (timed or not); *deadline_virtual_ns = the
 * earliest timed deadline, or -1 if no published wait has one. */
LS_API int ls_clock__earliest_wait(struct ls_clock *clock, int64_t *deadline_virtual_ns);
/* Every published wait, in slot order. Returns the count. */
LS_API int ls_clock__waits(struct ls_clock *clock, struct ls_clock_waits *out);
/* Frees slots whose thread no longer exists (/proc/<pid>/task/<tid>; only
 * meaningful when the cell shares the caller's pid namespace): a process
 * killed inside a wait leaves its slot behind. Returns how many. */
LS_API int ls_clock__reap(struct ls_clock *clock);
/* The current values of the page (for tests and reports). */
LS_API int ls_clock__snapshot(struct ls_clock *clock, struct ls_clock_snapshot *out);
/* Unmaps and frees the handle; the file stays (the runtime removes it). */
LS_API int ls_clock__close(struct ls_clock *clock);

#endif /* LIVESTACK_CLOCK_H */
