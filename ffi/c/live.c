/*
 * live.c — one scheduling window of a group of process cells (the data plane's
 * hot loop, in C so that JS handles batches, not single packets).
 *
 * For a window [start_ns, end_ns) of virtual time, for every cell of the group
 * (cells that run at the same time, each on its own cores):
 *   thaw the cgroup, then start its clock at start_ns (so the clock never
 *   runs while the cell cannot);
 *   until the cell's clock reaches end_ns: take the frames it sent from its
 *   ring (ring.c: the kernel copied and stamped each one when it left, in the
 *   sender's own context) and convert each stamp to the cell's virtual time;
 *   write each delivery into the tap when the clock reaches its arrival time;
 *   answer ARP for the simulated network;
 *   stop the clock at end_ns first, then freeze the cgroup (the clock stops at
 *   the freeze *request*: a slow freeze does not make time pass); take what
 *   is left in the ring (stamped no later than end_ns - 1).
 * Nothing here waits on the cells' sockets: a reader woken per frame costs the
 * sending cell a cross-core wake-up per frame (measured: a UDP sender slowed
 * from 6.8 to 29 us per packet), and its clock would count that.
 * Deliveries still due in the window (the loop came late) are written at the
 * end and counted as late.
 */
#define _GNU_SOURCE
#include "livestack.h"
#include "livestack-clock.h"
#include "ring.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
			const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
			struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
			int32_t host_count, struct ls_live_stats *stats, const int32_t *threads);

#define LIVE_MAX_CELLS 256
/* The controller's real-time priority during a window (above the cells' LIVE_CELL_PRIORITY in runtime/live). */
#define LIVE_RT_PRIORITY 20
#define LIVE_FREEZE_TIMEOUT_NS 1000000000LL
/* Below this much host time to the next thing to do, spin instead of sleeping:
 * a sleep overshoots by ~15 us (CELLS-FACTS). */
#define LIVE_SPIN_NS 300000LL
/* The loop looks at the rings at least this often (a ring holds ~2k frames:
 * at 300k frames/s that is 7 ms). */
#define LIVE_RING_CHECK_NS 200000LL
/* Frames taken from a ring per look while the cell runs: a sender as fast as
 * the taking (~1 us per frame) kept one look going for 8 ms, past the window's
 * end, until its ring overflowed. The rest is taken at the next look, and all
 * of it once the cell is frozen. */
#define LIVE_TAKE_MAX 256

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

static int64_t live__realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
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
	util__host_mac(reply + 6, owner);            /* from the owner */
	reply[12] = 0x08;
	reply[13] = 0x06;
	memcpy(reply + 14, frame + 14, 6);      /* htype, ptype, hlen, plen */
	reply[20] = 0;
	reply[21] = 2;                          /* reply */
	util__host_mac(reply + 22, owner);           /* sender MAC */
	memcpy(reply + 28, frame + 38, 4);      /* sender IP = the asked address */
	memcpy(reply + 32, frame + 22, 6);      /* target MAC = the asker */
	memcpy(reply + 38, frame + 28, 4);      /* target IP = the asker's */
	ls_cell__tap_write(tap_fd, reply, sizeof(reply));
	return 2;
}

/* Deliveries handed to the spinner on the cell's core (see "Keeping the cells'
 * cores awake" below): written there, the frame's receive path runs and wakes
 * its reader on the reader's own core, with no cross-core wake-up. */
struct live__spinner;
/* a hand-off the spinner has not taken after this long is written by the controller (live__collect) */
#define LIVE_HANDOFF_WAIT_NS 20000LL
/* The lead a hand-off is posted with counts at most this much pick-up delay: an idle cell's spinner
 * takes a hand-off within ~1 us, a busy cell's only when its threads block (measured in the OLTP
 * smoke: p50 1-29 us, p90 109-169 us, p99 213-386 us; the write itself p50 5-6 us of CPU). Learned
 * from every pick-up, the lead was their mean, 34-47 us at p50: an idle reader got its frame that
 * much before the frame's arrival (its answer left up to 90 us before the question had arrived) and
 * the artifact's 0.5 ms point read high. A busy cell's frame is late by its wait instead: until its
 * threads block and the spinner runs, or the controller takes it back (LIVE_HANDOFF_WAIT_NS). */
#define LIVE_IDLE_PICKUP_NS 2000LL
static struct live__spinner *live__spinner_on(int32_t core);
static int live__post(struct live__spinner *sp, int fd, const uint8_t *bytes, uint32_t length, int64_t now_ns);
static int live__preempt(void);
static void live__collect(struct live__spinner *sp, struct ls_live_cell *cell, struct ls_live_stats *stats, int force);
static int64_t live__oldest_posted(struct live__spinner *sp);
static int live__spinner_idle(struct live__spinner *sp, int64_t now_ns);

struct live__state {
	struct ls_clock_snapshot clock; /* the clock as it runs in this window */
	int64_t base_host_ns;
	int64_t end_host_ns;
	int64_t last_stamp_ns;          /* stamps never go backwards */
	int32_t next_delivery;
	int done;
	int yield_end;                  /* quiescent until the window's end: its turn ends now */
	int64_t next_check_ns;          /* host time: no quiescence check before (one found it busy) */
	int64_t wake_at_ns;             /* virtual: wake the clock's sleepers then (they slept through a jump) */
	int64_t usage_seen;             /* the cell's CPU time when last looked at, and since when (host) */
	int64_t usage_since;
	struct live__spinner *spinner;  /* the one on the cell's core, or NULL */
};

/* How much virtual time before its arrival a delivery is written (learned per
 * cell, ring.h): an idle spinner's pick-up delay (LIVE_IDLE_PICKUP_NS), so
 * that the write starts at the frame's arrival time (see live__hide_rx for the
 * receive path itself). */
#define LIVE_LEAD_MAX_NS 200000LL

