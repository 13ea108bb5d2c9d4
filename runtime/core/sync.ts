// Conservative window synchronisation (exact, no rollback). Each round every
// partition reports its next event time (its time-advance message); the global
// minimum T opens the window [T, T + W), where W ≤ the smallest lookahead (the
// smallest latency of a link between partitions, capped by the plan's sync
// window). A message created inside the window lands at ≥ T + W, so no
// partition ever receives one in its past. Idle stretches are jumped: T is the
// next event anywhere, not the end of the last window.
import type { SimEvent } from './events.ts';
import type { Partition } from './partition.ts';

/** What the coordinator needs of a partition, wherever it runs (this process, a worker, an agent over TCP). */
export interface PartitionEndpoint {
  readonly index: number;
  deliver(events: readonly SimEvent[]): void | Promise<void>;
  nextEventTime(): number | Promise<number>;
  advance(horizon: number): void | Promise<void>;
  takeOutbox(): Map<number, SimEvent[]> | Promise<Map<number, SimEvent[]>>;
}

/** The in-process transport: partitions are objects in this thread. */
export function inProcess(partitions: readonly Partition[]): readonly PartitionEndpoint[] {
  return partitions;
}

export interface SyncOptions {
  /** simulate until this virtual time (events at or after it are not handled) */
  endNs: number;
  /** window width: min(plan sync window, smallest cross-partition latency); Infinity for one partition */
  windowNs: number;
  /** called after each window (progress, Ctrl-C checks); return false to stop early. A promise lets
   *  the caller yield to the event loop now and then (signals, sockets) without a cost per window. */
  onWindow?: (timeNs: number) => boolean | void | Promise<boolean | void>;
  /** live cells: the earliest time something outside the partitions needs to run (≥ after); Infinity if never */
  nextTime?: (afterNs: number) => number;
  /** live cells run through [start, horizon) before the partitions handle it (their frames become events) */
  beforeWindow?: (startNs: number, horizonNs: number) => void | Promise<void>;
}

export interface SyncStats {
  windows: number;
  messages: number;
  /** virtual time reached */
  endedAtNs: number;
  stoppedEarly: boolean;
}

export async function runWindows(endpoints: readonly PartitionEndpoint[], options: SyncOptions): Promise<SyncStats> {
  if (!(options.windowNs > 0)) throw new Error(`the sync window must be > 0 (got ${options.windowNs})`);
  const stats: SyncStats = { windows: 0, messages: 0, endedAtNs: 0, stoppedEarly: false };
  let reached = 0;
  for (;;) {
    let next = Infinity;
    for (const endpoint of endpoints) next = Math.min(next, await endpoint.nextEventTime());
    if (options.nextTime !== undefined) next = Math.min(next, options.nextTime(reached));
    if (next >= options.endNs) {
      stats.endedAtNs = options.endNs;
      break;
    }
    const horizon = Math.min(next + options.windowNs, options.endNs);
    if (options.beforeWindow !== undefined) await options.beforeWindow(next, horizon);
    for (const endpoint of endpoints) await endpoint.advance(horizon);
    reached = horizon;
    for (const endpoint of endpoints) {
      for (const [destination, events] of await endpoint.takeOutbox()) {
        stats.messages += events.length;
        await endpoints[destination]!.deliver(events);
      }
    }
    stats.windows++;
    stats.endedAtNs = horizon;
    const verdict = options.onWindow?.(horizon);
    if ((verdict instanceof Promise ? await verdict : verdict) === false) {
      stats.stoppedEarly = true;
      break;
    }
  }
  return stats;
}
