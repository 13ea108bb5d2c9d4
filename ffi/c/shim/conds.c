/*
 * Timed waits on condition variables and semaphores: pthread_cond_timedwait,
 * pthread_cond_clockwait, sem_timedwait, sem_clockwait. Their deadlines are
 * absolute times on a clock the program read through the shim, so they are
 * virtual; the kernel would time them out on the host's clock (early in
 * virtual terms whenever the cell was frozen). Servers such as MariaDB wait
 * this way in every background thread.
 *
 * The wait runs in slices of the real call against CLOCK_MONOTONIC, each at
 * most LS_CLOCK_SLICE_NS host ns or the virtual time left (÷ scale); between
 * slices the virtual clock is read again, so the wait ends once v reaches the
 * deadline, never before, and notices an idle jump within a slice. The wait
 * is published on the page (idle detection). A condition variable's mutex is
 * held again after every slice, as the real call leaves it; see
 * conds__cond_wait for when a slice's end becomes a spurious wake-up.
 * Semaphore waits slice inside: a token cannot be lost.
 */
#include "shim.h"

#include <errno.h>

/* glibc marks a condition variable whose attribute chose CLOCK_MONOTONIC in
 * bit 1 of __wrefs (nptl: __PTHREAD_COND_CLOCK_MONOTONIC_MASK). */
#define CONDS_CLOCK_MONOTONIC_MASK 2u

static clockid_t conds__clock_of(const pthread_cond_t *cond)
{
	return (__atomic_load_n(&cond->__data.__wrefs, __ATOMIC_RELAXED) & CONDS_CLOCK_MONOTONIC_MASK) ? CLOCK_MONOTONIC
												     : CLOCK_REALTIME;
}

/* The virtual deadline of an absolute time on clock; 0 if the shim does not
 * virtualise that clock (then the caller passes the call through). */
static int conds__deadline(clockid_t clock, const struct timespec *abstime, int64_t *deadline_ns)
{
	struct ls_clock_snapshot snapshot;
	int64_t offset_ns;

	shim__now(&snapshot);
	if (!shim__clock_offset(clock, &snapshot, &offset_ns))
		return 0;
	*deadline_ns = shim__timespec_ns(abstime) - offset_ns;
	return 1;
}

/* The host CLOCK_MONOTONIC instant that ends the next slice of a wait whose
 * virtual deadline is deadline_ns; 0 if the deadline has passed. */
static int conds__slice(int64_t deadline_ns, struct timespec *until)
{
	struct ls_clock_snapshot snapshot;
	int64_t now_ns = shim__now(&snapshot), host_ns = LS_CLOCK_SLICE_NS;
	struct timespec mono;

	if (now_ns >= deadline_ns)
		return 0;
	if (snapshot.running) {
		int64_t needed_ns = ls_clock__host_duration(&snapshot, deadline_ns - now_ns);
		if (needed_ns < host_ns)
			host_ns = needed_ns;
	}
	REAL(clock_gettime)(CLOCK_MONOTONIC, &mono);
	*until = shim__ns_timespec(shim__timespec_ns(&mono) + host_ns);
	return 1;
}

/* What a signal or broadcast on cond changes (glibc's condvar: the signal
 * counts of both groups and the start of group 1). */
struct conds_mark {
	unsigned int signals0, signals1;
	unsigned long long g1_start;
};

static struct conds_mark conds__mark(pthread_cond_t *cond)
{
	struct conds_mark mark = {
		__atomic_load_n(&cond->__data.__g_signals[0], __ATOMIC_ACQUIRE),
		__atomic_load_n(&cond->__data.__g_signals[1], __ATOMIC_ACQUIRE),
		__atomic_load_n(&cond->__data.__g1_start.__value64, __ATOMIC_ACQUIRE),
	};
	return mark;
}

/* Unlocks per mutex (hashed; a collision only costs a spurious wake-up):
 * pthread_mutex_unlock counts before it unlocks, so a thread that takes the
 * mutex afterwards sees the count. */
#define CONDS_UNLOCK_BITS 12
static unsigned long conds__unlocks[1u << CONDS_UNLOCK_BITS];

static unsigned long *conds__unlock_count(const pthread_mutex_t *mutex)
{
	return &conds__unlocks[(((uintptr_t)mutex >> 3) * 0x9E3779B97F4A7C15ull) >> (64 - CONDS_UNLOCK_BITS)];
}

SHIM_API int pthread_mutex_unlock(pthread_mutex_t *mutex)
{
	__atomic_fetch_add(conds__unlock_count(mutex), 1, __ATOMIC_RELAXED); /* the unlock releases it */
	return REAL(pthread_mutex_unlock)(mutex);
}