/* A delivery's receive path (the tap write runs the cell kernel's IP and TCP
 * input: a spinner's write took p50 5-6 us, p99 39-50 us of CPU in the OLTP
 * smoke; the controller's, from another core, 25-50 us of wall time) is written ahead
 * by its whole cost, so the receiving cell's clock does not count it: a ping
 * over 10 ms reads 20.0-20.1 ms. LIVESTACK_COUNT_RX=1 writes ahead only by the
 * spinner's pick-up delay, so the path runs on the receiving cell's clock as a
 * real host's would (at this VM's inflated cost). It brought the OLTP smoke's
 * 0.5 ms point from 176 to 162.9 tps (reference 160.2) and p95 from 24.83 to
 * 26.68 ms (26.68), 1 ms unchanged, but cell-to-cell pings to 20.1-20.6 ms p50
 * in a slow phase of this machine, against their 2% bound: not the default. */
static int live__hide_rx(void)
{
	static int hide = -1;

	if (hide < 0)
		hide = getenv("LIVESTACK_COUNT_RX") == NULL || strcmp(getenv("LIVESTACK_COUNT_RX"), "1") != 0;
	return hide;
}

static int64_t live__lead_ns(const struct ls_live_cell *cell, int handoff)
{
	int64_t lead;

	if (cell->ring == NULL)
		return 0;
	lead = (int64_t)((double)(handoff ? cell->ring->handoff_cost_ns : cell->ring->write_cost_ns) * cell->scale);
	return lead < LIVE_LEAD_MAX_NS ? lead : LIVE_LEAD_MAX_NS;
}

static void live__learn_cost(struct ls_live_cell *cell, int64_t cost_ns, int handoff)
{
	int64_t *cost;

	if (cell->ring == NULL || cost_ns < 0)
		return;
	if (!handoff && !live__hide_rx())
		cost_ns = 0; /* the controller's write is all receive path: none of it ahead */
	if (cost_ns > LIVE_LEAD_MAX_NS)
		cost_ns = LIVE_LEAD_MAX_NS;
	/* EWMA, weight 1/8 */
	cost = handoff ? &cell->ring->handoff_cost_ns : &cell->ring->write_cost_ns;
	*cost += (cost_ns - *cost) / 8;
}

/* A thread's state letter from /proc/TID/stat (R, S, D, ...): 0 if it is
 * gone, '?' if the line cannot be read. */
static char live__thread_state(long tid)
{
	char path[48], buf[512], *close_paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	close_paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (close_paren == NULL || close_paren[1] != ' ')
		return '?';
	return close_paren[2];
}

/* How many of the threads the caller listed are running, runnable or in disk
 * sleep, read while the cell still runs (its clock already stopped): a thread
 * that was woken just before the freeze looks, once frozen, like one still
 * waiting, so idle detection must look before (a database's install judged
 * idle this way jumped 60 s). -1 if no thread was listed. */
static int32_t live__runnable(const struct ls_live_cell *cell, const int32_t *threads)
{
	int32_t busy = 0;

	if (threads == NULL || cell->thread_count <= 0)
		return -1;
	threads += 2 * cell->threads_begin;
	for (int32_t i = 0; i < cell->thread_count; i++) {
		/* gone: an exit is reported to the runtime anyway */
		char state = live__thread_state(threads[2 * i + 1]);

		if (state == 'R' || state == 'D')
			busy++;
	}
	return busy;
}

