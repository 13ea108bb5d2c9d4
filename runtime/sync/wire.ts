// The coordinator ⇄ agent wire protocol over raw TCP (docs/wire.md): length-prefixed
// binary frames with a magic, a version and a type; a handshake in which each side
// proves it knows the shared token (HMAC-SHA256 over both sides' nonces, the token
// never crosses the wire); heartbeats; and a compact binary encoding of SimEvents.
// A frame header is checked (magic, version, type, size) before its payload is
// buffered, so a hostile or confused peer cannot make a process allocate gigabytes.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { SimEvent } from '../core/events.ts';
import { MAX_FRAME_BYTES as MAX_PACKET_BYTES } from '../core/limits.ts';

/** "LSWP" */
export const WIRE_MAGIC = 0x4c535750;
export const WIRE_VERSION = 2;
/** magic u32, version u16, type u16, payload length u32 (all big-endian) */
export const HEADER_BYTES = 12;
/** Largest payload after authentication: a plan of ~50k hosts; event batches are cut far below it. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** Largest payload before authentication: a hello or an auth frame is < 1 KiB. */
export const MAX_PREAUTH_FRAME_BYTES = 16 * 1024;
/** Event batches are flushed as separate frames beyond this size (bounded buffers on both sides). */
export const BATCH_FLUSH_BYTES = 1024 * 1024;
/** Nonce and HMAC-SHA256 sizes. */
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

export const FrameType = {
  /** agent → coordinator, first frame: nonce + JSON {name, livestack} */
  Hello: 1,
  /** coordinator → agent: its nonce + proof(coordinator) */
  Auth: 2,
  /** agent → coordinator: proof(agent) + JSON capabilities */
  Welcome: 3,
  /** coordinator → agent: JSON plan part (the whole plan, the assignment, the partition index) */
  Plan: 4,
  /** agent → coordinator: JSON {components, nextEventTime} */
  Ready: 5,
  /** either way: a continuation chunk of an event batch (u32 destination, then a batch) */
  Events: 6,
  /** coordinator → agent: f64 horizon, then the batch of events delivered to the agent */
  Advance: 7,
  /** agent → coordinator: f64 next event time, f64 events handled, f64 busy ns, then outgoing batches */
  Done: 8,
  /** coordinator → agent: f64 virtual time the run ended at */
  Finish: 9,
  /** agent → coordinator: JSON results of the agent's components */
  Results: 10,
  /** either way: JSON {message}; the sender closes the connection after it */
  Error: 11,
  /** either way, empty: a sign of life while nothing else is sent */
  Heartbeat: 12,
  /** coordinator → agent, empty: the run is over (or abandoned); drop everything */
  Abort: 13,
  // direct mode: agents exchange events and time-advance messages among themselves
  /** coordinator → agent: JSON {peers: [{index, host, port}], windowNs, endNs, nexts, progressMs} */
  Peers: 14,
  /** agent → agent, after the handshake: JSON {runId, index} of the connecting agent */
  Join: 15,
  /** agent → agent, every round: f64 round, f64 next event time, f64 earliest event sent, then the events for the receiver */
  Round: 16,
  /** agent → coordinator: JSON {reachedNs, events} now and then */
  Progress: 17,
  /** agent → coordinator: JSON {reachedNs, rounds, nullRounds, eventsSent, busyNs, events, problem} when its loop ended */
  Stopped: 18,
  /** coordinator → agent, empty: stop at the end of the current round (Ctrl-C) */
  Stop: 19,
} as const;
export type FrameTypeNumber = (typeof FrameType)[keyof typeof FrameType];
const typeNames = new Map<number, string>(Object.entries(FrameType).map(([name, n]) => [n, name]));

export function frameTypeName(type: number): string {
  return typeNames.get(type) ?? `unknown(${type})`;
}

export interface Frame {
  type: FrameTypeNumber;
  payload: Buffer;
}

/** A protocol violation by the peer; `reason` is one word for logs and tests. */
export class WireError extends Error {
  constructor(
    readonly reason: 'magic' | 'version' | 'type' | 'size' | 'auth' | 'malformed' | 'order',
    message: string,
  ) {
    super(message);
  }
}

