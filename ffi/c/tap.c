/*
 * tap / network namespace probe: can process cells get their own network
 * namespace and a tap device into the simulated network?
 */
#define _GNU_SOURCE
#include "livestack.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int tap__try_create(struct ls_tap_probe *out)
{
	struct ifreq ifr;
	int fd, err = 0;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	out->tun_dev = 1;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	/* "%d" lets the kernel pick a free name, so concurrent probes never
	 * collide. Not TUNSETPERSIST: the device vanishes with the fd. */
	strncpy(ifr.ifr_name, "lsprobe%d", IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* unshare() in a child so the caller (Node) is never moved to a new netns.
 * The child only makes async-signal-safe calls, as a forked child of a
 * multi-threaded process must. */
static int tap__try_unshare_netns(void)
{
	int status = 0;
	pid_t pid, waited;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(unshare(CLONE_NEWNET) == 0 ? 0 : (errno & 0xff));
	do
		waited = waitpid(pid, &status, 0);
	while (waited < 0 && errno == EINTR);
	if (waited < 0)
		return -errno;
	if (!WIFEXITED(status))
		return -ECHILD;
	return -WEXITSTATUS(status);
}

int ls_tap__probe(struct ls_tap_probe *out)
{
	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	out->tap_error = tap__try_create(out);
	out->netns_file = access("/proc/self/ns/net", F_OK) == 0;
	out->unshare_error = tap__try_unshare_netns();
	return 0;
}
