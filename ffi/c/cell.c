/*
 * Process cells: the parts of a cell that JS cannot do at all (TUNSETIFF) or
 * not fast enough (tap frame batches, freezing with a µs-exact wait).
 *
 * Policy (names, which cgroups, when to freeze) lives in runtime/live/; these
 * functions only do one system-level thing each and report -errno.
 */
#define _GNU_SOURCE
#include "livestack.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/filter.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* How long a freeze/thaw wait spins on its control file before it starts
 * sleeping between reads: freezing takes ~15–100 µs here (CELLS-FACTS.md),
 * so nearly every wait ends while spinning; the rare vCPU-preemption tail
 * (5–32 ms) is waited out without burning a core. */
#define CELL_FREEZE_SPIN_NS 200000LL
#define CELL_FREEZE_POLL_SLEEP_NS 50000L

int ls_cell__tap_open(const char *name, int *out_fd)
{
	struct ifreq ifr;
	int fd;

	if (name == NULL || out_fd == NULL || name[0] == '\0' || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	*out_fd = -1;
	/* O_CLOEXEC: no command of any cell may inherit another cell's wire. */
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	/* Not TUNSETPERSIST: the device dies with the last fd, so a LiveStack
	 * that crashes cannot leave its taps behind. */
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	*out_fd = fd;
	return 0;
}

/* Drops every frame the cell sends at the tap, before it is queued for this
 * fd: a cBPF "accept nothing" filter on the tap (TUNATTACHFILTER). For cells
 * whose sent frames are taken from their packet ring (ring.c) instead: the
 * tap queued each frame as well, and emptying that queue cost the window loop
 * ~2 us per frame (measured: 200-300 us of every 1 ms window of a UDP
 * sender). Frames written into the tap are not affected. */
int ls_cell__tap_drop_sent(int fd)
{
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog program = { .len = 1, .filter = &drop };

	if (fd < 0)
		return -EINVAL;
	if (ioctl(fd, TUNATTACHFILTER, &program) < 0)
		return -errno;
	return 0;
}

int ls_cell__tap_read_batch(int fd, uint8_t *buf, size_t bufsize, uint32_t *lengths, int max)
{
	size_t used = 0;
	int count = 0;

	if (buf == NULL || lengths == NULL || max < 0)
		return -EINVAL;
	/* A read into less room than a whole frame would truncate it (tun
	 * drops the rest): read only while a largest frame still fits. */
	while (count < max && bufsize - used >= LS_CELL_FRAME_MAX) {
		ssize_t n = read(fd, buf + used, bufsize - used);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || count > 0)
				break; /* a later call reports a persistent error */
			return -errno;
		}
		if (n == 0)
			break;
		lengths[count++] = (uint32_t)n;
		used += (size_t)n;
	}
	return count;
}

int ls_cell__tap_write(int fd, const uint8_t *frame, size_t len)
{
	ssize_t n;

	if (frame == NULL || len == 0 || len > LS_CELL_FRAME_MAX)
		return -EINVAL;
	do
		n = write(fd, frame, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (int)n;
}

/* Rewrites a control file from offset 0 (cgroup files ignore the offset, a
 * fake tree's plain file must not grow). */
static int cell__control_write(int fd, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;

	do
		n = pwrite(fd, text, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/* 1 if the file (re-read from offset 0) contains want, 0 if not, -errno. */
static int cell__control_has(int fd, const char *want)
{
	char text[512];
	ssize_t n;

	do
		n = pread(fd, text, sizeof text - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	text[n] = '\0';
	return strstr(text, want) != NULL;
}

/* Re-issues a v1 freeze this often while the cgroup stays FREEZING. */
#define CELL_FREEZE_V1_RETRY_NS 1000000LL

/*
 * Waits until the control file contains want. For the v1 freezer (retry
 * set) the freeze is re-issued every CELL_FREEZE_V1_RETRY_NS, each second
 * time as THAWED+FROZEN: the v1 freezer visits each task once per write, and
 * a task that went to sleep in a freezable wait after that visit (a vfork
 * parent waiting for its child, which the freezer already stopped before
 * exec) is never stopped: FREEZING forever. A new write visits it again,
 * now asleep, and freezes it (runc does the same thaw/refreeze dance).
 */
static long long cell__wait_for(int fd, const char *want, long long start_ns, long long timeout_ns, int retry)
{
	struct timespec pause = { 0, CELL_FREEZE_POLL_SLEEP_NS };
	long long last_write_ns = start_ns;
	int retries = 0;

	for (;;) {
		long long now_ns, elapsed_ns;
		int found = cell__control_has(fd, want);

		now_ns = util__now_ns();
		elapsed_ns = now_ns - start_ns;
		if (found < 0)
			return found;
		if (found)
			return elapsed_ns;
		if (elapsed_ns > timeout_ns)
			return -ETIMEDOUT;
		if (retry && now_ns - last_write_ns > CELL_FREEZE_V1_RETRY_NS) {
			int err = 0;

			if (++retries % 2 == 0)
				err = cell__control_write(fd, "THAWED");
			if (err == 0)
				err = cell__control_write(fd, want);
			if (err < 0)
				return err;
			last_write_ns = util__now_ns();
		}
		if (elapsed_ns > CELL_FREEZE_SPIN_NS)
			nanosleep(&pause, NULL);
	}
}

long long ls_cell__freeze_v1(int state_fd, int frozen, long long timeout_ns)
{
	const char *target = frozen ? "FROZEN" : "THAWED";
	long long start_ns = util__now_ns();
	int err;

	/* Writing FROZEN starts freezing; reading freezer.state is what moves
	 * FREEZING to FROZEN once every task has stopped (update_if_frozen). */
	err = cell__control_write(state_fd, target);
	if (err < 0)
		return err;
	/* "FROZEN" is not a substring of "FREEZING" nor of "THAWED". Thawing
	 * is immediate: only freezing needs retries. */
	return cell__wait_for(state_fd, target, start_ns, timeout_ns, frozen);
}

long long ls_cell__freeze_v2(int freeze_fd, int events_fd, int frozen, long long timeout_ns)
{
	long long start_ns = util__now_ns();
	int err;

	err = cell__control_write(freeze_fd, frozen ? "1" : "0");
	if (err < 0)
		return err;
	/* cgroup.events: "populated N\nfrozen N\n"; "frozen 1" means every
	 * task of the subtree is stopped. */
	return cell__wait_for(events_fd, frozen ? "frozen 1" : "frozen 0", start_ns, timeout_ns, 0);
}
