// Splitting a plan into one partition per agent. Hosts placed with `place … on
// "AGENT"` go to that agent. The rest is clustered Kruskal-style: links are
// taken from the lowest latency up and their ends merged while the cluster
// stays within a balanced share of the weight, so the links left between
// clusters, the ones cut, are the high-latency ones. The lookahead of the run
// (its window) is the smallest latency a cut link ever has (`link … set`
// included): the larger it is, the fewer windows and round trips.
import type { Plan } from '../../dsl/plan.ts';

export class SplitError extends Error {}

export interface Split {
  /** component id (hosts in plan order, then switches) → partition index */
  assignment: Int32Array;
  /** smallest latency of a link between partitions; Infinity if no link is cut */
  lookaheadNs: number;
  cutLinks: number;
  /** weight per partition (process hosts count their cpus, other components 1) */
  weights: number[];
}

/** How far a cluster may exceed an even share before a merge is refused. */
const BALANCE_SLACK = 1.1;

export function splitPlan(plan: Plan, agentNames: readonly string[]): Split {
  const partitions = agentNames.length;
  if (partitions < 1) throw new SplitError('a distributed run needs at least one agent');
  const hostCount = plan.hosts.length;
  const count = hostCount + plan.switches.length;
  const idOf = new Map<string, number>();
  plan.hosts.forEach((h, i) => idOf.set(h.name, i));
  plan.switches.forEach((s, i) => idOf.set(s.name, hostCount + i));
  const weight = new Array<number>(count).fill(1);
  plan.hosts.forEach((h, i) => (weight[i] = h.kind === 'process' || h.kind === 'vm' ? Math.max(1, h.cpus) : 1));

  // fixed placement
  const fixed = new Int32Array(count).fill(-1);
  const agentIndex = new Map(agentNames.map((n, i) => [n, i]));
  for (const host of plan.hosts) {
    if (host.agent === null) continue;
    const p = agentIndex.get(host.agent);
    if (p === undefined) throw new SplitError(`host ${host.name} is placed on agent "${host.agent}" (${host.source}), but no connected agent has that name (agents: ${agentNames.map((n) => `"${n}"`).join(', ')}); start one with --name ${host.agent} or change the place line`);
    fixed[idOf.get(host.name)!] = p;
  }

  // the smallest latency each link will ever have
  const latency = plan.links.map((l) => l.latencyNs);
  const linkIndex = new Map(plan.links.map((l, i) => [l.name, i]));
  for (const action of plan.timeline) {
    if (action.type === 'link-set' && action.changes.latencyNs !== undefined) {
      const i = linkIndex.get(action.link)!;
      latency[i] = Math.min(latency[i]!, action.changes.latencyNs);
    }
  }

  // union-find over components; a cluster carries its weight and its fixed partition
  const parent = Int32Array.from({ length: count }, (_, i) => i);
  const clusterWeight = weight.slice();
  const clusterFixed = Int32Array.from(fixed);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const total = weight.reduce((a, b) => a + b, 0);
  const cap = Math.max(1, Math.floor((total / partitions) * BALANCE_SLACK));
  const order = plan.links.map((_, i) => i).sort((x, y) => latency[x]! - latency[y]! || x - y);
  for (const i of order) {
    const link = plan.links[i]!;
    const a = find(idOf.get(link.a)!);
    const b = find(idOf.get(link.b)!);
    if (a === b) continue;
    const fa = clusterFixed[a]!;
    const fb = clusterFixed[b]!;
    if (fa >= 0 && fb >= 0 && fa !== fb) {
      if (latency[i]! <= 0) throw new SplitError(`link ${link.name} has no latency but joins hosts placed on different agents ("${agentNames[fa]}", "${agentNames[fb]}"): give it a latency (the lookahead) or place both ends on one agent`);
      continue;
    }
    // a zero-latency link can never be cut (no lookahead); others only while balanced
    if (latency[i]! > 0 && partitions > 1 && clusterWeight[a]! + clusterWeight[b]! > cap) continue;
    parent[b] = a;
    clusterWeight[a] = clusterWeight[a]! + clusterWeight[b]!;
    clusterFixed[a] = fa >= 0 ? fa : fb;
  }

  // clusters to partitions: placed ones first, then the heaviest to the lightest partition
  const weights = new Array<number>(partitions).fill(0);
  const partitionOfCluster = new Map<number, number>();
  const roots: number[] = [];
  for (let c = 0; c < count; c++) if (find(c) === c) roots.push(c);
  for (const r of roots) {
    if (clusterFixed[r]! >= 0) {
      partitionOfCluster.set(r, clusterFixed[r]!);
      weights[clusterFixed[r]!] = weights[clusterFixed[r]!]! + clusterWeight[r]!;
    }
  }
  const free = roots.filter((r) => clusterFixed[r]! < 0).sort((x, y) => clusterWeight[y]! - clusterWeight[x]! || x - y);
  for (const r of free) {
    let best = 0;
    for (let p = 1; p < partitions; p++) if (weights[p]! < weights[best]!) best = p;
    partitionOfCluster.set(r, best);
    weights[best] = weights[best]! + clusterWeight[r]!;
  }
  const assignment = new Int32Array(count);
  for (let c = 0; c < count; c++) assignment[c] = partitionOfCluster.get(find(c))!;

  return { assignment, ...lookahead(plan, assignment), weights };
}

/** The smallest latency a link between two partitions ever has (`link … set` included), and how many links are cut. */
export function lookahead(plan: Plan, assignment: Int32Array): { lookaheadNs: number; cutLinks: number } {
  const idOf = new Map<string, number>();
  plan.hosts.forEach((h, i) => idOf.set(h.name, i));
  plan.switches.forEach((s, i) => idOf.set(s.name, plan.hosts.length + i));
  const latency = new Map(plan.links.map((l) => [l.name, l.latencyNs]));
  for (const action of plan.timeline) {
    if (action.type === 'link-set' && action.changes.latencyNs !== undefined) latency.set(action.link, Math.min(latency.get(action.link)!, action.changes.latencyNs));
  }
  let lookaheadNs = Infinity;
  let cutLinks = 0;
  for (const link of plan.links) {
    if (assignment[idOf.get(link.a)!] === assignment[idOf.get(link.b)!]) continue;
    cutLinks++;
    lookaheadNs = Math.min(lookaheadNs, latency.get(link.name)!);
  }
  if (lookaheadNs <= 0) throw new SplitError('a link without latency joins two partitions: no lookahead (give every link between agents a latency)');
  return { lookaheadNs, cutLinks };
}
