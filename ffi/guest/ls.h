/*
 * ls.h — the LiveStack guest SDK: what a `kind vm` guest program may call.
 * Freestanding: no libc; the program's main(void) returns its exit code.
 *
 *   #include "ls.h"
 *   int main(void) { ls_printf("hello at %lu ns\n", ls_now()); return 0; }
 *
 * Build: LiveStack builds `image "prog.c"` itself (runtime/live/guest.ts);
 * by hand: cc $(LS_GUEST_CFLAGS) -T ffi/guest/guest.ld ffi/guest/sdk.c prog.c.
 * Virtual time advances only while the guest computes; ls_sleep_until and
 * ls_wait_frame hand the CPU back and let the simulation skip idle time.
 */
#ifndef LS_GUEST_SDK_H
#define LS_GUEST_SDK_H

#include "livestack-guest.h"

#include <stddef.h>
#include <stdint.h>

/* virtual time in ns (from the clock page: no exit) */
uint64_t ls_now(void);
/* idle until virtual time t (no CPU used, no virtual time counted as work) */
void ls_sleep_until(uint64_t t);
/* idle until a frame is waiting or until t (UINT64_MAX: no deadline); 1 if a frame is waiting */
int ls_wait_frame(uint64_t t);
/* sends an Ethernet frame (14-byte header + payload) at the current virtual time; 0 or -errno */
int ls_send(const void *frame, uint32_t length);
/* ...stamped with a time the guest read (<= now; the VMM keeps a guest's frames in order and never in the future) */
int ls_send_at(const void *frame, uint32_t length, uint64_t time_ns);
/* the oldest frame that has arrived: its length, 0 if none, -errno */
int ls_recv(void *buffer, uint32_t size);
/* ...and the virtual time it arrived (exactly: its send time plus the network's delay) */
int ls_recv_at(void *buffer, uint32_t size, uint64_t *arrived_ns);
/* the host's address, MAC, memory */
void ls_info(struct ls_guest_info *info);
/* the text of the host's `run "…"`, NUL-terminated; returns its full length */
int ls_arg(char *buffer, uint32_t size);
void ls_exit(int code) __attribute__((noreturn));

/* vCPUs (`cpus N` on the host): main() runs on vCPU 0; ls_cpu_start runs fn(arg) on a parked vCPU
 * (1..count-1) on a stack of its own, from the caller's time (at the next window at the latest);
 * when fn returns, that vCPU parks for good. Each vCPU keeps its own clock (ls_now). 0 or -errno. */
uint32_t ls_cpu_count(void);
uint32_t ls_cpu_id(void);
int ls_cpu_start(uint32_t cpu, void (*fn)(void *), void *arg);
void ls_cpu_stop(void) __attribute__((noreturn));

/* console output (logged with its virtual time; `metric … from HOST` reads it) */
void ls_print(const char *text);
void ls_write(const char *text, uint32_t length);
/* %d %i %u %x %ld %lu %lx %lld %llu %s %c %% and a width: %5d %08lx */
int ls_printf(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* what the compiler may call */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
long ls_atol(const char *s);

/* network helpers: big-endian loads/stores and the Internet checksum */
static inline uint16_t ls_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ls_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void ls_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void ls_put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
uint16_t ls_checksum(const void *data, uint32_t length);
/* a MAC the simulated network uses for a host index (the same as its process cells) */
void ls_mac_of(uint8_t mac[6], uint32_t address);

/* ---- frames (net.c) ------------------------------------------------------ */
#define LS_ETH_HEADER 14
#define LS_IP_HEADER 20
#define LS_UDP_HEADER 8
#define LS_ICMP_HEADER 8
#define LS_UDP_PAYLOAD (LS_ETH_HEADER + LS_IP_HEADER + LS_UDP_HEADER)

/* "198.18.0.2" -> address in host byte order; 0 if malformed. *end (if not NULL) points past it. */
uint32_t ls_parse_ip(const char *text, const char **end);
/* Ethernet + IPv4 header toward dst (from this guest); returns the frame length so far (34).
 * The IP total length and checksum are filled by ls_ip_finish once the payload is in. */
uint32_t ls_ip_header(uint8_t *frame, uint32_t dst, uint8_t protocol);
void ls_ip_finish(uint8_t *frame, uint32_t frame_length);
/* a whole UDP frame; returns its length */
uint32_t ls_udp_frame(uint8_t *frame, uint32_t dst, uint16_t src_port, uint16_t dst_port, const void *payload, uint32_t length);

/* A received IPv4 frame, taken apart (pointers into the frame). */
struct ls_packet {
	uint32_t src, dst;
	uint8_t protocol;
	uint16_t src_port, dst_port;   /* UDP */
	uint8_t icmp_type;             /* ICMP */
	const uint8_t *payload;        /* after the UDP or ICMP header */
	uint32_t payload_length;
};
/* 1 if the frame is IPv4 (UDP or ICMP) for this guest, 0 otherwise */
int ls_parse(const uint8_t *frame, uint32_t length, struct ls_packet *packet);
/* Turns an ICMP echo request frame into its reply in place; 1 if it was one. */
int ls_icmp_echo_reply(uint8_t *frame, uint32_t length);
/* The address of this guest (cached ls_info). */
uint32_t ls_self(void);

#endif /* LS_GUEST_SDK_H */
