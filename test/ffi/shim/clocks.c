/*
 * Prints every clock the shim virtualises, one "name value" line each, in
 * ns (time() in s, gettimeofday in µs, ftime in ms), then the CPU-time clock
 * (which stays real) and the real CLOCK_MONOTONIC read by a raw system call.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timeb.h>
#include <time.h>
#include <unistd.h>

static long long ns_of(struct timespec ts)
{
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
	static const struct { const char *name; clockid_t id; } clocks[] = {
		{ "REALTIME", CLOCK_REALTIME },
		{ "REALTIME_COARSE", CLOCK_REALTIME_COARSE },
		{ "MONOTONIC", CLOCK_MONOTONIC },
		{ "MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE },
		{ "MONOTONIC_RAW", CLOCK_MONOTONIC_RAW },
		{ "BOOTTIME", CLOCK_BOOTTIME },
	};
	struct timespec ts;
	struct timeval tv;
	struct timeb tb;

	for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		clock_gettime(clocks[i].id, &ts);
		printf("%s %lld\n", clocks[i].name, ns_of(ts));
	}
	gettimeofday(&tv, NULL);
	printf("gettimeofday_us %lld\n", (long long)tv.tv_sec * 1000000LL + tv.tv_usec);
	printf("time_s %lld\n", (long long)time(NULL));
	timespec_get(&ts, TIME_UTC);
	printf("timespec_get %lld\n", ns_of(ts));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	ftime(&tb);
#pragma GCC diagnostic pop
	printf("ftime_ms %lld\n", (long long)tb.time * 1000LL + tb.millitm);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	printf("PROCESS_CPUTIME %lld\n", ns_of(ts));
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	printf("real_MONOTONIC %lld\n", ns_of(ts));
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
	printf("real_REALTIME %lld\n", ns_of(ts));
	return 0;
}
