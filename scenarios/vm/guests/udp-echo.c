/* A request/response server: every UDP datagram to port `run "PORT"` (default
 * 7) is answered with the same payload, and logged with the virtual time it
 * arrived (the network's arrival time) and the send time its first 8 bytes carry, if any
 * ("recv seq=S sent=X at=T"; udp-probe.c sends such payloads). ICMP echo
 * requests are answered too. */
#include "ls.h"

int main(void)
{
	static uint8_t frame[LS_GUEST_FRAME_MAX], out[LS_GUEST_FRAME_MAX];
	char arg[16];
	uint16_t port;

	ls_arg(arg, sizeof arg);
	port = arg[0] != '\0' ? (uint16_t)ls_atol(arg) : 7;
	for (;;) {
		uint64_t at;
		int length;

		ls_wait_frame(UINT64_MAX);

		while ((length = ls_recv_at(frame, sizeof frame, &at)) > 0) {
			struct ls_packet packet;

			/* it answers ping too, as a host's kernel would */
			if (ls_icmp_echo_reply(frame, (uint32_t)length)) {
				ls_send(frame, (uint32_t)length);
				continue;
			}
			if (!ls_parse(frame, (uint32_t)length, &packet) || packet.protocol != 17 || packet.dst_port != port)
				continue;
			ls_send(out, ls_udp_frame(out, packet.src, port, packet.src_port, packet.payload, packet.payload_length));
			if (packet.payload_length >= 12) {
				uint64_t sent;

				memcpy(&sent, packet.payload + 4, 8);
				ls_printf("recv seq=%u sent=%lu at=%lu\n", ls_be32(packet.payload), sent, at);
			}
		}
	}
}
