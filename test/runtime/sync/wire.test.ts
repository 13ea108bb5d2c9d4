// The wire format (runtime/sync/wire.ts) and the split (split.ts), without sockets:
// events survive encoding bit for bit, frames are cut correctly at any chunk
// boundary, bad headers are refused before their payload is buffered, proofs
// depend on the token and both nonces, and the split respects placement and cuts
// at the highest latencies.
import test from 'ava';
import { SimEvent } from '../../../runtime/core/events.ts';
import { Rng } from '../../../runtime/core/random.ts';
import { buildFrame, PROTO_UDP, AppMessage } from '../../../runtime/model/packet.ts';
import { lookahead, splitPlan } from '../../../runtime/sync/split.ts';
import {
  encodeFrame, EventWriter, tokenFromText, FrameReader, FrameType, MAX_PREAUTH_FRAME_BYTES, newNonce, proof, proofMatches, readEvents, readGroups, WireError,
} from '../../../runtime/sync/wire.ts';
import { planOf } from '../model/helpers.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);

function randomEvent(rng: Rng): SimEvent {
  const packet = rng.chance(0.5)
    ? buildFrame({
      srcIndex: rng.below(1000), dstIndex: rng.below(1000), srcIp: rng.below(2 ** 31), dstIp: rng.below(2 ** 31), protocol: PROTO_UDP,
      srcPort: rng.below(65536), dstPort: rng.below(65536), ipBytes: 100 + rng.below(1400), ipId: rng.below(65536),
      app: { message: AppMessage.Data, requestId: rng.below(1e6), segment: 0, totalBytes: 1000, replyBytes: 0, sentNs: rng.below(1e12) },
    })
    : null;
  const time = rng.chance(0.1) ? Number.MAX_SAFE_INTEGER - rng.below(1000) : rng.below(2 ** 40);
  const seq = rng.chance(0.1) ? 2 ** 47 + rng.below(1e6) : rng.below(1e6);
  return new SimEvent(time, rng.below(2 ** 31), seq, rng.below(2 ** 31), 1 + rng.below(6), rng.below(2 ** 31) - 2 ** 30, packet);
}

test('events survive the encoding exactly, packets included', (t) => {
  t.log(`seed ${seed}`);
  const rng = new Rng(seed, 'events');
  const events = Array.from({ length: 500 }, () => randomEvent(rng));
  const writer = new EventWriter(16);
  for (const e of events) writer.event(e);
  const bytes = writer.take();
  const back: SimEvent[] = [];
  t.is(readEvents(bytes, 0, events.length, back), bytes.length);
  t.deepEqual(back.map((e) => ({ ...e, data: e.data === null ? null : { bytes: [...(e.data as { bytes: Uint8Array }).bytes], wireBytes: (e.data as { wireBytes: number }).wireBytes } })),
    events.map((e) => ({ ...e, data: e.data === null ? null : { bytes: [...(e.data as { bytes: Uint8Array }).bytes], wireBytes: (e.data as { wireBytes: number }).wireBytes } })));
});

test('data that cannot cross partitions is refused when sent, not garbled', (t) => {
  const writer = new EventWriter();
  t.throws(() => writer.event(new SimEvent(1, 2, 3, 4, 5, 6, { something: 'else' })), { message: /cannot cross partitions/ });
  t.throws(() => writer.event(new SimEvent(1, 2, 3, 4, 300, 6, null)), { message: /kind 300/ });
});

test('frames are read whole whatever the chunk boundaries', (t) => {
  const rng = new Rng(seed, 'chunks');
  const payloads = Array.from({ length: 40 }, (_, i) => Buffer.from(Array.from({ length: rng.below(3000) }, () => rng.below(256))).subarray(0, i === 0 ? 0 : undefined));
  const stream = Buffer.concat(payloads.map((p) => encodeFrame(FrameType.Events, p)));
  const reader = new FrameReader(1 << 20);
  const got: Buffer[] = [];
  for (let offset = 0; offset < stream.length;) {
    const n = 1 + rng.below(700);
    for (const f of reader.push(stream.subarray(offset, offset + n))) got.push(f.payload);
    offset += n;
  }
  t.deepEqual(got.map((b) => b.toString('hex')), payloads.map((b) => b.toString('hex')));
});

