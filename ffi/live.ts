// Bindings of ffi/c/live.c: one scheduling window of a group of process cells.
// Arrays cross as raw little-endian buffers (no per-element marshalling): the
// window runs ~1000 times per virtual second.
import koffi from 'koffi';
import { lazyFunction, LibraryError, loadLibrary } from './lib.ts';

const CELL_BYTES = 80;
const DELIVERY_BYTES = 16;
const FRAME_BYTES = 24;
const STATS_BYTES = 80;

const windowFn = lazyFunction('ls_live__window', 'int', [
  'uint8_t *', 'int32_t', 'int64_t', 'int64_t', 'uint8_t *', 'uint8_t *', 'uint8_t *', 'int32_t', 'uint8_t *', 'uint32_t', 'int32_t', 'uint8_t *', 'int32_t *',
]);
const sizeofFn = lazyFunction('ls_sizeof', 'long', ['const char *']);

let checked = false;
function checkLayout(): void {
  if (checked) return;
  for (const [name, bytes] of [['ls_live_cell', CELL_BYTES], ['ls_live_delivery', DELIVERY_BYTES], ['ls_live_frame', FRAME_BYTES], ['ls_live_stats', STATS_BYTES]] as const) {
    const c = sizeofFn()(name) as number;
    if (c !== bytes) throw new LibraryError(`struct ${name} is ${c} bytes in ${loadLibrary().path}, ${bytes} in ffi/live.ts`, 'rebuild with npm run build:ffi', loadLibrary().path);
  }
  checked = true;
}

export interface LiveCellInput {
  /** the koffi handle of the cell's clock page */
  clockHandle: unknown;
  /** the koffi handle of the cell's ring of outgoing frames (ffi/cell.ts openRing) */
  ringHandle: unknown;
  /** the plan's index of the cell's host (its MAC) */
  hostIndex: number;
  /** (pid, tid) pairs whose state the window reads before it freezes the cell (idle detection), or null */
  threads?: readonly number[] | null;
  tapFd: number;
  freezer: { mode: 'v1'; stateFd: number } | { mode: 'v2'; freezeFd: number; eventsFd: number } | { mode: 'none' };
  scale: number;
  /** the open file with the cell's CPU time (runtime/live/cgroups.ts usageHandle): what the cell ran while
   *  its freeze was under way is added to its clock */
  usage?: { fd: number; kind: 'ns' | 'cpu.stat' } | null;
  /** frames to write into the tap, sorted by time */
  deliveries: ReadonlyArray<{ timeNs: number; frame: Uint8Array }>;
  /** a core of the cell: the spinner keeping it awake (keepCoresAwake) writes its deliveries there, so the
   *  frame's receive path wakes the reader on its own core; omitted or -1: the controller writes them */
  core?: number;
  /** the open list of the cell's threads (runtime/live/cgroups.ts tasksHandle): with it and a core, a quiescent
   *  cell's clock jumps to its next event (live.c, "Yielding"); omitted or -1: it never does */
  tasksFd?: number;
}

export interface LiveFrame {
  cell: number;
  timeNs: number;
  frame: Uint8Array;
}

export interface LiveWindowStats {
  thawNsMax: number;
  freezeNsMax: number;
  lateNsMax: number;
  lateDeliveries: number;
  framesOut: number;
  framesDropped: number;
  arpReplies: number;
  deliveriesWritten: number;
  writeErrors: number;
  ringTruncated: number;
  /** times a cell's clock sat at a delivery not yet written, or at the window's end (the controller came late) */
  holds: number;
  /** virtual ns the held clocks would have run on (a busy cell's work in that time was free) */
  heldNs: number;
  /** times a quiescent cell's clock jumped to its next event, the checks made, and the virtual ns skipped */
  yields: number;
  yieldChecks: number;
  yieldedNs: number;
}

export class LiveWindowError extends Error {}

const OUT_MAX = 16384;
const OUT_CAPACITY = 8 * 1024 * 1024;
let outFrames: Buffer | undefined;
let outBytes: Buffer | undefined;

