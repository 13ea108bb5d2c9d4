/*
 * Private declarations of the LD_PRELOAD time shim (liblivestack-shim.so).
 *
 * The shim is loaded into unmodified programs of a cell. It maps the cell's
 * clock page (livestack-clock.h) named by $LIVESTACK_CLOCK and makes every
 * public libc entry point that reads the time or waits with a timeout follow
 * the cell's virtual clock. Without the variable, or with a page it cannot
 * validate, every function passes straight through to libc.
 *
 * Covered (one file per concern): clocks.c (clock_gettime for REALTIME,
 * MONOTONIC, BOOTTIME, TAI and the _COARSE/_RAW/_ALARM variants,
 * gettimeofday, time, timespec_get(TIME_UTC), ftime), sleeps.c (nanosleep,
 * clock_nanosleep relative and TIMER_ABSTIME, sleep, usleep), polls.c (poll,
 * ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2), stamps.c
 * (recvmsg/recvmmsg timestamp control messages, SIOCGSTAMP[NS]), timers.c
 * (alarm, ualarm, setitimer/getitimer ITIMER_REAL, timerfd_*), conds.c
 * (pthread_cond_timedwait, pthread_cond_clockwait, sem_timedwait,
 * sem_clockwait).
 *
 * Not covered: clock_getres (the real resolution is right), clock() and the
 * CPU-time clocks (real CPU time: a frozen process uses none);
 * pthread_mutex_timedlock and raw futex timeouts; SO_RCVTIMEO/SO_SNDTIMEO; POSIX timer_create timers;
 * recvmmsg's own timeout; io_uring timeouts; aio. All of these keep real
 * time (they end early in virtual terms when the cell is frozen).
 * LD_PRELOAD itself does not reach: static binaries, Go programs (raw
 * system calls), raw rdtsc users, and programs the loader runs in secure
 * mode (setuid/setgid, file capabilities such as /usr/bin/ping's
 * cap_net_raw): the loader silently ignores LD_PRELOAD for them (give the
 * cell a capability-free copy, or use seccomp user-notify, ptrace or a VM).
 * Functions called by other libraries' constructors before the shim's own
 * constructor see the real clock.
 *
 * Rules for every file here: never exit() or abort(); never call an
 * interposed name (call shim_real.*): libc's own internal calls do not come
 * back to us, but ours would; keep errno as libc would leave it.
 */
#ifndef LS_SHIM_H
#define LS_SHIM_H

#define _GNU_SOURCE
#include "livestack-clock.h"

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/* Interposed names must be visible: the shim is built -fvisibility=hidden. */
#define SHIM_API __attribute__((visibility("default")))

/* glibc declares some pointer parameters nonnull, so the compiler would drop
 * our NULL checks; programs do pass NULL (gettimeofday(NULL, &tz) is even
 * valid). Hiding the pointer's origin keeps the check. */
#define SHIM_OPAQUE(pointer) __asm__("" : "+r"(pointer))

#define NS_PER_SEC 1000000000LL
#define NS_PER_MSEC 1000000LL
#define NS_PER_USEC 1000LL

/* The real libc functions (dlsym(RTLD_NEXT)), resolved in the constructor
 * and, for calls that come before it (other libraries' constructors), on
 * first use. NULL only if libc lacks the name. */
struct shim_real {
	int (*clock_gettime)(clockid_t, struct timespec *);
	int (*gettimeofday)(struct timeval *, void *);
	time_t (*time)(time_t *);
	int (*timespec_get)(struct timespec *, int);
	int (*nanosleep)(const struct timespec *, struct timespec *);
	int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
	int (*usleep)(useconds_t);
	unsigned int (*sleep)(unsigned int);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	int (*ioctl)(int, unsigned long, ...);
	unsigned int (*alarm)(unsigned int);
	useconds_t (*ualarm)(useconds_t, useconds_t);
	int (*setitimer)(__itimer_which_t, const struct itimerval *, struct itimerval *);
	int (*getitimer)(__itimer_which_t, struct itimerval *);
	int (*timerfd_create)(int, int);
	int (*timerfd_settime)(int, int, const struct itimerspec *, struct itimerspec *);
	int (*timerfd_gettime)(int, struct itimerspec *);
	int (*close)(int);
	int (*pthread_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
	int (*pthread_cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
	int (*pthread_mutex_unlock)(pthread_mutex_t *);
	int (*sem_timedwait)(sem_t *, const struct timespec *);
	int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
};

extern struct shim_real shim_real;

/* Resolves one real function into *slot if it is still NULL; returns it. */
void *shim__resolve(void **slot, const char *name);

static inline void *shim__real(void **slot, const char *name)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_RELAXED);

