/*
 * Clock reads. glibc resolves time() and gettimeofday() straight to the vDSO
 * (IFUNCs) and timespec_get() does not call the public clock_gettime(), so
 * each is interposed itself. clock_getres() is left alone: the virtual
 * clocks have the resolution of the real ones. clock() is process CPU time
 * and stays real (a frozen process uses no CPU).
 */
#include "shim.h"

#include <errno.h>
#include <stddef.h>
#include <sys/timeb.h>

/* The clock as the program sees it: offset + v. 0 if clock is one the shim
 * leaves real. */
static int clocks__read(clockid_t clock, int64_t *ns)
{
	struct ls_clock_snapshot snapshot;
	int64_t offset_ns;

	ls_clock__read(shim_page, &snapshot);
	if (!shim__clock_offset(clock, &snapshot, &offset_ns))
		return 0;
	*ns = offset_ns + (snapshot.running ? ls_clock__virtual_at(&snapshot, shim__host_raw_ns())
					    : snapshot.base_virtual_ns);
	return 1;
}

SHIM_API int clock_gettime(clockid_t clock, struct timespec *tp)
{
	int64_t ns;

	SHIM_OPAQUE(tp);
	if (!shim__active() || tp == NULL || !clocks__read(clock, &ns))
		return REAL(clock_gettime)(clock, tp);
	*tp = shim__ns_timespec(ns);
	return 0;
}

SHIM_API int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	int64_t ns;

	SHIM_OPAQUE(tv);
	if (!shim__active() || tv == NULL)
		return REAL(gettimeofday)(tv, tz);
	if (tz != NULL && REAL(gettimeofday)(NULL, tz) < 0)
		return -1;
	clocks__read(CLOCK_REALTIME, &ns);
	tv->tv_sec = ns / NS_PER_SEC;
	tv->tv_usec = ns % NS_PER_SEC / NS_PER_USEC;
	return 0;
}

SHIM_API time_t time(time_t *out)
{
	int64_t ns;
	time_t seconds;

	if (!shim__active())
		return REAL(time)(out);
	clocks__read(CLOCK_REALTIME, &ns);
	seconds = (time_t)(ns / NS_PER_SEC);
	if (out != NULL)
		*out = seconds;
	return seconds;
}

SHIM_API int timespec_get(struct timespec *ts, int base)
{
	int64_t ns;

	SHIM_OPAQUE(ts);
	if (!shim__active() || base != TIME_UTC || ts == NULL)
		return REAL(timespec_get)(ts, base);
	clocks__read(CLOCK_REALTIME, &ns);
	*ts = shim__ns_timespec(ns);
	return base;
}

SHIM_API int ftime(struct timeb *tp)
{
	int64_t ns;

	SHIM_OPAQUE(tp);
	if (tp == NULL) {
		errno = EFAULT;
		return -1;
	}
	if (shim__active()) {
		clocks__read(CLOCK_REALTIME, &ns);
	} else {
		struct timespec ts;
		REAL(clock_gettime)(CLOCK_REALTIME, &ts);
		ns = shim__timespec_ns(&ts);
	}
	/* glibc >= 2.33 also reports no time zone. */
	tp->time = (time_t)(ns / NS_PER_SEC);
	tp->millitm = (unsigned short)(ns % NS_PER_SEC / NS_PER_MSEC);
	tp->timezone = 0;
	tp->dstflag = 0;
	return 0;
}