/** Runs cells (each on its own cores) through the virtual window [startNs, endNs). */
/** runnable[i]: threads of cell i found running, runnable or in disk sleep when its window ended (-1: not looked). */
export function runWindow(cells: readonly LiveCellInput[], startNs: number, endNs: number, hostCount: number): { frames: LiveFrame[]; runnable: number[]; stats: LiveWindowStats } {
  checkLayout();
  const cellBuffer = Buffer.alloc(CELL_BYTES * Math.max(1, cells.length));
  let deliveryCount = 0;
  let deliveryBytes = 0;
  for (const cell of cells) {
    deliveryCount += cell.deliveries.length;
    for (const d of cell.deliveries) deliveryBytes += d.frame.length;
  }
  const deliveries = Buffer.alloc(DELIVERY_BYTES * Math.max(1, deliveryCount));
  const bytes = Buffer.alloc(Math.max(1, deliveryBytes));
  let d = 0;
  let offset = 0;
  const threadList: number[] = [];
  let threadPairs = 0;
  cells.forEach((cell, i) => {
    const base = i * CELL_BYTES;
    cellBuffer.writeBigUInt64LE(BigInt(koffi.address(cell.clockHandle as never)), base);
    cellBuffer.writeBigUInt64LE(cell.ringHandle === null ? 0n : BigInt(koffi.address(cell.ringHandle as never)), base + 8);
    cellBuffer.writeInt32LE(cell.tapFd, base + 16);
    const f = cell.freezer;
    cellBuffer.writeInt32LE(f.mode === 'v1' ? 1 : f.mode === 'v2' ? 2 : 0, base + 20);
    cellBuffer.writeInt32LE(f.mode === 'v1' ? f.stateFd : f.mode === 'v2' ? f.freezeFd : -1, base + 24);
    cellBuffer.writeInt32LE(f.mode === 'v2' ? f.eventsFd : -1, base + 28);
    cellBuffer.writeDoubleLE(cell.scale, base + 32);
    cellBuffer.writeInt32LE(d, base + 40);
    cellBuffer.writeInt32LE(cell.hostIndex, base + 48);
    cellBuffer.writeInt32LE(cell.usage?.fd ?? -1, base + 52);
    cellBuffer.writeInt32LE(cell.usage === undefined || cell.usage === null ? 0 : cell.usage.kind === 'ns' ? 1 : 2, base + 68);
    cellBuffer.writeInt32LE(cell.core ?? -1, base + 72);
    cellBuffer.writeInt32LE(cell.tasksFd ?? -1, base + 76);
    const threads = cell.threads ?? null;
    cellBuffer.writeInt32LE(threadPairs, base + 56);
    cellBuffer.writeInt32LE(threads === null ? 0 : threads.length >> 1, base + 60);
    cellBuffer.writeInt32LE(-1, base + 64);
    if (threads !== null) {
      threadList.push(...threads);
      threadPairs += threads.length >> 1;
    }
    for (const delivery of cell.deliveries) {
      deliveries.writeBigInt64LE(BigInt(delivery.timeNs), d * DELIVERY_BYTES);
      deliveries.writeUInt32LE(offset, d * DELIVERY_BYTES + 8);
      deliveries.writeUInt32LE(delivery.frame.length, d * DELIVERY_BYTES + 12);
      bytes.set(delivery.frame, offset);
      offset += delivery.frame.length;
      d++;
    }
    cellBuffer.writeInt32LE(d, base + 44);
  });
  // filled once: touching the pages now, not in a window (first-touch faults of the 8 MB held the
  // controller up for 10 ms in the first busy window, and the sender overran its ring meanwhile)
  outFrames ??= Buffer.alloc(OUT_MAX * FRAME_BYTES).fill(1);
  outBytes ??= Buffer.alloc(OUT_CAPACITY).fill(1);
  const stats = Buffer.alloc(STATS_BYTES);
  const result = windowFn()(cellBuffer, cells.length, startNs, endNs, deliveries, bytes, outFrames, OUT_MAX, outBytes, OUT_CAPACITY, hostCount, stats, Int32Array.from(threadList.length > 0 ? threadList : [0, 0])) as number;
  if (result < 0) throw new LiveWindowError(`ls_live__window failed: errno ${-result}`);
  const runnable = cells.map((_, i) => cellBuffer.readInt32LE(i * CELL_BYTES + 64));
  const frames: LiveFrame[] = [];
  // one copy of the window's bytes, each frame a view of it (a copy per frame cost ~0.2 µs and its garbage);
  // live.c packs frames one after another, so the last one ends the bytes used
  const last = (result - 1) * FRAME_BYTES;
  const used = result > 0 ? outFrames.readUInt32LE(last + 12) + outFrames.readUInt32LE(last + 16) : 0;
  const windowBytes = result > 0 ? Uint8Array.prototype.slice.call(outBytes, 0, used) : new Uint8Array(0);
  const times = new BigInt64Array(outFrames.buffer, outFrames.byteOffset, result * (FRAME_BYTES / 8));
  for (let i = 0; i < result; i++) {
    const base = i * FRAME_BYTES;
    const frameOffset = outFrames.readUInt32LE(base + 12);
    const length = outFrames.readUInt32LE(base + 16);
    frames.push({ timeNs: Number(times[i * (FRAME_BYTES / 8)]!), cell: outFrames.readInt32LE(base + 8), frame: windowBytes.subarray(frameOffset, frameOffset + length) });
  }
  return {
    frames,
    runnable,
    stats: {
      thawNsMax: Number(stats.readBigInt64LE(0)),
      freezeNsMax: Number(stats.readBigInt64LE(8)),
      lateNsMax: Number(stats.readBigInt64LE(16)),
      lateDeliveries: stats.readInt32LE(24),
      framesOut: stats.readInt32LE(28),
      framesDropped: stats.readInt32LE(32),
      arpReplies: stats.readInt32LE(36),
      deliveriesWritten: stats.readInt32LE(40),
      writeErrors: stats.readInt32LE(44),
      ringTruncated: stats.readInt32LE(48),
      holds: stats.readInt32LE(52),
      heldNs: Number(stats.readBigInt64LE(56)),
      yields: stats.readInt32LE(64),
      yieldChecks: stats.readInt32LE(68),
      yieldedNs: Number(stats.readBigInt64LE(72)),
    },
  };
}

