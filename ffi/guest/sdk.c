/*
 * sdk.c — the LiveStack guest SDK (see ls.h): the entry point, hypercalls,
 * the clock, console formatting and the few libc functions a freestanding
 * compiler may call. Runs in ring 3 with IOPL 3: port I/O is a hypercall.
 */
#include "ls.h"

#include <stdarg.h>

#include <stddef.h>

/* This vCPU's clock page: its per-CPU block, whose address the VMM keeps in
 * the block itself (FS points at it). */
static inline volatile struct ls_guest_clock *ls__clock(void)
{
	uint64_t self;

	__asm__ volatile("mov %%fs:%c1, %0" : "=r"(self) : "i"(offsetof(struct ls_guest_clock, self)));
	return (volatile struct ls_guest_clock *)(uintptr_t)self;
}

#define CLOCK (ls__clock())
#define MAILBOX ((volatile struct ls_guest_mailbox *)((uintptr_t)ls__clock() + 0x1000))
#define RING_LOCK ((volatile uint32_t *)LS_GUEST_LOCK_GPA)

/* The rings are shared by the vCPUs: one sender or receiver at a time. */
static void ls__lock(void)
{
	while (__atomic_exchange_n(RING_LOCK, 1, __ATOMIC_ACQUIRE) != 0)
		__asm__ volatile("pause");
}

static void ls__unlock(void)
{
	__atomic_store_n(RING_LOCK, 0, __ATOMIC_RELEASE);
}

int main(void);

__attribute__((naked, section(".text.start"))) void _start(void)
{
	__asm__ volatile("and $-16, %rsp\n\t"
			 "call ls__start\n\t"
			 "ud2");
}

__attribute__((used, noreturn)) void ls__start(void)
{
	ls_exit(main());
}

static inline uint64_t ls__rdtsc(void);

/* The exit, with the TSC on both sides of it (see struct ls_guest_clock). */
static inline void ls__out(volatile struct ls_guest_clock *clock, uint32_t call)
{
	clock->exit_tsc = ls__rdtsc();
	__asm__ volatile("outl %0, %w1" : : "a"(call), "Nd"(LS_GUEST_PORT_HCALL) : "memory");
	clock->resume_tsc = ls__rdtsc();
	clock->resume_seq = clock->seq;
}

static int64_t ls__call4(uint32_t call, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
	volatile struct ls_guest_clock *clock = CLOCK;
	volatile struct ls_guest_mailbox *mailbox = (volatile struct ls_guest_mailbox *)((uintptr_t)clock + 0x1000);

	mailbox->a0 = a0;
	mailbox->a1 = a1;
	mailbox->a2 = a2;
	mailbox->a3 = a3;
	ls__out(clock, call);
	return mailbox->ret;
}

static int64_t ls__call(uint32_t call, uint64_t a0, uint64_t a1)
{
	return ls__call4(call, a0, a1, 0, 0);
}

static inline uint64_t ls__rdtsc(void)
{
	uint32_t low, high;

	__asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
	return (uint64_t)high << 32 | low;
}

uint64_t ls_now(void)
{
	volatile struct ls_guest_clock *clock = CLOCK;
	uint32_t seq;
	uint64_t base, tsc_base, mult, limit, last, now;

	do {
		seq = clock->seq;
		__asm__ volatile("" ::: "memory");
		base = clock->base_ns;
		tsc_base = clock->tsc_base;
		/* resumed from a hypercall in this quantum: the clock starts at that return */
		if (clock->resume_seq == seq && clock->resume_tsc > tsc_base)
			tsc_base = clock->resume_tsc;
		mult = clock->mult;
		limit = clock->limit_ns;
		last = clock->last_ns;
		__asm__ volatile("" ::: "memory");
	} while ((seq & 1) || seq != clock->seq);
	{
		uint64_t ticks = ls__rdtsc() - tsc_base;

		now = base + (uint64_t)(((unsigned __int128)ticks * mult) >> 32);
	}
	if ((int64_t)(ls__rdtsc() - tsc_base) < 0)
		now = base;
	if (now > limit)
		now = limit;
	if (now < last)
		now = last;
	clock->last_ns = now;
	return now;
}

uint32_t ls_cpu_id(void)
{
	return CLOCK->cpu;
}

uint32_t ls_cpu_count(void)
{
	return CLOCK->cpus;
}

/* A started vCPU begins here, on its own stack, with its start record in rdi. */
struct ls__start {
	void (*fn)(void *);
	void *arg;
};

