// pcap files with virtual timestamps: the nanosecond-resolution format
// (magic 0xa1b23c4d, LINKTYPE_ETHERNET), which Wireshark and tshark read.
// Model frames carry only their headers: the rest of each frame is written as zeros.
import { PCAP_SNAPLEN } from '../core/limits.ts';
import type { CaptureRecord } from '../model/link.ts';

const MAGIC_NANOSECONDS = 0xa1b23c4d;
const LINKTYPE_ETHERNET = 1;

/** Both directions of a link, merged by time (ties: a→b first), as one pcap file. */
export function pcapBytes(records: readonly CaptureRecord[]): Buffer {
  const sorted = [...records].sort((x, y) => x.timeNs - y.timeNs || x.direction - y.direction);
  let size = 24;
  for (const r of sorted) size += 16 + Math.min(r.packet.wireBytes, PCAP_SNAPLEN);
  const out = Buffer.alloc(size); // zero-filled: implicit payload bytes are zeros
  out.writeUInt32LE(MAGIC_NANOSECONDS, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  out.writeInt32LE(0, 8);
  out.writeUInt32LE(0, 12);
  out.writeUInt32LE(PCAP_SNAPLEN, 16);
  out.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  let offset = 24;
  for (const r of sorted) {
    const captured = Math.min(r.packet.wireBytes, PCAP_SNAPLEN);
    out.writeUInt32LE(Math.floor(r.timeNs / 1e9), offset);
    out.writeUInt32LE(r.timeNs % 1e9, offset + 4);
    out.writeUInt32LE(captured, offset + 8);
    out.writeUInt32LE(r.packet.wireBytes, offset + 12);
    const bytes = r.packet.bytes.subarray(0, captured);
    out.set(bytes, offset + 16);
    offset += 16 + captured;
  }
  return out;
}