const getAffinityFn = lazyFunction('ls_live__get_affinity', 'int', ['int32_t *', 'int32_t']);
const setAffinityFn = lazyFunction('ls_live__set_affinity', 'int', ['int32_t *', 'int32_t']);

/** The CPUs the calling thread (Node's main thread) may run on. */
export function threadAffinity(): number[] {
  const cpus = new Int32Array(1024);
  const n = getAffinityFn()(cpus, cpus.length) as number;
  if (n < 0) throw new LiveWindowError(`ls_live__get_affinity failed: errno ${-n}`);
  return [...cpus.subarray(0, n)];
}

/** Pins the calling thread (Node's main thread, which runs the windows) to these CPUs. */
export function setThreadAffinity(cpus: readonly number[]): void {
  const result = setAffinityFn()(Int32Array.from(cpus), cpus.length) as number;
  if (result < 0) throw new LiveWindowError(`ls_live__set_affinity(${cpus.join(',')}) failed: errno ${-result}`);
}

const keepAwakeFn = lazyFunction('ls_live__keep_awake', 'int', ['int32_t *', 'int32_t']);
const hostNowFn = lazyFunction('ls_live__host_now', 'int64_t', []);
const paceFn = lazyFunction('ls_live__pace', 'int', ['int64_t']);

/** The host time the window loop runs on (CLOCK_MONOTONIC_RAW, ns). */
export function liveHostNow(): number {
  return Number(hostNowFn()());
}

/** Waits at real-time priority until the host time untilNs (liveHostNow); true if it waited. */
export function paceUntil(untilNs: number): boolean {
  return (paceFn()(Math.round(untilNs)) as number) === 1;
}

/** Keeps the cells' cores from halting while cells run (a SCHED_IDLE spinner on each); [] stops them. */
export function keepCoresAwake(cpus: readonly number[]): void {
  const result = keepAwakeFn()(Int32Array.from(cpus.length > 0 ? cpus : [0]), cpus.length) as number;
  if (result < 0) throw new LiveWindowError(`ls_live__keep_awake(${cpus.join(',')}) failed: errno ${-result}`);
}