static struct ls__start ls__starts[LS_GUEST_VCPUS_MAX];

__attribute__((used, noreturn)) void ls__cpu_main(struct ls__start *start)
{
	start->fn(start->arg);
	ls_cpu_stop();
}

__attribute__((naked)) static void ls__cpu_entry(void)
{
	__asm__ volatile("and $-16, %rsp\n\t"
			 "call ls__cpu_main\n\t"
			 "ud2");
}

int ls_cpu_start(uint32_t cpu, void (*fn)(void *), void *arg)
{
	struct ls_guest_info info;
	uint64_t stack;

	if (cpu == 0 || cpu >= ls_cpu_count() || cpu >= LS_GUEST_VCPUS_MAX)
		return -22; /* EINVAL */
	ls_info(&info);
	stack = info.memory_bytes - 64 - (uint64_t)cpu * LS_GUEST_STACK_BYTES;
	ls__starts[cpu].fn = fn;
	ls__starts[cpu].arg = arg;
	return (int)ls__call4(LS_HC_START_CPU, cpu, (uint64_t)(uintptr_t)ls__cpu_entry, (uint64_t)(uintptr_t)&ls__starts[cpu], stack);
}

void ls_cpu_stop(void)
{
	for (;;)
		ls__call(LS_HC_STOP_CPU, 0, 0);
}

void ls_sleep_until(uint64_t t)
{
	while (ls_now() < t)
		ls__call(LS_HC_WAIT_UNTIL, t, 0);
}

#define RINGS ((volatile struct ls_guest_rings *)LS_GUEST_RINGS_GPA)

static struct ls_guest_slot *ls__slot(uint64_t ring_gpa, uint32_t index)
{
	return (struct ls_guest_slot *)(uintptr_t)(ring_gpa + (uint64_t)(index % LS_GUEST_RING_SLOTS) * LS_GUEST_SLOT_BYTES);
}

int ls_wait_frame(uint64_t t)
{
	/* a frame already in the receive ring needs no exit */
	if (RINGS->rx_head != RINGS->rx_tail)
		return 1;
	return (int)ls__call(LS_HC_WAIT_UNTIL, t > INT64_MAX ? (uint64_t)-1 : t, 1);
}

int ls_send(const void *frame, uint32_t length)
{
	return ls_send_at(frame, length, ls_now());
}

int ls_send_at(const void *frame, uint32_t length, uint64_t time_ns)
{
	uint32_t head;
	struct ls_guest_slot *slot;

	if (length < 14 || length > LS_GUEST_FRAME_MAX)
		return -90; /* EMSGSIZE */
	ls__lock();
	head = RINGS->tx_head;
	/* a full ring: one exit empties it */
	while (head - __atomic_load_n(&RINGS->tx_tail, __ATOMIC_ACQUIRE) >= LS_GUEST_RING_SLOTS)
		ls__call(LS_HC_FLUSH, 0, 0);
	slot = ls__slot(LS_GUEST_TX_GPA, head);
	memcpy(slot->data, frame, length);
	slot->length = length;
	slot->time_ns = (int64_t)time_ns;
	__atomic_store_n(&RINGS->tx_head, head + 1, __ATOMIC_RELEASE);
	ls__unlock();
	return 0;
}

int ls_recv(void *buffer, uint32_t size)
{
	return ls_recv_at(buffer, size, NULL);
}

int ls_recv_at(void *buffer, uint32_t size, uint64_t *arrived_ns)
{
	uint32_t tail;
	const struct ls_guest_slot *slot;
	uint32_t length;

	ls__lock();
	tail = RINGS->rx_tail;
	if (__atomic_load_n(&RINGS->rx_head, __ATOMIC_ACQUIRE) == tail) {
		ls__unlock();
		return 0;
	}
	slot = ls__slot(LS_GUEST_RX_GPA, tail);
	length = slot->length;
	if (length > size) {
		ls__unlock();
		return -90; /* EMSGSIZE: the frame stays */
	}
	memcpy(buffer, slot->data, length);
	if (arrived_ns != NULL)
		*arrived_ns = (uint64_t)slot->time_ns;
	__atomic_store_n(&RINGS->rx_tail, tail + 1, __ATOMIC_RELEASE);
	ls__unlock();
	return (int)length;
}

void ls_info(struct ls_guest_info *info)
{
	ls__call(LS_HC_INFO, (uint64_t)(uintptr_t)info, 0);
}