test('bad headers are refused before the payload: magic, version, type, size', (t) => {
  const bad = (bytes: Buffer, limit = MAX_PREAUTH_FRAME_BYTES) => t.throws(() => new FrameReader(limit).push(bytes), { instanceOf: WireError })!;
  t.is(bad(Buffer.from('HELO')).reason, 'magic');
  const frame = encodeFrame(FrameType.Auth, Buffer.alloc(64));
  const version = Buffer.from(frame);
  version.writeUInt16BE(9, 4);
  t.regex(bad(version).message, /peer speaks version 9, this LiveStack speaks 2/);
  const type = Buffer.from(frame);
  type.writeUInt16BE(99, 6);
  t.is(bad(type).reason, 'type');
  const huge = Buffer.from(frame.subarray(0, 12));
  huge.writeUInt32BE(2 ** 30, 8);
  t.regex(bad(huge).message, /1073741824 bytes \(Auth\) exceeds the limit of 16384/);
});

test('event groups: a truncated or inflated batch is malformed, not a crash', (t) => {
  const writer = new EventWriter();
  writer.u32(1);
  writer.u32(3);
  writer.u32(1_000_000);
  const payload = writer.take();
  t.throws(() => readGroups(payload, 0, () => {}), { instanceOf: WireError, message: /claims 1000000 events/ });
});

test('proofs depend on the token, the role and both nonces', (t) => {
  const token = Buffer.from('a-token-of-sixteen-bytes');
  const a = newNonce();
  const b = newNonce();
  const p = proof(token, 'coordinator', a, b);
  t.true(proofMatches(p, proof(token, 'coordinator', a, b)));
  t.false(proofMatches(p, proof(Buffer.from('b-token-of-sixteen-bytes'), 'coordinator', a, b)));
  t.false(proofMatches(p, proof(token, 'agent', a, b)));
  t.false(proofMatches(p, proof(token, 'coordinator', b, a)));
  t.false(proofMatches(p, p.subarray(0, 16)));
});

test('the split cuts the high-latency link between two sites and balances them', (t) => {
  const plan = planOf(`scenario "sites" { duration 1s
    host e[1..6] { app sink { port 9 } }
    host w[1..6] { app sink { port 9 } }
    switch se { }  switch sw { }
    link e[1..6] -- se { latency 50us }
    link w[1..6] -- sw { latency 50us }
    link se -- sw { latency 5ms }
    at 500ms { link se -- sw set { latency 4ms } } }`);
  const split = splitPlan(plan, ['x', 'y']);
  t.is(split.cutLinks, 1);
  t.is(split.lookaheadNs, 4_000_000, 'the smallest latency the cut link will have');
  t.deepEqual(split.weights, [7, 7]);
  t.not(split.assignment[0], split.assignment[6]);
});

test('the split follows place lines and names a missing agent', (t) => {
  const plan = planOf(`scenario "p" { duration 1s
    host a[1..3] { app sink { port 9 } }
    switch s { }
    link a[1..3] -- s { latency 1ms }
    place a1 on "east"
    place a2 on "west" }`);
  const split = splitPlan(plan, ['west', 'east']);
  t.is(split.assignment[0], 1);
  t.is(split.assignment[1], 0);
  t.regex(t.throws(() => splitPlan(plan, ['west', 'north']))!.message, /host a1 is placed on agent "east".*no connected agent has that name \(agents: "west", "north"\)/);
  t.deepEqual(lookahead(plan, new Int32Array(4)), { lookaheadNs: Infinity, cutLinks: 0 });
});

test('a token file holds at least 16 bytes; surrounding whitespace is not part of it', (t) => {
  t.deepEqual(tokenFromText('  0123456789abcdef\n', 'f'), Buffer.from('0123456789abcdef'));
  t.regex(t.throws(() => tokenFromText('abc\n', 'f'))!.message, /the token in f is 3 bytes; use at least 16/);
});
