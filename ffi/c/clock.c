/*
 * Controller side of a cell's virtual clock page (livestack-clock.h): the
 * runtime creates one page per cell, runs and freezes it with the cell's
 * windows, jumps it when the cell is idle, and reads the waits the shim
 * publishes there. The shim (ffi/c/shim/) is the reader.
 */
#define _GNU_SOURCE
#include "livestack.h"
#include "livestack-clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A scale above this is a unit mistake (virtual ns per host ns). */
#define CLOCK_SCALE_MAX 1e6

struct ls_clock {
	struct ls_clock_page *page;
	size_t bytes;
};

static int64_t clock__host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void clock__write_begin(struct ls_clock_page *page)
{
	uint32_t seq = atomic_load_explicit(&page->seq, memory_order_relaxed);

	atomic_store_explicit(&page->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void clock__write_end(struct ls_clock_page *page)
{
	uint32_t seq = atomic_load_explicit(&page->seq, memory_order_relaxed);

	atomic_store_explicit(&page->seq, seq + 1, memory_order_release);
}

/* After the fields changed: every sleeper re-reads the clock. */
static void clock__wake_all(struct ls_clock_page *page)
{
	atomic_fetch_add_explicit(&page->wake_generation, 1, memory_order_release);
	/* Shared futex (the page is mapped by other processes). */
	syscall(SYS_futex, &page->wake_generation, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int64_t clock__now_at(struct ls_clock_page *page, int64_t host_ns)
{
	struct ls_clock_snapshot snapshot;

	ls_clock__read(page, &snapshot);
	return ls_clock__virtual_at(&snapshot, snapshot.running ? host_ns : 0);
}

static int64_t clock__now(struct ls_clock_page *page)
{
	return clock__now_at(page, clock__host_ns());
}

/* Inside write_begin/end, before the clock fields change: the clock's current
 * stretch (a run, or a frozen one: base_host_ns is then when it froze, and it
 * stood at base_virtual_ns) ends at host_ns, where it reads now_ns; it goes to
 * the history (ls_clock__map_past). */
static void clock__end_run(struct ls_clock_page *page, int64_t host_ns, int64_t now_ns)
{
	uint64_t count = atomic_load_explicit(&page->history_count, memory_order_relaxed);
	struct ls_clock_segment *g = &page->history[count % LS_CLOCK_HISTORY];
	int running = atomic_load_explicit(&page->running, memory_order_relaxed);

	atomic_store_explicit(&g->base_host_ns, atomic_load_explicit(&page->base_host_ns, memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&g->base_virtual_ns, atomic_load_explicit(&page->base_virtual_ns, memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&g->scale_q32, running ? atomic_load_explicit(&page->scale_q32, memory_order_relaxed) : 0, memory_order_relaxed);
	atomic_store_explicit(&g->end_host_ns, host_ns, memory_order_relaxed);
	atomic_store_explicit(&g->end_virtual_ns, now_ns, memory_order_relaxed);
	atomic_store_explicit(&page->history_count, count + 1, memory_order_relaxed);
}

int ls_clock__create(const char *path, int64_t realtime_epoch_ns, int64_t boot_offset_ns, struct ls_clock **out)
{
	struct ls_clock_page *page;
	struct ls_clock *clock;
	int fd, err;

	if (path == NULL || out == NULL || realtime_epoch_ns < 0 || boot_offset_ns < 0)
		return -EINVAL;
	*out = NULL;
	clock = calloc(1, sizeof *clock);
	if (clock == NULL)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		err = -errno;
		goto fail_free;
	}
	if (ftruncate(fd, LS_CLOCK_PAGE_BYTES) < 0) {
		err = -errno;
		goto fail_close;
	}
	page = mmap(NULL, LS_CLOCK_PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED) {
		err = -errno;
		goto fail_close;
	}
	close(fd); /* the mapping keeps the file */

	/* A fresh truncated file reads as zeros; a shim that maps it now sees
	 * no magic and passes through. */
	page->version = LS_CLOCK_VERSION;
	page->page_bytes = LS_CLOCK_PAGE_BYTES;
	page->wait_slot_count = LS_CLOCK_WAIT_SLOTS;
	atomic_store_explicit(&page->running, 0, memory_order_relaxed);
	atomic_store_explicit(&page->base_virtual_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&page->base_host_ns, clock__host_ns(), memory_order_relaxed);
	atomic_store_explicit(&page->scale_q32, LS_CLOCK_SCALE_ONE, memory_order_relaxed);
	atomic_store_explicit(&page->realtime_epoch_ns, realtime_epoch_ns, memory_order_relaxed);
	atomic_store_explicit(&page->boot_offset_ns, boot_offset_ns, memory_order_relaxed);
	atomic_store_explicit(&page->limit_virtual_ns, INT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&page->magic, LS_CLOCK_MAGIC, memory_order_release);

	clock->page = page;
	clock->bytes = LS_CLOCK_PAGE_BYTES;
	*out = clock;
	return 0;

fail_close:
	close(fd);
fail_free:
	free(clock);
	return err;
}

int ls_clock__freeze(struct ls_clock *clock, int64_t virtual_ns)
{
	struct ls_clock_page *page;
	int64_t now_ns, host_ns;

	if (clock == NULL)
		return -EINVAL;
	page = clock->page;
	host_ns = clock__host_ns();
	now_ns = clock__now_at(page, host_ns);
	if (virtual_ns < now_ns)
		virtual_ns = now_ns;
	clock__write_begin(page);
	clock__end_run(page, host_ns, now_ns);
	atomic_store_explicit(&page->running, 0, memory_order_relaxed);
	atomic_store_explicit(&page->base_virtual_ns, virtual_ns, memory_order_relaxed);
	atomic_store_explicit(&page->base_host_ns, host_ns, memory_order_relaxed); /* when it froze (the history's) */
	clock__write_end(page);
	clock__wake_all(page);
	return 0;
}

int ls_clock__run(struct ls_clock *clock, int64_t virtual_ns, double scale)
{
	struct ls_clock_page *page;
	int64_t now_ns, host_ns;

	if (clock == NULL || !(scale > 0 && scale <= CLOCK_SCALE_MAX))
		return -EINVAL;
	page = clock->page;
	host_ns = clock__host_ns();
	now_ns = clock__now_at(page, host_ns);
	if (virtual_ns < 0)
		virtual_ns = now_ns;
	else if (virtual_ns < now_ns)
		return -EINVAL;
	clock__write_begin(page);
	clock__end_run(page, host_ns, now_ns);
	atomic_store_explicit(&page->base_virtual_ns, virtual_ns, memory_order_relaxed);
	atomic_store_explicit(&page->base_host_ns, host_ns, memory_order_relaxed);
	atomic_store_explicit(&page->scale_q32, (uint64_t)(scale * (double)LS_CLOCK_SCALE_ONE + 0.5),
			      memory_order_relaxed);
	atomic_store_explicit(&page->limit_virtual_ns, INT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&page->running, 1, memory_order_relaxed);
	clock__write_end(page);
	clock__wake_all(page);
	return 0;
}

int ls_clock__limit(struct ls_clock *clock, int64_t limit_ns)
{
	return ls_clock__limit_held(clock, limit_ns, NULL);
}

int ls_clock__limit_held(struct ls_clock *clock, int64_t limit_ns, int64_t *held_ns)
{
	struct ls_clock_page *page;
	struct ls_clock_snapshot snapshot;
	int64_t host_ns, now_ns, unheld_ns;
	int held;

	if (clock == NULL)
		return -EINVAL;
	page = clock->page; /* the controller is the only writer: read, then write */
	ls_clock__read(page, &snapshot);
	host_ns = clock__host_ns();
	now_ns = ls_clock__virtual_at(&snapshot, snapshot.running ? host_ns : 0);
	if (limit_ns < now_ns)
		limit_ns = now_ns;
	snapshot.limit_virtual_ns = INT64_MAX;
	unheld_ns = ls_clock__virtual_at(&snapshot, snapshot.running ? host_ns : 0);
	held = snapshot.running && unheld_ns > now_ns;
	if (held_ns != NULL)
		*held_ns = held ? unheld_ns - now_ns : 0;
	clock__write_begin(page);
	if (held) {
		/* it sat at the limit: it runs on from there now */
		clock__end_run(page, host_ns, now_ns);
		atomic_store_explicit(&page->base_virtual_ns, now_ns, memory_order_relaxed);
		atomic_store_explicit(&page->base_host_ns, host_ns, memory_order_relaxed);
	}
	atomic_store_explicit(&page->limit_virtual_ns, limit_ns, memory_order_relaxed);
	clock__write_end(page);
	if (held)
		clock__wake_all(page);
	return held;
}

static int clock__set(struct ls_clock *clock, int64_t virtual_ns, int wake)
{
	struct ls_clock_page *page;
	int64_t now_ns, host_ns;

	if (clock == NULL)
		return -EINVAL;
	page = clock->page;
	host_ns = clock__host_ns();
	now_ns = clock__now_at(page, host_ns);
	if (virtual_ns < now_ns)
		return -EINVAL;
	clock__write_begin(page);
	clock__end_run(page, host_ns, now_ns);
	atomic_store_explicit(&page->base_virtual_ns, virtual_ns, memory_order_relaxed);
	atomic_store_explicit(&page->base_host_ns, host_ns, memory_order_relaxed);
	atomic_store_explicit(&page->limit_virtual_ns, INT64_MAX, memory_order_relaxed);
	clock__write_end(page);
	if (wake)
		clock__wake_all(page);
	return 0;
}

int ls_clock__set(struct ls_clock *clock, int64_t virtual_ns)
{
	return clock__set(clock, virtual_ns, 1);
}

int ls_clock__jump(struct ls_clock *clock, int64_t virtual_ns)
{
	return clock__set(clock, virtual_ns, 0);
}

int ls_clock__wake(struct ls_clock *clock)
{
	if (clock == NULL)
		return -EINVAL;
	clock__wake_all(clock->page);
	return 0;
}

int64_t ls_clock__now(struct ls_clock *clock)
{
	if (clock == NULL)
		return -EINVAL;
	return clock__now(clock->page);
}

/* Copies slot i if it holds a published wait; 0 if not. The owner may
 * clear it meanwhile: the tid is read again last and must not have changed
 * (a slot reused by another thread in between is merely a fresh wait). */
static int clock__read_slot(struct ls_clock_page *page, unsigned int i, struct ls_clock_wait *out)
{
	struct ls_clock_wait_slot *slot = &page->slots[i];
	int32_t tid = atomic_load_explicit(&slot->tid, memory_order_acquire);
	int64_t deadline_ns;

	if (tid == 0 || atomic_load_explicit(&slot->state, memory_order_acquire) != LS_CLOCK_SLOT_WAITING)
		return 0;
	out->tid = tid;
	out->pid = atomic_load_explicit(&slot->pid, memory_order_relaxed);
	out->kind = atomic_load_explicit(&slot->kind, memory_order_relaxed);
	out->slot = i;
	deadline_ns = atomic_load_explicit(&slot->deadline_virtual_ns, memory_order_relaxed);
	out->deadline_virtual_ns = deadline_ns == LS_CLOCK_NO_DEADLINE ? -1 : deadline_ns;
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&slot->tid, memory_order_relaxed) == tid;
}

int ls_clock__earliest_wait(struct ls_clock *clock, int64_t *deadline_virtual_ns)
{
	int64_t earliest_ns = -1;
	int waiters = 0;

	if (clock == NULL || deadline_virtual_ns == NULL)
		return -EINVAL;
	for (unsigned int i = 0; i < LS_CLOCK_WAIT_SLOTS; i++) {
		struct ls_clock_wait wait;

		if (!clock__read_slot(clock->page, i, &wait))
			continue;
		waiters++;
		if (wait.deadline_virtual_ns >= 0 && (earliest_ns < 0 || wait.deadline_virtual_ns < earliest_ns))
			earliest_ns = wait.deadline_virtual_ns;
	}
	*deadline_virtual_ns = earliest_ns;
	return waiters;
}

int ls_clock__waits(struct ls_clock *clock, struct ls_clock_waits *out)
{
	if (clock == NULL || out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	for (unsigned int i = 0; i < LS_CLOCK_WAIT_SLOTS; i++)
		if (clock__read_slot(clock->page, i, &out->waits[out->count]))
			out->count++;
	return out->count;
}

int ls_clock__reap(struct ls_clock *clock)
{
	int reaped = 0;

	if (clock == NULL)
		return -EINVAL;
	for (unsigned int i = 0; i < LS_CLOCK_WAIT_SLOTS; i++) {
		struct ls_clock_wait_slot *slot = &clock->page->slots[i];
		int32_t tid = atomic_load_explicit(&slot->tid, memory_order_acquire);
		int32_t pid = atomic_load_explicit(&slot->pid, memory_order_relaxed);
		char task[64];

		if (tid == 0)
			continue;
		/* pid may still be 0 if the owner is between claim and fill:
		 * then look the tid up as a process (threads are found too). */
		if (pid > 0)
			snprintf(task, sizeof task, "/proc/%d/task/%d", pid, tid);
		else
			snprintf(task, sizeof task, "/proc/%d", tid);
		if (access(task, F_OK) == 0 || errno != ENOENT)
			continue;
		atomic_store_explicit(&slot->state, LS_CLOCK_SLOT_FILLING, memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&slot->tid, &tid, 0, memory_order_release,
							    memory_order_relaxed))
			reaped++;
	}
	return reaped;
}

int ls_clock__snapshot(struct ls_clock *clock, struct ls_clock_snapshot *out)
{
	if (clock == NULL || out == NULL)
		return -EINVAL;
	ls_clock__read(clock->page, out);
	return 0;
}

int ls_clock__close(struct ls_clock *clock)
{
	int err = 0;

	if (clock == NULL)
		return 0;
	if (munmap(clock->page, clock->bytes) < 0)
		err = -errno;
	free(clock);
	return err;
}
