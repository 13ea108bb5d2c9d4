/*
 * Timers the kernel would run on real time, emulated on virtual time:
 * alarm, ualarm, setitimer/getitimer(ITIMER_REAL), and timerfds on
 * CLOCK_MONOTONIC, CLOCK_REALTIME and CLOCK_BOOTTIME (and their _ALARM
 * twins).
 *
 * One timer thread per process (started on the first arm, every signal
 * blocked) fires them: SIGALRM to the process for ITIMER_REAL, an eventfd
 * write for a timerfd. An emulated timerfd is an eventfd: reading it gives
 * the number of expirations since the last read and blocks (or EAGAIN)
 * while there is none, exactly as a timerfd; poll/epoll see it readable.
 * The thread writes through its own duplicate of the eventfd, so it never
 * writes to a descriptor number the program closed and reused.
 *
 * The thread waits on the page futex until the host instant at which the
 * earliest deadline would fall if the clock keeps running; the controller's
 * wakes (run/freeze/set) and re-arms (which bump the generation and wake
 * timer threads only) make it re-compute. It publishes its earliest
 * deadline in a wait slot, so an idle cell jumps straight to it.
 *
 * Limits: TIMERS_MAX timerfds per process (more are real timerfds, on real
 * time); after fork() the child has no ITIMER_REAL (as POSIX says) and its
 * inherited timerfds keep being driven by the parent only; dup2()/dup3() over
 * a timerfd number and exec() of a program with an open emulated timerfd
 * leave a plain eventfd; TFD_TIMER_CANCEL_ON_SET is accepted and ignored
 * (virtual CLOCK_REALTIME is never set); the TFD_IOC_SET_TICKS ioctl is not
 * emulated.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Entry 0 is ITIMER_REAL; the others are timerfds. */
#define TIMERS_MAX 64
#define TIMERS_ITIMER 0
#define TIMERS_DISARMED (-1LL)
/* The timer thread re-reads the clock at least this often while nothing
 * wakes it (a safety net; with a read-only page nobody can wake it, so it
 * polls every LS_CLOCK_SLICE_NS). */
#define TIMERS_RECHECK_NS NS_PER_SEC

struct timers_entry {
	int used;
	int user_fd;          /* the program's timerfd, -1 for ITIMER_REAL */
	int notify_fd;        /* our duplicate of it, -1 for ITIMER_REAL */
	int64_t deadline_ns;  /* virtual v of the next expiry, or TIMERS_DISARMED */
	int64_t interval_ns;  /* 0: one-shot */
};

static pthread_mutex_t timers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timers_entry timers[TIMERS_MAX] = { [TIMERS_ITIMER] = { 1, -1, -1, TIMERS_DISARMED, 0 } };
/* Emulated timerfds open: close() looks them up only when > 0. */
static int timers_fd_count;
/* The process that runs the timer thread (a fork child has none). */
static pid_t timers_thread_pid;
/* The timer thread's wait slot, -1 if none; released at exit(). */
static int timers_thread_slot = -1;
static int timers_exiting;

/* ---- the timer thread ----------------------------------------------------- */

/* Fires what is due at now_ns; returns the earliest remaining deadline.
 * Called with timers_lock held. */
static int64_t timers__fire(int64_t now_ns)
{
	int64_t next_ns = LS_CLOCK_NO_DEADLINE;

	for (int i = 0; i < TIMERS_MAX; i++) {
		struct timers_entry *timer = &timers[i];

		if (!timer->used || timer->deadline_ns == TIMERS_DISARMED)
			continue;
		if (timer->deadline_ns <= now_ns) {
			uint64_t expirations = 1;

			if (timer->interval_ns > 0)
				expirations += (uint64_t)((now_ns - timer->deadline_ns) / timer->interval_ns);
			if (i == TIMERS_ITIMER) {
				/* Overruns of an interval itimer merge into one
				 * pending SIGALRM, as in the kernel. */
				kill(getpid(), SIGALRM);
			} else if (write(timer->notify_fd, &expirations, sizeof expirations) < 0) {
				/* Only if the counter would overflow 2^64 - 2. */
			}
			if (timer->interval_ns > 0)
				timer->deadline_ns += (int64_t)expirations * timer->interval_ns;
			else
				timer->deadline_ns = TIMERS_DISARMED;
		}
		if (timer->deadline_ns != TIMERS_DISARMED && timer->deadline_ns < next_ns)
			next_ns = timer->deadline_ns;
	}
	return next_ns;
}