/* The cell's CPU time so far (ns), -1 if unknown. */
static int64_t live__usage_ns(const struct ls_live_cell *cell)
{
	char buf[256], *at;
	ssize_t n;

	if (cell->usage_fd < 0 || (cell->usage_kind != 1 && cell->usage_kind != 2))
		return -1;
	n = pread(cell->usage_fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (cell->usage_kind == 1)
		return strtoll(buf, NULL, 10);
	at = strstr(buf, "usage_usec ");
	return at == NULL ? -1 : strtoll(at + 11, NULL, 10) * 1000LL;
}

/* Stops a cell at the end of its window: its clock first (at end_ns, at the
 * freeze request: waiting for the freeze must not make time pass), then the
 * cgroup. A freeze can take long: writing cgroup.freeze takes the kernel's
 * global cgroup_mutex, which launchers joining cgroups (each join waits for
 * an RCU grace period) hold for ms at a time (measured: a cell that ran 205 ms
 * of CPU between the request and the freeze, its clock counting none of it).
 * What the cell ran meanwhile (its CPU time, at most the wall time the freeze
 * took) is added to its clock, which then runs on from there next window. */
#define LIVE_SLOW_FREEZE_NS 1000000LL

static long long live__stop(struct ls_live_cell *c, int64_t end_ns, const int32_t *threads)
{
	int64_t before_ns, after_ns, used_before, used_after, charged;
	long long frozen;

	ls_clock__freeze(c->clock, end_ns);
	used_before = live__usage_ns(c);
	before_ns = live__host_ns();
	c->runnable = live__runnable(c, threads);
	frozen = live__freeze(c, 1);
	if (frozen < 0)
		return frozen;
	after_ns = live__host_ns();
	/* only a slow freeze: a running task's CPU time is brought up to date at
	 * the next tick or switch, so the first reading lags by up to a tick, and
	 * charging every usual ~0.1 ms freeze overcounted a busy loop by 1-2% */
	if (after_ns - before_ns <= LIVE_SLOW_FREEZE_NS || used_before < 0)
		return frozen;
	used_after = live__usage_ns(c);
	if (used_after > used_before) {
		charged = used_after - used_before;
		if (charged > after_ns - before_ns)
			charged = after_ns - before_ns; /* several cores: the wall time it ran, not the sum */
		ls_clock__freeze(c->clock, end_ns + (int64_t)((double)charged * c->scale));
	}
	return frozen;
}

/* Cells do not resolve neighbours (eth0 is NOARP: no first packet waits for
 * an ARP round trip), so a unicast IPv4 frame leaves with the sender's own MAC
 * as destination: address it to the MAC of the simulated host that has the
 * destination address, as a resolved neighbour would have. */
static void live__address(uint8_t *frame, uint32_t length, int32_t host_count)
{
	uint32_t ip;
	int owner;

	if (length < 34 || frame[12] != 0x08 || frame[13] != 0x00)
		return;
	ip = ((uint32_t)frame[30] << 24) | ((uint32_t)frame[31] << 16) | ((uint32_t)frame[32] << 8) | frame[33];
	owner = live__host_index(ip, host_count);
	if (owner >= 0)
		util__host_mac(frame, owner);
}

/* Takes every frame waiting in a cell's ring and stamps it with the cell's
 * virtual time when the kernel saw it leave: host realtime → raw → virtual,
 * within [start, end - 1] and never before the previous frame's. */
static void live__take(struct ls_live_cell *cells, int32_t index, struct live__state *s, int64_t raw_minus_real_ns,
		       int64_t end_ns, struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
		       uint32_t *out_used, int32_t host_count, struct ls_live_stats *stats, int32_t max)
{
	struct ls_ring *ring = cells[index].ring;
	struct ls_ring_frame frame;
	int32_t taken = 0;

	if (ring == NULL)
		return;
	while (taken++ < max && ring__peek(ring, &frame)) {
		struct ls_live_frame *f;
		int64_t v = ls_clock__virtual_at(&s->clock, frame.realtime_ns + raw_minus_real_ns);

		if (v < s->last_stamp_ns)
			v = s->last_stamp_ns;
		if (v > end_ns - 1)
			v = end_ns - 1;
		s->last_stamp_ns = v;
		if (frame.length < frame.wire_length) {
			stats->ring_truncated++;
		} else if (live__answer_arp(cells[index].tap_fd, frame.data, frame.length, host_count)) {
			stats->arp_replies++;
		} else if (stats->frames_out >= out_max || out_capacity - *out_used < frame.length) {
			stats->frames_dropped++; /* no room: dropped, as a full NIC queue would */
		} else {
			if (live__debug())
				fprintf(stderr, "cell %d sent at v %lld (host %lld, stamp %lld = %lld ns before now)\n", cells[index].host_index, (long long)v,
					(long long)live__host_ns(), (long long)frame.realtime_ns, (long long)(live__realtime_ns() - frame.realtime_ns));
			memcpy(out_bytes + *out_used, frame.data, frame.length);
			live__address(out_bytes + *out_used, frame.length, host_count);
			f = &out[stats->frames_out++];
			f->time_ns = v;
			f->cell = index;
			f->offset = *out_used;
			f->length = frame.length;
			f->reserved = 0;
			*out_used += frame.length;
		}
		ring__release(ring);
	}
}

/* The tap also queues every frame the cell sends (the ring has them already):
 * empty it, so the queue holds no stale frames. */
static void live__discard_tap(int tap_fd)
{
	static __thread uint8_t scratch[LS_CELL_FRAME_MAX];

	while (read(tap_fd, scratch, sizeof scratch) > 0)
		;
}


/* The calling thread at LIVE_RT_PRIORITY (SCHED_FIFO) until live__realtime_end:
 * returns the policy to go back to, -1 if it could not be raised. */
static int live__realtime_begin(void)
{
	struct sched_param rt = { .sched_priority = LIVE_RT_PRIORITY };
	int previous_policy = sched_getscheduler(0);

	if (sched_setscheduler(0, SCHED_FIFO, &rt) != 0)
		return -1;
	return previous_policy < 0 ? SCHED_OTHER : previous_policy;
}

static void live__realtime_end(int previous_policy)
{
	struct sched_param normal = { .sched_priority = 0 };

	if (previous_policy >= 0)
		sched_setscheduler(0, previous_policy, &normal);
}

int ls_live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
		    const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
		    struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
		    int32_t host_count, struct ls_live_stats *stats, const int32_t *threads)
{
	int rc, previous_policy;

	if (cell_count < 0 || cell_count > LIVE_MAX_CELLS || end_ns <= start_ns || !stats)
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	/* The window must end on time and frames must be stamped when they appear: next to busy
	 * SCHED_OTHER work a sleeping thread wakes ~0.3 ms late on average, 3 ms at p99 (CELLS-FACTS).
	 * Real-time priority for this thread, for the window only; it sleeps in ppoll, spins < 60 us. */
	previous_policy = live__realtime_begin();
	rc = live__window(cells, cell_count, start_ns, end_ns, deliveries, delivery_bytes, out, out_max, out_bytes, out_capacity, host_count, stats, threads);
	live__realtime_end(previous_policy);
	return rc;
}

/* Holds a cell's clock at its next delivery (or at the window's end) until the
 * delivery is written (ls_clock__limit). The controller is real-time and its core
 * is kept awake, yet on this nested machine its vCPU stalls for 1-27 ms at times
 * (measured: ~270 such gaps in a 44 s OLTP run); meanwhile the cell's clock ran
 * on, and every frame due then arrived late by the stall (p99 3-4 ms late at
 * 5 ms links), which made transactions slower by a varying amount. Held, the
 * cell waits for the frame at the frame's arrival time instead; what it computed
 * while held (if it was busy) is not counted. */
static void live__hold(struct ls_live_cell *c, struct live__state *s, const struct ls_live_delivery *deliveries,
		       int64_t end_ns, struct ls_live_stats *stats)
{
	int64_t limit = end_ns, held_ns = 0;
	int rc;

	if (s->next_delivery < c->deliveries_end && deliveries[s->next_delivery].time_ns < limit)
		limit = deliveries[s->next_delivery].time_ns;
	/* held_ns: how far the clock would have run on while it sat at its limit (measured, not charged) */
	rc = ls_clock__limit_held(c->clock, limit, &held_ns);
	if (rc > 0) {
		stats->holds++;
		stats->held_ns += held_ns;
	}
	if (rc < 0 || ls_clock__snapshot(c->clock, &s->clock) < 0)
		return;
	s->base_host_ns = s->clock.base_host_ns;
	s->end_host_ns = s->base_host_ns + ls_clock__host_duration(&s->clock, end_ns - s->clock.base_virtual_ns);
}

