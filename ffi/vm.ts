// Bindings of the micro-VMM (ffi/c/vmm/): create a VM cell from a guest
// image, run it through virtual-time windows on its own C thread, destroy it.
// Structs cross as raw little-endian buffers, checked against the C sizeof.
import koffi from 'koffi';
import { errnoName, INT64_MAX, lazyFunction, LibraryError, loadLibrary } from './lib.ts';

const CONFIG_BYTES = 56;
const RESULT_BYTES = 224;
const DELIVERY_BYTES = 16;
const FRAME_BYTES = 24;

const VmHandle = koffi.opaque('ls_vm');
const createFn = lazyFunction('ls_vm__create', 'int', ['uint8_t *', 'uint8_t *', 'uint64_t', 'const char *', koffi.out(koffi.pointer(koffi.pointer(VmHandle)))]);
const beginFn = lazyFunction('ls_vm__begin', 'int', [koffi.pointer(VmHandle), 'int64_t', 'int64_t', 'uint8_t *', 'int32_t', 'uint8_t *']);
const endFn = lazyFunction('ls_vm__end', 'int', [koffi.pointer(VmHandle), 'uint8_t *', 'uint8_t *', 'int32_t', 'uint8_t *', 'uint32_t', 'uint8_t *', 'uint32_t']);
const destroyFn = lazyFunction('ls_vm__destroy', 'int', [koffi.pointer(VmHandle)]);
const exitCostFn = lazyFunction('ls_vm__exit_cost_ns', 'long long', []);
const kickCostFn = lazyFunction('ls_vm__kick_cost_ns', 'long long', []);
const benchExitsFn = lazyFunction('ls_vm__bench_exits', 'int', ['int32_t', 'int64_t *']);
const benchKicksFn = lazyFunction('ls_vm__bench_kicks', 'int', ['int32_t', 'int64_t', 'int64_t *']);
const benchCallsFn = lazyFunction('ls_vm__bench_calls', 'long long', ['int32_t']);
const benchSyscallsFn = lazyFunction('ls_vm__bench_syscalls', 'long long', ['int32_t']);
const benchTimerFn = lazyFunction('ls_vm__bench_timer', 'int', ['int32_t', 'int64_t', 'int64_t *']);
const abiVersionFn = lazyFunction('ls_abi_version', 'int', []);
const sizeofFn = lazyFunction('ls_sizeof', 'long', ['const char *']);

let checked = false;
function checkLayout(): void {
  if (checked) return;
  for (const [name, bytes] of [['ls_vm_config', CONFIG_BYTES], ['ls_vm_result', RESULT_BYTES], ['ls_live_delivery', DELIVERY_BYTES], ['ls_live_frame', FRAME_BYTES]] as const) {
    const c = sizeofFn()(name) as number;
    if (c !== bytes) throw new LibraryError(`struct ${name} is ${c} bytes in ${loadLibrary().path}, ${bytes} in ffi/vm.ts`, 'rebuild with npm run build:ffi', loadLibrary().path);
  }
  checked = true;
}

export class VmError extends Error {
  constructor(message: string, readonly errno: number) {
    super(message);
  }
}

function check(rc: number, what: string): void {
  if (rc < 0) throw new VmError(`${what}: ${errnoName(rc)}`, -rc);
}

export interface VmConfig {
  memoryBytes: number;
  /** cpu_scale: virtual ns per ns the vCPU ran */
  scale: number;
  /** vCPU k's thread is pinned to cores[k % cores.length]; empty: not pinned */
  cores: readonly number[];
  /** 1..16 */
  vcpus?: number;
  hostIndex: number;
  /** IPv4 dotted quad */
  address: string;
  prefixLength: number;
  /** virtual time at which the guest starts */
  startNs: number;
  numaNode?: number;
}

export const VmState = { Running: 0, Waiting: 1, Exited: 2, Crashed: 3 } as const;