export function encodeFrame(type: FrameTypeNumber, payload: Uint8Array = EMPTY, version = WIRE_VERSION): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32BE(WIRE_MAGIC, 0);
  frame.writeUInt16BE(version, 4);
  frame.writeUInt16BE(type, 6);
  frame.writeUInt32BE(payload.length, 8);
  frame.set(payload, HEADER_BYTES);
  return frame;
}
const EMPTY = new Uint8Array(0);

/** Splits a byte stream into frames; throws WireError on the first bad header. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: { type: FrameTypeNumber; length: number } | null = null;

  constructor(public maxFrameBytes: number) {}

  /** Appends a chunk and returns every frame now complete (the limit applies as of the call). */
  push(chunk: Buffer): Frame[] {
    this.append(chunk);
    const frames: Frame[] = [];
    for (let frame = this.read(); frame !== null; frame = this.read()) frames.push(frame);
    return frames;
  }

  append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or null; a limit changed after one frame applies to the next. */
  read(): Frame | null {
    if (this.header === null) {
      if (this.buffered < HEADER_BYTES) {
        // a peer that does not speak this protocol is told at once, not after 12 bytes
        if (this.buffered >= 4 && this.peekMagic() !== WIRE_MAGIC) this.badMagic();
        return null;
      }
      const head = this.take(HEADER_BYTES);
      const magic = head.readUInt32BE(0);
      if (magic !== WIRE_MAGIC) this.badMagic();
      const version = head.readUInt16BE(4);
      if (version !== WIRE_VERSION) throw new WireError('version', `wire version mismatch: the peer speaks version ${version}, this LiveStack speaks ${WIRE_VERSION} (run the same LiveStack version on the coordinator and every agent)`);
      const type = head.readUInt16BE(6);
      if (!typeNames.has(type)) throw new WireError('type', `unknown frame type ${type}`);
      const length = head.readUInt32BE(8);
      if (length > this.maxFrameBytes) throw new WireError('size', `frame of ${length} bytes (${frameTypeName(type)}) exceeds the limit of ${this.maxFrameBytes} bytes`);
      this.header = { type: type as FrameTypeNumber, length };
    }
    if (this.buffered < this.header.length) return null;
    const frame = { type: this.header.type, payload: this.take(this.header.length) };
    this.header = null;
    return frame;
  }

  private peekMagic(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks).readUInt32BE(0);
  }

  private badMagic(): never {
    const start = Buffer.concat(this.chunks).subarray(0, 8).toString('hex');
    throw new WireError('magic', `not a LiveStack wire frame (bad magic, first bytes ${start})`);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

// ---- handshake ----

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** HMAC-SHA256(token, label ‖ role ‖ nonce of the verifier ‖ nonce of the prover). */
export function proof(token: Uint8Array, role: 'coordinator' | 'agent', verifierNonce: Uint8Array, proverNonce: Uint8Array): Buffer {
  return createHmac('sha256', token).update(`livestack-wire-${WIRE_VERSION}:${role}:`).update(verifierNonce).update(proverNonce).digest();
}

export function proofMatches(expected: Buffer, got: Uint8Array): boolean {
  return got.length === expected.length && timingSafeEqual(expected, got);
}

/** Reads a token file's content: surrounding whitespace is dropped; at least 16 bytes. */
export function tokenFromText(text: string, file: string): Buffer {
  const token = Buffer.from(text.trim(), 'utf8');
  if (token.length < 16) throw new Error(`the token in ${file} is ${token.length} bytes; use at least 16 (e.g. head -c 32 /dev/urandom | base64 > ${file})`);
  return token;
}

// ---- payload helpers ----

export function jsonPayload(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function parseJson<T>(payload: Buffer, what: string): T {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    throw new WireError('malformed', `${what}: payload is not JSON`);
  }
}

// ---- events ----
//
// One event: f64 time · u32 source · u32 target · u16 seq high · u32 seq low · u8 kind ·
// u8 data tag · i32 arg (28 bytes), then for tag 1 (a packet / live frame {bytes, wireBytes}):
// u32 wireBytes · u32 byte length · the bytes. Tag 0: data is null.

export const EVENT_FIXED_BYTES = 28;
const DATA_NULL = 0;
const DATA_PACKET = 1;

interface PacketLike {
  bytes: Uint8Array;
  wireBytes: number;
}

function isPacket(data: unknown): data is PacketLike {
  return typeof data === 'object' && data !== null && (data as PacketLike).bytes instanceof Uint8Array && typeof (data as PacketLike).wireBytes === 'number';
}

/** A growable buffer of encoded events; `flush` callbacks cut it into frames of bounded size. */
export class EventWriter {
  buffer: Buffer;
  length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  reset(): void {
    this.length = 0;
  }

  ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buffer.writeUInt32BE(value, this.length);
    this.length += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buffer.writeDoubleBE(value, this.length);
    this.length += 8;
  }

  /** Reserves a u32 to fill in later (a count); returns its offset. */
  placeholder(): number {
    this.ensure(4);
    const at = this.length;
    this.length += 4;
    return at;
  }

  setU32(at: number, value: number): void {
    this.buffer.writeUInt32BE(value, at);
  }

  event(event: SimEvent): void {
    const data = event.data;
    const packet = data === null || data === undefined ? null : isPacket(data) ? data : undefined;
    if (packet === undefined) throw new Error(`event kind ${event.kind} from component ${event.source} to ${event.target} carries data that cannot cross partitions (only null or a packet can)`);
    if (!(event.kind >= 0 && event.kind <= 255 && Number.isInteger(event.kind))) throw new Error(`event kind ${event.kind} does not fit the wire (0…255)`);
    if ((event.arg | 0) !== event.arg) throw new Error(`event arg ${event.arg} does not fit the wire (int32)`);
    if (!(event.seq >= 0 && event.seq < 2 ** 48)) throw new Error(`event seq ${event.seq} does not fit the wire (48 bits)`);
    const size = EVENT_FIXED_BYTES + (packet === null ? 0 : 8 + packet.bytes.length);
    this.ensure(size);
    const b = this.buffer;
    let o = this.length;
    b.writeDoubleBE(event.time, o);
    b.writeUInt32BE(event.source, o + 8);
    b.writeUInt32BE(event.target, o + 12);
    b.writeUInt16BE(Math.floor(event.seq / 4294967296), o + 16);
    b.writeUInt32BE(event.seq >>> 0, o + 18);
    b[o + 22] = event.kind;
    b[o + 23] = packet === null ? DATA_NULL : DATA_PACKET;
    b.writeInt32BE(event.arg, o + 24);
    o += EVENT_FIXED_BYTES;
    if (packet !== null) {
      b.writeUInt32BE(packet.wireBytes, o);
      b.writeUInt32BE(packet.bytes.length, o + 4);
      b.set(packet.bytes, o + 8);
      o += 8 + packet.bytes.length;
    }
    this.length = o;
  }

  /** A copy of the bytes written so far. */
  take(): Buffer {
    const out = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    return out;
  }
}

