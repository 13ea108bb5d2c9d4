// Runs a plan's modeled network: builds the components, splits them into
// partitions, and advances them in conservative windows (core/sync.ts).
import type { Plan } from '../dsl/plan.ts';
import { Partition } from './core/partition.ts';
import { inProcess, runWindows } from './core/sync.ts';
import { combineTraces } from './core/trace.ts';
import { MAX_PARTITIONS } from './core/limits.ts';
import { Rng } from './core/random.ts';
import { buildNetwork, UnsupportedPlanError, type Network } from './model/network.ts';
import { LiveHostNode, scheduleNodeAction } from './live/host.ts';
import { LiveScheduler, type LiveStats } from './live/scheduler.ts';
import { isLiveHost } from './live/kinds.ts';
import { qemuProblems } from './live/qemu.ts';
import { kvmProblems } from './live/vm.ts';

/** The longest window live cells run without a check (idle, exits, Ctrl-C). */
export const LIVE_MAX_WINDOW_NS = 10_000_000;

/**
 * The window and the model's run-ahead of a run with live cells (core/sync.ts, aheadNs). The model
 * runs ahead of the cells by the smallest latency of a link out of a live host; a window then only
 * has to fit a whole path from one live host to another: a link out into the model and a link back
 * in (or a direct link between two). So cells behind a switch on 0.5 ms links take turns in 1 ms
 * windows, not 0.5 ms, and a cell next to a modeled host on a 1 ms link in 2 ms windows. Each
 * link's smallest latency over the run counts (timeline link-set included); the scenario's own
 * `sync { window }` and LIVE_MAX_WINDOW_NS cap it.
 */
export function liveWindow(plan: Plan): { windowNs: number; aheadNs: number } {
  const live = new Set(plan.hosts.filter(isLiveHost).map((h) => h.name));
  const smallest = new Map(plan.links.map((l) => [l.name, l.latencyNs]));
  for (const action of plan.timeline) {
    if (action.type === 'link-set' && action.changes.latencyNs !== undefined) smallest.set(action.link, Math.min(smallest.get(action.link) ?? Infinity, action.changes.latencyNs));
  }
  let outOrIn = Infinity; // a link between a live host and the model (either way)
  let between = Infinity; // a link between two live hosts
  for (const link of plan.links) {
    const ends = Number(live.has(link.a)) + Number(live.has(link.b));
    const latency = smallest.get(link.name)!;
    if (ends === 2) between = Math.min(between, latency);
    else if (ends === 1) outOrIn = Math.min(outOrIn, latency);
  }
  const out = Math.min(outOrIn, between);
  const windowNs = Math.max(1, Math.min(plan.syncWindowCapNs ?? Infinity, plan.durationNs ?? Infinity, LIVE_MAX_WINDOW_NS, between, out + outOrIn));
  return { windowNs, aheadNs: Math.min(out, windowNs) };
}

export interface SimulationOptions {
  /** virtual end; default: the plan's duration */
  endNs?: number;
  /** number of in-process partitions (default 1) */
  partitions?: number;
  /** component id → partition; default: hosts in contiguous blocks, each switch with its first neighbour */
  assignment?: Int32Array;
  /** called after each window with the virtual time reached; return false to stop (Ctrl-C) */
  onProgress?: (timeNs: number, events: number) => boolean | void | Promise<boolean | void>;
  /** false: refuse process hosts instead of running them in cells */
  live?: boolean;
  /** the scenario's directory: relative vm `image` paths are resolved from it (default: the working directory) */
  baseDir?: string;
}

export interface LiveFactsResult {
  exitCodes: Map<string, Array<number | null>>;
  finishedAtNs: number | null;
  stats: LiveStats;
}

export interface SimulationResult {
  /** process cells' facts (exit codes, when all commands finished); null for model-only runs */
  live: LiveFactsResult | null;
  network: Network;
  traceHash: string;
  events: number;
  windows: number;
  /** the window's width (the last one of a run may be shorter), and how far the model ran ahead of
   *  live cells (0 without them; see liveWindow) */
  windowNs: number;
  aheadNs: number;
  messages: number;
  endNs: number;
  reachedNs: number;
  stoppedEarly: boolean;
  partitions: number;
}

/** Default split: hosts in contiguous blocks; a switch goes where most of its neighbours are. */
export function defaultAssignment(network: Network, partitions: number): Int32Array {
  const assignment = new Int32Array(network.nodes.length);
  const hosts = network.hosts.length;
  for (let i = 0; i < hosts; i++) assignment[i] = Math.min(partitions - 1, Math.floor((i * partitions) / Math.max(1, hosts)));
  for (const sw of network.switches) {
    const votes = new Array<number>(partitions).fill(0);
    for (const port of sw.ports) if (port.peer < hosts) votes[assignment[port.peer]!]!++;
    assignment[sw.id] = votes.indexOf(Math.max(...votes));
  }
  return assignment;
}

