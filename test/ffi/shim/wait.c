/*
 * wait KIND NS: one timed wait of NS ns, through the call KIND names.
 * Prints "start V R" before and "end V R RESULT ERRNO [EXTRA]" after, with V
 * the (virtual, under the shim) CLOCK_MONOTONIC and R the real one read by a
 * raw system call, both in ns. fd waits wait on a pipe that never becomes
 * readable, except the *_stdin kinds, which wait for stdin to be readable
 * and print what they saw in EXTRA.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000LL

static long long virtual_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static long long real_ns(void)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static struct timespec timespec_of(long long ns)
{
	struct timespec ts = { (time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC) };
	return ts;
}

/* cond_predicate: another thread makes the predicate true under the mutex
 * after 100 ms and never signals. */
static pthread_mutex_t predicate_mutex = PTHREAD_MUTEX_INITIALIZER;
static int predicate;

static void *set_predicate(void *unused)
{
	struct timespec pause = { 0, 100000000L };

	(void)unused;
	syscall(SYS_nanosleep, &pause, NULL); /* real time: the page may be frozen */
	pthread_mutex_lock(&predicate_mutex);
	predicate = 1;
	pthread_mutex_unlock(&predicate_mutex);
	return NULL;
}

/* cancel_*: the wait runs in a thread that main cancels after 100 ms. */
static void *cancelled_wait(void *argument)
{
	long long ns = *(long long *)argument;

	if (argument == NULL)
		return NULL;
	if (((long long *)argument)[1]) {
		int pipefd[2];
		struct pollfd pfd = { .events = POLLIN };
		if (pipe(pipefd) < 0)
			return NULL;
		pfd.fd = pipefd[0];
		poll(&pfd, 1, (int)(ns / 1000000));
	} else {
		struct timespec ts = timespec_of(ns);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int signal)
{
	(void)signal;
	alarms++;
}

int main(int argc, char **argv)
{
	const char *kind;
	long long ns, result = 0;
	char extra[128] = "";
	int pipefd[2], fd, saved_errno;

	if (argc != 3) {
		fprintf(stderr, "usage: wait KIND NS\n");
		return 2;
	}
	kind = argv[1];
	ns = atoll(argv[2]);
	if (pipe(pipefd) < 0)
		return 1;
	fd = strstr(kind, "_stdin") ? 0 : pipefd[0];
	signal(SIGALRM, on_alarm);

	printf("start %lld %lld\n", virtual_ns(), real_ns());
	fflush(stdout);
	errno = 0;
	if (!strcmp(kind, "nanosleep")) {
		struct timespec ts = timespec_of(ns);
		result = nanosleep(&ts, NULL);
	} else if (!strcmp(kind, "clock_nanosleep")) {
		struct timespec ts = timespec_of(ns);
		result = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	} else if (!strcmp(kind, "clock_nanosleep_abs") || !strcmp(kind, "clock_nanosleep_realtime_abs")) {
		clockid_t clock = strstr(kind, "realtime") ? CLOCK_REALTIME : CLOCK_MONOTONIC;
		struct timespec now, deadline;
		clock_gettime(clock, &now);
		deadline = timespec_of((long long)now.tv_sec * NS_PER_SEC + now.tv_nsec + ns);
		result = clock_nanosleep(clock, TIMER_ABSTIME, &deadline, NULL);
	} else if (!strcmp(kind, "cond_predicate")) {
		/* the predicate becomes true under the mutex while this thread waits, and nobody signals: a
		 * wait in slices must not sleep past it (a signal sent between two slices finds no waiter) */
		pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
		struct timespec now, deadline;
		pthread_t setter;
		int rc = 0;

		clock_gettime(CLOCK_REALTIME, &now);
		deadline = timespec_of((long long)now.tv_sec * NS_PER_SEC + now.tv_nsec + ns);
		pthread_mutex_lock(&predicate_mutex);
		pthread_create(&setter, NULL, set_predicate, NULL);
		while (!predicate && rc == 0)
			rc = pthread_cond_timedwait(&cond, &predicate_mutex, &deadline);
		snprintf(extra, sizeof extra, "predicate=%d", predicate);
		pthread_mutex_unlock(&predicate_mutex);
		pthread_join(setter, NULL);
		result = rc;
	} else if (!strncmp(kind, "cond_", 5)) {
		/* a condition variable nobody signals: the wait ends at its deadline (ETIMEDOUT → 0) */
		pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
		pthread_condattr_t attr;
		pthread_cond_t cond;
		clockid_t clock = strstr(kind, "mono") ? CLOCK_MONOTONIC : CLOCK_REALTIME;
		struct timespec now, deadline;
		int rc;

		pthread_condattr_init(&attr);
		if (!strcmp(kind, "cond_timedwait_mono"))
			pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&cond, &attr);
		clock_gettime(clock, &now);
		deadline = timespec_of((long long)now.tv_sec * NS_PER_SEC + now.tv_nsec + ns);
		pthread_mutex_lock(&mutex);
		/* as a caller must: a wake-up may be spurious (the shim reports one per slice) */
		do {
			if (!strncmp(kind, "cond_clockwait", 14))
				rc = pthread_cond_clockwait(&cond, &mutex, clock, &deadline);
			else
				rc = pthread_cond_timedwait(&cond, &mutex, &deadline);
		} while (rc == 0);
		snprintf(extra, sizeof extra, "locked=%d", pthread_mutex_trylock(&mutex) == EBUSY);
		pthread_mutex_unlock(&mutex);
		result = rc == ETIMEDOUT ? 0 : rc;
	} else if (!strncmp(kind, "sem_", 4)) {
		sem_t sem;
		clockid_t clock = strstr(kind, "mono") ? CLOCK_MONOTONIC : CLOCK_REALTIME;
		struct timespec now, deadline;
		int rc;

		sem_init(&sem, 0, 0);
		clock_gettime(clock, &now);
		deadline = timespec_of((long long)now.tv_sec * NS_PER_SEC + now.tv_nsec + ns);
		rc = !strncmp(kind, "sem_clockwait", 13) ? sem_clockwait(&sem, clock, &deadline) : sem_timedwait(&sem, &deadline);
		result = rc < 0 && errno == ETIMEDOUT ? 0 : (rc < 0 ? errno : 1);
	} else if (!strcmp(kind, "sleep")) {
		result = sleep((unsigned int)(ns / NS_PER_SEC));
	} else if (!strcmp(kind, "usleep")) {
		result = usleep((useconds_t)(ns / 1000));
	} else if (!strcmp(kind, "realsleep")) {
		/* The real clock, whatever the shim does: a raw system call. */
		struct timespec ts = timespec_of(ns);
		result = syscall(SYS_nanosleep, &ts, NULL);
	} else if (!strcmp(kind, "cancel_nanosleep") || !strcmp(kind, "cancel_poll")) {
		long long argument[2] = { ns, !strcmp(kind, "cancel_poll") };
		struct timespec pause = timespec_of(100000000);
		pthread_t thread;
		void *value = NULL;
		pthread_create(&thread, NULL, cancelled_wait, argument);
		syscall(SYS_nanosleep, &pause, NULL);
		pthread_cancel(thread);
		pthread_join(thread, &value);
		result = value == PTHREAD_CANCELED;
	} else if (!strcmp(kind, "poll0")) {
		result = poll(NULL, 0, (int)(ns / 1000000));
	} else if (!strcmp(kind, "poll") || !strcmp(kind, "poll_stdin")) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		result = poll(&pfd, 1, (int)(ns / 1000000));
		snprintf(extra, sizeof extra, "revents=%d", pfd.revents);
	} else if (!strcmp(kind, "ppoll")) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct timespec ts = timespec_of(ns);
		result = ppoll(&pfd, 1, &ts, NULL);
	} else if (!strcmp(kind, "select") || !strcmp(kind, "select_stdin") || !strcmp(kind, "select0")) {
		fd_set readfds;
		struct timeval tv = { (time_t)(ns / NS_PER_SEC), (suseconds_t)(ns % NS_PER_SEC / 1000) };
		FD_ZERO(&readfds);
		FD_SET(fd, &readfds);
		if (!strcmp(kind, "select0"))
			result = select(0, NULL, NULL, NULL, &tv);
		else
			result = select(fd + 1, &readfds, NULL, NULL, &tv);
		snprintf(extra, sizeof extra, "isset=%d left_us=%lld", !strcmp(kind, "select0") ? 0 : FD_ISSET(fd, &readfds),
			 (long long)tv.tv_sec * 1000000LL + tv.tv_usec);
	} else if (!strcmp(kind, "pselect")) {
		fd_set readfds;
		struct timespec ts = timespec_of(ns);
		FD_ZERO(&readfds);
		FD_SET(fd, &readfds);
		result = pselect(fd + 1, &readfds, NULL, NULL, &ts, NULL);
	} else if (!strncmp(kind, "epoll", 5)) {
		int epfd = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event event = { .events = EPOLLIN, .data.fd = fd }, out[4];
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
		if (!strcmp(kind, "epoll_wait") || !strcmp(kind, "epoll_wait_stdin")) {
			result = epoll_wait(epfd, out, 4, (int)(ns / 1000000));
		} else if (!strcmp(kind, "epoll_pwait")) {
			sigset_t mask;
			sigemptyset(&mask);
			result = epoll_pwait(epfd, out, 4, (int)(ns / 1000000), &mask);
		} else {
			struct timespec ts = timespec_of(ns);
			result = epoll_pwait2(epfd, out, 4, &ts, NULL);
		}
		if (result > 0)
			snprintf(extra, sizeof extra, "fd=%d events=%u", out[0].data.fd, out[0].events);
	} else if (!strcmp(kind, "timerfd")) {
		int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		struct itimerspec spec = { .it_value = timespec_of(ns) }, left;
		unsigned long long expirations = 0;
		timerfd_settime(tfd, 0, &spec, NULL);
		timerfd_gettime(tfd, &left);
		result = read(tfd, &expirations, sizeof expirations);
		snprintf(extra, sizeof extra, "expirations=%llu armed_ns=%lld", expirations,
			 (long long)left.it_value.tv_sec * NS_PER_SEC + left.it_value.tv_nsec);
	} else if (!strcmp(kind, "timerfd_abs")) {
		int tfd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
		struct timespec now;
		struct itimerspec spec = { 0 };
		unsigned long long expirations = 0;
		clock_gettime(CLOCK_REALTIME, &now);
		spec.it_value = timespec_of((long long)now.tv_sec * NS_PER_SEC + now.tv_nsec + ns);
		timerfd_settime(tfd, TFD_TIMER_ABSTIME, &spec, NULL);
		result = read(tfd, &expirations, sizeof expirations);
		snprintf(extra, sizeof extra, "expirations=%llu", expirations);
	} else if (!strcmp(kind, "timerfd_interval")) {
		/* 4 expirations of an ns/4 interval timer, read through epoll. */
		int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		int epfd = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event event = { .events = EPOLLIN }, out;
		struct itimerspec spec = { .it_value = timespec_of(ns / 4), .it_interval = timespec_of(ns / 4) };
		unsigned long long total = 0, expirations;
		epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &event);
		timerfd_settime(tfd, 0, &spec, NULL);
		while (total < 4 && epoll_wait(epfd, &out, 1, -1) >= 0)
			if (read(tfd, &expirations, sizeof expirations) == sizeof expirations)
				total += expirations;
		result = (long long)total;
	} else if (!strcmp(kind, "alarm")) {
		alarm((unsigned int)(ns / NS_PER_SEC));
		result = pause();
		snprintf(extra, sizeof extra, "alarms=%d", (int)alarms);
	} else if (!strcmp(kind, "setitimer")) {
		struct itimerval value = { .it_value = { (time_t)(ns / NS_PER_SEC), (suseconds_t)(ns % NS_PER_SEC / 1000) } };
		struct itimerval left;
		setitimer(ITIMER_REAL, &value, NULL);
		getitimer(ITIMER_REAL, &left);
		result = pause();
		snprintf(extra, sizeof extra, "alarms=%d armed_us=%lld", (int)alarms,
			 (long long)left.it_value.tv_sec * 1000000LL + left.it_value.tv_usec);
	} else {
		fprintf(stderr, "wait: unknown kind %s\n", kind);
		return 2;
	}
	saved_errno = errno;
	printf("end %lld %lld %lld %d %s\n", virtual_ns(), real_ns(), result, result < 0 ? saved_errno : 0, extra);
	return 0;
}
