/*
 * stamp MODE: sends one UDP datagram to itself over loopback with receive
 * timestamps on, and prints in ns: "cmsg T" (the SO_TIMESTAMP[NS] control
 * message of recvmsg, or SO_TIMESTAMPING's software stamp), "ioctl T"
 * (SIOCGSTAMP[NS]) and "now T" (clock_gettime(CLOCK_REALTIME) after
 * both); -1 for what the mode does not give. MODE: timestamp (µs),
 * timestampns, timestamping (control messages), ioctl (µs), ioctlns (the
 * kernel keeps the ioctl's stamp only when no control message took it).
 * With a second argument "wait", it reads a line from stdin between send
 * and receive, after printing "sent 1".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "timestampns";
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t length = sizeof address;
	char payload[16] = "stamp", control[256], line[16];
	struct iovec iov = { payload, sizeof payload };
	struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	long long cmsg_ns = -1, ioctl_ns = -1;
	struct timespec now;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), on = 1;

	if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) < 0 ||
	    getsockname(fd, (struct sockaddr *)&address, &length) < 0)
		return 1;
	if (!strcmp(mode, "timestamp")) {
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on);
	} else if (!strcmp(mode, "timestampns")) {
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
	} else if (!strcmp(mode, "timestamping")) {
		int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
	} else {
		/* The first SIOCGSTAMP (ENOENT: nothing received yet) turns
		 * stamping on for the socket. */
		struct timespec ts;
		ioctl(fd, SIOCGSTAMPNS, &ts);
	}
	/* The kernel turns packet stamping on lazily (a deferred static key):
	 * the first datagrams after the setsockopt may carry no stamp, and
	 * SO_TIMESTAMPING, unlike SO_TIMESTAMP[NS], then sends no control
	 * message at all. Try a few datagrams, 1 ms of real time apart; in
	 * "wait" mode, the fourth is the one that waits for stdin. */
	for (int attempt = 0; attempt < 20 && (cmsg_ns < 0 || (argc > 2 && attempt <= 3)); attempt++) {
		if (attempt > 0) {
			struct timespec pause = { 0, 1000000 };
			syscall(SYS_nanosleep, &pause, NULL);
		}
		if (sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&address, sizeof address) < 0)
			return 1;
		if (argc > 2 && attempt == 3) {
			printf("sent 1\n");
			fflush(stdout);
			if (fgets(line, sizeof line, stdin) == NULL)
				return 1;
		}
		message.msg_controllen = sizeof control;
		if (recvmsg(fd, &message, 0) < 0)
			return 1;
		for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message); cmsg; cmsg = CMSG_NXTHDR(&message, cmsg)) {
			if (cmsg->cmsg_level != SOL_SOCKET)
				continue;
			if (cmsg->cmsg_type == SCM_TIMESTAMP) {
				struct timeval tv;
				memcpy(&tv, CMSG_DATA(cmsg), sizeof tv);
				cmsg_ns = (long long)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
			} else if (cmsg->cmsg_type == SCM_TIMESTAMPNS || cmsg->cmsg_type == SCM_TIMESTAMPING) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(cmsg), sizeof ts);
				cmsg_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
			}
		}
		if (mode[0] == 'i')
			break; /* ioctl modes: no control messages expected */
	}
	if (!strcmp(mode, "ioctl")) {
		struct timeval tv;
		if (ioctl(fd, SIOCGSTAMP, &tv) == 0)
			ioctl_ns = (long long)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
	} else if (!strcmp(mode, "ioctlns")) {
		struct timespec ts;
		if (ioctl(fd, SIOCGSTAMPNS, &ts) == 0)
			ioctl_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	}
	/* After the ioctl: it reports the time of the call itself when the
	 * packet carries no stamp. */
	clock_gettime(CLOCK_REALTIME, &now);
	printf("cmsg %lld\nioctl %lld\nnow %lld\n", cmsg_ns, ioctl_ns,
	       (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	return 0;
}