/** Decodes `count` events from `payload` at `offset` into `into`; returns the offset after them. */
export function readEvents(payload: Buffer, offset: number, count: number, into: SimEvent[]): number {
  let o = offset;
  for (let i = 0; i < count; i++) {
    if (o + EVENT_FIXED_BYTES > payload.length) throw new WireError('malformed', `event batch truncated at event ${i} of ${count}`);
    const time = payload.readDoubleBE(o);
    const source = payload.readUInt32BE(o + 8);
    const target = payload.readUInt32BE(o + 12);
    const seq = payload.readUInt16BE(o + 16) * 4294967296 + payload.readUInt32BE(o + 18);
    const kind = payload[o + 22]!;
    const tag = payload[o + 23]!;
    const arg = payload.readInt32BE(o + 24);
    o += EVENT_FIXED_BYTES;
    if (!Number.isSafeInteger(time) || time < 0) throw new WireError('malformed', `event ${i}: time ${time} is not a virtual time`);
    let data: PacketLike | null = null;
    if (tag === DATA_PACKET) {
      if (o + 8 > payload.length) throw new WireError('malformed', `event ${i}: packet header truncated`);
      const wireBytes = payload.readUInt32BE(o);
      const length = payload.readUInt32BE(o + 4);
      o += 8;
      if (length > MAX_PACKET_BYTES || o + length > payload.length) throw new WireError('malformed', `event ${i}: packet of ${length} bytes does not fit (limit ${MAX_PACKET_BYTES})`);
      // a copy: a captured packet must not pin the whole frame buffer
      const bytes = new Uint8Array(length);
      bytes.set(payload.subarray(o, o + length));
      o += length;
      data = { bytes, wireBytes };
    } else if (tag !== DATA_NULL) {
      throw new WireError('malformed', `event ${i}: unknown data tag ${tag}`);
    }
    into.push(new SimEvent(time, source, seq, target, kind, arg, data));
  }
  return o;
}

