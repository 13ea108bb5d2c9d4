// A cell's virtual clock page (ffi/c/clock.c, layout in
// ffi/include/livestack-clock.h) and the LD_PRELOAD shim that makes the
// cell's programs follow it (ffi/c/shim/, built to liblivestack-shim.so).
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import type { TypeObject } from 'koffi';
import { INT64_MAX, LibraryError, errnoName, lazyFunction, loadLibrary } from './lib.ts';

/** The environment variable that names the page file inside a cell. */
export const CLOCK_ENV = 'LIVESTACK_CLOCK';
/** Wait slots in a page (LS_CLOCK_WAIT_SLOTS): more concurrent waits than
 * this are not published, so the cell looks busy. */
export const CLOCK_WAIT_SLOTS = 64;
/** CLOCK_MONOTONIC at virtual 0 unless told otherwise: a plausible uptime,
 * because programs treat a monotonic 0 as "unset" (ping floods). */
export const DEFAULT_BOOT_OFFSET_NS = 1000 * 1e9;
/** The largest virtual-ns-per-host-ns rate the controller accepts. */
export const CLOCK_SCALE_MAX = 1e6;

export const defaultShimPath = fileURLToPath(new URL('./build/liblivestack-shim.so', import.meta.url));

/** The shim to LD_PRELOAD into cell processes; LIVESTACK_SHIM overrides it
 * (a debug build). */
export function shimPath(): string {
  return process.env.LIVESTACK_SHIM || defaultShimPath;
}

export type ClockWaitKind = 'sleep' | 'poll' | 'select' | 'epoll' | 'timer' | 'unknown';
const WAIT_KINDS: readonly ClockWaitKind[] = ['unknown', 'sleep', 'poll', 'select', 'epoll', 'timer'];

/** A thread of the cell blocked in a wait the shim published. */
export interface ClockWait {
  readonly tid: number;
  readonly pid: number;
  readonly kind: ClockWaitKind;
  readonly slot: number;
  /** Virtual instant at which the wait times out, null if it has none. */
  readonly deadlineNs: number | null;
}

export interface ClockState {
  readonly running: boolean;
  /** While running: virtual ns at baseHostNs; while frozen: virtual now. */
  readonly baseVirtualNs: number;
  /** Host CLOCK_MONOTONIC_RAW when the current run began, ns. */
  readonly baseHostNs: number;
  /** Virtual ns per host ns (rounded to 2^-32). */
  readonly scale: number;
  /** CLOCK_REALTIME of the cell at virtual 0, ns since 1970. */
  readonly realtimeEpochNs: bigint;
  /** CLOCK_MONOTONIC/BOOTTIME of the cell at virtual 0, ns. */
  readonly bootOffsetNs: number;
  /** A running clock reads no later than this (Infinity: no limit). */
  readonly limitNs: number;
  /** Incremented by every run, freeze and set. */
  readonly generation: number;
}

/** A failed clock operation (the C side returned -errno). */
export class ClockError extends Error {
  override readonly name = 'ClockError';
  readonly code: string;
  constructor(
    readonly operation: string,
    readonly path: string,
    readonly errno: number,
  ) {
    const code = errnoName(errno);
    super(`${operation} on clock page ${path} failed: ${code}`);
    this.code = code;
  }
}

const ClockHandle = koffi.pointer('ls_clock_handle', koffi.opaque('ls_clock'));

const SnapshotStruct = koffi.struct('ls_clock_snapshot', {
  running: 'uint32_t',
  generation: 'uint32_t',
  base_virtual_ns: 'int64_t',
  base_host_ns: 'int64_t',
  scale_q32: 'uint64_t',
  realtime_epoch_ns: 'int64_t',
  boot_offset_ns: 'int64_t',
  limit_virtual_ns: 'int64_t',
});

interface SnapshotC {
  running: number;
  generation: number;
  base_virtual_ns: number | bigint;
  base_host_ns: number | bigint;
  scale_q32: number | bigint;
  realtime_epoch_ns: number | bigint;
  boot_offset_ns: number | bigint;
  limit_virtual_ns: number | bigint;
}

const WaitStruct = koffi.struct('ls_clock_wait', {
  tid: 'int32_t',
  pid: 'int32_t',
  kind: 'uint32_t',
  slot: 'uint32_t',
  deadline_virtual_ns: 'int64_t',
});

