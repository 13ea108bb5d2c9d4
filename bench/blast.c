/*
 * blast.c — a UDP sender for bench/live.ts: sends COUNT datagrams of SIZE
 * bytes to HOST:PORT as fast as sendmmsg(2) allows (batches of 64), so the
 * bridge row measures the data plane, not the sender (a perl sender costs
 * its cell ~6 us per datagram; this one ~1 us).
 *
 *   blast HOST PORT COUNT [SIZE]
 */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *target;
	static char payload[1472];
	struct mmsghdr messages[BATCH];
	struct iovec iov;
	long count, sent = 0;
	size_t size = 64;
	int fd, rc;

	if (argc < 4) {
		fprintf(stderr, "usage: blast HOST PORT COUNT [SIZE]\n");
		return 2;
	}
	count = atol(argv[3]);
	if (argc > 4)
		size = (size_t)atol(argv[4]);
	if (size > sizeof payload)
		size = sizeof payload;
	rc = getaddrinfo(argv[1], argv[2], &hints, &target);
	if (rc != 0) {
		fprintf(stderr, "blast: %s: %s\n", argv[1], gai_strerror(rc));
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, target->ai_addr, target->ai_addrlen) < 0) {
		perror("blast: socket/connect");
		return 1;
	}
	memset(payload, 'x', sizeof payload);
	iov.iov_base = payload;
	iov.iov_len = size;
	memset(messages, 0, sizeof messages);
	for (int i = 0; i < BATCH; i++) {
		messages[i].msg_hdr.msg_iov = &iov;
		messages[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < count) {
		int want = count - sent < BATCH ? (int)(count - sent) : BATCH;
		int n = sendmmsg(fd, messages, (unsigned)want, 0);

		if (n < 0) {
			perror("blast: sendmmsg");
			return 1;
		}
		sent += n;
	}
	printf("sent %ld\n", sent);
	return 0;
}