static void *timers__thread(void *unused)
{
	int64_t published_ns = LS_CLOCK_NO_DEADLINE;

	(void)unused;
	pthread_mutex_lock(&timers_lock);
	if (!timers_exiting)
		timers_thread_slot = shim__publish(LS_CLOCK_WAIT_TIMER, LS_CLOCK_NO_DEADLINE);
	pthread_mutex_unlock(&timers_lock);
	for (;;) {
		struct ls_clock_snapshot snapshot;
		int64_t now_ns = shim__now(&snapshot), next_ns, wait_ns = TIMERS_RECHECK_NS;

		pthread_mutex_lock(&timers_lock);
		next_ns = timers__fire(now_ns);
		if (next_ns != published_ns && !timers_exiting) {
			shim__republish(timers_thread_slot, next_ns);
			published_ns = next_ns;
		}
		pthread_mutex_unlock(&timers_lock);
		if (next_ns != LS_CLOCK_NO_DEADLINE && snapshot.running) {
			int64_t host_ns = ls_clock__host_duration(&snapshot, next_ns - now_ns);
			if (host_ns < wait_ns)
				wait_ns = host_ns;
		}
		if (!shim_page_writable && wait_ns > LS_CLOCK_SLICE_NS)
			wait_ns = LS_CLOCK_SLICE_NS;
		/* The generation was read before the timers: an arm after
		 * that changed it, so this returns at once. */
		shim__futex_wait(snapshot.generation, wait_ns, SHIM_FUTEX_TIMER_BIT);
	}
	return NULL;
}

/* Starts this process's timer thread if it has none. Called with
 * timers_lock held. Returns 0 or -errno. */
