/*
 * live.c — one scheduling window of a group of process cells (the data plane's
 * hot loop, in C so that JS handles batches, not single packets).
 *
 * For a window [start_ns, end_ns) of virtual time, for every cell of the group
 * (cells that run at the same time, each on its own cores):
 *   thaw the cgroup, then start its clock at start_ns (so the clock never
 *   runs while the cell cannot);
 *   until the cell's clock reaches end_ns: read frames from its tap and stamp
 *   them with the cell's virtual now; write each delivery into the tap when
 *   the clock reaches its arrival time; answer ARP for the simulated network;
 *   stop the clock at end_ns first, then freeze the cgroup (the clock stops at
 *   the freeze *request*: a slow freeze does not make time pass);
 *   read what the cell sent before the freeze took hold (stamped end_ns - 1).
 * Deliveries still due in the window (the loop came late) are written at the
 * end and counted as late.
 */
#define _GNU_SOURCE
#include "livestack.h"
#include "livestack-clock.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
			const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
			struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
			int32_t host_count, struct ls_live_stats *stats);

#define LIVE_MAX_CELLS 256
/* The controller's real-time priority during a window (above the cells' LIVE_CELL_PRIORITY in runtime/live). */
#define LIVE_RT_PRIORITY 20
#define LIVE_FREEZE_TIMEOUT_NS 1000000000LL
/* Below this much host time to the next thing to do, spin instead of sleeping:
 * a sleep overshoots by ~15 us (CELLS-FACTS). */
#define LIVE_SPIN_NS 300000LL

/* LIVESTACK_LIVE_DEBUG=1 prints every delivery and read with its virtual and host time. */
static int live__debug(void)
{
	static int debug = -1;

	if (debug < 0)
		debug = getenv("LIVESTACK_LIVE_DEBUG") != NULL;
	return debug;
}

static int64_t live__host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long live__freeze(const struct ls_live_cell *cell, int frozen)
{
	if (cell->freeze_mode == 1)
		return ls_cell__freeze_v1(cell->freeze_fd_a, frozen, LIVE_FREEZE_TIMEOUT_NS);
	if (cell->freeze_mode == 2)
		return ls_cell__freeze_v2(cell->freeze_fd_a, cell->freeze_fd_b, frozen, LIVE_FREEZE_TIMEOUT_NS);
	return 0; /* no freezer: the cell free-runs (tests of the data path only) */
}

/* 198.18.0.0/15 address → host index (the inverse of dsl/plan.ts hostAddress), or -1. */
static int live__host_index(uint32_t ip, int32_t host_count)
{
	uint32_t base = (198u << 24) | (18u << 16);
	uint32_t offset, block, low;
	int64_t index;

	if ((ip & 0xfffe0000u) != base)
		return -1;
	offset = ip - base;
	block = offset >> 8;
	low = offset & 0xffu;
	if (low == 0 || low == 255)
		return -1;
	index = (int64_t)block * 254 + (low - 1);
	return index < host_count ? (int)index : -1;
}

static void live__mac(uint8_t *mac, int index)
{
	mac[0] = 0x02;
	mac[1] = 0x4c;
	mac[2] = 0x53;
	mac[3] = (uint8_t)(index >> 16);
	mac[4] = (uint8_t)(index >> 8);
	mac[5] = (uint8_t)index;
}

/* The simulated network answers ARP itself (no broadcast flooding): returns 1 if
 * the frame was an ARP request for a simulated host and was answered. */
static int live__answer_arp(int tap_fd, const uint8_t *frame, uint32_t length, int32_t host_count)
{
	uint8_t reply[42];
	uint32_t target_ip;
	int owner;

	if (length < 42 || frame[12] != 0x08 || frame[13] != 0x06 || frame[20] != 0 || frame[21] != 1)
		return 0;
	target_ip = ((uint32_t)frame[38] << 24) | ((uint32_t)frame[39] << 16) | ((uint32_t)frame[40] << 8) | frame[41];
	owner = live__host_index(target_ip, host_count);
	if (owner < 0)
		return 1; /* nobody has it: swallow the request, as an empty network would */
	memcpy(reply, frame + 6, 6);            /* to the asker */
	live__mac(reply + 6, owner);            /* from the owner */
	reply[12] = 0x08;
	reply[13] = 0x06;
	memcpy(reply + 14, frame + 14, 6);      /* htype, ptype, hlen, plen */
	reply[20] = 0;
	reply[21] = 2;                          /* reply */
	live__mac(reply + 22, owner);           /* sender MAC */
	memcpy(reply + 28, frame + 38, 4);      /* sender IP = the asked address */
	memcpy(reply + 32, frame + 22, 6);      /* target MAC = the asker */
	memcpy(reply + 38, frame + 28, 4);      /* target IP = the asker's */
	ls_cell__tap_write(tap_fd, reply, sizeof(reply));
	return 2;
}