const WaitsStruct = koffi.struct('ls_clock_waits', {
  count: 'int32_t',
  reserved: 'int32_t',
  waits: koffi.array(WaitStruct, CLOCK_WAIT_SLOTS),
});

interface WaitsC {
  count: number;
  waits: { tid: number; pid: number; kind: number; slot: number; deadline_virtual_ns: number | bigint }[];
}

// the layouts above must match the C header's: ls_sizeof (version.c) knows every ABI struct
const clockSizeof = lazyFunction('ls_sizeof', 'long', ['const char *']);
let structsChecked = false;
function checkStructs(): void {
  if (structsChecked) return;
  for (const struct of [SnapshotStruct, WaitStruct, WaitsStruct] as TypeObject[]) {
    const cSize = clockSizeof()(struct.name) as number;
    if (cSize !== koffi.sizeof(struct)) {
      const library = loadLibrary();
      throw new LibraryError(
        `struct ${struct.name} is ${cSize} bytes in ${library.path} but ${koffi.sizeof(struct)} in the bindings`,
        'rebuild it with npm run build:ffi',
        library.path,
      );
    }
  }
  structsChecked = true;
}

const create = lazyFunction('ls_clock__create', 'int', ['const char *', 'int64_t', 'int64_t', koffi.out(koffi.pointer(ClockHandle))]);
const freeze = lazyFunction('ls_clock__freeze', 'int', [ClockHandle, 'int64_t']);
const run = lazyFunction('ls_clock__run', 'int', [ClockHandle, 'int64_t', 'double']);
const set = lazyFunction('ls_clock__set', 'int', [ClockHandle, 'int64_t']);
const limit = lazyFunction('ls_clock__limit', 'int', [ClockHandle, 'int64_t']);
const now = lazyFunction('ls_clock__now', 'int64_t', [ClockHandle]);
const earliestWait = lazyFunction('ls_clock__earliest_wait', 'int', [ClockHandle, koffi.out(koffi.pointer('int64_t'))]);
const waits = lazyFunction('ls_clock__waits', 'int', [ClockHandle, koffi.out(koffi.pointer(WaitsStruct))]);
const reap = lazyFunction('ls_clock__reap', 'int', [ClockHandle]);
const snapshot = lazyFunction('ls_clock__snapshot', 'int', [ClockHandle, koffi.out(koffi.pointer(SnapshotStruct))]);
const close = lazyFunction('ls_clock__close', 'int', [ClockHandle]);

export interface ClockPageOptions {
  /** CLOCK_REALTIME at virtual 0, ns since 1970; default: the host's now. */
  readonly realtimeEpochNs?: bigint;
  /** CLOCK_MONOTONIC at virtual 0, ns; default DEFAULT_BOOT_OFFSET_NS. */
  readonly bootOffsetNs?: number;
}

