/*
 * ring.h — a cell's outgoing frames, timestamped by the kernel (private to
 * ffi/c; JS sees only an opaque handle).
 *
 * A packet socket bound to the cell's eth0, inside its network namespace,
 * with a classic BPF filter that keeps PACKET_OUTGOING frames only and a
 * TPACKET_V2 receive ring. The kernel copies each frame the cell sends into
 * the ring at dev_queue_xmit time, in the sender's own context, with a
 * CLOCK_REALTIME stamp: the controller reads the ring from memory (no system
 * call, no wake-up of anyone per frame) whenever it likes and still knows
 * when each frame left.
 */
#ifndef LIVESTACK_RING_H
#define LIVESTACK_RING_H

#include <stdint.h>
#include <stddef.h>

struct ls_ring {
	int fd;
	uint8_t *map;
	size_t map_bytes;
	uint32_t frame_bytes;
	uint32_t frame_count;
	uint32_t head; /* next slot to look at */
	uint32_t reserved;
	uint64_t taken;
	uint64_t truncated;
	/* what writing a frame into the cell's tap takes (EWMA, host ns): the
	 * cell's kernel receives the frame inside that write (it allocates, runs
	 * the IP/TCP input path, wakes the reader on the cell's core), so the
	 * data plane starts each write this much before the frame's arrival */
	int64_t write_cost_ns;
	/* the same from handing a frame to the spinner on the cell's core until
	 * that spinner's write returned (live.c) */
	int64_t handoff_cost_ns;
};

/* A frame in the ring, or NULL if the next slot is still the kernel's.
 * After using it, ring__release(ring). */
struct ls_ring_frame {
	const uint8_t *data;
	uint32_t length;     /* bytes in data (snap) */
	uint32_t wire_length;
	int64_t realtime_ns; /* kernel stamp, CLOCK_REALTIME */
};

int ring__peek(struct ls_ring *ring, struct ls_ring_frame *out);
void ring__release(struct ls_ring *ring);

#endif
