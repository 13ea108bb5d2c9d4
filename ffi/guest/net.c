/*
 * net.c — Ethernet/IPv4/UDP/ICMP for guest programs: just enough to be a host
 * of the simulated network (MACs follow the network's rule, ls_mac_of: there
 * is no ARP; checksums are computed; UDP checksums are 0, which IPv4 allows).
 */
#include "ls.h"

static struct ls_guest_info ls__self_info;
static int ls__self_known;

uint32_t ls_self(void)
{
	if (!ls__self_known) {
		ls_info(&ls__self_info);
		ls__self_known = 1;
	}
	return ls__self_info.address;
}

uint32_t ls_parse_ip(const char *text, const char **end)
{
	uint32_t address = 0;

	for (int part = 0; part < 4; part++) {
		uint32_t value = 0;
		int digits = 0;

		while (*text >= '0' && *text <= '9' && digits < 3) {
			value = value * 10 + (uint32_t)(*text++ - '0');
			digits++;
		}
		if (digits == 0 || value > 255)
			return 0;
		address = address << 8 | value;
		if (part < 3 && *text++ != '.')
			return 0;
	}
	if (end != NULL)
		*end = text;
	return address;
}

uint32_t ls_ip_header(uint8_t *frame, uint32_t dst, uint8_t protocol)
{
	static uint16_t id;
	uint32_t self = ls_self();
	uint8_t *ip = frame + LS_ETH_HEADER;

	ls_mac_of(frame, dst);
	ls_mac_of(frame + 6, self);
	ls_put16(frame + 12, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	ls_put16(ip + 4, ++id);
	ls_put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = protocol;
	ls_put32(ip + 12, self);
	ls_put32(ip + 16, dst);
	return LS_ETH_HEADER + LS_IP_HEADER;
}

void ls_ip_finish(uint8_t *frame, uint32_t frame_length)
{
	uint8_t *ip = frame + LS_ETH_HEADER;

	ls_put16(ip + 2, (uint16_t)(frame_length - LS_ETH_HEADER));
	ls_put16(ip + 10, 0);
	ls_put16(ip + 10, ls_checksum(ip, LS_IP_HEADER));
}

uint32_t ls_udp_frame(uint8_t *frame, uint32_t dst, uint16_t src_port, uint16_t dst_port, const void *payload, uint32_t length)
{
	uint32_t at = ls_ip_header(frame, dst, 17);
	uint8_t *udp = frame + at;

	ls_put16(udp, src_port);
	ls_put16(udp + 2, dst_port);
	ls_put16(udp + 4, (uint16_t)(LS_UDP_HEADER + length));
	ls_put16(udp + 6, 0);
	memcpy(udp + LS_UDP_HEADER, payload, length);
	at += LS_UDP_HEADER + length;
	ls_ip_finish(frame, at);
	return at;
}

int ls_parse(const uint8_t *frame, uint32_t length, struct ls_packet *packet)
{
	const uint8_t *ip = frame + LS_ETH_HEADER;
	uint32_t header, total;

	if (length < LS_ETH_HEADER + LS_IP_HEADER || ls_be16(frame + 12) != 0x0800 || (ip[0] >> 4) != 4)
		return 0;
	header = (uint32_t)(ip[0] & 0xf) * 4;
	total = ls_be16(ip + 2);
	if (header < LS_IP_HEADER || total < header || LS_ETH_HEADER + total > length)
		return 0;
	memset(packet, 0, sizeof *packet);
	packet->src = ls_be32(ip + 12);
	packet->dst = ls_be32(ip + 16);
	packet->protocol = ip[9];
	if (packet->dst != ls_self())
		return 0;
	if (packet->protocol == 17 && total >= header + LS_UDP_HEADER) {
		packet->src_port = ls_be16(ip + header);
		packet->dst_port = ls_be16(ip + header + 2);
		packet->payload = ip + header + LS_UDP_HEADER;
		packet->payload_length = total - header - LS_UDP_HEADER;
		return 1;
	}
	if (packet->protocol == 1 && total >= header + LS_ICMP_HEADER) {
		packet->icmp_type = ip[header];
		packet->payload = ip + header + LS_ICMP_HEADER;
		packet->payload_length = total - header - LS_ICMP_HEADER;
		return 1;
	}
	return 0;
}

int ls_icmp_echo_reply(uint8_t *frame, uint32_t length)
{
	struct ls_packet packet;
	uint8_t *ip = frame + LS_ETH_HEADER, *icmp;
	uint32_t header, total;

	if (!ls_parse(frame, length, &packet) || packet.protocol != 1 || packet.icmp_type != 8)
		return 0;
	header = (uint32_t)(ip[0] & 0xf) * 4;
	total = ls_be16(ip + 2);
	icmp = ip + header;
	/* back to the sender: MACs by the network's rule, addresses swapped */
	ls_mac_of(frame, packet.src);
	ls_mac_of(frame + 6, packet.dst);
	ls_put32(ip + 12, packet.dst);
	ls_put32(ip + 16, packet.src);
	ip[8] = 64;
	ls_put16(ip + 10, 0);
	ls_put16(ip + 10, ls_checksum(ip, header));
	icmp[0] = 0; /* echo reply */
	ls_put16(icmp + 2, 0);
	ls_put16(icmp + 2, ls_checksum(icmp, total - header));
	return 1;
}