struct live__state {
	int64_t base_host_ns;
	int64_t end_host_ns;
	int32_t next_delivery;
	int done;
};

/* Reads everything waiting on a cell's tap, stamping it at virtual time stamp_ns.
 * One frame per read (the tap gives one per read anyway); ARP is answered here. */
static void live__drain(struct ls_live_cell *cells, int32_t index, int64_t stamp_ns, struct ls_live_frame *out, int32_t out_max,
			uint8_t *out_bytes, uint32_t out_capacity, uint32_t *out_used, int32_t host_count, struct ls_live_stats *stats)
{
	static __thread uint8_t scratch[LS_CELL_FRAME_MAX];
	uint32_t length;

	while (ls_cell__tap_read_batch(cells[index].tap_fd, scratch, sizeof(scratch), &length, 1) == 1) {
		struct ls_live_frame *f;

		if (live__answer_arp(cells[index].tap_fd, scratch, length, host_count)) {
			stats->arp_replies++;
			continue;
		}
		if (stats->frames_out >= out_max || out_capacity - *out_used < length) {
			stats->frames_dropped++; /* no room: dropped, so the tap does not back up into the cell */
			continue;
		}
		if (live__debug())
			fprintf(stderr, "cell %d read stamp %lld (host %lld)\n", index, (long long)stamp_ns, (long long)live__host_ns());
		memcpy(out_bytes + *out_used, scratch, length);
		f = &out[stats->frames_out++];
		f->time_ns = stamp_ns;
		f->cell = index;
		f->offset = *out_used;
		f->length = length;
		f->reserved = 0;
		*out_used += length;
	}
}

int ls_live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
		    const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
		    struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
		    int32_t host_count, struct ls_live_stats *stats)
{
	int rc;

	if (cell_count < 0 || cell_count > LIVE_MAX_CELLS || end_ns <= start_ns || !stats)
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	/* The window must end on time and frames must be stamped when they appear: next to busy
	 * SCHED_OTHER work a sleeping thread wakes ~0.3 ms late on average, 3 ms at p99 (CELLS-FACTS).
	 * Real-time priority for this thread, for the window only; it sleeps in ppoll, spins < 60 us. */
	struct sched_param rt = { .sched_priority = LIVE_RT_PRIORITY }, normal = { .sched_priority = 0 };
	int previous_policy = sched_getscheduler(0);
	int raised = sched_setscheduler(0, SCHED_FIFO, &rt) == 0;
	rc = live__window(cells, cell_count, start_ns, end_ns, deliveries, delivery_bytes, out, out_max, out_bytes, out_capacity, host_count, stats);
	if (raised)
		sched_setscheduler(0, previous_policy < 0 ? SCHED_OTHER : previous_policy, &normal);
	return rc;
}