const assertVirtualNs = (value: number, what: string): void => {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative safe integer of ns, got ${value}`);
};

/**
 * The controller's handle on one cell's clock page. Created frozen at
 * virtual 0, scale 1. Virtual time never goes backwards. Methods throw
 * ClockError for a failed call, RangeError for a bad argument, and
 * LibraryError if liblivestack.so cannot be loaded.
 */
export class ClockPage {
  #handle: unknown;

  private constructor(
    readonly path: string,
    handle: unknown,
  ) {
    this.#handle = handle;
  }

  /** Creates (or truncates) the page file at path, e.g.
   * /dev/shm/livestack-<run>-<host>.clock. The caller removes the file. */
  static create(path: string, options: ClockPageOptions = {}): ClockPage {
    checkStructs();
    const epochNs = options.realtimeEpochNs ?? BigInt(Date.now()) * 1_000_000n;
    const bootOffsetNs = options.bootOffsetNs ?? DEFAULT_BOOT_OFFSET_NS;
    if (epochNs < 0n) throw new RangeError(`realtimeEpochNs must not be negative, got ${epochNs}`);
    assertVirtualNs(bootOffsetNs, 'bootOffsetNs');
    const out: unknown[] = [null];
    const result = create()(path, epochNs, bootOffsetNs, out) as number;
    if (result < 0) throw new ClockError('create', path, -result);
    return new ClockPage(path, out[0]);
  }

  /** The koffi handle, for C code that drives the clock itself (ffi/live.ts). */
  handle(): unknown {
    return this.#live('handle');
  }

  /** Environment entries that put a process on this clock. */
  environment(): Record<string, string> {
    return { [CLOCK_ENV]: this.path, LD_PRELOAD: shimPath() };
  }

  /** Stops the clock at virtualNs (default: where it is). Never moves it
   * backwards: a clock that already passed virtualNs stops where it is. */
  freeze(virtualNs = -1): void {
    if (virtualNs !== -1) assertVirtualNs(virtualNs, 'virtualNs');
    this.#check('freeze', freeze()(this.#live('freeze'), virtualNs) as number);
  }

  /** Runs the clock from virtualNs (default: where it is) at scale virtual ns
   * per host ns. */
  run(virtualNs = -1, scale = 1): void {
    if (virtualNs !== -1) assertVirtualNs(virtualNs, 'virtualNs');
    if (!(scale > 0 && scale <= CLOCK_SCALE_MAX)) throw new RangeError(`scale must be in (0, ${CLOCK_SCALE_MAX}], got ${scale}`);
    this.#check('run', run()(this.#live('run'), virtualNs, scale) as number);
  }

  /** Jumps to virtualNs (not earlier than now) and wakes every waiter. */
  set(virtualNs: number): void {
    assertVirtualNs(virtualNs, 'virtualNs');
    this.#check('set', set()(this.#live('set'), virtualNs) as number);
  }

  /**
   * Holds the running clock at limitNs (Infinity: no limit; run and set clear
   * it): it reads no later than that until the limit moves on. If it sat at the
   * old limit, it runs on from there: the held time does not count. Never moves
   * it backwards. Returns whether it had been held.
   */
  limit(limitNs: number): boolean {
    const value = limitNs === Infinity ? INT64_MAX : BigInt(Math.round(limitNs));
    if (limitNs !== Infinity) assertVirtualNs(limitNs, 'limitNs');
    const result = limit()(this.#live('limit'), value) as number;
    this.#check('limit', Math.min(0, result));
    return result > 0;
  }

  /** Virtual now, ns, as the cell's programs compute it. */
  now(): number {
    return Number(now()(this.#live('now')));
  }

  /** How many threads sit in published waits, and the earliest deadline
   * among them (null if none has one). */
  earliestWait(): { readonly waiters: number; readonly deadlineNs: number | null } {
    const deadline: unknown[] = [0];
    const waiters = earliestWait()(this.#live('earliestWait'), deadline) as number;
    this.#check('earliestWait', waiters);
    const deadlineNs = Number(deadline[0]);
    return { waiters, deadlineNs: deadlineNs < 0 ? null : deadlineNs };
  }

  /** Every published wait, in slot order. */
  waits(): ClockWait[] {
    const out = {} as WaitsC;
    this.#check('waits', waits()(this.#live('waits'), out) as number);
    return out.waits.slice(0, out.count).map((wait) => {
      const deadlineNs = Number(wait.deadline_virtual_ns);
      return {
        tid: wait.tid,
        pid: wait.pid,
        kind: WAIT_KINDS[wait.kind] ?? 'unknown',
        slot: wait.slot,
        deadlineNs: deadlineNs < 0 ? null : deadlineNs,
      };
    });
  }

  /** Frees the slots of threads that no longer exist (a process killed in a
   * wait); only meaningful if the cell shares our pid namespace. */
  reap(): number {
    const result = reap()(this.#live('reap')) as number;
    this.#check('reap', result);
    return result;
  }

  state(): ClockState {
    const out = {} as SnapshotC;
    this.#check('state', snapshot()(this.#live('state'), out) as number);
    return {
      running: out.running !== 0,
      baseVirtualNs: Number(out.base_virtual_ns),
      baseHostNs: Number(out.base_host_ns),
      scale: Number(out.scale_q32) / 2 ** 32,
      realtimeEpochNs: BigInt(out.realtime_epoch_ns),
      bootOffsetNs: Number(out.boot_offset_ns),
      limitNs: BigInt(out.limit_virtual_ns) >= INT64_MAX ? Infinity : Number(out.limit_virtual_ns),
      generation: out.generation,
    };
  }

  /** Unmaps the page (the file stays). Further calls throw. Idempotent. */
  close(): void {
    if (this.#handle === null) return;
    const handle = this.#handle;
    this.#handle = null;
    this.#check('close', close()(handle) as number);
  }

  #live(operation: string): unknown {
    if (this.#handle === null) throw new ClockError(operation, this.path, constants.errno.EBADF);
    return this.#handle;
  }

  #check(operation: string, result: number): void {
    if (result < 0) throw new ClockError(operation, this.path, -result);
  }
}
