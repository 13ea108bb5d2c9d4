// Process cell primitives (ffi/c/cell.c): tap devices, batched frame I/O
// and freezing with a µs-exact wait. Policy lives in runtime/live/.
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { errnoName, lazyFunction } from './lib.ts';

/** LS_CELL_FRAME_MAX: room a tap read needs so that no frame is truncated. */
export const CELL_FRAME_MAX_BYTES = 65535 + 14;

/** The launcher executable built from ffi/c/launch/ (LIVESTACK_LAUNCH overrides). */
export const defaultLauncherPath = fileURLToPath(new URL('./build/ls-launch', import.meta.url));
export function launcherPath(): string {
  return process.env.LIVESTACK_LAUNCH || defaultLauncherPath;
}

/** A failed call into cell.c: which call, on what, and the errno. */
export class CellCallError extends Error {
  override readonly name = 'CellCallError';
  readonly errno: number;
  readonly code: string;
  constructor(call: string, subject: string, result: number) {
    const code = errnoName(result);
    super(`${call}(${subject}) failed: ${code}`);
    this.errno = Math.abs(result);
    this.code = code;
  }
}

const tapOpen = lazyFunction('ls_cell__tap_open', 'int', ['const char *', koffi.out(koffi.pointer('int'))]);
const tapReadBatch = lazyFunction('ls_cell__tap_read_batch', 'int', ['int', 'uint8_t *', 'size_t', 'uint32_t *', 'int']);
const tapWrite = lazyFunction('ls_cell__tap_write', 'int', ['int', 'const uint8_t *', 'size_t']);
const freezeV1 = lazyFunction('ls_cell__freeze_v1', 'int64_t', ['int', 'int', 'int64_t']);
const freezeV2 = lazyFunction('ls_cell__freeze_v2', 'int64_t', ['int', 'int', 'int', 'int64_t']);

const tapDropSent = lazyFunction('ls_cell__tap_drop_sent', 'int', ['int']);

/** Frames the cell sends are dropped at its tap instead of being queued for the fd (their copies
 *  in the cell's packet ring are what the window loop reads). */
export function dropSentFrames(tapFd: number): void {
  const result = tapDropSent()(tapFd) as number;
  if (result < 0) throw new CellCallError('ls_cell__tap_drop_sent', String(tapFd), result);
}

/** Creates the non-persistent tap `name` in this process's network namespace
 * and returns its fd (non-blocking, close-on-exec). */
export function openTap(name: string): number {
  const fd = [-1];
  const result = tapOpen()(name, fd) as number;
  if (result < 0) throw new CellCallError('ls_cell__tap_open', name, result);
  return fd[0]!;
}

/**
 * Reads the frames waiting on a tap without blocking, packed into buffer;
 * lengths[i] receives frame i's length. Returns how many were read (0: none).
 * buffer must hold at least CELL_FRAME_MAX_BYTES.
 */
export function readTapBatch(fd: number, buffer: Uint8Array, lengths: Uint32Array): number {
  if (buffer.byteLength < CELL_FRAME_MAX_BYTES) throw new RangeError(`tap read buffer of ${buffer.byteLength} bytes is smaller than ${CELL_FRAME_MAX_BYTES}`);
  const result = tapReadBatch()(fd, buffer, buffer.byteLength, lengths, lengths.length) as number;
  if (result < 0) throw new CellCallError('ls_cell__tap_read_batch', `fd ${fd}`, result);
  return result;
}

/** Splits what readTapBatch returned into frames (copies). */
export function splitFrames(buffer: Uint8Array, lengths: Uint32Array, count: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    frames.push(buffer.slice(offset, offset + lengths[i]!));
    offset += lengths[i]!;
  }
  return frames;
}