export interface VmWindowResult {
  clockNs: number;
  /** Waiting: its deadline (null: none, it waits for a frame) */
  waitUntilNs: number | null;
  ranNs: number;
  overshootNsMax: number;
  state: number;
  exitCode: number;
  framesDropped: number;
  exits: number;
  kicks: number;
  wakeOnFrame: boolean;
  error: string;
  frames: Array<{ timeNs: number; frame: Uint8Array }>;
  /** console lines of this window, with the virtual time their first byte was written */
  console: Array<{ timeNs: number; line: string }>;
}

const OUT_MAX = 4096;
const OUT_CAPACITY = 4 * 1024 * 1024;
const CONSOLE_CAPACITY = 64 * 1024;

function ipv4(address: string): number {
  const parts = address.split('.').map(Number);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** One VM: a guest image on one vCPU, run by a C thread of its own in the windows it is given. */
export class Vm {
  private handle: unknown;
  private running = false;
  private readonly resultBuffer = Buffer.alloc(RESULT_BYTES);
  private outFrames: Buffer | undefined;
  private outBytes: Buffer | undefined;
  private consoleBuffer: Buffer | undefined;

  private constructor(handle: unknown) {
    this.handle = handle;
  }

  /** Throws VmError (ENOEXEC: not a guest image; ENOENT/EACCES: no /dev/kvm). */
  static create(config: VmConfig, image: Uint8Array, arg: string): Vm {
    checkLayout();
    const c = Buffer.alloc(CONFIG_BYTES);
    c.writeBigUInt64LE(BigInt(config.memoryBytes), 0);
    c.writeDoubleLE(config.scale, 8);
    c.writeBigUInt64LE(config.cores.reduce((mask, core) => mask | (1n << BigInt(core)), 0n), 16);
    c.writeBigInt64LE(BigInt(config.startNs), 24);
    c.writeInt32LE(config.hostIndex, 32);
    c.writeUInt32LE(ipv4(config.address), 36);
    c.writeUInt32LE(config.prefixLength, 40);
    c.writeInt32LE(config.numaNode ?? -1, 44);
    c.writeInt32LE(config.vcpus ?? 1, 48);
    const out: unknown[] = [null];
    check(createFn()(c, Buffer.from(image.buffer, image.byteOffset, image.byteLength), image.byteLength, arg, out) as number, 'creating the VM');
    return new Vm(out[0]);
  }

  /** Starts the window [startNs, endNs) on the vCPU thread; returns at once. */
  begin(startNs: number, endNs: number, deliveries: ReadonlyArray<{ timeNs: number; frame: Uint8Array }>): void {
    if (this.handle === null) throw new VmError('the VM is destroyed', 9);
    let total = 0;
    for (const d of deliveries) total += d.frame.length;
    const table = Buffer.alloc(DELIVERY_BYTES * Math.max(1, deliveries.length));
    const bytes = Buffer.alloc(Math.max(1, total));
    let offset = 0;
    deliveries.forEach((d, i) => {
      table.writeBigInt64LE(BigInt(d.timeNs), i * DELIVERY_BYTES);
      table.writeUInt32LE(offset, i * DELIVERY_BYTES + 8);
      table.writeUInt32LE(d.frame.length, i * DELIVERY_BYTES + 12);
      bytes.set(d.frame, offset);
      offset += d.frame.length;
    });
    check(beginFn()(this.handle, BigInt(startNs), BigInt(endNs), table, deliveries.length, bytes) as number, 'starting a VM window');
    this.running = true;
  }

  /** Waits for the window begun last and returns what happened in it. */
  end(): VmWindowResult {
    if (this.handle === null) throw new VmError('the VM is destroyed', 9);
    this.outFrames ??= Buffer.alloc(FRAME_BYTES * OUT_MAX);
    this.outBytes ??= Buffer.alloc(OUT_CAPACITY);
    this.consoleBuffer ??= Buffer.alloc(CONSOLE_CAPACITY);
    const r = this.resultBuffer;
    check(endFn()(this.handle, r, this.outFrames, OUT_MAX, this.outBytes, OUT_CAPACITY, this.consoleBuffer, CONSOLE_CAPACITY) as number, 'ending a VM window');
    this.running = false;
    const waitUntil = r.readBigInt64LE(8);
    const framesOut = r.readInt32LE(40);
    const frames: VmWindowResult['frames'] = [];
    const copy = Buffer.from(this.outBytes.subarray(0, framesOut === 0 ? 0 : this.outFrames.readUInt32LE((framesOut - 1) * FRAME_BYTES + 12) + this.outFrames.readUInt32LE((framesOut - 1) * FRAME_BYTES + 16)));
    for (let i = 0; i < framesOut; i++) {
      const base = i * FRAME_BYTES;
      const offset = this.outFrames.readUInt32LE(base + 12);
      const length = this.outFrames.readUInt32LE(base + 16);
      frames.push({ timeNs: Number(this.outFrames.readBigInt64LE(base)), frame: copy.subarray(offset, offset + length) });
    }
    const consoleLength = r.readUInt32LE(56);
    const console: VmWindowResult['console'] = [];
    if (consoleLength > 0) {
      for (const text of this.consoleBuffer.toString('utf8', 0, consoleLength).split('\n')) {
        const space = text.indexOf(' ');
        if (space <= 0) continue;
        console.push({ timeNs: Number(text.slice(0, space)), line: text.slice(space + 1) });
      }
    }
    const errorEnd = r.indexOf(0, 64);
    return {
      clockNs: Number(r.readBigInt64LE(0)),
      waitUntilNs: waitUntil === INT64_MAX ? null : Number(waitUntil),
      ranNs: Number(r.readBigInt64LE(16)),
      overshootNsMax: Number(r.readBigInt64LE(24)),
      state: r.readInt32LE(32),
      exitCode: r.readInt32LE(36),
      framesDropped: r.readInt32LE(44),
      exits: r.readInt32LE(48),
      kicks: r.readInt32LE(52),
      wakeOnFrame: r.readInt32LE(60) !== 0,
      error: r.toString('utf8', 64, errorEnd < 0 || errorEnd > RESULT_BYTES ? RESULT_BYTES : errorEnd),
      frames,
      console,
    };
  }

  /** Runs one window to its end (begin + end). */
  window(startNs: number, endNs: number, deliveries: ReadonlyArray<{ timeNs: number; frame: Uint8Array }> = []): VmWindowResult {
    this.begin(startNs, endNs, deliveries);
    return this.end();
  }

  destroy(): void {
    if (this.handle === null) return;
    if (this.running) {
      try {
        this.end();
      } catch {
        // destroying anyway
      }
    }
    destroyFn()(this.handle);
    this.handle = null;
  }
}

/** The calibrated host cost of one exit and re-entry (the clock does not count it). */
export function vmExitCostNs(): number {
  return Number(exitCostFn()());
}

/** The calibrated host cost of a quantum ended by the kick. */
export function vmKickCostNs(): number {
  return Number(kickCostFn()());
}

/** Host ns of each of `count` KVM_RUN round trips of a guest that only writes a port. */
export function benchExits(count: number): number[] {
  const out = new BigInt64Array(count);
  check(benchExitsFn()(count, out) as number, 'timing exits');
  return [...out].map(Number);
}

/** Host ns each of `count` quanta of quantumNs ran past its end before the kick stopped the guest. */
export function benchKicks(count: number, quantumNs: number): number[] {
  const out = new BigInt64Array(count);
  check(benchKicksFn()(count, BigInt(quantumNs), out) as number, 'timing kicks');
  return [...out].map(Number);
}

/** Bench baselines (ffi/c/vmm/bench.c). */
export const vmBench = {
  /** ns for `count` calls of ls_abi_version from a C loop */
  cLoopNs: (count: number): number => Number(benchCallsFn()(count)),
  /** ns for `count` calls of ls_abi_version through koffi from JS */
  koffiLoopNs: (count: number): number => {
    const call = abiVersionFn();
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) call();
    return Number(process.hrtime.bigint() - started);
  },
  /** ns for `count` getppid() system calls */
  syscallsNs: (count: number): number => Number(benchSyscallsFn()(count)),
  /** overshoot of a timer signal on a spinning host thread, ns each */
  timerOvershootNs: (count: number, quantumNs: number): number[] => {
    const out = new BigInt64Array(count);
    check(benchTimerFn()(count, BigInt(quantumNs), out) as number, 'timing a timer');
    return [...out].map(Number);
  },
};