// ---- event groups ----
//
// Advance, Done and Events frames end in groups: u32 group count, then per group
// u32 destination partition · u32 event count · the events. A batch larger than
// BATCH_FLUSH_BYTES goes out as Events frames first, the final frame carries the rest.

export function sendWithEvents(
  connection: WireConnection, type: FrameTypeNumber, head: Uint8Array,
  groups: Iterable<readonly [number, readonly SimEvent[]]>, writer: EventWriter,
): number {
  let sent = 0;
  writer.reset();
  let groupCountAt = writer.placeholder();
  let groupsInFrame = 0;
  for (const [destination, events] of groups) {
    if (events.length === 0) continue;
    writer.u32(destination);
    let countAt = writer.placeholder();
    let n = 0;
    groupsInFrame++;
    for (const event of events) {
      writer.event(event);
      n++;
      sent++;
      if (writer.length >= BATCH_FLUSH_BYTES) {
        writer.setU32(countAt, n);
        writer.setU32(groupCountAt, groupsInFrame);
        connection.sendParts(FrameType.Events, [writer.buffer.subarray(0, writer.length)]);
        writer.reset();
        groupCountAt = writer.placeholder();
        writer.u32(destination);
        countAt = writer.placeholder();
        n = 0;
        groupsInFrame = 1;
      }
    }
    writer.setU32(countAt, n);
  }
  writer.setU32(groupCountAt, groupsInFrame);
  connection.sendParts(type, [head, writer.buffer.subarray(0, writer.length)]);
  return sent;
}

/** Reads the groups at `offset` of a payload; `add` receives each destination's events. */
export function readGroups(payload: Buffer, offset: number, add: (destination: number, events: SimEvent[]) => void): void {
  if (offset + 4 > payload.length) throw new WireError('malformed', 'event groups truncated');
  const groups = payload.readUInt32BE(offset);
  let o = offset + 4;
  for (let g = 0; g < groups; g++) {
    if (o + 8 > payload.length) throw new WireError('malformed', `event group ${g} truncated`);
    const destination = payload.readUInt32BE(o);
    const count = payload.readUInt32BE(o + 4);
    o += 8;
    if (count > (payload.length - o) / EVENT_FIXED_BYTES) throw new WireError('malformed', `event group ${g} claims ${count} events, more than its frame holds`);
    const events: SimEvent[] = [];
    o = readEvents(payload, o, count, events);
    add(destination, events);
  }
  if (o !== payload.length) throw new WireError('malformed', `${payload.length - o} stray bytes after the event groups`);
}

// ---- a connection ----

export interface ConnectionOptions {
  /** who the peer is, for messages: `agent "b" (127.0.0.1:4100)` */
  label: string;
  heartbeatMs: number;
  /** no frame for this long ⇒ the peer is declared hung */
  timeoutMs: number;
}

/**
 * A framed, heartbeating TCP connection. `onFrame` receives every frame but
 * heartbeats; `onClose` is called exactly once with the reason (a peer close,
 * a socket error, a protocol violation, a heartbeat timeout or a local close).
 */
