// Packets are real frames: Ethernet II + IPv4 + UDP or TCP headers in a byte
// buffer, so live cells (taps) plug into the same links unchanged. Model apps
// carry only headers and a small app header; `wireBytes` is the full frame
// length on the wire (the rest is implicit zero payload).

export const ETH_HEADER = 14;
export const IPV4_HEADER = 20;
export const UDP_HEADER = 8;
export const TCP_HEADER = 20;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

/** The app header model apps put at the start of their payload (28 bytes). */
export const APP_HEADER = 28;
const APP_MAGIC = 0x4c53; // "LS"

export const enum AppMessage {
  Data = 1,
  Request = 2,
  Reply = 3,
}

export interface Packet {
  bytes: Uint8Array;
  wireBytes: number;
}

/** Locally administered MAC for host index i: 02:4c:53:ii:ii:ii. */
export function hostMac(index: number): Uint8Array {
  return Uint8Array.of(0x02, 0x4c, 0x53, (index >>> 16) & 255, (index >>> 8) & 255, index & 255);
}

export function ipToInt(address: string): number {
  const parts = address.split('.').map(Number);
  return (((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0);
}

export function intToIp(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function macIndex(bytes: Uint8Array, offset: number): number {
  if (bytes[offset] !== 0x02 || bytes[offset + 1] !== 0x4c || bytes[offset + 2] !== 0x53) return -1;
  return (bytes[offset + 3]! << 16) | (bytes[offset + 4]! << 8) | bytes[offset + 5]!;
}

/** Destination host index of a frame (from the destination MAC), or -1. */
export function destinationIndex(packet: Packet): number {
  return macIndex(packet.bytes, 0);
}

export function etherType(packet: Packet): number {
  return (packet.bytes[12]! << 8) | packet.bytes[13]!;
}

function ipChecksum(bytes: Uint8Array, offset: number): number {
  let sum = 0;
  for (let i = 0; i < IPV4_HEADER; i += 2) sum += (bytes[offset + i]! << 8) | bytes[offset + i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface AppFields {
  message: AppMessage;
  requestId: number;
  /** segment number within a message */
  segment: number;
  /** bytes of the whole message (all segments) */
  totalBytes: number;
  /** for requests: the size of the reply asked for */
  replyBytes: number;
  /** virtual time the message was first sent (ns) */
  sentNs: number;
}

export interface FrameSpec {
  srcIndex: number;
  dstIndex: number;
  srcIp: number;
  dstIp: number;
  protocol: typeof PROTO_UDP | typeof PROTO_TCP;
  srcPort: number;
  dstPort: number;
  /** IP packet length (header + transport + payload), ≥ headers + APP_HEADER */
  ipBytes: number;
  /** TCP sequence number (bytes), ignored for UDP */
  tcpSeq?: number;
  ipId: number;
  app: AppFields;
}

/** Builds a frame; only the headers and the app header are materialised. */
export function buildFrame(spec: FrameSpec): Packet {
  const transport = spec.protocol === PROTO_UDP ? UDP_HEADER : TCP_HEADER;
  const headerBytes = ETH_HEADER + IPV4_HEADER + transport + APP_HEADER;
  const bytes = new Uint8Array(headerBytes);
  const view = new DataView(bytes.buffer);
  bytes.set(hostMac(spec.dstIndex), 0);
  bytes.set(hostMac(spec.srcIndex), 6);
  view.setUint16(12, ETHERTYPE_IPV4);
  const ip = ETH_HEADER;
  bytes[ip] = 0x45;
  view.setUint16(ip + 2, spec.ipBytes);
  view.setUint16(ip + 4, spec.ipId & 0xffff);
  view.setUint16(ip + 6, 0x4000); // don't fragment
  bytes[ip + 8] = 64;
  bytes[ip + 9] = spec.protocol;
  view.setUint32(ip + 12, spec.srcIp);
  view.setUint32(ip + 16, spec.dstIp);
  view.setUint16(ip + 10, ipChecksum(bytes, ip));
  const l4 = ip + IPV4_HEADER;
  view.setUint16(l4, spec.srcPort);
  view.setUint16(l4 + 2, spec.dstPort);
  if (spec.protocol === PROTO_UDP) {
    view.setUint16(l4 + 4, spec.ipBytes - IPV4_HEADER);
    // checksum 0: "no checksum" is valid for UDP over IPv4 (RFC 768)
  } else {
    view.setUint32(l4 + 4, (spec.tcpSeq ?? 0) >>> 0);
    bytes[l4 + 12] = (TCP_HEADER / 4) << 4;
    bytes[l4 + 13] = 0x18; // PSH, ACK
    view.setUint16(l4 + 14, 65535);
  }
  const app = l4 + transport;
  view.setUint16(app, APP_MAGIC);
  bytes[app + 2] = spec.app.message;
  view.setUint32(app + 4, spec.app.requestId >>> 0);
  view.setUint32(app + 8, spec.app.segment >>> 0);
  view.setUint32(app + 12, spec.app.totalBytes >>> 0);
  view.setUint32(app + 16, spec.app.replyBytes >>> 0);
  view.setFloat64(app + 20, spec.app.sentNs);
  return { bytes, wireBytes: ETH_HEADER + spec.ipBytes };
}

export interface ParsedFrame {
  srcIndex: number;
  dstIndex: number;
  srcIp: number;
  dstIp: number;
  protocol: number;
  srcPort: number;
  dstPort: number;
  ipBytes: number;
  /** payload bytes after the transport header */
  payloadBytes: number;
  app: AppFields | null;
}

/** Parses the headers of an IPv4 UDP/TCP frame; null for anything else. */
export function parseFrame(packet: Packet): ParsedFrame | null {
  const bytes = packet.bytes;
  if (bytes.length < ETH_HEADER + IPV4_HEADER + UDP_HEADER || etherType(packet) !== ETHERTYPE_IPV4) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ip = ETH_HEADER;
  const ihl = (bytes[ip]! & 0x0f) * 4;
  const protocol = bytes[ip + 9]!;
  const ipBytes = view.getUint16(ip + 2);
  const l4 = ip + ihl;
  const transport = protocol === PROTO_TCP ? ((bytes[l4 + 12]! >> 4) * 4 || TCP_HEADER) : UDP_HEADER;
  if (protocol !== PROTO_UDP && protocol !== PROTO_TCP) return null;
  const appOffset = l4 + transport;
  let app: AppFields | null = null;
  if (bytes.length >= appOffset + APP_HEADER && view.getUint16(appOffset) === APP_MAGIC) {
    app = {
      message: bytes[appOffset + 2]! as AppMessage,
      requestId: view.getUint32(appOffset + 4),
      segment: view.getUint32(appOffset + 8),
      totalBytes: view.getUint32(appOffset + 12),
      replyBytes: view.getUint32(appOffset + 16),
      sentNs: view.getFloat64(appOffset + 20),
    };
  }
  return {
    srcIndex: macIndex(bytes, 6),
    dstIndex: macIndex(bytes, 0),
    srcIp: view.getUint32(ip + 12),
    dstIp: view.getUint32(ip + 16),
    protocol,
    srcPort: view.getUint16(l4),
    dstPort: view.getUint16(l4 + 2),
    ipBytes,
    payloadBytes: ipBytes - ihl - transport,
    app,
  };
}

/** An Ethernet + ARP frame (RFC 826, Ethernet/IPv4), padded on the wire to the 60-byte minimum. */
function arpFrame(
  op: 1 | 2, destinationMac: Uint8Array, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number,
): Packet {
  const bytes = new Uint8Array(ETH_HEADER + 28);
  const view = new DataView(bytes.buffer);
  bytes.set(destinationMac, 0);
  bytes.set(senderMac, 6);
  view.setUint16(12, ETHERTYPE_ARP);
  const a = ETH_HEADER;
  view.setUint16(a, 1); // Ethernet
  view.setUint16(a + 2, ETHERTYPE_IPV4);
  bytes[a + 4] = 6;
  bytes[a + 5] = 4;
  view.setUint16(a + 6, op); // 1 request, 2 reply
  bytes.set(senderMac, a + 8);
  view.setUint32(a + 14, senderIp);
  bytes.set(targetMac, a + 18);
  view.setUint32(a + 24, targetIp);
  return { bytes, wireBytes: Math.max(60, bytes.length) };
}

const BROADCAST_MAC = new Uint8Array(6).fill(0xff);
const UNKNOWN_MAC = new Uint8Array(6);

/** An ARP request (who-has targetIp tell srcIp), as a live host's kernel sends it. */
export function buildArpRequest(srcIndex: number, srcIp: number, targetIp: number): Packet {
  return arpFrame(1, BROADCAST_MAC, hostMac(srcIndex), srcIp, UNKNOWN_MAC, targetIp);
}

/**
 * The network answers ARP (no broadcast flooding in the model): the reply
 * names the MAC of the host that owns the target address, or null if none does.
 */
export function arpReply(request: Packet, ownerOf: (ip: number) => number): Packet | null {
  const bytes = request.bytes;
  if (bytes.length < ETH_HEADER + 28 || etherType(request) !== ETHERTYPE_ARP) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a = ETH_HEADER;
  if (view.getUint16(a + 6) !== 1) return null;
  const senderMac = bytes.slice(a + 8, a + 14);
  const owner = ownerOf(view.getUint32(a + 24));
  if (owner < 0) return null;
  // from the owner, to the asker: sender = (owner's MAC, the asked address), target = the asker
  return arpFrame(2, senderMac, hostMac(owner), view.getUint32(a + 24), senderMac, view.getUint32(a + 14));
}
