/*
 * bench.c — baselines for bench/vm.ts, measured in C in the same run as the
 * VMM figures they are compared with: a plain C call loop (against koffi's
 * per-call cost), a system call round trip (against a KVM exit), and a timer
 * signal on a spinning host thread (against a quantum kick's overshoot).
 */
#define _GNU_SOURCE
#include "vmm.h"
#include "../util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The call koffi makes in bench/vm.ts, through a pointer the compiler cannot inline. */
static int (*volatile bench__target)(void) = ls_abi_version;

long long ls_vm__bench_calls(int32_t count)
{
	int64_t start = util__now_ns();
	int sum = 0;

	for (int32_t i = 0; i < count; i++)
		sum += bench__target();
	__asm__ volatile("" : : "r"(sum));
	return util__now_ns() - start;
}

long long ls_vm__bench_syscalls(int32_t count)
{
	int64_t start = util__now_ns();

	for (int32_t i = 0; i < count; i++)
		syscall(SYS_getppid);
	return util__now_ns() - start;
}

static volatile sig_atomic_t bench__fired;

static void bench__on_signal(int signal)
{
	(void)signal;
	bench__fired = 1;
}

int ls_vm__bench_timer(int32_t count, int64_t quantum_ns, int64_t *out_overshoot_ns)
{
	struct sigaction action, saved;
	struct sigevent event;
	struct itimerspec spec;
	timer_t timer;
	sigset_t set;
	int rc = 0;

	if (count <= 0 || quantum_ns <= 0 || out_overshoot_ns == NULL)
		return -EINVAL;
	memset(&action, 0, sizeof action);
	action.sa_handler = bench__on_signal;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGRTMIN + 8, &action, &saved) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 8);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	memset(&event, 0, sizeof event);
	event.sigev_notify = SIGEV_THREAD_ID;
	event.sigev_signo = SIGRTMIN + 8;
	event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &event, &timer) < 0) {
		rc = -errno;
		goto out;
	}
	memset(&spec, 0, sizeof spec);
	for (int32_t i = 0; i < count; i++) {
		int64_t start;

		bench__fired = 0;
		spec.it_value.tv_sec = quantum_ns / 1000000000LL;
		spec.it_value.tv_nsec = quantum_ns % 1000000000LL;
		start = util__now_ns();
		timer_settime(timer, 0, &spec, NULL);
		while (!bench__fired)
			; /* a spinning host thread: what a vCPU in its guest looks like to the timer */
		out_overshoot_ns[i] = util__now_ns() - start - quantum_ns;
	}
	timer_delete(timer);
out:
	sigaction(SIGRTMIN + 8, &saved, NULL);
	return rc;
}
