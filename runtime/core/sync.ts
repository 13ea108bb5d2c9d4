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
  /**
   * One window in one round trip (remote partitions): deliver `inbound`, advance from
   * the window's start `startNs` (live cells run from there) to `horizon`, and answer with the outbox and the next event time. When every endpoint
   * has it, runWindows exchanges one message pair per partition and window, runs the
   * partitions of a window concurrently, and skips partitions with nothing to do.
   */
  step?(horizon: number, inbound: SimEvent[], startNs: number): Promise<WindowResult>;
}

export interface WindowResult {
  outbox: Map<number, SimEvent[]>;
  /** after the window, not counting events still in transit */
  nextEventTime: number;
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
  /**
   * Live cells: the partitions first run ahead to start + aheadNs, then the cells run [start, horizon).
   * Safe for aheadNs up to the smallest latency out of a cell (nothing a cell sends from start on
   * lands earlier), and it lets the window reach aheadNs + the smallest latency into a cell: every
   * frame due at a cell before the horizon left the model before start + aheadNs, so it is known
   * when the cells run. Without it the window is capped by each hop's latency alone.
   */
  aheadNs?: number;
}

export interface SyncStats {
  windows: number;
  messages: number;
  /** virtual time reached */
  endedAtNs: number;
  stoppedEarly: boolean;
  /** step mode: partition windows run (advance messages sent) and skipped (nothing to do) */
  steps?: number;
  skipped?: number;
}

export async function runWindows(endpoints: readonly PartitionEndpoint[], options: SyncOptions): Promise<SyncStats> {
  if (!(options.windowNs > 0)) throw new Error(`the sync window must be > 0 (got ${options.windowNs})`);
  const stats: SyncStats = { windows: 0, messages: 0, endedAtNs: 0, stoppedEarly: false };
  if (endpoints.length > 0 && endpoints.every((e) => e.step !== undefined)) return runSteps(endpoints, options, stats);
  if (options.aheadNs !== undefined && endpoints.length > 1) throw new Error('running ahead of live cells needs a single partition');
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
    if (options.aheadNs !== undefined && options.aheadNs > 0) {
      const ahead = Math.min(next + options.aheadNs, options.endNs);
      for (const endpoint of endpoints) await endpoint.advance(ahead);
    }
    if (options.beforeWindow !== undefined) await options.beforeWindow(next, horizon);
    for (const endpoint of endpoints) await endpoint.advance(horizon);
    reached = horizon;
    for (const endpoint of endpoints) {
      for (const [destination, events] of await endpoint.takeOutbox()) {
        stats.messages += events.length;
        await endpoints[destination]!.deliver(events);
      }
    }
    if (!(await endWindow(stats, horizon, options))) break;
  }
  return stats;
}

/**
 * The round-trip-per-window loop for remote partitions. Events in transit wait here
 * between windows, so the next window starts at min(next event of every partition,
 * earliest event in transit). A partition whose next event and inbound events all
 * lie at or after the horizon is not asked: its state could not change.
 */
async function runSteps(endpoints: readonly PartitionEndpoint[], options: SyncOptions, stats: SyncStats): Promise<SyncStats> {
  if (options.nextTime !== undefined || options.beforeWindow !== undefined) throw new Error('live cells cannot run with remote partitions yet');
  const count = endpoints.length;
  const next = await Promise.all(endpoints.map((e) => e.nextEventTime()));
  let inbound: SimEvent[][] = endpoints.map(() => []);
  const inboundMin = new Array<number>(count).fill(Infinity);
  stats.steps = 0;
  stats.skipped = 0;
  for (;;) {
    let start = Infinity;
    for (let i = 0; i < count; i++) start = Math.min(start, next[i]!, inboundMin[i]!);
    if (start >= options.endNs) {
      stats.endedAtNs = options.endNs;
      break;
    }
    const horizon = Math.min(start + options.windowNs, options.endNs);
    const pending: Array<Promise<WindowResult> | null> = [];
    for (let i = 0; i < count; i++) {
      if (next[i]! >= horizon && inboundMin[i]! >= horizon) {
        pending.push(null);
        stats.skipped++;
        continue;
      }
      pending.push(endpoints[i]!.step!(horizon, inbound[i]!, start));
      inbound[i] = [];
      inboundMin[i] = Infinity;
      stats.steps++;
    }
    const results = await Promise.all(pending);
    for (let i = 0; i < count; i++) {
      const result = results[i];
      if (result === null || result === undefined) continue;
      next[i] = result.nextEventTime;
      for (const [destination, events] of result.outbox) {
        const list = inbound[destination];
        if (list === undefined) throw new Error(`partition ${i} sent events to partition ${destination}, which does not exist`);
        stats.messages += events.length;
        let earliest = inboundMin[destination]!;
        for (const event of events) {
          list.push(event);
          if (event.time < earliest) earliest = event.time;
        }
        inboundMin[destination] = earliest;
      }
    }
    if (!(await endWindow(stats, horizon, options))) break;
  }
  return stats;
}

/** Counts a finished window and asks onWindow whether to go on (false: stopped early). */
async function endWindow(stats: SyncStats, horizon: number, options: SyncOptions): Promise<boolean> {
  stats.windows++;
  stats.endedAtNs = horizon;
  const verdict = options.onWindow?.(horizon);
  if ((verdict instanceof Promise ? await verdict : verdict) === false) {
    stats.stoppedEarly = true;
    return false;
  }
  return true;
}
