// One partition of a plan, as an agent runs it, and the results it sends back.
// buildNetwork is deterministic, so every agent builds the whole network from the
// plan and adds only its own components to its partition (as simulation.ts does
// for in-process partitions); the coordinator builds it too and fills in the
// results of every agent's components, so a distributed run yields the same
// SimulationResult (and run directory) as a local one.
import type { Plan } from '../../dsl/plan.ts';
import { Partition } from '../core/partition.ts';
import { combineTraces, type TraceHash } from '../core/trace.ts';
import type { DirectionStats } from '../model/link.ts';
import type { SimEvent } from '../core/events.ts';
import { LiveHostNode, scheduleNodeAction } from '../live/host.ts';
import type { LiveStats } from '../live/scheduler.ts';
import { buildNetwork, type Network } from '../model/network.ts';
import { EventKind, HostNode, SwitchNode, type HostStats, type LogLine } from '../model/nodes.ts';

export interface PlanPart {
  plan: Plan;
  /** component id → partition index, for every component of the plan */
  assignment: Int32Array;
  index: number;
  partitions: number;
}

export interface BuiltPart extends PlanPart {
  network: Network;
  partition: Partition;
  /** component ids this partition holds */
  own: number[];
  /** this part's process hosts (their cells run where the part runs), by host name */
  liveNodes: Map<string, LiveHostNode>;
}

/** Builds the network and a partition holding this part's components, with their start-up events. */
export function buildPart(part: PlanPart): BuiltPart {
  const { plan, assignment, index } = part;
  const liveNodes = new Map<string, LiveHostNode>();
  // every process host gets its node (the network is built whole everywhere); only this part's run cells
  const network = buildNetwork(plan, {
    liveHost: (host, ip, ownerOf) => {
      const node = new LiveHostNode(host.index, host.name, host.index, ip, ownerOf);
      if (assignment[host.index] === index) liveNodes.set(host.name, node);
      return node;
    },
  });
  if (assignment.length !== network.nodes.length) throw new Error(`the assignment covers ${assignment.length} components; the plan has ${network.nodes.length}`);
  for (let id = 0; id < assignment.length; id++) {
    const p = assignment[id]!;
    if (!(p >= 0 && p < part.partitions)) throw new Error(`component ${id} is assigned to partition ${p}, outside 0…${part.partitions - 1}`);
  }
  // a frame toward a live host is put in its inbox when its transmission starts (model/nodes.ts), so its
  // window knows it in advance. Toward another part's live host, the Arrive event crosses partitions
  // instead and goes in the inbox when delivered (deliverToPart)
  for (const node of network.nodes) {
    if (assignment[node.id] !== index) continue;
    for (const port of node.ports) if (port.liveInbox !== undefined && assignment[port.peer] !== index) delete port.liveInbox;
  }
  const partition = new Partition(index, assignment);
  const own: number[] = [];
  for (const node of network.nodes) {
    if (assignment[node.id] !== index) continue;
    partition.add(node);
    own.push(node.id);
  }
  // the same start-up events, in the same per-component order, as simulate()
  for (const host of network.hosts) {
    if (assignment[host.id] !== index) continue;
    for (const app of host.apps) app.start(host, partition);
  }
  for (const { node, action, atNs } of network.startActions) {
    if (assignment[node] !== index) continue;
    scheduleNodeAction(partition, network.nodes[node]!, atNs, action);
  }
  return { ...part, network, partition, own, liveNodes };
}

/** Hands events from other parts to this one; frames arriving at one of its live hosts also go in that host's inbox. */
export function deliverToPart(built: BuiltPart, events: readonly SimEvent[]): void {
  if (built.liveNodes.size > 0) {
    for (const event of events) {
      if (event.kind !== EventKind.Arrive) continue;
      const node = built.network.nodes[event.target];
      if (node instanceof LiveHostNode && built.assignment[node.id] === built.index) node.inbox.push({ timeNs: event.time, packet: event.data as LiveHostNode['inbox'][number]['packet'] });
    }
  }
  built.partition.deliver(events);
}

type Line = [timeNs: number, line: string];

export interface PartResults {
  index: number;
  events: number;
  nodes: Array<{ id: number; trace: string; traceEvents: number; dropsUnroutable: number; tx: DirectionStats[] }>;
  hosts: Array<{ id: number; log: Line[]; stats: HostStats }>;
  switches: Array<{ id: number; forwarded: number }>;
  /** capture records of link directions this part transmits: [timeNs, direction, wireBytes, bytes as base64] */
  captures: Array<{ link: string; records: Array<[number, number, number, string]> }>;
  /** the run log, from the part holding component 0 */
  runLog: Line[] | null;
  /** the part's process cells: exit codes per host, when its last command ended, scheduler counters (null: none here) */
  live: PartLive | null;
}

export interface PartLive {
  exitCodes: Array<[host: string, codes: Array<number | null>]>;
  finishedAtNs: number | null;
  stats: LiveStats;
}