static int timers__ensure_thread(void)
{
	pthread_attr_t attributes;
	sigset_t all, previous;
	pthread_t thread;
	int err;

	if (timers_thread_pid == getpid())
		return 0;
	/* The thread inherits a full signal mask: SIGALRM and the program's
	 * other signals go to the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &previous);
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attributes, 64 * 1024);
	err = pthread_create(&thread, &attributes, timers__thread, NULL);
	pthread_attr_destroy(&attributes);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	if (err != 0)
		return -err;
	timers_thread_pid = getpid();
	return 0;
}

/* After a change of the timers: wake timer threads (ours among them). */
static void timers__kick(void)
{
	if (shim_page_writable)
		atomic_fetch_add_explicit(&shim_page->wake_generation, 1, memory_order_release);
	syscall(SYS_futex, &shim_page->wake_generation, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL,
		SHIM_FUTEX_TIMER_BIT);
}

static void timers__after_fork_child(void)
{
	/* The lock may have been held by another thread of the parent. */
	pthread_mutex_init(&timers_lock, NULL);
	timers_thread_pid = 0;
	timers_thread_slot = -1; /* the parent's thread owns it */
	timers[TIMERS_ITIMER].deadline_ns = TIMERS_DISARMED;
	timers[TIMERS_ITIMER].interval_ns = 0;
	/* Inherited timerfds stay the parent's to drive: forget them (the
	 * duplicates stay open: the parent's writes reach the same file). */
	for (int i = 1; i < TIMERS_MAX; i++)
		timers[i].used = 0;
	timers_fd_count = 0;
}

__attribute__((constructor)) static void timers__init(void)
{
	pthread_atfork(NULL, NULL, timers__after_fork_child);
}

/* At exit() the timer thread dies without unpublishing its slot: do it for
 * it. (_exit(), a fatal signal or exec() leave the slot behind: the
 * controller's ls_clock__reap frees those.) */
__attribute__((destructor)) static void timers__fini(void)
{
	pthread_mutex_lock(&timers_lock);
	timers_exiting = 1;
	if (timers_thread_pid == getpid())
		shim__unpublish(timers_thread_slot);
	timers_thread_slot = -1;
	pthread_mutex_unlock(&timers_lock);
}

/* Arms (value_ns > 0) or disarms (0) a timer at virtual now + value_ns (or
 * at the absolute v deadline_ns if >= 0); reports what was left before.
 * Called with timers_lock held. */
static int timers__arm(struct timers_entry *timer, int64_t value_ns, int64_t deadline_ns, int64_t interval_ns,
		       int64_t *old_left_ns, int64_t *old_interval_ns)
{
	struct ls_clock_snapshot snapshot;
	int64_t now_ns = shim__now(&snapshot);
	int err;

	if (old_left_ns != NULL)
		*old_left_ns = timer->deadline_ns == TIMERS_DISARMED ? 0
			       : timer->deadline_ns > now_ns ? timer->deadline_ns - now_ns : 1;
	if (old_interval_ns != NULL)
		*old_interval_ns = timer->interval_ns;
	if (value_ns == 0 && deadline_ns < 0) {
		timer->deadline_ns = TIMERS_DISARMED;
		timer->interval_ns = 0;
		return 0;
	}
	err = timers__ensure_thread();
	if (err < 0)
		return err;
	timer->deadline_ns = deadline_ns >= 0 ? deadline_ns : now_ns + value_ns;
	timer->interval_ns = interval_ns;
	return 0;
}

/* ---- ITIMER_REAL ---------------------------------------------------------- */

static int timers__timeval_valid(const struct timeval *tv)
{
	return tv->tv_sec >= 0 && tv->tv_usec >= 0 && tv->tv_usec < 1000000;
}

static int64_t timers__timeval_ns(const struct timeval *tv)
{
	return (int64_t)tv->tv_sec * NS_PER_SEC + (int64_t)tv->tv_usec * NS_PER_USEC;
}

/* Rounded up to whole µs: a timer that is still armed never reads 0. */
static struct timeval timers__ns_timeval(int64_t ns)
{
	struct timeval tv;

	ns = (ns + NS_PER_USEC - 1) / NS_PER_USEC * NS_PER_USEC;
	tv.tv_sec = ns / NS_PER_SEC;
	tv.tv_usec = ns % NS_PER_SEC / NS_PER_USEC;
	return tv;
}

static int timers__setitimer(const struct itimerval *value, struct itimerval *old)
{
	int64_t old_left_ns, old_interval_ns, value_ns;
	int err;

	if (!timers__timeval_valid(&value->it_value) || !timers__timeval_valid(&value->it_interval)) {
		errno = EINVAL;
		return -1;
	}
	value_ns = timers__timeval_ns(&value->it_value);
	pthread_mutex_lock(&timers_lock);
	err = timers__arm(&timers[TIMERS_ITIMER], value_ns, -1, value_ns ? timers__timeval_ns(&value->it_interval) : 0,
			  &old_left_ns, &old_interval_ns);
	pthread_mutex_unlock(&timers_lock);
	if (err < 0) {
		errno = -err;
		return -1;
	}
	timers__kick();
	if (old != NULL) {
		old->it_value = timers__ns_timeval(old_left_ns);
		old->it_interval = timers__ns_timeval(old_interval_ns);
	}
	return 0;
}

SHIM_API int setitimer(__itimer_which_t which, const struct itimerval *restrict value, struct itimerval *restrict old)
{
	SHIM_OPAQUE(value);
	if (!shim__active() || which != ITIMER_REAL || value == NULL)
		return REAL(setitimer)(which, value, old);
	return timers__setitimer(value, old);
}

SHIM_API int getitimer(__itimer_which_t which, struct itimerval *current)
{
	struct ls_clock_snapshot snapshot;
	struct timers_entry *timer = &timers[TIMERS_ITIMER];
	int64_t now_ns;

	SHIM_OPAQUE(current);
	if (!shim__active() || which != ITIMER_REAL || current == NULL)
		return REAL(getitimer)(which, current);
	pthread_mutex_lock(&timers_lock);
	now_ns = shim__now(&snapshot);
	current->it_value = timers__ns_timeval(timer->deadline_ns == TIMERS_DISARMED ? 0
					       : timer->deadline_ns > now_ns ? timer->deadline_ns - now_ns : 1);
	current->it_interval = timers__ns_timeval(timer->interval_ns);
	pthread_mutex_unlock(&timers_lock);
	return 0;
}

SHIM_API unsigned int alarm(unsigned int seconds)
{
	struct itimerval value = { .it_value = { .tv_sec = seconds } }, old;
	unsigned int left;

	if (!shim__active())
		return REAL(alarm)(seconds);
	if (timers__setitimer(&value, &old) < 0)
		return 0;
	/* As glibc: round to the nearest second, but never report 0 for an
	 * alarm still pending. */
	left = (unsigned int)old.it_value.tv_sec;
	if (old.it_value.tv_usec >= 500000 || (left == 0 && old.it_value.tv_usec > 0))
		left++;
	return left;
}

SHIM_API useconds_t ualarm(useconds_t value_us, useconds_t interval_us)
{
	struct itimerval value = {
		.it_value = { value_us / 1000000, value_us % 1000000 },
		.it_interval = { interval_us / 1000000, interval_us % 1000000 },
	};
	struct itimerval old;

	if (!shim__active())
		return REAL(ualarm)(value_us, interval_us);
	if (timers__setitimer(&value, &old) < 0)
		return (useconds_t)-1;
	return (useconds_t)(old.it_value.tv_sec * 1000000 + old.it_value.tv_usec);
}

/* ---- timerfd -------------------------------------------------------------- */

static struct timers_entry *timers__find_fd(int fd)
{
	if (fd < 0)
		return NULL;
	for (int i = 1; i < TIMERS_MAX; i++)
		if (timers[i].used && timers[i].user_fd == fd)
			return &timers[i];
	return NULL;
}

static void timers__release(struct timers_entry *timer)
{
	REAL(close)(timer->notify_fd);
	timer->used = 0;
	timer->user_fd = timer->notify_fd = -1;
	timer->deadline_ns = TIMERS_DISARMED;
	__atomic_sub_fetch(&timers_fd_count, 1, __ATOMIC_RELAXED);
}

/* A descriptor number out of the program's usual range for our duplicate. */
static int timers__duplicate(int fd)
{
	struct rlimit limit;
	long minimum = 100;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur > 256)
		minimum = (long)limit.rlim_cur - 128;
	return fcntl(fd, F_DUPFD_CLOEXEC, minimum);
}

