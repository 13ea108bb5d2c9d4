/* An ICMP echo client: `run "ADDRESS COUNT INTERVAL_MS"` (default 5 pings,
 * 200 ms apart) prints "reply seq=S time=T ms" for each reply, like ping, and
 * exits 0 if every request was answered, 1 if not. */
#include "ls.h"

#define WAIT_NS 2000000000ull

int main(void)
{
	static uint8_t frame[LS_GUEST_FRAME_MAX], reply[LS_GUEST_FRAME_MAX];
	char arg[96];
	const char *p;
	uint32_t target, count = 5, answered = 0;
	uint64_t interval_ns = 200000000ull;

	ls_arg(arg, sizeof arg);
	target = ls_parse_ip(arg, &p);
	if (target == 0) {
		ls_print("pinger: run \"ADDRESS [COUNT [INTERVAL_MS]]\"\n");
		return 2;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0')
		count = (uint32_t)ls_atol(p);
	while (*p != '\0' && *p != ' ')
		p++;
	if (*p == ' ')
		interval_ns = (uint64_t)ls_atol(p) * 1000000ull;
	for (uint32_t seq = 1; seq <= count; seq++) {
		uint64_t sent, deadline;
		uint32_t at = ls_ip_header(frame, target, 1);
		uint8_t *icmp = frame + at;

		icmp[0] = 8;
		icmp[1] = 0;
		ls_put16(icmp + 2, 0);
		ls_put16(icmp + 4, 0x4c53);
		ls_put16(icmp + 6, (uint16_t)seq);
		for (int i = 0; i < 56; i++)
			icmp[8 + i] = (uint8_t)i;
		ls_put16(icmp + 2, ls_checksum(icmp, 64));
		at += 64;
		ls_ip_finish(frame, at);
		sent = ls_now();
		ls_send(frame, at);
		deadline = sent + WAIT_NS;
		for (;;) {
			struct ls_packet packet;
			int length;

			if (!ls_wait_frame(deadline) && ls_now() >= deadline)
				break;
			length = ls_recv(reply, sizeof reply);
			if (length <= 0)
				continue;
			if (ls_parse(reply, (uint32_t)length, &packet) && packet.protocol == 1 && packet.icmp_type == 0 &&
			    packet.src == target && ls_be16(packet.payload - 2) == seq) {
				uint64_t rtt = ls_now() - sent;

				ls_printf("reply seq=%u time=%lu.%03lu ms\n", seq, rtt / 1000000, rtt / 1000 % 1000);
				answered++;
				break;
			}
		}
		if (seq < count)
			ls_sleep_until(sent + interval_ns);
	}
	ls_printf("%u packets transmitted, %u received\n", count, answered);
	return answered == count ? 0 : 1;
}