/** Writes one whole frame into the tap (the cell's kernel receives it). */
export function writeTap(fd: number, frame: Uint8Array): void {
  const result = tapWrite()(fd, frame, frame.byteLength) as number;
  if (result < 0) throw new CellCallError('ls_cell__tap_write', `fd ${fd}`, result);
  if (result !== frame.byteLength) throw new CellCallError('ls_cell__tap_write', `fd ${fd}: ${result} of ${frame.byteLength} bytes`, -5 /* EIO */);
}

const asNumber = (value: unknown): number => (typeof value === 'bigint' ? Number(value) : (value as number));

/**
 * v1 freezer: writes FROZEN/THAWED to freezer.state (stateFd, opened
 * read-write) and waits until the state is reached. Returns the ns the
 * change took; throws (ETIMEDOUT after timeoutNs) otherwise.
 */
export function setFrozenV1(stateFd: number, frozen: boolean, timeoutNs: number, subject: string): number {
  const result = asNumber(freezeV1()(stateFd, frozen ? 1 : 0, timeoutNs));
  if (result < 0) throw new CellCallError('ls_cell__freeze_v1', subject, result);
  return result;
}

/** v2: writes cgroup.freeze and waits for cgroup.events "frozen 1"/"frozen 0". */
export function setFrozenV2(freezeFd: number, eventsFd: number, frozen: boolean, timeoutNs: number, subject: string): number {
  const result = asNumber(freezeV2()(freezeFd, eventsFd, frozen ? 1 : 0, timeoutNs));
  if (result < 0) throw new CellCallError('ls_cell__freeze_v2', subject, result);
  return result;
}

const ringOpen = lazyFunction('ls_ring__open', 'int', ['const char *', 'const char *', 'uint32_t', 'uint32_t', koffi.out(koffi.pointer(koffi.pointer('void')))]);
const ringClose = lazyFunction('ls_ring__close', 'int', ['void *']);
const ringStats = lazyFunction('ls_ring__stats', 'int', ['void *', koffi.out(koffi.pointer(koffi.struct('ls_ring_stats_js', {
  frames: 'uint64_t', truncated: 'uint64_t', kernelDrops: 'uint64_t', slots: 'uint32_t', slotBytes: 'uint32_t',
})))]);

/** Frames a ring holds by default (2 KiB slots: 16 MiB a cell): a sender at ~1 µs a frame fills it in
 *  ~8 ms. The window loop takes frames every ~20 µs, but a vCPU of this VM can stop for 5–32 ms
 *  (CELLS-FACTS.md): 2048 slots lost 4328 of 20000 frames to one such stall in a CI run. */
export const RING_FRAMES = 8192;

/** The ring of a cell's outgoing frames (ffi/c/ring.c): a packet socket on `ifname` inside the
 *  network namespace at `netnsPath`, stamping each frame when it leaves. Close it with closeRing. */
export function openRing(netnsPath: string, ifname: string, frameMax = 1514, frames = RING_FRAMES): unknown {
  const out: unknown[] = [null];
  const result = ringOpen()(netnsPath, ifname, frameMax, frames, out) as number;
  if (result < 0) throw new CellCallError('ls_ring__open', `${netnsPath} ${ifname}`, result);
  return out[0];
}

export function closeRing(ring: unknown): void {
  const result = ringClose()(ring) as number;
  if (result < 0) throw new CellCallError('ls_ring__close', 'ring', result);
}

export interface RingStats {
  frames: number;
  truncated: number;
  /** frames the kernel dropped because the ring was full, since the last call */
  kernelDrops: number;
  slots: number;
  slotBytes: number;
}

export function ringStatistics(ring: unknown): RingStats {
  const out = [{}] as Array<Record<string, unknown>>;
  const result = ringStats()(ring, out) as number;
  if (result < 0) throw new CellCallError('ls_ring__stats', 'ring', result);
  const s = out[0]!;
  return { frames: asNumber(s['frames']), truncated: asNumber(s['truncated']), kernelDrops: asNumber(s['kernelDrops']), slots: asNumber(s['slots']), slotBytes: asNumber(s['slotBytes']) };
}
