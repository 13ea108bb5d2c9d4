/*
 * Sleeps on virtual time. glibc's sleep() and usleep() call the internal
 * nanosleep, not the public one, so each is interposed itself. A sleep
 * until virtual deadline D never returns before v >= D, however long the
 * cell stays frozen meanwhile; see shim__sleep_until.
 */
#include "shim.h"

#include <errno.h>

/* Sleeps duration_ns of virtual time. -EINTR (and *remaining_ns) if a
 * signal handler interrupted it. */
static int sleeps__for(int64_t duration_ns, int64_t *remaining_ns)
{
	struct ls_clock_snapshot snapshot;
	int64_t now_ns = shim__now(&snapshot), deadline_ns;
	int result;

	deadline_ns = now_ns > LS_CLOCK_NO_DEADLINE - 1 - duration_ns ? LS_CLOCK_NO_DEADLINE - 1 : now_ns + duration_ns;
	result = shim__sleep_until(deadline_ns, LS_CLOCK_WAIT_SLEEP);
	if (result < 0 && remaining_ns != NULL) {
		now_ns = shim__now(&snapshot);
		*remaining_ns = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
	}
	return result;
}

SHIM_API int nanosleep(const struct timespec *request, struct timespec *remaining)
{
	int64_t remaining_ns = 0;

	if (!shim__active() || request == NULL)
		return REAL(nanosleep)(request, remaining);
	if (!shim__timespec_valid(request)) {
		errno = EINVAL;
		return -1;
	}
	if (sleeps__for(shim__timespec_ns(request), &remaining_ns) < 0) {
		if (remaining != NULL)
			*remaining = shim__ns_timespec(remaining_ns);
		errno = EINTR;
		return -1;
	}
	return 0;
}

SHIM_API int __nanosleep(const struct timespec *request, struct timespec *remaining)
	__attribute__((alias("nanosleep")));

SHIM_API int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remaining)
{
	struct ls_clock_snapshot snapshot;
	int64_t offset_ns, deadline_ns, remaining_ns = 0;
	int virtual_clock;

	if (!shim__active() || request == NULL)
		return REAL(clock_nanosleep)(clock, flags, request, remaining);
	ls_clock__read(shim_page, &snapshot);
	/* The kernel refuses to sleep on the _RAW and _COARSE clocks: let it
	 * say so. CPU-time clocks stay real. */
	virtual_clock = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
			clock == CLOCK_TAI || clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM;
	if (!virtual_clock || !shim__clock_offset(clock, &snapshot, &offset_ns))
		return REAL(clock_nanosleep)(clock, flags, request, remaining);
	if (!shim__timespec_valid(request))
		return EINVAL;
	if (flags & TIMER_ABSTIME) {
		/* An absolute deadline is on the program's (virtual) clock. */
		deadline_ns = shim__timespec_ns(request) - offset_ns;
		return shim__sleep_until(deadline_ns, LS_CLOCK_WAIT_SLEEP) < 0 ? EINTR : 0;
	}
	if (sleeps__for(shim__timespec_ns(request), &remaining_ns) < 0) {
		if (remaining != NULL)
			*remaining = shim__ns_timespec(remaining_ns);
		return EINTR;
	}
	return 0;
}

SHIM_API int usleep(useconds_t microseconds)
{
	if (!shim__active())
		return REAL(usleep)(microseconds);
	if (sleeps__for((int64_t)microseconds * NS_PER_USEC, NULL) < 0) {
		errno = EINTR;
		return -1;
	}
	return 0;
}

SHIM_API unsigned int sleep(unsigned int seconds)
{
	int64_t remaining_ns = 0;

	if (!shim__active())
		return REAL(sleep)(seconds);
	/* Like glibc: the whole seconds not slept when a handler interrupted. */
	if (sleeps__for((int64_t)seconds * NS_PER_SEC, &remaining_ns) < 0)
		return (unsigned int)(remaining_ns / NS_PER_SEC);
	return 0;
}
