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
