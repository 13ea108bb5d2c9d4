/*
 * The shim's core: maps the clock page at load time, resolves libc's real
 * functions, and implements the two ways to wait on virtual time (futex
 * sleeps and sliced fd waits) plus the wait slots used for idle detection.
 */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A frozen clock is only re-read when the controller wakes the page's
 * futex; this bound is a safety net against a page written without a wake
 * (it costs one wake-up per second per sleeping thread). */
#define SHIM_RECHECK_NS NS_PER_SEC
/* The page file holds one page; a larger file is a foreign file. */
#define SHIM_PAGE_MAP_MAX (16u * LS_CLOCK_PAGE_BYTES)

struct shim_real shim_real;
struct ls_clock_page *shim_page;
int shim_page_writable;
int64_t shim_tai_offset_ns;

/* Thread ids cached per thread; a fork invalidates them (the child's only
 * thread has a new tid and the process a new pid). */
static int shim_fork_epoch = 1;
static __thread __attribute__((tls_model("initial-exec"))) int shim_thread_epoch;
static __thread __attribute__((tls_model("initial-exec"))) int32_t shim_thread_tid;
static __thread __attribute__((tls_model("initial-exec"))) int32_t shim_thread_pid;

void *shim__resolve(void **slot, const char *name)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_RELAXED);

	if (fn == NULL) {
		fn = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, fn, __ATOMIC_RELAXED);
	}
	return fn;
}

static void shim__resolve_all(void)
{
#define RESOLVE(name) shim__resolve((void **)&shim_real.name, #name)
	RESOLVE(clock_gettime);
	RESOLVE(gettimeofday);
	RESOLVE(time);
	RESOLVE(timespec_get);
	RESOLVE(nanosleep);
	RESOLVE(clock_nanosleep);
	RESOLVE(usleep);
	RESOLVE(sleep);
	RESOLVE(poll);
	RESOLVE(ppoll);
	RESOLVE(select);
	RESOLVE(pselect);
	RESOLVE(epoll_wait);
	RESOLVE(epoll_pwait);
	RESOLVE(epoll_pwait2);
	RESOLVE(recvmsg);
	RESOLVE(recvmmsg);
	RESOLVE(ioctl);
	RESOLVE(alarm);
	RESOLVE(ualarm);
	RESOLVE(setitimer);
	RESOLVE(getitimer);
	RESOLVE(timerfd_create);
	RESOLVE(timerfd_settime);
	RESOLVE(timerfd_gettime);
	RESOLVE(close);
	RESOLVE(pthread_cond_timedwait);
	RESOLVE(pthread_cond_clockwait);
	RESOLVE(pthread_mutex_unlock);
	RESOLVE(sem_timedwait);
	RESOLVE(sem_clockwait);
#undef RESOLVE
}

/* One line on stderr, without stdio (we may run before it is usable). */
static void shim__complain(const char *path, const char *what)
{
	char line[512];
	int n = snprintf(line, sizeof line, "livestack-shim: %s=%s: %s; the clock stays real\n",
			 LS_CLOCK_ENV, path, what);

	if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
		return; /* nothing else to do: the program runs on the real clock */
}

static void shim__map_page(void)
{
	const char *path = getenv(LS_CLOCK_ENV);
	struct stat st;
	size_t bytes;
	void *map;
	int fd, writable = 1;

	if (path == NULL || path[0] == '\0')
		return;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		writable = 0;
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		shim__complain(path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct ls_clock_page) ||
	    st.st_size > (off_t)SHIM_PAGE_MAP_MAX) {
		shim__complain(path, "not a clock page (size)");
		REAL(close)(fd);
		return;
	}
	bytes = (size_t)st.st_size;
	map = mmap(NULL, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	REAL(close)(fd);
	if (map == MAP_FAILED) {
		shim__complain(path, strerror(errno));
		return;
	}
	if (!ls_clock__valid(map, bytes)) {
		shim__complain(path, "not a clock page (magic, version or size)");
		munmap(map, bytes);
		return;
	}
	shim_page_writable = writable;
	shim_page = map;
}