const lines = (log: readonly LogLine[]): Line[] => log.map((l) => [l.timeNs, l.line]);

/** Ends the part at `endedAtNs` (apps print their closing lines) and collects what the run directory needs. */
export function finishPart(built: BuiltPart, endedAtNs: number, live: PartLive | null = null): PartResults {
  const { network, assignment, index } = built;
  for (const id of built.own) {
    const node = network.nodes[id]!;
    if (!(node instanceof HostNode)) continue;
    for (const app of node.apps) {
      const line = app.finish(node, endedAtNs);
      if (line !== null) node.log.push({ timeNs: endedAtNs, line });
    }
  }
  const results: PartResults = { index, events: built.partition.eventsHandled, nodes: [], hosts: [], switches: [], captures: [], runLog: null, live };
  for (const id of built.own) {
    const node = network.nodes[id]!;
    results.nodes.push({ id, trace: node.trace.hex(), traceEvents: node.trace.events, dropsUnroutable: node.dropsUnroutable, tx: node.ports.map((p) => ({ ...p.tx.stats })) });
    if (node instanceof HostNode) results.hosts.push({ id, log: lines(node.log), stats: { ...node.stats } });
    if (node instanceof SwitchNode) results.switches.push({ id, forwarded: node.forwarded });
    if (id === 0 && node.runLog !== null) results.runLog = lines(node.runLog);
  }
  const idOf = new Map(network.nodes.map((n) => [n.name, n.id]));
  for (const link of built.plan.links) {
    const records = network.captures.get(link.name);
    if (records === undefined) continue;
    const mine = [assignment[idOf.get(link.a)!] === index, assignment[idOf.get(link.b)!] === index];
    const out = records.filter((r) => mine[r.direction]).map((r): [number, number, number, string] => [r.timeNs, r.direction, r.packet.wireBytes, Buffer.from(r.packet.bytes).toString('base64')]);
    if (out.length > 0) results.captures.push({ link: link.name, records: out });
  }
  return results;
}

/** Fills a coordinator-side network with the results of every part; returns the trace hash and event count. */
export function mergeResults(network: Network, parts: readonly PartResults[]): { traceHash: string; events: number } {
  const traces = network.nodes.map(() => ({ hex: '0000000000000000', events: 0 }));
  let events = 0;
  for (const part of parts) {
    events += part.events;
    for (const n of part.nodes) {
      const node = network.nodes[n.id];
      if (node === undefined || n.tx.length !== node.ports.length) throw new Error(`results of partition ${part.index} do not match the plan (component ${n.id})`);
      traces[n.id] = { hex: n.trace, events: n.traceEvents };
      node.dropsUnroutable = n.dropsUnroutable;
      n.tx.forEach((stats, i) => Object.assign(node.ports[i]!.tx.stats, stats));
    }
    for (const h of part.hosts) {
      const host = network.nodes[h.id] as HostNode;
      host.log.push(...h.log.map(([timeNs, line]) => ({ timeNs, line })));
      Object.assign(host.stats, h.stats);
    }
    for (const s of part.switches) (network.nodes[s.id] as SwitchNode).forwarded = s.forwarded;
    for (const c of part.captures) {
      const records = network.captures.get(c.link);
      if (records === undefined) throw new Error(`partition ${part.index} sent a capture of link ${c.link}, which is not captured`);
      for (const [timeNs, direction, wireBytes, base64] of c.records) records.push({ timeNs, direction, packet: { bytes: new Uint8Array(Buffer.from(base64, 'base64')), wireBytes } });
    }
    if (part.runLog !== null) network.runLog.push(...part.runLog.map(([timeNs, line]) => ({ timeNs, line })));
  }
  // the same combination as a local run (core/trace.ts), from the shipped per-component hashes
  const traceHash = combineTraces(traces.map((t) => ({ trace: { hex: () => t.hex, events: t.events } as unknown as TraceHash })));
  return { traceHash, events };
}

/** The process cells' facts of a distributed run, from every part that ran cells (null: none did). */
export function mergeLive(parts: readonly PartResults[]): { exitCodes: Map<string, Array<number | null>>; finishedAtNs: number | null; stats: LiveStats } | null {
  const lives = parts.flatMap((p) => (p.live === null || p.live === undefined ? [] : [p.live]));
  if (lives.length === 0) return null;
  const stats = { ...lives[0]!.stats };
  for (const live of lives.slice(1)) {
    for (const key of Object.keys(stats) as Array<keyof LiveStats>) {
      // maxima stay maxima; counts add up
      stats[key] = /Max$/.test(key) ? Math.max(stats[key], live.stats[key]) : stats[key] + live.stats[key];
    }
  }
  // the run's commands ended when the last part's did (a part still running has none)
  const finished = lives.map((l) => l.finishedAtNs);
  return {
    exitCodes: new Map(lives.flatMap((l) => l.exitCodes)),
    finishedAtNs: finished.some((f) => f === null) ? null : Math.max(...(finished as number[])),
    stats,
  };
}