export class WireConnection {
  readonly reader = new FrameReader(MAX_PREAUTH_FRAME_BYTES);
  onFrame: (frame: Frame) => void = () => {};
  onClose: (reason: string, error: WireError | null) => void = () => {};
  closed = false;
  closeReason = '';
  framesSent = 0;
  framesReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  private lastReceivedMs = Date.now();
  private lastSentMs = Date.now();
  private lastCheckMs = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: Socket,
    public options: ConnectionOptions,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const reset = error.code === 'ECONNRESET' || error.code === 'EPIPE';
      this.close(reset ? `the connection was closed by the peer (${error.code})` : `socket error: ${error.code ?? error.message}`);
    });
    socket.on('close', () => this.close('the connection was closed by the peer'));
  }

  /**
   * True when bytes read from the socket's fd behind Node's back (ffi/sync.ts) may be
   * handed to receive(): nothing read by Node is still waiting in the stream's buffer.
   */
  canReceiveDirectly(): boolean {
    return !this.closed && this.socket.readableLength === 0 && !this.socket.isPaused();
  }

  /** Bytes from the socket, in order: from Node's 'data' events, or read directly (canReceiveDirectly). */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReceivedMs = Date.now();
    this.bytesReceived += chunk.length;
    this.reader.append(chunk);
    // one frame at a time: handling a frame (authentication) may change the limit for the next
    for (;;) {
      if (this.closed) return;
      let frame: Frame | null;
      try {
        frame = this.reader.read();
      } catch (error) {
        // a reader bug must not take the process down: drop this connection only
        this.reject(error instanceof WireError ? error : new WireError('malformed', `unreadable frame: ${(error as Error).message}`));
        return;
      }
      if (frame === null) return;
      this.framesReceived++;
      if (frame.type === FrameType.Heartbeat) continue;
      try {
        this.onFrame(frame);
      } catch (error) {
        if (error instanceof WireError) this.reject(error);
        else this.fail(`${(error as Error).message}`);
      }
    }
  }

  /** Heartbeats every heartbeatMs; a silent peer is dropped after timeoutMs. */
  startHeartbeats(): void {
    if (this.timer !== null || this.closed) return;
    const period = Math.max(10, Math.min(this.options.heartbeatMs, this.options.timeoutMs / 2));
    this.lastReceivedMs = this.lastCheckMs = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      // this process was blocked (a long window, a stopped process): the peer's silence
      // cannot be judged; frames that arrived meanwhile are read right after this callback
      if (now - this.lastCheckMs > 2 * period + 1000) this.lastReceivedMs = now;
      this.lastCheckMs = now;
      if (now - this.lastReceivedMs > this.options.timeoutMs) {
        this.close(`no frame for ${((now - this.lastReceivedMs) / 1000).toFixed(1)} s (heartbeat timeout ${(this.options.timeoutMs / 1000).toFixed(1)} s): the peer hangs or the network is down`);
        return;
      }
      if (now - this.lastSentMs >= period) this.send(FrameType.Heartbeat);
    }, period);
  }

  /** Heartbeats at least this often from now on (the peer asked for it). */
  heartbeatAtLeastEvery(ms: number): void {
    if (!(ms > 0) || ms >= this.options.heartbeatMs) return;
    this.options = { ...this.options, heartbeatMs: ms };
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.startHeartbeats();
  }

  send(type: FrameTypeNumber, payload?: Uint8Array): void {
    this.sendParts(type, payload === undefined ? [] : [payload]);
  }

  /** One frame whose payload is the concatenation of `parts` (one copy, one write). */
  sendParts(type: FrameTypeNumber, parts: readonly Uint8Array[]): void {
    if (this.closed) return;
    let length = 0;
    for (const part of parts) length += part.length;
    const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
    frame.writeUInt32BE(WIRE_MAGIC, 0);
    frame.writeUInt16BE(WIRE_VERSION, 4);
    frame.writeUInt16BE(type, 6);
    frame.writeUInt32BE(length, 8);
    let offset = HEADER_BYTES;
    for (const part of parts) {
      frame.set(part, offset);
      offset += part.length;
    }
    this.framesSent++;
    this.bytesSent += frame.length;
    this.lastSentMs = Date.now();
    this.socket.write(frame);
  }

  /** Tells the peer why (an Error frame), then closes. */
  fail(message: string, error: WireError | null = null): void {
    if (this.closed) return;
    this.send(FrameType.Error, jsonPayload({ message }));
    this.close(message, error);
  }

  private reject(error: WireError): void {
    this.fail(error.message, error);
  }

  close(reason: string, error: WireError | null = null): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.socket.end();
    // a peer that does not read must not keep the socket (and this process) alive
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.onClose(reason, error);
  }
}