static void shim__after_fork_child(void)
{
	__atomic_add_fetch(&shim_fork_epoch, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void shim__init(void)
{
	struct timespec tai, realtime;

	shim__resolve_all();
	if (REAL(clock_gettime)(CLOCK_TAI, &tai) == 0 && REAL(clock_gettime)(CLOCK_REALTIME, &realtime) == 0) {
		int64_t difference_ns = shim__timespec_ns(&tai) - shim__timespec_ns(&realtime);
		shim_tai_offset_ns = (difference_ns + NS_PER_SEC / 2) / NS_PER_SEC * NS_PER_SEC;
	}
	pthread_atfork(NULL, NULL, shim__after_fork_child);
	shim__map_page();
}

int64_t shim__host_raw_ns(void)
{
	struct timespec ts;

	REAL(clock_gettime)(CLOCK_MONOTONIC_RAW, &ts);
	return shim__timespec_ns(&ts);
}

int64_t shim__host_realtime_ns(void)
{
	struct timespec ts;

	REAL(clock_gettime)(CLOCK_REALTIME, &ts);
	return shim__timespec_ns(&ts);
}

int64_t shim__now(struct ls_clock_snapshot *snapshot)
{
	ls_clock__read(shim_page, snapshot);
	if (!snapshot->running)
		return snapshot->base_virtual_ns;
	return ls_clock__virtual_at(snapshot, shim__host_raw_ns());
}

int shim__clock_offset(clockid_t clock, const struct ls_clock_snapshot *snapshot, int64_t *offset_ns)
{
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_REALTIME_ALARM:
		*offset_ns = snapshot->realtime_epoch_ns;
		return 1;
	case CLOCK_TAI:
		*offset_ns = snapshot->realtime_epoch_ns + shim_tai_offset_ns;
		return 1;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
	case CLOCK_BOOTTIME_ALARM:
		*offset_ns = snapshot->boot_offset_ns;
		return 1;
	default:
		return 0; /* CPU-time clocks (also per pid/thread ones, < 0) stay real */
	}
}

int64_t shim__timespec_ns(const struct timespec *ts)
{
	if (ts->tv_sec >= INT64_MAX / NS_PER_SEC - 1)
		return INT64_MAX;
	if (ts->tv_sec <= INT64_MIN / NS_PER_SEC + 1)
		return INT64_MIN;
	return (int64_t)ts->tv_sec * NS_PER_SEC + ts->tv_nsec;
}

struct timespec shim__ns_timespec(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = ns / NS_PER_SEC;
	ts.tv_nsec = ns % NS_PER_SEC;
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += NS_PER_SEC;
	}
	return ts;
}

int shim__timespec_valid(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < NS_PER_SEC;
}

static void shim__thread_ids(int32_t *tid, int32_t *pid)
{
	int epoch = __atomic_load_n(&shim_fork_epoch, __ATOMIC_RELAXED);

	if (shim_thread_epoch != epoch) {
		shim_thread_tid = (int32_t)syscall(SYS_gettid);
		shim_thread_pid = (int32_t)getpid();
		shim_thread_epoch = epoch;
	}
	*tid = shim_thread_tid;
	*pid = shim_thread_pid;
}

int shim__publish(uint32_t kind, int64_t deadline_ns)
{
	int32_t tid, pid;
	unsigned int start;

	if (shim_page == NULL || !shim_page_writable)
		return -1;
	shim__thread_ids(&tid, &pid);
	start = (unsigned int)tid % LS_CLOCK_WAIT_SLOTS;
	for (unsigned int i = 0; i < LS_CLOCK_WAIT_SLOTS; i++) {
		unsigned int index = (start + i) % LS_CLOCK_WAIT_SLOTS;
		struct ls_clock_wait_slot *slot = &shim_page->slots[index];
		int32_t expected = 0;

		if (atomic_load_explicit(&slot->tid, memory_order_relaxed) != 0 ||
		    !atomic_compare_exchange_strong_explicit(&slot->tid, &expected, tid, memory_order_acquire,
							     memory_order_relaxed))
			continue;
		atomic_store_explicit(&slot->pid, pid, memory_order_relaxed);
		atomic_store_explicit(&slot->kind, kind, memory_order_relaxed);
		atomic_store_explicit(&slot->deadline_virtual_ns, deadline_ns, memory_order_relaxed);
		atomic_store_explicit(&slot->state, LS_CLOCK_SLOT_WAITING, memory_order_release);
		return (int)index;
	}
	return -1;
}

void shim__republish(int index, int64_t deadline_ns)
{
	struct ls_clock_wait_slot *slot;

	if (index < 0)
		return;
	slot = &shim_page->slots[index];
	atomic_store_explicit(&slot->state, LS_CLOCK_SLOT_FILLING, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&slot->deadline_virtual_ns, deadline_ns, memory_order_relaxed);
	atomic_store_explicit(&slot->state, LS_CLOCK_SLOT_WAITING, memory_order_release);
}

void shim__unpublish(int index)
{
	struct ls_clock_wait_slot *slot;

	if (index < 0)
		return;
	slot = &shim_page->slots[index];
	atomic_store_explicit(&slot->state, LS_CLOCK_SLOT_FILLING, memory_order_relaxed);
	atomic_store_explicit(&slot->tid, 0, memory_order_release);
}

int shim__futex_wait(uint32_t generation, int64_t wait_ns, uint32_t bitset)
{
	struct timespec now, deadline;

	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline; an
	 * absolute deadline also makes the kernel restart the wait after a
	 * stop or freeze (restart block) and fail with EINTR only when a
	 * handler ran, as nanosleep does. Shared futex: no FUTEX_PRIVATE_FLAG. */
	REAL(clock_gettime)(CLOCK_MONOTONIC, &now);
	deadline = shim__ns_timespec(shim__timespec_ns(&now) + wait_ns);
	if (syscall(SYS_futex, &shim_page->wake_generation, FUTEX_WAIT_BITSET, generation, &deadline, NULL,
		    bitset) < 0)
		return -errno;
	return 0;
}