/*
 * The wait runs in slices. Between two slices this thread holds the mutex and
 * is no waiter of the condition: a signal sent then finds nobody and changes
 * nothing, so waiting again would lose it (MariaDB: InnoDB lock waits slept
 * out their 50 s timeouts, a sysbench run of 5 s took 110 s). A slice that
 * ends before the deadline therefore waits again only if nobody else unlocked
 * the mutex meanwhile: whoever made the caller's predicate true did it under
 * the mutex, and unlocked it (counted by pthread_mutex_unlock above). Else it
 * returns 0, a spurious wake-up as POSIX allows, and the caller re-checks its
 * predicate. A condition signalled without the mutex is covered by glibc's
 * own counts (signals per group, start of group 1). (Returning after every
 * slice instead cost a database's waiting threads a wake-up each per
 * millisecond: -8% tps.)
 */
static int conds__cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex, int64_t deadline_ns)
{
	volatile int slot = shim__publish(LS_CLOCK_WAIT_COND, deadline_ns);
	unsigned long *unlocks = conds__unlock_count(mutex);
	struct timespec until;
	int result = ETIMEDOUT;

	/* a cancellation point: unpublish if the thread is cancelled in a slice */
	pthread_cleanup_push(shim__unpublish_cleanup, (void *)&slot);
	while (conds__slice(deadline_ns, &until)) {
		struct conds_mark before = conds__mark(cond), after;
		unsigned long unlocked = __atomic_load_n(unlocks, __ATOMIC_RELAXED);

		result = REAL(pthread_cond_clockwait)(cond, mutex, CLOCK_MONOTONIC, &until);
		if (result != ETIMEDOUT)
			break;
		if (!conds__slice(deadline_ns, &until))
			break; /* the deadline: ETIMEDOUT */
		after = conds__mark(cond);
		if (__atomic_load_n(unlocks, __ATOMIC_RELAXED) != unlocked || after.signals0 != before.signals0 ||
		    after.signals1 != before.signals1 || after.g1_start != before.g1_start) {
			result = 0;
			break;
		}
	}
	pthread_cleanup_pop(1);
	return result;
}

SHIM_API int pthread_cond_timedwait(pthread_cond_t *restrict cond, pthread_mutex_t *restrict mutex,
				    const struct timespec *restrict abstime)
{
	int64_t deadline_ns;

	SHIM_OPAQUE(abstime);
	if (!shim__active() || abstime == NULL || !shim__timespec_valid(abstime) || REAL(pthread_cond_clockwait) == NULL ||
	    !conds__deadline(conds__clock_of(cond), abstime, &deadline_ns))
		return REAL(pthread_cond_timedwait)(cond, mutex, abstime);
	return conds__cond_wait(cond, mutex, deadline_ns);
}

SHIM_API int pthread_cond_clockwait(pthread_cond_t *restrict cond, pthread_mutex_t *restrict mutex, clockid_t clock,
				    const struct timespec *restrict abstime)
{
	int64_t deadline_ns;

	SHIM_OPAQUE(abstime);
	if (!shim__active() || abstime == NULL || !shim__timespec_valid(abstime) || REAL(pthread_cond_clockwait) == NULL ||
	    (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) || !conds__deadline(clock, abstime, &deadline_ns))
		return REAL(pthread_cond_clockwait)(cond, mutex, clock, abstime);
	return conds__cond_wait(cond, mutex, deadline_ns);
}

static int conds__sem_wait(sem_t *sem, int64_t deadline_ns)
{
	volatile int slot = shim__publish(LS_CLOCK_WAIT_COND, deadline_ns);
	struct timespec until;
	int result = -1, saved_errno = errno, error = ETIMEDOUT;

	pthread_cleanup_push(shim__unpublish_cleanup, (void *)&slot);
	while (conds__slice(deadline_ns, &until)) {
		if (REAL(sem_clockwait)(sem, CLOCK_MONOTONIC, &until) == 0) {
			result = 0;
			break;
		}
		if (errno != ETIMEDOUT) {
			error = errno;
			break;
		}
	}
	/* at the deadline, the real call still takes a token that is there */
	if (result != 0 && error == ETIMEDOUT && sem_trywait(sem) == 0)
		result = 0;
	pthread_cleanup_pop(1);
	errno = result == 0 ? saved_errno : error;
	return result;
}

SHIM_API int sem_timedwait(sem_t *restrict sem, const struct timespec *restrict abstime)
{
	int64_t deadline_ns;

	SHIM_OPAQUE(abstime);
	if (!shim__active() || abstime == NULL || !shim__timespec_valid(abstime) || REAL(sem_clockwait) == NULL ||
	    !conds__deadline(CLOCK_REALTIME, abstime, &deadline_ns))
		return REAL(sem_timedwait)(sem, abstime);
	return conds__sem_wait(sem, deadline_ns);
}

SHIM_API int sem_clockwait(sem_t *restrict sem, clockid_t clock, const struct timespec *restrict abstime)
{
	int64_t deadline_ns;

	SHIM_OPAQUE(abstime);
	if (!shim__active() || abstime == NULL || !shim__timespec_valid(abstime) || REAL(sem_clockwait) == NULL ||
	    (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) || !conds__deadline(clock, abstime, &deadline_ns))
		return REAL(sem_clockwait)(sem, clock, abstime);
	return conds__sem_wait(sem, deadline_ns);
}