/* Yielding. A thawed cell's clock runs on host time, so a cell with nothing
 * to do spent its whole turn of the window idle, and the next cell on its core
 * waited: with six cells taking turns on one core (the OLTP artifact's
 * 4-client variant) a run took 7.7x its virtual time. That wall time is not
 * free: this machine's caches lose a program's lines in host time, its own
 * or not (measured with a pointer chase over 256 KB, the same process
 * spinning in between: 5.7 ns a line after 0.5 ms, 19 after 2.5 ms, 76 after
 * 10 ms), so the longer a cell waits in host time, the slower it runs again.
 * With the controller merely waiting 2.5 ms between windows, the OLTP
 * database's time from a query to its answer rose from p50 160 to 300-380 us
 * and 1 ms tps fell from 88 to 79-82.
 * So a quiescent cell jumps: its clock goes straight to its next event (the
 * next delivery, less its lead; a published wait's deadline; the window's
 * end, where its turn ends), as the time between is time it waits. Quiescent:
 * every hand-off written and every thread of its cgroup asleep (S) with
 * the cell's CPU time unchanged across that read (a thread that woke another
 * and went back to sleep meanwhile shows in the CPU time). A thread in disk
 * sleep (D) is not quiescent: its I/O ends in host time. The runtime paces
 * each window to at least its own length in host time (ls_live__pace), so a
 * cell's kernel timers (TCP's delayed ACKs and retransmissions, on host time)
 * fire no later in virtual time than without jumps. LIVESTACK_YIELD=0 turns
 * jumps off. */
#define LIVE_YIELD_BEAT_NS 5000LL     /* the spinner ran this recently */
#define LIVE_YIELD_STILL_NS 50000LL   /* host: or the cell's CPU time stood still this long */
#define LIVE_YIELD_MIN_NS 20000LL     /* virtual: a shorter jump is not worth a check */
#define LIVE_YIELD_RECHECK_NS 30000LL /* host: after a check that found the cell busy */
#define LIVE_YIELD_LOOK_NS 20000LL    /* host: how often the loop looks for quiescence (a sleep: +~15 us) */
#define LIVE_TASKS_BYTES 65536

static int live__yield_on(void)
{
	static int on = -1;

	if (on < 0)
		on = getenv("LIVESTACK_YIELD") == NULL || strcmp(getenv("LIVESTACK_YIELD"), "0") != 0;
	return on;
}

/* Whether one thread is asleep: 1 for S (or stopped, or exited), 0 for
 * running, runnable or in disk sleep (or unreadable), -1 if it is gone. */
static int live__thread_asleep(long tid)
{
	switch (live__thread_state(tid)) {
	case 0:
		return -1;
	case 'S': case 'T': case 't': case 'Z': case 'X':
		return 1;
	default:
		return 0;
	}
}

/* 1 if every thread of the cell sleeps and none ran while they were read. */
static int live__quiescent(const struct ls_live_cell *c)
{
	static __thread char list[LIVE_TASKS_BYTES];
	int64_t before, after;
	char *at, *end;
	ssize_t n;

	before = live__usage_ns(c);
	if (before < 0)
		return 0;
	n = pread(c->tasks_fd, list, sizeof list - 1, 0);
	if (n <= 0 || n >= (ssize_t)sizeof list - 1)
		return 0; /* empty (its commands are gone: the runtime sees to it) or too long to read at once */
	list[n] = '\0';
	for (at = list;;) {
		long tid = strtol(at, &end, 10);

		if (end == at)
			break;
		at = end;
		if (live__thread_asleep(tid) == 0)
			return 0;
	}
	after = live__usage_ns(c);
	return after == before;
}

/* How far a quiescent cell's clock may jump: to its next delivery (less the
 * delivery's lead), the earliest deadline of a published wait, or the
 * window's end. Waits that run in slices of host time (polls, conditions:
 * up to LS_CLOCK_SLICE_NS each) would notice a deadline the jump brought near
 * only at their slice's end: the jump stops a slice short of theirs, and
 * their slice wakes them in time. Sleeps and the timer thread
 * wait on the clock page's futex: the jump does not wake them (ls_clock__jump;
 * a wake-up at every jump cost a sysbench client's sleepers ~20 us of its
 * core before its next frame could be written), the loop does when the clock
 * reaches the earliest of their deadlines (*sleeper_ns). */
static int64_t live__yield_target(const struct ls_live_cell *c, const struct live__state *s,
				  const struct ls_live_delivery *deliveries, int64_t end_ns, int64_t *sleeper_ns)
{
	struct ls_clock_waits waits;
	int64_t target = end_ns;

	*sleeper_ns = INT64_MAX;

	if (s->next_delivery < c->deliveries_end) {
		int64_t due = deliveries[s->next_delivery].time_ns - live__lead_ns(c, s->spinner != NULL);
		if (due < target)
			target = due;
	}
	if (ls_clock__waits(c->clock, &waits) < 0)
		return -1; /* unknown: no jump */
	for (int32_t k = 0; k < (int32_t)waits.count; k++) {
		int64_t deadline = waits.waits[k].deadline_virtual_ns;

		if (deadline < 0 || deadline == LS_CLOCK_NO_DEADLINE)
			continue;
		if (waits.waits[k].kind == LS_CLOCK_WAIT_SLEEP || waits.waits[k].kind == LS_CLOCK_WAIT_TIMER) {
			if (deadline < *sleeper_ns)
				*sleeper_ns = deadline;
		} else {
			deadline -= (int64_t)((double)LS_CLOCK_SLICE_NS * c->scale);
		}
		if (deadline < target)
			target = deadline;
	}
	return target;
}

/* Whether a quiescence check is worth making: every hand-off is through, and
 * the spinner on the cell's core ran just now, or (when a host task shares
 * the core, a hog say, the idle-priority spinner starves) the cell's CPU time
 * has not moved for LIVE_YIELD_STILL_NS. */
static int live__maybe_quiet(const struct ls_live_cell *c, struct live__state *s, int64_t host_now)
{
	int64_t used;

	switch (live__spinner_idle(s->spinner, host_now)) {
	case 0:
		return 0;
	case 2:
		return 1;
	default:
		break;
	}
	used = live__usage_ns(c);
	if (used < 0)
		return 0; /* no CPU time to read: live__quiescent could not tell either */
	if (used != s->usage_seen) {
		s->usage_seen = used;
		s->usage_since = host_now;
		return 0;
	}
	return host_now - s->usage_since >= LIVE_YIELD_STILL_NS;
}