static int live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
			const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
			struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
			int32_t host_count, struct ls_live_stats *stats)
{
	struct live__state state[LIVE_MAX_CELLS];
	uint32_t out_used = 0;
	int32_t i, remaining;
	int rc;

	for (i = 0; i < cell_count; i++) {
		long long thaw = live__freeze(&cells[i], 0);
		int64_t now_v;

		if (thaw < 0)
			return (int)thaw;
		if (thaw > stats->thaw_ns_max)
			stats->thaw_ns_max = thaw;
		/* the clock never goes backwards: a clock that overshot the last window a little runs on from there */
		now_v = ls_clock__now(cells[i].clock);
		rc = ls_clock__run(cells[i].clock, now_v > start_ns ? now_v : start_ns, cells[i].scale);
		if (rc < 0)
			return rc;
		state[i].base_host_ns = live__host_ns();
		state[i].end_host_ns = state[i].base_host_ns + (int64_t)((double)(end_ns - (now_v > start_ns ? now_v : start_ns)) / cells[i].scale);
		state[i].next_delivery = cells[i].deliveries_begin;
		state[i].done = 0;
	}

	remaining = cell_count;
	while (remaining > 0) {
		int64_t host_now = live__host_ns();
		int64_t next_host = INT64_MAX;

		for (i = 0; i < cell_count; i++) {
			struct live__state *s = &state[i];
			struct ls_live_cell *c = &cells[i];
			int64_t v;

			if (s->done)
				continue;
			v = ls_clock__now(c->clock);
			live__drain(cells, i, v < end_ns ? v : end_ns - 1, out, out_max, out_bytes, out_capacity, &out_used, host_count, stats);
			while (s->next_delivery < c->deliveries_end && deliveries[s->next_delivery].time_ns <= v) {
				const struct ls_live_delivery *d = &deliveries[s->next_delivery++];
				if (ls_cell__tap_write(c->tap_fd, delivery_bytes + d->offset, d->length) < 0)
					stats->write_errors++;
				if (live__debug())
					fprintf(stderr, "cell %d write due %lld at v %lld (host %lld)\n", i, (long long)d->time_ns, (long long)v, (long long)live__host_ns());
				stats->deliveries_written++;
				if (v - d->time_ns > stats->late_ns_max)
					stats->late_ns_max = v - d->time_ns;
			}
			if (host_now >= s->end_host_ns) {
				long long frozen;

				ls_clock__freeze(c->clock, end_ns); /* stop the clock at the request */
				frozen = live__freeze(c, 1);
				if (frozen < 0)
					return (int)frozen;
				if (frozen > stats->freeze_ns_max)
					stats->freeze_ns_max = frozen;
				live__drain(cells, i, end_ns - 1, out, out_max, out_bytes, out_capacity, &out_used, host_count, stats);
				s->done = 1;
				remaining--;
				continue;
			}
			if (s->end_host_ns < next_host)
				next_host = s->end_host_ns;
			if (s->next_delivery < c->deliveries_end) {
				int64_t due = s->base_host_ns +
					      (int64_t)((double)(deliveries[s->next_delivery].time_ns - start_ns) / c->scale);
				if (due < next_host)
					next_host = due;
			}
		}
		if (remaining > 0 && next_host != INT64_MAX) {
			int64_t wait = next_host - live__host_ns();
			if (wait > LIVE_SPIN_NS) {
				/* wait for a frame from any running cell (it is stamped when read, so read it at once)
				 * or until shortly before the next delivery or window end; spin the rest */
				struct pollfd fds[LIVE_MAX_CELLS];
				nfds_t nfds = 0;
				struct timespec ts;
				int64_t slice = wait - LIVE_SPIN_NS / 2;

				for (i = 0; i < cell_count; i++) {
					if (state[i].done)
						continue;
					fds[nfds].fd = cells[i].tap_fd;
					fds[nfds].events = POLLIN;
					fds[nfds].revents = 0;
					nfds++;
				}
				ts.tv_sec = slice / 1000000000LL;
				ts.tv_nsec = slice % 1000000000LL;
				ppoll(fds, nfds, &ts, NULL);
			}
		}
	}

	/* deliveries the loop reached late: write them now, late by the window's end */
	for (i = 0; i < cell_count; i++) {
		struct live__state *s = &state[i];
		while (s->next_delivery < cells[i].deliveries_end && deliveries[s->next_delivery].time_ns < end_ns) {
			const struct ls_live_delivery *d = &deliveries[s->next_delivery++];
			if (ls_cell__tap_write(cells[i].tap_fd, delivery_bytes + d->offset, d->length) < 0)
				stats->write_errors++;
			stats->deliveries_written++;
			stats->late_deliveries++;
			if (end_ns - d->time_ns > stats->late_ns_max)
				stats->late_ns_max = end_ns - d->time_ns;
		}
	}
	return stats->frames_out;
}
