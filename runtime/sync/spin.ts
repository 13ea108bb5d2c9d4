// Waiting for the sync loop's next message by spinning on its sockets (ffi/sync.ts)
// instead of sleeping in the event loop: an agent waiting for its peers' Rounds
// (direct mode) or for its next Advance (star mode). Only where no cell needs the
// core: parts with model hosts only. (A coordinator spinning for its agents' Done
// frames was tried: no gain measured on this 2-core VM, where it competes with
// the agents for the cores; it sleeps.)
import { SocketSpinner, socketFd, spinAvailable } from '../../ffi/sync.ts';
import type { WireConnection } from './wire.ts';

/**
 * How long a waiter spins on its sockets before it sleeps in the event loop
 * (LIVESTACK_SYNC_SPIN_US, 0 turns spinning off). Measured on this 2-core nested
 * VM (bench/distributed.ts, 64 hosts, 500 windows): with the peer asleep a Round's
 * write() took a median ~50 us (the wake-up IPI is a VM exit here), with it
 * spinning 10-15 us, and a Round reached a spinning agent in a median 16-34 us;
 * 1 ms covers the usual wait, so a window that waits longer only pays the sleep
 * it used to.
 */
export const SPIN_BUDGET_NS = (() => {
  const us = Number(process.env['LIVESTACK_SYNC_SPIN_US'] ?? 1000);
  return Number.isFinite(us) && us > 0 ? Math.min(us, 100_000) * 1000 : 0;
})();

/** A spinner over `connections` (in that order), or null when spinning is off or cannot work here. */
export function spinnerFor(connections: readonly WireConnection[]): SocketSpinner | null {
  if (SPIN_BUDGET_NS === 0 || connections.length === 0 || connections.length > 64 || !spinAvailable()) return null;
  const fds = connections.map((c) => socketFd(c.socket));
  if (fds.some((fd) => fd === null)) return null;
  const spinner = new SocketSpinner();
  spinner.setFds(fds as number[]);
  return spinner;
}

/**
 * Spins until `done()` holds, reading what arrives and handing it to its
 * connection in order (the frames are handled there, synchronously). Gives up,
 * leaving the rest to the event loop, when `budgetNs` passes with nothing read,
 * when Node holds unread bytes of one of the sockets, when a socket closes or
 * fails (the event loop reports that the usual way), or at `untilNs` (hrtime):
 * the caller's bound on time away from the event loop (heartbeats, timers).
 * `budgetNs` starts again whenever something was read and `done()` is still false.
 */
export function spinUntil(spinner: SocketSpinner, connections: readonly WireConnection[], done: () => boolean, budgetNs = SPIN_BUDGET_NS, untilNs = Infinity): void {
  let deadline = Number(process.hrtime.bigint()) + budgetNs;
  while (!done()) {
    if (!connections.every((c) => c.canReceiveDirectly())) return;
    const now = Number(process.hrtime.bigint());
    const left = Math.min(deadline, untilNs) - now;
    if (left <= 0) return;
    const result = spinner.wait(left);
    if (result.kind !== 'data') return;
    // a copy: frames and the events read from them keep views of these bytes
    connections[result.index]!.receive(Buffer.from(result.bytes));
    deadline = Number(process.hrtime.bigint()) + budgetNs;
  }
}
