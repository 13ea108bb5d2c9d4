// Spin-waiting on the sync loop's sockets (ffi/c/sync.c): an agent waiting for
// its peers' Round messages spins on their sockets for a bounded time instead of
// sleeping in the event loop, and reads what arrives directly.
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { lazyFunction, loadLibrary } from './lib.ts';

const spinRecv = lazyFunction('ls_sync__spin_recv', 'long', ['int32_t *', 'int32_t', 'void *', 'int64_t', 'int64_t', 'int32_t *']);

/** The file descriptor under a connected TCP socket (libuv's), or null. */
export function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** true when the C library is there to spin with (a pure-model agent works without it). */
export function spinAvailable(): boolean {
  try {
    loadLibrary();
    spinRecv();
    return true;
  } catch {
    return false;
  }
}

export type SpinResult = { kind: 'data'; index: number; bytes: Buffer } | { kind: 'timeout' } | { kind: 'closed'; index: number } | { kind: 'error'; errno: number };

/**
 * Spins up to budgetNs for one of `fds` to be readable and reads it into `buffer`.
 * 'closed' (end of stream, hang-up) and 'error' consume nothing: the event loop
 * sees the same condition and reports it the usual way.
 */
export class SocketSpinner {
  private readonly which = new Int32Array(1);
  private fds = new Int32Array(0);
  constructor(readonly buffer: Buffer = Buffer.allocUnsafe(256 << 10)) {}

  setFds(fds: readonly number[]): void {
    if (fds.length === 0 || fds.length > 64) throw new RangeError(`1 to 64 sockets (got ${fds.length})`);
    this.fds = Int32Array.from(fds);
  }

  wait(budgetNs: number): SpinResult {
    const got = Number(spinRecv()(this.fds, this.fds.length, this.buffer, this.buffer.length, Math.max(0, Math.round(budgetNs)), this.which));
    if (got > 0) return { kind: 'data', index: this.which[0]!, bytes: this.buffer.subarray(0, got) };
    if (got === 0) return { kind: 'timeout' };
    if (got === -constants.errno.EPIPE) return { kind: 'closed', index: this.which[0]! };
    return { kind: 'error', errno: -got };
  }
}
