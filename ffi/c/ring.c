/*
 * ring.c — the receive ring of a cell's outgoing frames (see ring.h).
 */
#define _GNU_SOURCE
#include "livestack.h"
#include "ring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* Frames larger than an ethernet frame at MTU 1500 plus the ring's header
 * would not fit a 2 KiB slot; the slot size follows the frame size asked for. */
#define RING_BLOCK_BYTES (1u << 16)

static int ring__setup(int fd, uint32_t frame_bytes, uint32_t frame_count)
{
	/* keep only what the cell sends: skb->pkt_type == PACKET_OUTGOING */
	struct sock_filter code[] = {
		{ BPF_LD | BPF_B | BPF_ABS, 0, 0, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE) },
		{ BPF_JMP | BPF_JEQ | BPF_K, 0, 1, PACKET_OUTGOING },
		{ BPF_RET | BPF_K, 0, 0, 0x40000 },
		{ BPF_RET | BPF_K, 0, 0, 0 },
	};
	struct sock_fprog filter = { .len = sizeof code / sizeof code[0], .filter = code };
	int version = TPACKET_V2;
	struct tpacket_req req;

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &filter, sizeof filter) < 0)
		return -errno;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0)
		return -errno;
	memset(&req, 0, sizeof req);
	req.tp_block_size = RING_BLOCK_BYTES;
	req.tp_frame_size = frame_bytes;
	req.tp_block_nr = (frame_count * frame_bytes + RING_BLOCK_BYTES - 1) / RING_BLOCK_BYTES;
	req.tp_frame_nr = req.tp_block_nr * (RING_BLOCK_BYTES / frame_bytes);
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0)
		return -errno;
	return (int)req.tp_frame_nr;
}

int ls_ring__open(const char *netns_path, const char *ifname, uint32_t frame_max, uint32_t frame_count, struct ls_ring **out)
{
	struct ls_ring *ring = NULL;
	struct sockaddr_ll addr;
	uint32_t frame_bytes = 2048;
	int own_ns = -1, cell_ns = -1, fd = -1, rc, slots;
	unsigned int ifindex;

	if (netns_path == NULL || ifname == NULL || out == NULL || frame_max == 0 || frame_max > 65536 + 14 || frame_count == 0 || frame_count > (1u << 20))
		return -EINVAL;
	*out = NULL;
	while (frame_bytes < frame_max + TPACKET2_HDRLEN + 16)
		frame_bytes *= 2;
	if (frame_bytes > RING_BLOCK_BYTES)
		return -EINVAL;

	/* The socket belongs to the namespace its creator is in: enter the cell's
	 * for the socket() and the interface lookup, then come back. setns of a
	 * network namespace changes this thread only. */
	own_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (own_ns < 0)
		return -errno;
	cell_ns = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (cell_ns < 0) {
		rc = -errno;
		goto out;
	}
	if (setns(cell_ns, CLONE_NEWNET) < 0) {
		rc = -errno;
		goto out;
	}
	/* protocol 0: nothing arrives before the filter and the ring are in place */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	rc = fd < 0 ? -errno : 0;
	ifindex = if_nametoindex(ifname);
	if (rc == 0 && ifindex == 0)
		rc = -errno;
	if (setns(own_ns, CLONE_NEWNET) < 0 && rc == 0)
		rc = -errno; /* cannot happen short of a kernel bug; refuse to go on in the wrong namespace */
	if (rc < 0)
		goto out;

	slots = ring__setup(fd, frame_bytes, frame_count);
	if (slots < 0) {
		rc = slots;
		goto out;
	}
	ring = calloc(1, sizeof *ring);
	if (ring == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	ring->frame_bytes = frame_bytes;
	ring->frame_count = (uint32_t)slots;
	ring->map_bytes = (size_t)slots * frame_bytes;
	ring->map = mmap(NULL, ring->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring->map == MAP_FAILED) {
		rc = -errno;
		ring->map = NULL;
		goto out;
	}
	/* Write every slot's status once now, before bind lets frames in (all are
	 * TP_STATUS_KERNEL): the first write to each page of the mapping is slow
	 * here (nested virtualisation), and the window loop's first pass over a
	 * fresh ring, releasing each slot, ran at ~2 us a frame: a sender at
	 * ~1 us a frame overflowed the ring in its first busy window. */
	for (uint32_t i = 0; i < ring->frame_count; i++)
		__atomic_store_n(&((struct tpacket2_hdr *)(ring->map + (size_t)i * frame_bytes))->tp_status, TP_STATUS_KERNEL,
				 __ATOMIC_RELAXED);
	memset(&addr, 0, sizeof addr);
	addr.sll_family = AF_PACKET;
	addr.sll_protocol = htons(ETH_P_ALL);
	addr.sll_ifindex = (int)ifindex;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		rc = -errno;
		goto out;
	}
	ring->fd = fd;
	fd = -1;
	*out = ring;
	ring = NULL;
	rc = 0;
out:
	if (ring != NULL) {
		if (ring->map != NULL)
			munmap(ring->map, ring->map_bytes);
		free(ring);
	}
	if (fd >= 0)
		close(fd);
	if (cell_ns >= 0)
		close(cell_ns);
	close(own_ns);
	return rc;
}

int ls_ring__close(struct ls_ring *ring)
{
	if (ring == NULL)
		return -EINVAL;
	munmap(ring->map, ring->map_bytes);
	close(ring->fd);
	free(ring);
	return 0;
}

int ls_ring__stats(struct ls_ring *ring, struct ls_ring_stats *out)
{
	struct tpacket_stats stats;
	socklen_t length = sizeof stats;

	if (ring == NULL || out == NULL)
		return -EINVAL;
	/* reading the counters resets them in the kernel: accumulate */
	if (getsockopt(ring->fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) < 0)
		return -errno;
	out->frames = ring->taken;
	out->truncated = ring->truncated;
	out->kernel_drops = stats.tp_drops;
	out->slots = ring->frame_count;
	out->slot_bytes = ring->frame_bytes;
	return 0;
}

int ring__peek(struct ls_ring *ring, struct ls_ring_frame *out)
{
	struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring->map + (size_t)ring->head * ring->frame_bytes);

	if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
		return 0;
	out->data = (const uint8_t *)h + h->tp_mac;
	out->length = h->tp_snaplen;
	out->wire_length = h->tp_len;
	out->realtime_ns = (int64_t)h->tp_sec * 1000000000LL + h->tp_nsec;
	if (h->tp_snaplen < h->tp_len)
		ring->truncated++;
	return 1;
}

void ring__release(struct ls_ring *ring)
{
	struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring->map + (size_t)ring->head * ring->frame_bytes);

	__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
	ring->taken++;
	ring->head = ring->head + 1 == ring->frame_count ? 0 : ring->head + 1;
}