	return fn ? fn : shim__resolve(slot, name);
}

#define REAL(name) ((__typeof__(shim_real.name))shim__real((void **)&shim_real.name, #name))

/* The clock page, or NULL when the shim passes through. Set once in the
 * constructor, before main() and before any thread of the program. */
extern struct ls_clock_page *shim_page;
/* The page is mapped writable: waits can be published. */
extern int shim_page_writable;
/* CLOCK_TAI - CLOCK_REALTIME of the host, whole seconds in ns (usually 0
 * unless an NTP daemon set the kernel's TAI offset). */
extern int64_t shim_tai_offset_ns;

static inline int shim__active(void)
{
	return shim_page != NULL;
}

/* Host CLOCK_MONOTONIC_RAW / CLOCK_REALTIME through the real clock_gettime. */
int64_t shim__host_raw_ns(void);
int64_t shim__host_realtime_ns(void);

/* Virtual now v (see livestack-clock.h) and the snapshot it came from. */
int64_t shim__now(struct ls_clock_snapshot *snapshot);

/* What a program's clock id shows: 1 and *offset_ns (clock = offset + v) for
 * the clocks the shim virtualises, 0 for the others (CPU-time clocks,
 * unknown ids), which stay real. */
int shim__clock_offset(clockid_t clock, const struct ls_clock_snapshot *snapshot, int64_t *offset_ns);

/* Whole timespec/timeval conversions (saturating). */
int64_t shim__timespec_ns(const struct timespec *ts);
struct timespec shim__ns_timespec(int64_t ns);
int shim__timespec_valid(const struct timespec *ts);

/* Publishes "this thread waits until virtual deadline_ns" (or
 * LS_CLOCK_NO_DEADLINE) for idle detection. Returns the slot index, or -1 if
 * none was free or the page is read-only (then nothing is published). */
int shim__publish(uint32_t kind, int64_t deadline_ns);
void shim__republish(int slot, int64_t deadline_ns);
void shim__unpublish(int slot);
/* pthread_cleanup_push handler: unpublishes *(volatile int *)slot. */
void shim__unpublish_cleanup(void *slot);

/* Futex bitsets on the page's wake_generation: the controller's plain
 * FUTEX_WAKE wakes every waiter; a thread arming a timer wakes only timer
 * threads (see timers.c). */
#define SHIM_FUTEX_SLEEPER_BIT 1u
#define SHIM_FUTEX_TIMER_BIT 2u

/* FUTEX_WAIT_BITSET on the page's wake_generation while it still holds
 * generation, until host CLOCK_MONOTONIC reaches now + wait_ns. Returns 0
 * or -errno (-EINTR only if a signal handler ran: the wait restarts by
 * itself otherwise, e.g. across a freeze of the cell). */
int shim__futex_wait(uint32_t generation, int64_t wait_ns, uint32_t bitset);

/* Blocks until v >= deadline_ns, on the page's futex. Returns 0, or
 * -EINTR if a signal handler ran (the real sleeps return EINTR then, even
 * for SA_RESTART handlers). A freeze of the cell does not interrupt it: the
 * futex wait restarts transparently when no handler ran. */
int shim__sleep_until(int64_t deadline_ns, uint32_t kind);

/* One slice of an fd wait: the real call with timeout slice (NULL = no
 * timeout). Returns what the real call returns; 0 means "nothing yet". */
typedef int (*shim_slice_fn)(void *context, const struct timespec *slice);

/* Waits on file descriptors until the slice function reports something or
 * timeout_ns of virtual time passed (timeout_ns < 0: no timeout). The real
 * call runs in slices of at most LS_CLOCK_SLICE_NS host ns (or the
 * remaining virtual time / scale, whichever is shorter) and the clock is
 * re-checked after each; 0 is returned only once v >= deadline, after a
 * last zero-timeout call. *remaining_ns (if not NULL) receives the virtual
 * time left. */
int shim__wait_fds(int64_t timeout_ns, uint32_t kind, shim_slice_fn fn, void *context, int64_t *remaining_ns);

/* Maps a kernel receive timestamp (host CLOCK_REALTIME, ns) to the cell's
 * virtual CLOCK_REALTIME: the host instant is placed on the host's raw clock
 * and read through the page (an instant before the current run began maps
 * to the run's start, an instant while frozen to the frozen time). */
int64_t shim__stamp_virtual_realtime_ns(int64_t host_realtime_ns);

/* timers.c: forget a closed fd. */
void shim__timers_forget_fd(int fd);

#endif /* LS_SHIM_H */