static int timers__virtual_clock(int clock)
{
	return clock == CLOCK_MONOTONIC || clock == CLOCK_REALTIME || clock == CLOCK_BOOTTIME ||
	       clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM;
}

/* The clock of each emulated timerfd, indexed like timers[]: only needed to
 * read TFD_TIMER_ABSTIME deadlines. */
static int timers_clock[TIMERS_MAX];

SHIM_API int timerfd_create(int clock, int flags)
{
	struct timers_entry *timer = NULL;
	int fd, notify_fd, index = -1;

	if (!shim__active() || !timers__virtual_clock(clock))
		return REAL(timerfd_create)(clock, flags);
	if (flags & ~(TFD_NONBLOCK | TFD_CLOEXEC)) {
		errno = EINVAL;
		return -1;
	}
	fd = eventfd(0, (flags & TFD_NONBLOCK ? EFD_NONBLOCK : 0) | (flags & TFD_CLOEXEC ? EFD_CLOEXEC : 0));
	if (fd < 0)
		return -1;
	notify_fd = timers__duplicate(fd);
	if (notify_fd < 0) {
		REAL(close)(fd);
		return REAL(timerfd_create)(clock, flags);
	}
	pthread_mutex_lock(&timers_lock);
	/* A number the program closed without our close() seeing it (raw
	 * syscall, dup2 over it) may come back: the old entry is stale. */
	timer = timers__find_fd(fd);
	if (timer != NULL)
		timers__release(timer);
	for (int i = 1; i < TIMERS_MAX && index < 0; i++)
		if (!timers[i].used)
			index = i;
	if (index >= 0) {
		timer = &timers[index];
		*timer = (struct timers_entry){ 1, fd, notify_fd, TIMERS_DISARMED, 0 };
		timers_clock[index] = clock;
		__atomic_add_fetch(&timers_fd_count, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&timers_lock);
	if (index < 0) {
		/* Table full: a real timerfd, on real time. */
		REAL(close)(notify_fd);
		REAL(close)(fd);
		return REAL(timerfd_create)(clock, flags);
	}
	return fd;
}

SHIM_API int timerfd_settime(int fd, int flags, const struct itimerspec *value, struct itimerspec *old)
{
	struct ls_clock_snapshot snapshot;
	struct timers_entry *timer;
	int64_t old_left_ns = 0, old_interval_ns = 0, offset_ns, deadline_ns = -1, value_ns;
	uint64_t unread;
	int err;

	SHIM_OPAQUE(value);
	if (!shim__active() || __atomic_load_n(&timers_fd_count, __ATOMIC_RELAXED) == 0 || value == NULL)
		return REAL(timerfd_settime)(fd, flags, value, old);
	pthread_mutex_lock(&timers_lock);
	timer = timers__find_fd(fd);
	if (timer == NULL) {
		pthread_mutex_unlock(&timers_lock);
		return REAL(timerfd_settime)(fd, flags, value, old);
	}
	if ((flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) || !shim__timespec_valid(&value->it_value) ||
	    !shim__timespec_valid(&value->it_interval)) {
		pthread_mutex_unlock(&timers_lock);
		errno = EINVAL;
		return -1;
	}
	value_ns = shim__timespec_ns(&value->it_value);
	if (value_ns != 0 && (flags & TFD_TIMER_ABSTIME)) {
		ls_clock__read(shim_page, &snapshot);
		shim__clock_offset(timers_clock[timer - timers], &snapshot, &offset_ns);
		deadline_ns = value_ns - offset_ns;
		if (deadline_ns < 0)
			deadline_ns = 0;
	}
	/* Setting a timerfd discards the expirations not read yet. The
	 * eventfd may be blocking: read only what poll says is there. */
	{
		struct pollfd readable = { .fd = timer->notify_fd, .events = POLLIN };
		if (REAL(poll)(&readable, 1, 0) == 1 && read(timer->notify_fd, &unread, sizeof unread) < 0) {
			/* another thread of the program read it first */
		}
	}
	err = timers__arm(timer, value_ns, deadline_ns, value_ns ? shim__timespec_ns(&value->it_interval) : 0,
			  &old_left_ns, &old_interval_ns);
	pthread_mutex_unlock(&timers_lock);
	if (err < 0) {
		errno = -err;
		return -1;
	}
	timers__kick();
	if (old != NULL) {
		old->it_value = shim__ns_timespec(old_left_ns);
		old->it_interval = shim__ns_timespec(old_interval_ns);
	}
	return 0;
}

SHIM_API int timerfd_gettime(int fd, struct itimerspec *current)
{
	struct ls_clock_snapshot snapshot;
	struct timers_entry *timer;
	int64_t now_ns;

	SHIM_OPAQUE(current);
	if (!shim__active() || __atomic_load_n(&timers_fd_count, __ATOMIC_RELAXED) == 0 || current == NULL)
		return REAL(timerfd_gettime)(fd, current);
	pthread_mutex_lock(&timers_lock);
	timer = timers__find_fd(fd);
	if (timer == NULL) {
		pthread_mutex_unlock(&timers_lock);
		return REAL(timerfd_gettime)(fd, current);
	}
	now_ns = shim__now(&snapshot);
	current->it_value = shim__ns_timespec(timer->deadline_ns == TIMERS_DISARMED ? 0
					      : timer->deadline_ns > now_ns ? timer->deadline_ns - now_ns : 1);
	current->it_interval = shim__ns_timespec(timer->interval_ns);
	pthread_mutex_unlock(&timers_lock);
	return 0;
}

SHIM_API int close(int fd)
{
	if (__atomic_load_n(&timers_fd_count, __ATOMIC_RELAXED) > 0) {
		struct timers_entry *timer;

		pthread_mutex_lock(&timers_lock);
		timer = timers__find_fd(fd);
		if (timer != NULL)
			timers__release(timer);
		pthread_mutex_unlock(&timers_lock);
	}
	return REAL(close)(fd);
}

SHIM_API int __close(int fd) __attribute__((alias("close")));
