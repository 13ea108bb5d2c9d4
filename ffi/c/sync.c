/*
 * Spin-waiting on the sockets of the distributed sync loop (runtime/sync/).
 *
 * An agent in direct mode sends its Round message and then waits for its peers'.
 * Sleeping in epoll_wait costs a wake-up on every window: on this nested machine
 * a sleeping vCPU is woken with an IPI, which is a VM exit (~80-170 us), paid by
 * the sender inside its write() and again by the receiver's latency. Spinning
 * for a bounded time keeps the receiving thread running, so the data is there
 * when it looks, and reading it here skips Node's stream machinery (~25 us).
 * sched_yield in the loop lets any other runnable task on the core go first.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include "livestack.h"
#include "util.h"

#define SYNC_FDS_MAX 64

LS_API long ls_sync__spin_recv(const int32_t *fds, int32_t count, void *buf, int64_t len,
			       int64_t budget_ns, int32_t *which)
{
	struct pollfd polled[SYNC_FDS_MAX];
	if (fds == NULL || buf == NULL || which == NULL || count <= 0 || count > SYNC_FDS_MAX || len <= 0)
		return -EINVAL;
	for (int i = 0; i < count; i++) {
		polled[i].fd = fds[i];
		polled[i].events = POLLIN;
	}
	*which = -1;
	const long long end = util__now_ns() + (budget_ns > 0 ? budget_ns : 0);
	for (;;) {
		for (int i = 0; i < count; i++) polled[i].revents = 0;
		int ready = poll(polled, (nfds_t)count, 0);
		if (ready < 0 && errno != EINTR) return -errno;
		for (int i = 0; ready > 0 && i < count; i++) {
			if (polled[i].revents == 0) continue;
			*which = i;
			/* hang-up or error with nothing to read: the event loop reports it */
			if ((polled[i].revents & POLLIN) == 0) return -EPIPE;
			ssize_t got = recv(fds[i], buf, (size_t)len, MSG_DONTWAIT);
			if (got > 0) return (long)got;
			if (got == 0) return -EPIPE; /* end of stream: left for the event loop to see */
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -errno;
		}
		if (util__now_ns() >= end) {
			*which = -1;
			return 0;
		}
		sched_yield();
	}
}
