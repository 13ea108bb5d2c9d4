import test from 'ava';
import { hostAddress } from '../../../dsl/plan.ts';
import {
  AppMessage, arpReply, buildArpRequest, buildFrame, destinationIndex, ETHERTYPE_ARP, etherType, hostMac, intToIp, ipToInt, parseFrame, PROTO_TCP, PROTO_UDP,
} from '../../../runtime/model/packet.ts';

test('frames carry real Ethernet/IPv4/UDP headers with a valid IPv4 checksum', (t) => {
  const packet = buildFrame({
    srcIndex: 1, dstIndex: 300, srcIp: ipToInt('198.18.0.2'), dstIp: ipToInt(hostAddress(300)), protocol: PROTO_UDP, srcPort: 40000, dstPort: 9,
    ipBytes: 1000, ipId: 7, app: { message: AppMessage.Data, requestId: 3, segment: 4, totalBytes: 1000, replyBytes: 0, sentNs: 123456789 },
  });
  t.is(packet.wireBytes, 1014);
  t.is(etherType(packet), 0x0800);
  t.is(destinationIndex(packet), 300);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (packet.bytes[i]! << 8) | packet.bytes[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  t.is(sum, 0xffff);
  const frame = parseFrame(packet)!;
  t.is(intToIp(frame.dstIp), '198.18.1.47');
  t.is(frame.protocol, PROTO_UDP);
  t.is(frame.dstPort, 9);
  t.is(frame.payloadBytes, 1000 - 28);
  t.deepEqual(frame.app, { message: AppMessage.Data, requestId: 3, segment: 4, totalBytes: 1000, replyBytes: 0, sentNs: 123456789 });
});

test('TCP segments carry the sequence number and PSH|ACK', (t) => {
  const packet = buildFrame({
    srcIndex: 0, dstIndex: 1, srcIp: 1, dstIp: 2, protocol: PROTO_TCP, srcPort: 41000, dstPort: 7, ipBytes: 1500, tcpSeq: 2920, ipId: 0,
    app: { message: AppMessage.Request, requestId: 9, segment: 2, totalBytes: 5000, replyBytes: 100, sentNs: 0 },
  });
  const view = new DataView(packet.bytes.buffer);
  t.is(view.getUint32(14 + 20 + 4), 2920);
  t.is(packet.bytes[14 + 20 + 13], 0x18);
  t.is(parseFrame(packet)!.payloadBytes, 1460);
});

test('the network answers ARP with the owner of the address', (t) => {
  const owner = (ip: number) => (ip === ipToInt('198.18.0.9') ? 8 : -1);
  const request = buildArpRequest(2, ipToInt('198.18.0.3'), ipToInt('198.18.0.9'));
  t.is(etherType(request), ETHERTYPE_ARP);
  const reply = arpReply(request, owner)!;
  t.truthy(reply);
  t.deepEqual([...reply.bytes.slice(0, 6)], [...hostMac(2)]); // to the asker
  t.deepEqual([...reply.bytes.slice(6, 12)], [...hostMac(8)]); // from the owner
  const view = new DataView(reply.bytes.buffer);
  t.is(view.getUint16(14 + 6), 2); // reply
  t.deepEqual([...reply.bytes.slice(14 + 8, 14 + 14)], [...hostMac(8)]);
  t.is(intToIp(view.getUint32(14 + 14)), '198.18.0.9');
  t.is(arpReply(buildArpRequest(2, 1, ipToInt('198.18.0.77')), owner), null);
});
