/*
 * The poll family. glibc's select(), poll() and epoll_wait() do not go
 * through pselect(), ppoll() and epoll_pwait(): every public name is
 * interposed.
 *
 * A wait on file descriptors cannot also sleep on the page's futex, so its
 * timeout runs in slices (shim__wait_fds): each slice is the real call with
 * a short host timeout, and 0 ("timed out") is returned only once the
 * virtual deadline passed. Ready descriptors end the wait at once, as in
 * libc. A wait on no descriptor at all (poll(NULL, 0, t), select(0, ...),
 * the classic portable sleeps) sleeps on the futex instead.
 *
 * Freezing a cell interrupts epoll_wait with EINTR even when no signal
 * handler ran (the kernel does not restart it), while poll, ppoll, select
 * and pselect are restarted by the kernel unless a handler ran. So the shim
 * waits for an epoll fd with ppoll() on the epoll fd itself (it is readable
 * while events are ready) and then collects the events with a zero-timeout
 * epoll_wait(): a freeze no longer surfaces as EINTR, a handler still does.
 */
#include "shim.h"

#include <errno.h>
#include <string.h>

/* A select() on more descriptors than this is passed through unchanged
 * (its sets are copied on the stack between slices). */
#define POLLS_SELECT_FDS_MAX (8 * FD_SETSIZE)
#define POLLS_SET_WORDS(nfds) (((size_t)(nfds) + 8 * sizeof(unsigned long) - 1) / (8 * sizeof(unsigned long)))

static int polls__zero(const struct timespec *slice)
{
	return slice != NULL && slice->tv_sec == 0 && slice->tv_nsec == 0;
}

/* A wait on nothing but time: sleep on the futex. */
static int polls__sleep(int64_t timeout_ns, uint32_t kind, int64_t *remaining_ns)
{
	struct ls_clock_snapshot snapshot;
	int64_t now_ns = shim__now(&snapshot), deadline_ns;

	deadline_ns = now_ns > LS_CLOCK_NO_DEADLINE - 1 - timeout_ns ? LS_CLOCK_NO_DEADLINE - 1 : now_ns + timeout_ns;
	if (shim__sleep_until(deadline_ns, kind) < 0) {
		if (remaining_ns != NULL) {
			now_ns = shim__now(&snapshot);
			*remaining_ns = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
		}
		errno = EINTR;
		return -1;
	}
	if (remaining_ns != NULL)
		*remaining_ns = 0;
	return 0;
}

/* ---- poll, ppoll ---------------------------------------------------------- */

struct polls_poll {
	struct pollfd *fds;
	nfds_t count;
	const sigset_t *sigmask;
};

static int polls__poll_slice(void *context, const struct timespec *slice)
{
	struct polls_poll *call = context;

	return REAL(ppoll)(call->fds, call->count, slice, call->sigmask);
}

SHIM_API int poll(struct pollfd *fds, nfds_t count, int timeout_ms)
{
	struct polls_poll context = { fds, count, NULL };

	if (!shim__active())
		return REAL(poll)(fds, count, timeout_ms);
	if (count == 0 && timeout_ms > 0)
		return polls__sleep((int64_t)timeout_ms * NS_PER_MSEC, LS_CLOCK_WAIT_POLL, NULL);
	return shim__wait_fds(timeout_ms < 0 ? -1 : (int64_t)timeout_ms * NS_PER_MSEC, LS_CLOCK_WAIT_POLL,
			      polls__poll_slice, &context, NULL);
}

SHIM_API int __poll(struct pollfd *fds, nfds_t count, int timeout_ms) __attribute__((alias("poll")));

SHIM_API int ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *sigmask)
{
	struct polls_poll context = { fds, count, sigmask };

	if (!shim__active())
		return REAL(ppoll)(fds, count, timeout, sigmask);
	if (timeout != NULL && !shim__timespec_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	if (count == 0 && sigmask == NULL && timeout != NULL && !polls__zero(timeout))
		return polls__sleep(shim__timespec_ns(timeout), LS_CLOCK_WAIT_POLL, NULL);
	return shim__wait_fds(timeout == NULL ? -1 : shim__timespec_ns(timeout), LS_CLOCK_WAIT_POLL,
			      polls__poll_slice, &context, NULL);
}

/* ---- select, pselect ------------------------------------------------------ */

struct polls_select {
	int nfds;
	fd_set *sets[3];                 /* the caller's read, write, except sets */
	unsigned long *saved[3];         /* their contents on entry */
	const sigset_t *sigmask;
};

static int polls__select_slice(void *context, const struct timespec *slice)
{
	struct polls_select *call = context;
	size_t bytes = POLLS_SET_WORDS(call->nfds) * sizeof(unsigned long);

	/* A slice that timed out cleared the sets: ask again for all. */
	for (int i = 0; i < 3; i++)
		if (call->sets[i] != NULL)
			memcpy(call->sets[i], call->saved[i], bytes);
	return REAL(pselect)(call->nfds, call->sets[0], call->sets[1], call->sets[2], slice, call->sigmask);
}

/* select and pselect, once the timeout is known to be valid. */
static int polls__select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, int64_t timeout_ns,
			 const sigset_t *sigmask, int64_t *remaining_ns)
{
	unsigned long saved[3][POLLS_SET_WORDS(POLLS_SELECT_FDS_MAX)];
	struct polls_select context = { nfds, { readfds, writefds, exceptfds }, { saved[0], saved[1], saved[2] }, sigmask };
	size_t bytes = POLLS_SET_WORDS(nfds) * sizeof(unsigned long);

	if (readfds == NULL && writefds == NULL && exceptfds == NULL && sigmask == NULL && timeout_ns > 0)
		return polls__sleep(timeout_ns, LS_CLOCK_WAIT_SELECT, remaining_ns);
	for (int i = 0; i < 3; i++)
		if (context.sets[i] != NULL)
			memcpy(saved[i], context.sets[i], bytes);
	return shim__wait_fds(timeout_ns, LS_CLOCK_WAIT_SELECT, polls__select_slice, &context, remaining_ns);
}

