/*
 * Kernel receive timestamps. The kernel stamps packets with the host's
 * CLOCK_REALTIME; a program in a cell compares them with its virtual clock
 * (iputils ping: RTT = SO_TIMESTAMP cmsg of recvmsg - the send time it put
 * in the payload), so they are mapped to the cell's virtual CLOCK_REALTIME
 * (shim__stamp_virtual_realtime_ns): control messages of recvmsg and
 * recvmmsg (SO_TIMESTAMP, SO_TIMESTAMPNS, the software stamp of
 * SO_TIMESTAMPING, old and new layouts), and ioctl SIOCGSTAMP[NS].
 * Hardware stamps (SO_TIMESTAMPING's third) are on a NIC clock and stay as
 * they are.
 */
#include "shim.h"

#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

/* From the kernel's asm-generic/socket.h and sockios.h (x86-64 values), not
 * taken from headers: libc and kernel headers name them differently across
 * versions, and on 64-bit the old and new layouts are both 64-bit. */
#define STAMPS_SO_TIMESTAMP_OLD 29
#define STAMPS_SO_TIMESTAMPNS_OLD 35
#define STAMPS_SO_TIMESTAMPING_OLD 37
#define STAMPS_SO_TIMESTAMP_NEW 63
#define STAMPS_SO_TIMESTAMPNS_NEW 64
#define STAMPS_SO_TIMESTAMPING_NEW 65
#define STAMPS_SIOCGSTAMP_OLD 0x8906
#define STAMPS_SIOCGSTAMPNS_OLD 0x8907
#define STAMPS_SIOCGSTAMP_NEW _IOR(0x89, 0x06, long long[2])
#define STAMPS_SIOCGSTAMPNS_NEW _IOR(0x89, 0x07, long long[2])

/* Both layouts on x86-64: two signed 64-bit words. */
struct stamps_pair {
	int64_t seconds;
	int64_t fraction; /* µs or ns */
};

_Static_assert(sizeof(struct timeval) == sizeof(struct stamps_pair), "64-bit timeval");
_Static_assert(sizeof(struct timespec) == sizeof(struct stamps_pair), "64-bit timespec");

/* Rewrites one (possibly unaligned) stamp in place; fraction_ns = 1000 for
 * µs. A zero stamp means "none" and stays zero. */
static void stamps__map(void *data, int64_t fraction_ns)
{
	struct stamps_pair pair;
	int64_t host_ns, virtual_ns;

	memcpy(&pair, data, sizeof pair);
	if (pair.seconds == 0 && pair.fraction == 0)
		return;
	host_ns = pair.seconds * NS_PER_SEC + pair.fraction * fraction_ns;
	virtual_ns = shim__stamp_virtual_realtime_ns(host_ns);
	pair.seconds = virtual_ns / NS_PER_SEC;
	pair.fraction = virtual_ns % NS_PER_SEC / fraction_ns;
	memcpy(data, &pair, sizeof pair);
}

static void stamps__map_control(struct msghdr *message)
{
	if (message == NULL || message->msg_control == NULL || message->msg_controllen == 0)
		return;
	for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(message); cmsg != NULL; cmsg = CMSG_NXTHDR(message, cmsg)) {
		size_t data_bytes;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		data_bytes = cmsg->cmsg_len - CMSG_LEN(0);
		if (data_bytes < sizeof(struct stamps_pair))
			continue;
		switch (cmsg->cmsg_type) {
		case STAMPS_SO_TIMESTAMP_OLD:
		case STAMPS_SO_TIMESTAMP_NEW:
			stamps__map(CMSG_DATA(cmsg), NS_PER_USEC);
			break;
		case STAMPS_SO_TIMESTAMPNS_OLD:
		case STAMPS_SO_TIMESTAMPNS_NEW:
		case STAMPS_SO_TIMESTAMPING_OLD: /* [0] software, [1] unused, [2] hardware */
		case STAMPS_SO_TIMESTAMPING_NEW:
			stamps__map(CMSG_DATA(cmsg), 1);
			break;
		default:
			break;
		}
	}
}

SHIM_API ssize_t recvmsg(int fd, struct msghdr *message, int flags)
{
	ssize_t result = REAL(recvmsg)(fd, message, flags);

	if (result >= 0 && shim__active())
		stamps__map_control(message);
	return result;
}

SHIM_API int recvmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout)
{
	int result = REAL(recvmmsg)(fd, messages, count, flags, timeout);

	if (result > 0 && shim__active())
		for (int i = 0; i < result; i++)
			stamps__map_control(&messages[i].msg_hdr);
	return result;
}

SHIM_API int ioctl(int fd, unsigned long request, ...)
{
	va_list arguments;
	void *argument;
	int result;

	va_start(arguments, request);
	argument = va_arg(arguments, void *);
	va_end(arguments);
	result = REAL(ioctl)(fd, request, argument);
	if (result < 0 || argument == NULL || !shim__active())
		return result;
	switch (request) {
	case STAMPS_SIOCGSTAMP_OLD:
	case STAMPS_SIOCGSTAMP_NEW:
		stamps__map(argument, NS_PER_USEC);
		break;
	case STAMPS_SIOCGSTAMPNS_OLD:
	case STAMPS_SIOCGSTAMPNS_NEW:
		stamps__map(argument, 1);
		break;
	default:
		break;
	}
	return result;
}
