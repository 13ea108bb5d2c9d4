/*
 * delay.c — a delay element for a native baseline: forwards every Ethernet
 * frame between two interfaces (both ends of two veth pairs in a namespace of
 * its own), each one DELAY_NS after it arrived, in order, busy-polling so the
 * delay is held to microseconds. What netem would do, where the kernel has no
 * netem (this one has none): two namespaces joined by a delay element, the
 * setup of the OLTP issue's reference figures.
 *
 *   delay IF_A IF_B DELAY_NS    (runs until SIGTERM/SIGINT; prints counts on exit)
 *
 * Packet sockets with PACKET_VNET_HDR: a GSO frame (TCP segmentation offload
 * of the sending veth) is read with its virtio-net header and sent on as it
 * came, so the far end gets the same segments it would have had. Frames this
 * side sends are not read back (PACKET_IGNORE_OUTGOING).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define SLOTS 1024
#define SLOT_BYTES (65536 + 64)

struct queue {
	uint8_t *bytes;
	uint32_t length[SLOTS];
	int64_t due[SLOTS];
	uint32_t head, tail;
	uint64_t forwarded, dropped, late_max_ns, late_100us;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_on(const char *name)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL)), one = 1;
	struct sockaddr_ll at = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };

	if (fd < 0) {
		perror("socket(AF_PACKET)");
		exit(1);
	}
	at.sll_ifindex = (int)if_nametoindex(name);
	if (at.sll_ifindex == 0) {
		fprintf(stderr, "delay: no interface %s here\n", name);
		exit(1);
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&at, sizeof at) < 0) {
		perror("delay: packet socket options/bind");
		exit(1);
	}
	return fd;
}

/* Reads what arrived on `from` into `q`, each due `delay` after now. */
static void take(int from, struct queue *q, int64_t delay)
{
	for (;;) {
		uint8_t *slot;
		ssize_t n;

		if (q->tail - q->head == SLOTS) {
			uint8_t scratch[SLOT_BYTES];

			if (recv(from, scratch, sizeof scratch, MSG_DONTWAIT) < 0)
				return;
			q->dropped++;
			continue;
		}
		slot = q->bytes + (size_t)(q->tail % SLOTS) * SLOT_BYTES;
		n = recv(from, slot, SLOT_BYTES, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return;
		if (n > SLOT_BYTES) {
			q->dropped++;
			continue;
		}
		q->length[q->tail % SLOTS] = (uint32_t)n;
		q->due[q->tail % SLOTS] = now_ns() + delay;
		q->tail++;
	}
}

/* Sends on `to` what is due. */
static void give(int to, struct queue *q, int64_t now)
{
	while (q->head != q->tail && q->due[q->head % SLOTS] <= now) {
		uint32_t i = q->head % SLOTS;
		int64_t late = now - q->due[i];

		if (send(to, q->bytes + (size_t)i * SLOT_BYTES, q->length[i], 0) < 0) {
			if (errno == EAGAIN || errno == ENOBUFS)
				return; /* try again on the next pass */
			q->dropped++;
		} else {
			q->forwarded++;
			if (late > 100000)
				q->late_100us++;
			if ((uint64_t)late > q->late_max_ns)
				q->late_max_ns = (uint64_t)late;
		}
		q->head++;
	}
}

int main(int argc, char **argv)
{
	struct queue ab = { 0 }, ba = { 0 };
	int64_t delay;
	int a, b;

	if (argc != 4) {
		fprintf(stderr, "usage: delay IF_A IF_B DELAY_NS\n");
		return 2;
	}
	delay = strtoll(argv[3], NULL, 10);
	a = open_on(argv[1]);
	b = open_on(argv[2]);
	ab.bytes = malloc((size_t)SLOTS * SLOT_BYTES);
	ba.bytes = malloc((size_t)SLOTS * SLOT_BYTES);
	if (ab.bytes == NULL || ba.bytes == NULL)
		return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("delay: %s <-> %s, %lld ns\n", argv[1], argv[2], (long long)delay);
	fflush(stdout);
	while (!stopping) {
		take(a, &ab, delay);
		take(b, &ba, delay);
		int64_t now = now_ns();
		give(b, &ab, now);
		give(a, &ba, now);
	}
	printf("delay: %s->%s %llu forwarded, %llu dropped, %llu over 100 us late, latest %.1f us late; %s->%s %llu forwarded, %llu dropped, %llu over 100 us late, latest %.1f us late\n",
	       argv[1], argv[2], (unsigned long long)ab.forwarded, (unsigned long long)ab.dropped, (unsigned long long)ab.late_100us, ab.late_max_ns / 1e3,
	       argv[2], argv[1], (unsigned long long)ba.forwarded, (unsigned long long)ba.dropped, (unsigned long long)ba.late_100us, ba.late_max_ns / 1e3);
	return 0;
}