/* Jumps a quiescent cell's clock to its next event (see "Yielding"). */
static void live__yield(struct ls_live_cell *cells, int32_t index, struct live__state *s, const struct ls_live_delivery *deliveries,
			int64_t raw_minus_real_ns, int64_t end_ns, struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes,
			uint32_t out_capacity, uint32_t *out_used, int32_t host_count, struct ls_live_stats *stats)
{
	struct ls_live_cell *c = &cells[index];
	int64_t host_now = live__host_ns(), target, now_v, sleeper_ns;

	if (s->spinner == NULL || c->tasks_fd < 0 || s->yield_end || host_now < s->next_check_ns || !live__yield_on() ||
	    !live__maybe_quiet(c, s, host_now))
		return;
	target = live__yield_target(c, s, deliveries, end_ns, &sleeper_ns);
	if (target < 0 || target - ls_clock__virtual_at(&s->clock, host_now) < LIVE_YIELD_MIN_NS)
		return;
	stats->yield_checks++;
	/* the check takes a while (~4 us a thread): the clock does not run past the target meanwhile, where
	 * the delivery is written (a client's answers were written 4 us late at p50, 15 at p90) */
	ls_clock__limit(c->clock, target);
	if (!live__quiescent(c)) {
		s->next_check_ns = live__host_ns() + LIVE_YIELD_RECHECK_NS;
		live__hold(c, s, deliveries, end_ns, stats);
		return;
	}
	/* what it sent is stamped with the run it was sent in */
	live__take(cells, index, s, raw_minus_real_ns, end_ns, out, out_max, out_bytes, out_capacity, out_used, host_count, stats, INT32_MAX);
	now_v = ls_clock__now(c->clock);
	if (target > now_v) {
		stats->yields++;
		stats->yielded_ns += target - now_v;
	}
	if (target >= end_ns) {
		s->yield_end = 1; /* live__stop takes the clock to the end */
		return;
	}
	if (target > now_v && ls_clock__jump(c->clock, target) == 0 && sleeper_ns < s->wake_at_ns)
		s->wake_at_ns = sleeper_ns;
	live__hold(c, s, deliveries, end_ns, stats);
	if (live__debug())
		fprintf(stderr, "cell %d jumped to %lld (%lld ns on), checked in %lld ns\n", c->host_index, (long long)target,
			(long long)(target - now_v), (long long)(live__host_ns() - host_now));
}