/** A seeded random split, for determinism property tests. */
export function randomAssignment(componentCount: number, partitions: number, seed: number): Int32Array {
  const rng = new Rng(seed, 'assignment');
  const assignment = new Int32Array(componentCount);
  for (let i = 0; i < componentCount; i++) assignment[i] = rng.below(partitions);
  return assignment;
}

export async function simulate(plan: Plan, options: SimulationOptions = {}): Promise<SimulationResult> {
  const liveNodes = new Map<string, LiveHostNode>();
  const hasLive = plan.hosts.some(isLiveHost) && options.live !== false;
  // backend qemu hosts: QEMU installed, kernel and initrd files there (exit 3 with what to do)
  const qemu = hasLive ? qemuProblems(plan, options.baseDir === undefined ? {} : { baseDir: options.baseDir }) : [];
  if (qemu.length > 0) throw new UnsupportedPlanError(qemu.map((p) => p.message).join('\n'));
  // kvm guests: /dev/kvm must create a VM (exit 3 with what to do)
  const kvm = hasLive ? kvmProblems(plan) : [];
  if (kvm.length > 0) throw new UnsupportedPlanError(kvm.join('\n'));
  const network = buildNetwork(plan, hasLive ? {
    liveHost: (host, ip, ownerOf) => {
      const node = new LiveHostNode(host.index, host.name, host.index, ip, ownerOf);
      liveNodes.set(host.name, node);
      return node;
    },
  } : {});
  const endNs = options.endNs ?? plan.durationNs ?? Number.MAX_SAFE_INTEGER;
  // live cells run in this process next to partition 0: one partition for now
  const count = hasLive ? 1 : Math.max(1, Math.min(options.partitions ?? 1, MAX_PARTITIONS, Math.max(1, network.nodes.length)));
  const assignment = options.assignment ?? defaultAssignment(network, count);
  if (assignment.length !== network.nodes.length) throw new Error(`assignment covers ${assignment.length} components, the network has ${network.nodes.length}`);
  const partitions = Array.from({ length: count }, (_, i) => new Partition(i, assignment));
  for (const node of network.nodes) partitions[assignment[node.id]!]!.add(node);

  // start-up events, scheduled by each component itself: partition-independent order
  for (const host of network.hosts) {
    const partition = partitions[assignment[host.id]!]!;
    for (const app of host.apps) app.start(host, partition);
  }
  for (const { node, action, atNs } of network.startActions) scheduleNodeAction(partitions[assignment[node]!]!, network.nodes[node]!, atNs, action);

  // the window may not exceed the smallest latency between partitions; the plan's window already
  // is at most the smallest latency of any link (and of any later `link … set`). With live cells (one
  // partition) the model runs ahead of them and the window spans a path between cells (liveWindow).
  const { windowNs, aheadNs } = hasLive ? liveWindow(plan) : { windowNs: Math.max(1, plan.syncWindowNs), aheadNs: 0 };
  const eventsSoFar = () => partitions.reduce((n, p) => n + p.eventsHandled, 0);
  const scheduler = hasLive ? new LiveScheduler(plan, liveNodes, options.baseDir === undefined ? {} : { baseDir: options.baseDir }) : null;
  let stats;
  try {
    if (scheduler !== null) await scheduler.setup();
    const until = plan.until;
    const finished = () =>
      scheduler !== null && (until.kind === 'all-exit' ? scheduler.allCommandsDone() : until.kind === 'hosts-exit' ? scheduler.hostsDone(until.hosts) : false);
    stats = await runWindows(inProcess(partitions), {
      endNs,
      windowNs,
      ...(scheduler === null ? {} : {
        aheadNs,
        nextTime: (after: number) => scheduler.nextTime(after),
        beforeWindow: (start: number, horizon: number) => scheduler.beforeWindow(start, horizon, partitions[0]!),
      }),
      onWindow: async (t: number) => {
        // live cells: let their output and exits (child-process events) in after every window
        if (scheduler !== null) await new Promise((resolve) => setImmediate(resolve));
        if (finished()) return false;
        return options.onProgress === undefined ? true : options.onProgress(t, eventsSoFar());
      },
    });
    if (finished()) {
      stats.stoppedEarly = false;
      // the run ends when the last command did, not at the end of the window that noticed it
      if (scheduler?.finishedAtNs != null) stats.endedAtNs = Math.min(stats.endedAtNs, Math.max(scheduler.finishedAtNs, 0));
    }
  } finally {
    if (scheduler !== null) await scheduler.teardown();
  }
  for (const host of network.hosts) {
    for (const app of host.apps) {
      const line = app.finish(host, stats.endedAtNs);
      if (line !== null) host.log.push({ timeNs: stats.endedAtNs, line });
    }
  }
  return {
    live: scheduler === null ? null : { exitCodes: scheduler.exitCodes(), finishedAtNs: scheduler.finishedAtNs, stats: scheduler.stats },
    network,
    traceHash: combineTraces(network.nodes),
    events: eventsSoFar(),
    windows: stats.windows,
    windowNs,
    aheadNs,
    messages: stats.messages,
    endNs,
    reachedNs: stats.endedAtNs,
    stoppedEarly: stats.stoppedEarly,
    partitions: count,
  };
}