int ls_arg(char *buffer, uint32_t size)
{
	return (int)ls__call(LS_HC_ARG, (uint64_t)(uintptr_t)buffer, size);
}

void ls_exit(int code)
{
	for (;;)
		ls__call(LS_HC_EXIT, (uint64_t)(int64_t)code, 0);
}

void ls_write(const char *text, uint32_t length)
{
	while (length > 0) {
		uint32_t n = length > LS_GUEST_TEXT_MAX ? LS_GUEST_TEXT_MAX : length;

		ls__call(LS_HC_PRINT, (uint64_t)(uintptr_t)text, n);
		text += n;
		length -= n;
	}
}

void ls_print(const char *text)
{
	ls_write(text, (uint32_t)strlen(text));
}

/* ---- formatting: one buffer, one hypercall per ls_printf ---------------- */

struct ls__out {
	char buffer[LS_GUEST_TEXT_MAX];
	uint32_t used;
	int total;
};

static void ls__put(struct ls__out *out, char c)
{
	if (out->used == sizeof out->buffer) {
		ls_write(out->buffer, out->used);
		out->used = 0;
	}
	out->buffer[out->used++] = c;
	out->total++;
}

static void ls__number(struct ls__out *out, uint64_t value, int negative, unsigned base, int width, char pad)
{
	char digits[24];
	int n = 0;

	do {
		unsigned d = (unsigned)(value % base);

		digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		value /= base;
	} while (value != 0);
	if (negative)
		width--;
	if (negative && pad == '0')
		ls__put(out, '-');
	for (int i = n; i < width; i++)
		ls__put(out, pad);
	if (negative && pad != '0')
		ls__put(out, '-');
	while (n > 0)
		ls__put(out, digits[--n]);
}

int ls_printf(const char *format, ...)
{
	struct ls__out out;
	va_list args;

	out.used = 0;
	out.total = 0;
	va_start(args, format);
	for (const char *p = format; *p != '\0'; p++) {
		int longs = 0, width = 0;
		char pad = ' ';

		if (*p != '%') {
			ls__put(&out, *p);
			continue;
		}
		p++;
		if (*p == '0')
			pad = '0';
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		while (*p == 'l') {
			longs++;
			p++;
		}
		switch (*p) {
		case 'd':
		case 'i': {
			int64_t v = longs ? va_arg(args, int64_t) : va_arg(args, int);

			ls__number(&out, v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v, v < 0, 10, width, pad);
			break;
		}
		case 'u':
			ls__number(&out, longs ? va_arg(args, uint64_t) : va_arg(args, unsigned), 0, 10, width, pad);
			break;
		case 'x':
			ls__number(&out, longs ? va_arg(args, uint64_t) : va_arg(args, unsigned), 0, 16, width, pad);
			break;
		case 's': {
			const char *s = va_arg(args, const char *);

			for (s = s == NULL ? "(null)" : s; *s != '\0'; s++)
				ls__put(&out, *s);
			break;
		}
		case 'c':
			ls__put(&out, (char)va_arg(args, int));
			break;
		case '%':
			ls__put(&out, '%');
			break;
		case '\0':
			p--;
			break;
		default:
			ls__put(&out, '%');
			ls__put(&out, *p);
		}
	}
	va_end(args);
	if (out.used > 0)
		ls_write(out.buffer, out.used);
	return out.total;
}

/* ---- libc subset --------------------------------------------------------- */

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d < s || d >= s + n)
		return memcpy(dst, src, n);
	while (n-- > 0)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n] != '\0')
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

long ls_atol(const char *s)
{
	long v = 0;
	int negative = 0;

	while (*s == ' ')
		s++;
	if (*s == '-') {
		negative = 1;
		s++;
	}
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return negative ? -v : v;
}

uint16_t ls_checksum(const void *data, uint32_t length)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (uint32_t i = 0; i + 1 < length; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (length & 1)
		sum += (uint32_t)p[length - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void ls_mac_of(uint8_t mac[6], uint32_t address)
{
	/* 198.18.0.0/15: .0 and .255 of every /24 are skipped (dsl/plan.ts hostAddress) */
	uint32_t offset = address - ((198u << 24) | (18u << 16));
	uint32_t index = (offset >> 8) * 254 + (offset & 0xff) - 1;

	mac[0] = 0x02;
	mac[1] = 0x4c;
	mac[2] = 0x53;
	mac[3] = (uint8_t)(index >> 16);
	mac[4] = (uint8_t)(index >> 8);
	mac[5] = (uint8_t)index;
}