static int live__window(struct ls_live_cell *cells, int32_t cell_count, int64_t start_ns, int64_t end_ns,
			const struct ls_live_delivery *deliveries, const uint8_t *delivery_bytes,
			struct ls_live_frame *out, int32_t out_max, uint8_t *out_bytes, uint32_t out_capacity,
			int32_t host_count, struct ls_live_stats *stats, const int32_t *threads)
{
	struct live__state state[LIVE_MAX_CELLS];
	uint32_t out_used = 0;
	int32_t i, remaining;
	int64_t raw_minus_real_ns;
	int rc;

	/* ring stamps are CLOCK_REALTIME, clock pages run on CLOCK_MONOTONIC_RAW: one
	 * offset per window (they drift apart by ppm; a window is ≤ 10 ms) */
	raw_minus_real_ns = live__host_ns() - live__realtime_ns();
	for (i = 0; i < cell_count; i++) {
		long long thaw = live__freeze(&cells[i], 0);
		int64_t now_v, from_v;

		if (thaw < 0)
			return (int)thaw;
		if (thaw > stats->thaw_ns_max)
			stats->thaw_ns_max = thaw;
		/* the clock never goes backwards: a clock that overshot the last window a little runs on from there */
		now_v = ls_clock__now(cells[i].clock);
		from_v = now_v > start_ns ? now_v : start_ns;
		rc = ls_clock__run(cells[i].clock, from_v, cells[i].scale);
		if (rc < 0)
			return rc;
		rc = ls_clock__snapshot(cells[i].clock, &state[i].clock);
		if (rc < 0)
			return rc;
		state[i].base_host_ns = state[i].clock.base_host_ns;
		state[i].end_host_ns = state[i].base_host_ns + (int64_t)((double)(end_ns - from_v) / cells[i].scale);
		state[i].last_stamp_ns = from_v;
		state[i].next_delivery = cells[i].deliveries_begin;
		state[i].done = 0;
		state[i].yield_end = 0;
		state[i].next_check_ns = 0;
		state[i].wake_at_ns = INT64_MAX;
		state[i].usage_seen = -1;
		state[i].usage_since = 0;
		state[i].spinner = live__spinner_on(cells[i].core);
		cells[i].runnable = -1;
		live__hold(&cells[i], &state[i], deliveries, end_ns, stats);
	}

	remaining = cell_count;
	while (remaining > 0) {
		int64_t host_now = live__host_ns();
		int64_t next_host = INT64_MAX, next_look = INT64_MAX;

		for (i = 0; i < cell_count; i++) {
			struct live__state *s = &state[i];
			struct ls_live_cell *c = &cells[i];
			int64_t v;

			if (s->done)
				continue;
			live__take(cells, i, s, raw_minus_real_ns, end_ns, out, out_max, out_bytes, out_capacity, &out_used, host_count, stats, LIVE_TAKE_MAX);
			if (s->spinner != NULL)
				live__collect(s->spinner, c, stats, 0);
			v = ls_clock__virtual_at(&s->clock, live__host_ns());
			int32_t written_from = s->next_delivery;
			while (s->next_delivery < c->deliveries_end && deliveries[s->next_delivery].time_ns - live__lead_ns(c, s->spinner != NULL) <= v) {
				const struct ls_live_delivery *d = &deliveries[s->next_delivery++];
				int64_t before = live__host_ns();

				if (s->spinner == NULL || live__post(s->spinner, c->tap_fd, delivery_bytes + d->offset, d->length, before) < 0) {
					/* in order: what the spinner holds goes first */
					if (s->spinner != NULL)
						live__collect(s->spinner, c, stats, 1);
					if (ls_cell__tap_write(c->tap_fd, delivery_bytes + d->offset, d->length) < 0)
						stats->write_errors++;
					live__learn_cost(c, live__host_ns() - before, 0);
				}
				if (live__debug())
					fprintf(stderr, "cell %d write due %lld at v %lld (host %lld)%s\n", c->host_index, (long long)d->time_ns, (long long)v, (long long)live__host_ns(), s->spinner != NULL ? " handed off" : "");
				stats->deliveries_written++;
				if (v - d->time_ns > stats->late_ns_max)
					stats->late_ns_max = v - d->time_ns;
			}
			if (s->next_delivery != written_from)
				live__hold(c, s, deliveries, end_ns, stats);
			if (v >= s->wake_at_ns) {
				ls_clock__wake(c->clock);
				s->wake_at_ns = INT64_MAX;
			}
			live__yield(cells, i, s, deliveries, raw_minus_real_ns, end_ns, out, out_max, out_bytes, out_capacity, &out_used, host_count, stats);
			if (host_now >= s->end_host_ns || s->yield_end) {
				long long frozen;

				frozen = live__stop(c, end_ns, threads);
				if (frozen < 0)
					return (int)frozen;
				/* a frozen cell's spinner runs freely: what it still holds is written now */
				if (s->spinner != NULL)
					live__collect(s->spinner, c, stats, 1);
				if (frozen > stats->freeze_ns_max)
					stats->freeze_ns_max = frozen;
				live__take(cells, i, s, raw_minus_real_ns, end_ns, out, out_max, out_bytes, out_capacity, &out_used, host_count, stats, INT32_MAX);
				live__discard_tap(c->tap_fd);
				s->done = 1;
				remaining--;
				continue;
			}
			if (s->end_host_ns < next_host)
				next_host = s->end_host_ns;
			if (s->next_delivery < c->deliveries_end) {
				int64_t due = s->base_host_ns +
					      ls_clock__host_duration(&s->clock, deliveries[s->next_delivery].time_ns - live__lead_ns(c, s->spinner != NULL) - s->clock.base_virtual_ns);
				if (due < next_host)
					next_host = due;
			}
			if (s->spinner != NULL) {
				/* a hand-off the spinner has not taken in time is written here instead */
				int64_t posted = live__oldest_posted(s->spinner);
				if (posted != INT64_MAX && posted + LIVE_HANDOFF_WAIT_NS < next_host)
					next_host = posted + LIVE_HANDOFF_WAIT_NS;
				/* a cell that may yield is looked at every LIVE_YIELD_LOOK_NS: it may go quiet at any moment */
				if (c->tasks_fd >= 0 && live__yield_on()) {
					int64_t look = s->next_check_ns > host_now ? s->next_check_ns : host_now + LIVE_YIELD_LOOK_NS;
					if (look < next_look)
						next_look = look;
				}
			}
		}
		if (remaining > 0 && next_host != INT64_MAX) {
			int64_t wait = next_host - live__host_ns();
			if (wait > LIVE_SPIN_NS) {
				/* sleep until shortly before the next delivery or window end, and look
				 * at the rings now and then meanwhile; spin the rest */
				int64_t slice = wait - LIVE_SPIN_NS / 2;
				struct timespec ts;

				if (slice > LIVE_RING_CHECK_NS)
					slice = LIVE_RING_CHECK_NS;
				/* sleeping, not spinning, until the next look for quiescence: a loop that spun
				 * through whole windows was throttled as a real-time task (50 ms in every second
				 * here), and the cells' clocks sat at the window's end while they ran on */
				if (next_look != INT64_MAX) {
					int64_t to_look = next_look - live__host_ns();
					if (slice > to_look)
						slice = to_look > 0 ? to_look : 1000;
				}
				ts.tv_sec = slice / 1000000000LL;
				ts.tv_nsec = slice % 1000000000LL;
				nanosleep(&ts, NULL);
			}
		}
	}

	/* deliveries the loop reached late: write them now, late by the window's end */
	for (i = 0; i < cell_count; i++) {
		struct live__state *s = &state[i];
		struct ls_ring_stats ring_stats;

		while (s->next_delivery < cells[i].deliveries_end && deliveries[s->next_delivery].time_ns < end_ns) {
			const struct ls_live_delivery *d = &deliveries[s->next_delivery++];
			if (ls_cell__tap_write(cells[i].tap_fd, delivery_bytes + d->offset, d->length) < 0)
				stats->write_errors++;
			stats->deliveries_written++;
			stats->late_deliveries++;
			if (end_ns - d->time_ns > stats->late_ns_max)
				stats->late_ns_max = end_ns - d->time_ns;
		}
		if (cells[i].ring != NULL && ls_ring__stats(cells[i].ring, &ring_stats) == 0)
			stats->frames_dropped += (int32_t)ring_stats.kernel_drops;
	}
	return stats->frames_out;
}

/* The calling thread's CPU affinity: ls_live__get_affinity fills cpus with up
 * to max CPU numbers and returns how many; ls_live__set_affinity pins the
 * thread to the count CPUs given. The controller pins itself to the cores no
 * cell has: a real-time controller that wandered onto a cell's core would
 * take that core from the cell for every window it spins in (measured: a
 * receiver starved for whole windows, its clock running). */
int ls_live__get_affinity(int32_t *cpus, int32_t max)
{
	cpu_set_t set;
	int32_t n = 0;

	if (cpus == NULL || max < 0)
		return -EINVAL;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return -errno;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus[n++] = cpu;
	return n;
}

int ls_live__set_affinity(const int32_t *cpus, int32_t count)
{
	cpu_set_t set;

	if (cpus == NULL || count <= 0)
		return -EINVAL;
	CPU_ZERO(&set);
	for (int32_t i = 0; i < count; i++) {
		if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE)
			return -EINVAL;
		CPU_SET(cpus[i], &set);
	}
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		return -errno;
	return 0;
}

/* Keeping the cells' cores awake. A cell waiting for a packet sleeps; when
 * the controller writes the packet, the kernel wakes the cell's thread on its
 * core with an interrupt. Here (a VM without a cpuidle driver: an idle vCPU
 * halts) that wake-up took ~100 µs of the cell's running clock per packet
 * (measured: a TCP round trip over a 1 ms link read 2.2 ms in a cell, 2.0 +
 * 0.023 natively). A SCHED_IDLE thread spinning on each cell core keeps the
 * core from halting; any task of a cell preempts it at once, and its weight
 * is the smallest there is, so a busy cell does not share its core with it. */