/* pthread_cancel() of a thread in a wait: the wait's slot must not outlive
 * it. */
void shim__unpublish_cleanup(void *slot)
{
	shim__unpublish(*(volatile int *)slot);
}

static int shim__sleep_loop(int64_t deadline_ns, uint32_t kind, volatile int *slot)
{
	for (int published = 0;;) {
		struct ls_clock_snapshot snapshot;
		int64_t now_ns = shim__now(&snapshot), wait_ns = SHIM_RECHECK_NS;
		int cancel_type, err;

		if (now_ns >= deadline_ns)
			return 0;
		if (!published) {
			*slot = shim__publish(kind, deadline_ns);
			published = 1;
		}
		if (snapshot.running) {
			int64_t host_ns = ls_clock__host_duration(&snapshot, deadline_ns - now_ns);
			if (host_ns < wait_ns)
				wait_ns = host_ns;
		}
		/* The sleeps are cancellation points; the futex system call is
		 * not: let pthread_cancel() act during it, as glibc does for its
		 * own cancellable system calls. */
		pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &cancel_type);
		/* Returns at the timeout, when the controller bumps the
		 * generation (or at once if it already did since the
		 * snapshot), or with EINTR only if a signal handler ran. */
		err = shim__futex_wait(snapshot.generation, wait_ns, SHIM_FUTEX_SLEEPER_BIT);
		pthread_setcanceltype(cancel_type, NULL);
		if (err == -EINTR)
			return -EINTR;
	}
}

int shim__sleep_until(int64_t deadline_ns, uint32_t kind)
{
	int saved_errno = errno, result;
	volatile int slot = -1;

	pthread_cleanup_push(shim__unpublish_cleanup, (void *)&slot);
	result = shim__sleep_loop(deadline_ns, kind, &slot);
	pthread_cleanup_pop(1);
	errno = saved_errno;
	return result;
}

int shim__wait_fds(int64_t timeout_ns, uint32_t kind, shim_slice_fn fn, void *context, int64_t *remaining_ns)
{
	static const struct timespec zero = { 0, 0 };
	struct ls_clock_snapshot snapshot;
	int saved_errno = errno, call_errno, result;
	volatile int slot;
	int64_t now_ns, deadline_ns;

	if (timeout_ns == 0) {
		if (remaining_ns)
			*remaining_ns = 0;
		return fn(context, &zero);
	}
	now_ns = shim__now(&snapshot);
	if (timeout_ns < 0)
		deadline_ns = LS_CLOCK_NO_DEADLINE;
	else
		deadline_ns = now_ns > LS_CLOCK_NO_DEADLINE - timeout_ns ? LS_CLOCK_NO_DEADLINE - 1 : now_ns + timeout_ns;
	slot = shim__publish(kind, deadline_ns);
	/* The real poll-family calls are cancellation points. */
	pthread_cleanup_push(shim__unpublish_cleanup, (void *)&slot);
	for (;;) {
		struct timespec slice;
		const struct timespec *timeout = NULL;

		if (deadline_ns != LS_CLOCK_NO_DEADLINE) {
			int64_t left_ns = deadline_ns - now_ns, host_ns = LS_CLOCK_SLICE_NS;

			if (left_ns <= 0) {
				/* The deadline passed: report what is ready
				 * now, as the real call does at its timeout. */
				result = fn(context, &zero);
				break;
			}
			if (snapshot.running) {
				int64_t needed_ns = ls_clock__host_duration(&snapshot, left_ns);
				if (needed_ns < host_ns)
					host_ns = needed_ns;
			}
			slice = shim__ns_timespec(host_ns);
			timeout = &slice;
		}
		result = fn(context, timeout);
		if (result != 0)
			break;
		now_ns = shim__now(&snapshot);
	}
	call_errno = errno;
	pthread_cleanup_pop(1);
	if (remaining_ns) {
		if (deadline_ns == LS_CLOCK_NO_DEADLINE) {
			*remaining_ns = -1;
		} else {
			now_ns = shim__now(&snapshot);
			*remaining_ns = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
		}
	}
	errno = result < 0 ? call_errno : saved_errno;
	return result;
}

int64_t shim__stamp_virtual_realtime_ns(int64_t host_realtime_ns)
{
	int64_t raw_now_ns, age_ns;

	raw_now_ns = shim__host_raw_ns();
	age_ns = shim__host_realtime_ns() - host_realtime_ns;
	if (age_ns < 0)
		age_ns = 0;
	/* the stamp may be from before the cell's last freeze: map it through the clock's history */
	return atomic_load_explicit(&shim_page->realtime_epoch_ns, memory_order_relaxed) + ls_clock__map_past(shim_page, raw_now_ns - age_ns);
}
