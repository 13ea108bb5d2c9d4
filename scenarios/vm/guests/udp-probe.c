/* A request/response client: `run "ADDRESS PORT COUNT INTERVAL_MS"` sends COUNT
 * UDP requests (seq, send time, 64 bytes in all) and prints each reply's
 * round trip ("rtt seq=S ns=N"); exits 0 if all came back. */
#include "ls.h"

int main(void)
{
	static uint8_t frame[LS_GUEST_FRAME_MAX], reply[LS_GUEST_FRAME_MAX];
	uint8_t payload[64];
	char arg[96];
	const char *p;
	uint32_t target, count = 5, answered = 0;
	uint16_t port = 7;
	uint64_t interval_ns = 100000000ull;

	ls_arg(arg, sizeof arg);
	target = ls_parse_ip(arg, &p);
	if (target == 0) {
		ls_print("udp-probe: run \"ADDRESS [PORT [COUNT [INTERVAL_MS]]]\"\n");
		return 2;
	}
	for (int field = 0; field < 3 && *p != '\0'; field++) {
		long value;

		while (*p == ' ')
			p++;
		value = ls_atol(p);
		while (*p != '\0' && *p != ' ')
			p++;
		if (field == 0)
			port = (uint16_t)value;
		else if (field == 1)
			count = (uint32_t)value;
		else
			interval_ns = (uint64_t)value * 1000000ull;
	}
	memset(payload, 0, sizeof payload);
	for (uint32_t seq = 1; seq <= count; seq++) {
		uint64_t sent = ls_now(), deadline = sent + 2000000000ull;

		ls_put32(payload, seq);
		memcpy(payload + 4, &sent, 8);
		/* stamped with the time it carries: the server sees exactly when it was sent */
		ls_send_at(frame, ls_udp_frame(frame, target, 40000, port, payload, sizeof payload), sent);
		for (;;) {
			struct ls_packet packet;
			int length;

			if (!ls_wait_frame(deadline) && ls_now() >= deadline)
				break;
			length = ls_recv(reply, sizeof reply);
			if (length > 0 && ls_parse(reply, (uint32_t)length, &packet) && packet.protocol == 17 &&
			    packet.src == target && packet.payload_length >= 4 && ls_be32(packet.payload) == seq) {
				ls_printf("rtt seq=%u ns=%lu\n", seq, ls_now() - sent);
				answered++;
				break;
			}
		}
		if (seq < count)
			ls_sleep_until(sent + interval_ns);
	}
	return answered == count ? 0 : 1;
}