#define LIVE_SPINNERS_MAX 256

/* The spinners also write deliveries (live__post). Written by the controller
 * on its own core, a frame's receive path ran there and woke the reader on the
 * cell's core with an interrupt: measured with ftrace (a redis PING over 1 ms,
 * wall µs, p50): 48-65 from the frame's receive to the reader's wake-up, then
 * 30-62 more until the reader ran, ~0.18 ms of every 2 ms round trip in all.
 * Written by the spinner, the wake-up is local and the reader preempts the
 * spinner at once. A spinner only runs while its core has nothing else to do:
 * a hand-off it has not taken within LIVE_HANDOFF_WAIT_NS (the cell is busy)
 * is taken back and written by the controller, and frames stay in order. */
#define LIVE_MAIL_SLOTS 64
#define LIVE_MAIL_BYTES 2048            /* larger frames are written by the controller */
#define LIVE_HANDOFF_DONE_WAIT_NS 5000000LL /* a write under way is waited for this long at most */

enum { LIVE_MAIL_FREE = 0, LIVE_MAIL_POSTED, LIVE_MAIL_TAKEN, LIVE_MAIL_DONE, LIVE_MAIL_RECLAIMED };

struct live__mail {
	int state;          /* atomic: LIVE_MAIL_* */
	int fd;
	uint32_t length;
	int rc;
	int64_t posted_ns;
	int64_t pickup_ns;  /* from posted until the spinner took it */
	int64_t cpu_ns;     /* the write's CPU time: the frame's receive path (see live__spin) */
	uint8_t bytes[LIVE_MAIL_BYTES];
};

struct live__spinner {
	pthread_t thread;
	int cpu;
	uint32_t head;      /* controller: slots posted (atomic for the spinner) */
	uint32_t tail;      /* spinner: slots looked at (atomic for the controller) */
	uint32_t collected; /* controller: slots whose outcome it has seen */
	int64_t beat_ns;    /* atomic: when the spinner last found nothing to do (its core had nothing else either) */
	struct live__mail mail[LIVE_MAIL_SLOTS];
};

static struct {
	struct live__spinner *spinners[LIVE_SPINNERS_MAX];
	int count;
	volatile int run;
} live__spinners;

