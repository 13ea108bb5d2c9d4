/*
 * bench [N]: N calls (default 1e6) of clock_gettime(CLOCK_MONOTONIC) and of
 * gettimeofday; prints "clock_gettime NS_PER_CALL" and "gettimeofday
 * NS_PER_CALL", timed with the real clock (raw system calls).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long real_ns(void)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	volatile long long sink = 0;
	struct timespec ts;
	struct timeval tv;
	long long start;

	start = real_ns();
	for (long i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		sink += ts.tv_nsec;
	}
	printf("clock_gettime %.2f\n", (double)(real_ns() - start) / (double)n);
	start = real_ns();
	for (long i = 0; i < n; i++) {
		gettimeofday(&tv, NULL);
		sink += tv.tv_usec;
	}
	printf("gettimeofday %.2f\n", (double)(real_ns() - start) / (double)n);
	return sink == 42;
}