SHIM_API int select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, struct timeval *timeout)
{
	int64_t timeout_ns = -1, remaining_ns = 0;
	int result;

	if (!shim__active() || nfds < 0 || nfds > POLLS_SELECT_FDS_MAX)
		return REAL(select)(nfds, readfds, writefds, exceptfds, timeout);
	if (timeout != NULL) {
		if (timeout->tv_sec < 0 || timeout->tv_usec < 0) {
			errno = EINVAL;
			return -1;
		}
		timeout_ns = (int64_t)timeout->tv_sec * NS_PER_SEC + (int64_t)timeout->tv_usec * NS_PER_USEC;
	}
	result = polls__select(nfds, readfds, writefds, exceptfds, timeout_ns, NULL, &remaining_ns);
	if (timeout != NULL) {
		/* Linux leaves the time not slept in *timeout. */
		timeout->tv_sec = remaining_ns / NS_PER_SEC;
		timeout->tv_usec = remaining_ns % NS_PER_SEC / NS_PER_USEC;
	}
	return result;
}

SHIM_API int __select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, struct timeval *timeout)
	__attribute__((alias("select")));

SHIM_API int pselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, const struct timespec *timeout,
		     const sigset_t *sigmask)
{
	if (!shim__active() || nfds < 0 || nfds > POLLS_SELECT_FDS_MAX)
		return REAL(pselect)(nfds, readfds, writefds, exceptfds, timeout, sigmask);
	if (timeout != NULL && !shim__timespec_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	return polls__select(nfds, readfds, writefds, exceptfds, timeout == NULL ? -1 : shim__timespec_ns(timeout),
			     sigmask, NULL);
}

/* ---- epoll_wait, epoll_pwait, epoll_pwait2 -------------------------------- */

struct polls_epoll {
	int epfd;
	struct epoll_event *events;
	int max_events;
	const sigset_t *sigmask;
};

static int polls__epoll_slice(void *context, const struct timespec *slice)
{
	struct polls_epoll *call = context;
	struct pollfd epoll_fd = { .fd = call->epfd, .events = POLLIN };
	int ready = REAL(epoll_wait)(call->epfd, call->events, call->max_events, 0);

	if (ready != 0 || polls__zero(slice))
		return ready;
	ready = REAL(ppoll)(&epoll_fd, 1, slice, call->sigmask);
	if (ready <= 0)
		return ready;
	/* 0 here (another thread took the events first) means: wait on. */
	return REAL(epoll_wait)(call->epfd, call->events, call->max_events, 0);
}

SHIM_API int epoll_wait(int epfd, struct epoll_event *events, int max_events, int timeout_ms)
{
	struct polls_epoll context = { epfd, events, max_events, NULL };

	if (!shim__active())
		return REAL(epoll_wait)(epfd, events, max_events, timeout_ms);
	return shim__wait_fds(timeout_ms < 0 ? -1 : (int64_t)timeout_ms * NS_PER_MSEC, LS_CLOCK_WAIT_EPOLL,
			      polls__epoll_slice, &context, NULL);
}

SHIM_API int epoll_pwait(int epfd, struct epoll_event *events, int max_events, int timeout_ms,
			 const sigset_t *sigmask)
{
	struct polls_epoll context = { epfd, events, max_events, sigmask };

	if (!shim__active())
		return REAL(epoll_pwait)(epfd, events, max_events, timeout_ms, sigmask);
	return shim__wait_fds(timeout_ms < 0 ? -1 : (int64_t)timeout_ms * NS_PER_MSEC, LS_CLOCK_WAIT_EPOLL,
			      polls__epoll_slice, &context, NULL);
}

SHIM_API int epoll_pwait2(int epfd, struct epoll_event *events, int max_events, const struct timespec *timeout,
			  const sigset_t *sigmask)
{
	struct polls_epoll context = { epfd, events, max_events, sigmask };

	if (!shim__active())
		return REAL(epoll_pwait2)(epfd, events, max_events, timeout, sigmask);
	if (timeout != NULL && !shim__timespec_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	return shim__wait_fds(timeout == NULL ? -1 : shim__timespec_ns(timeout), LS_CLOCK_WAIT_EPOLL,
			      polls__epoll_slice, &context, NULL);
}