static void *live__spin(void *arg)
{
	struct live__spinner *sp = arg;
	cpu_set_t set;
	struct sched_param none = { .sched_priority = 0 };
	int realtime = 0; /* writing at real-time priority (see below) */

	CPU_ZERO(&set);
	CPU_SET(sp->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &none);
	while (__atomic_load_n(&live__spinners.run, __ATOMIC_RELAXED)) {
		uint32_t tail = sp->tail;
		struct live__mail *m;
		int expected = LIVE_MAIL_POSTED;

		if (tail == __atomic_load_n(&sp->head, __ATOMIC_ACQUIRE)) {
			if (realtime) {
				/* every frame is in: the readers they woke run now */
				pthread_setschedparam(pthread_self(), SCHED_IDLE, &none);
				realtime = 0;
			}
			__atomic_store_n(&sp->beat_ns, live__host_ns(), __ATOMIC_RELAXED);
			__builtin_ia32_pause();
			continue;
		}
		m = &sp->mail[tail % LIVE_MAIL_SLOTS];
		if (__atomic_compare_exchange_n(&m->state, &expected, LIVE_MAIL_TAKEN, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			/* The write wakes the reader on this core. At idle priority the reader preempted
			 * this thread inside the write and ran (its reply included) before the write
			 * returned, and frames posted meanwhile waited for the cell to go idle again: a
			 * taken hand-off is not taken back, and the ones after it stay in order (database
			 * pick-ups p90 169 us, p99 386 us in the OLTP smoke). So the frames are written at
			 * real-time priority, all that are there, as a host's receive interrupt would. */
			struct timespec cpu0, cpu1;
			int64_t taken;

			if (!realtime && live__preempt()) {
				struct sched_param rt = { .sched_priority = 1 };
				realtime = pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) == 0;
			}
			taken = live__host_ns();

			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
			m->rc = ls_cell__tap_write(m->fd, m->bytes, m->length);
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
			m->pickup_ns = taken - m->posted_ns;
			m->cpu_ns = (cpu1.tv_sec - cpu0.tv_sec) * 1000000000LL + (cpu1.tv_nsec - cpu0.tv_nsec);
			__atomic_store_n(&m->state, LIVE_MAIL_DONE, __ATOMIC_RELEASE);
		}
		/* taken back by the controller (LIVE_MAIL_RECLAIMED): nothing to do */
		__atomic_store_n(&sp->tail, tail + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static struct live__spinner *live__spinner_on(int32_t core)
{
	if (core < 0 || !__atomic_load_n(&live__spinners.run, __ATOMIC_RELAXED))
		return NULL;
	for (int i = 0; i < live__spinners.count; i++)
		if (live__spinners.spinners[i]->cpu == core)
			return live__spinners.spinners[i];
	return NULL;
}

/* LIVESTACK_HANDOFF_PREEMPT=0: the spinner writes at idle priority (see live__spin). */
static int live__preempt(void)
{
	static int preempt = -1;

	if (preempt < 0)
		preempt = getenv("LIVESTACK_HANDOFF_PREEMPT") == NULL || strcmp(getenv("LIVESTACK_HANDOFF_PREEMPT"), "0") != 0;
	return preempt;
}

/* Hands a frame to the spinner; -1 if it cannot take it now (full, too large). */
static int live__post(struct live__spinner *sp, int fd, const uint8_t *bytes, uint32_t length, int64_t now_ns)
{
	uint32_t head = sp->head;
	struct live__mail *m;

	if (length > LIVE_MAIL_BYTES || head - sp->collected >= LIVE_MAIL_SLOTS ||
	    head - __atomic_load_n(&sp->tail, __ATOMIC_ACQUIRE) >= LIVE_MAIL_SLOTS)
		return -1;
	m = &sp->mail[head % LIVE_MAIL_SLOTS];
	m->fd = fd;
	m->length = length;
	m->rc = 0;
	memcpy(m->bytes, bytes, length);
	m->posted_ns = now_ns;
	__atomic_store_n(&m->state, LIVE_MAIL_POSTED, __ATOMIC_RELEASE);
	__atomic_store_n(&sp->head, head + 1, __ATOMIC_RELEASE);
	return 0;
}

/* When the oldest hand-off not yet taken was posted (INT64_MAX: none). */
static int64_t live__oldest_posted(struct live__spinner *sp)
{
	for (uint32_t k = sp->collected; k != sp->head; k++) {
		struct live__mail *m = &sp->mail[k % LIVE_MAIL_SLOTS];
		if (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == LIVE_MAIL_POSTED)
			return m->posted_ns;
	}
	return INT64_MAX;
}

/* 0 while a hand-off is not through and seen; else 2 if the spinner ran
 * within the last LIVE_YIELD_BEAT_NS (at idle priority it runs only when no
 * task of a cell on its core can, so the cell's threads there are all
 * waiting), 1 if not. */
static int live__spinner_idle(struct live__spinner *sp, int64_t now_ns)
{
	if (sp->collected != sp->head)
		return 0;
	return now_ns - __atomic_load_n(&sp->beat_ns, __ATOMIC_RELAXED) < LIVE_YIELD_BEAT_NS ? 2 : 1;
}

/* Sees the outcome of the hand-offs, in order: a written one teaches the
 * hand-off cost; one the spinner has not taken within LIVE_HANDOFF_WAIT_NS
 * (or at once, with force) is taken back and written here, after every
 * earlier one is through. Without force it stops at the first still pending. */
static void live__collect(struct live__spinner *sp, struct ls_live_cell *cell, struct ls_live_stats *stats, int force)
{
	while (sp->collected != sp->head) {
		struct live__mail *m = &sp->mail[sp->collected % LIVE_MAIL_SLOTS];
		int state = __atomic_load_n(&m->state, __ATOMIC_ACQUIRE);

		if (state == LIVE_MAIL_POSTED) {
			int64_t now = live__host_ns();
			if (!force && now - m->posted_ns < LIVE_HANDOFF_WAIT_NS)
				return;
			if (!__atomic_compare_exchange_n(&m->state, &state, LIVE_MAIL_RECLAIMED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue; /* the spinner took it meanwhile */
			if (ls_cell__tap_write(m->fd, m->bytes, m->length) < 0)
				stats->write_errors++;
			live__learn_cost(cell, live__host_ns() - now, 0);
		} else if (state == LIVE_MAIL_TAKEN) {
			int64_t until = live__host_ns() + LIVE_HANDOFF_DONE_WAIT_NS;
			if (!force)
				return;
			/* being written: frames stay in order */
			while (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == LIVE_MAIL_TAKEN && live__host_ns() < until)
				__builtin_ia32_pause();
			if (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == LIVE_MAIL_TAKEN)
				return; /* still under way (the spinner was preempted): seen at the next collect */
			continue;
		} else if (state == LIVE_MAIL_DONE) {
			if (m->rc < 0)
				stats->write_errors++;
			if (live__debug())
				fprintf(stderr, "cell %d handoff picked up in %lld ns, written in %lld ns of CPU (lead %lld ns)\n", cell->host_index,
					(long long)m->pickup_ns, (long long)m->cpu_ns, (long long)live__lead_ns(cell, 1));
			/* what an idle cell's hand-off costs (see LIVE_IDLE_PICKUP_NS) */
			live__learn_cost(cell, (m->pickup_ns < LIVE_IDLE_PICKUP_NS ? m->pickup_ns : LIVE_IDLE_PICKUP_NS) + (live__hide_rx() ? m->cpu_ns : 0), 1);
		}
		sp->collected++;
	}
}

int64_t ls_live__host_now(void)
{
	return live__host_ns();
}

/* Paces the windows: waits until the host time until_ns, sleeping at real-time
 * priority (a SCHED_OTHER sleep overshoots by ~0.3 ms on average) and spinning
 * the last LIVE_SPIN_NS / 2. */
int ls_live__pace(int64_t until_ns)
{
	int64_t wait = until_ns - live__host_ns();
	int previous_policy;

	if (wait <= 0)
		return 0;
	previous_policy = live__realtime_begin();
	if (wait > LIVE_SPIN_NS) {
		int64_t slice = wait - LIVE_SPIN_NS / 2;
		struct timespec ts = { .tv_sec = slice / 1000000000LL, .tv_nsec = slice % 1000000000LL };

		nanosleep(&ts, NULL);
	}
	while (live__host_ns() < until_ns)
		__builtin_ia32_pause();
	live__realtime_end(previous_policy);
	return 1;
}

int ls_live__keep_awake(const int32_t *cpus, int32_t count)
{
	int32_t i;

	if (count < 0 || count > LIVE_SPINNERS_MAX || (count > 0 && cpus == NULL))
		return -EINVAL;
	/* stop the ones there are */
	__atomic_store_n(&live__spinners.run, 0, __ATOMIC_RELAXED);
	for (i = 0; i < live__spinners.count; i++) {
		pthread_join(live__spinners.spinners[i]->thread, NULL);
		free(live__spinners.spinners[i]);
		live__spinners.spinners[i] = NULL;
	}
	live__spinners.count = 0;
	if (count == 0)
		return 0;
	for (i = 0; i < count; i++)
		if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE)
			return -EINVAL;
	__atomic_store_n(&live__spinners.run, 1, __ATOMIC_RELAXED);
	for (i = 0; i < count; i++) {
		struct live__spinner *sp = calloc(1, sizeof *sp);
		int rc;

		if (sp == NULL)
			return -ENOMEM;
		sp->cpu = cpus[i];
		rc = pthread_create(&sp->thread, NULL, live__spin, sp);
		if (rc != 0) {
			free(sp);
			return -rc;
		}
		live__spinners.spinners[live__spinners.count++] = sp;
	}
	return 0;
}
