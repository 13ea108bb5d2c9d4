/* A ping responder: answers every ICMP echo request sent to this host, and
 * logs each with the virtual time it arrived ("echo seq=S from=A at=T", T the
 * arrival time the network gave it). It never exits: pair it with
 * `until CLIENT exits` or a duration. */
#include "ls.h"

int main(void)
{
	static uint8_t frame[LS_GUEST_FRAME_MAX];

	for (;;) {
		uint64_t at;
		int length;

		ls_wait_frame(UINT64_MAX);

		while ((length = ls_recv_at(frame, sizeof frame, &at)) > 0) {
			struct ls_packet packet;

			if (!ls_parse(frame, (uint32_t)length, &packet) || packet.protocol != 1 || packet.icmp_type != 8)
				continue;
			{
				uint32_t seq = ls_be16(packet.payload - 2); /* the ICMP sequence number */

				if (ls_icmp_echo_reply(frame, (uint32_t)length))
					ls_send(frame, (uint32_t)length);
				ls_printf("echo seq=%u from=%u.%u.%u.%u at=%lu\n", seq, packet.src >> 24, (packet.src >> 16) & 255,
					  (packet.src >> 8) & 255, packet.src & 255, at);
			}
		}
	}
}
