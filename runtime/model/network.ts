// Builds the modeled network of a plan: host and switch components, link
// directions, static forwarding tables (shortest paths by hop count, ties by
// port order: deterministic), timeline actions handed to the nodes they touch.
import type { Plan, PlanHost } from '../../dsl/plan.ts';
import { createApp, type HostDirectory } from './apps.ts';
import { LinkDirection, type CaptureRecord } from './link.ts';
import { HostNode, SwitchNode, type LiveInbox, type LogLine, type NetworkNode } from './nodes.ts';
import { ipToInt } from './packet.ts';
import { isLiveHost } from '../live/kinds.ts';

export interface Network {
  /** every component, by id: hosts first (plan order), then switches */
  nodes: NetworkNode[];
  hosts: HostNode[];
  switches: SwitchNode[];
  /** by link name: [a→b, b→a] */
  directions: Map<string, [LinkDirection, LinkDirection]>;
  /** by link name, for links marked `capture` */
  captures: Map<string, CaptureRecord[]>;
  /** timeline `log` lines */
  runLog: LogLine[];
  /** the timeline actions each node must schedule at start: [node id, action index, time] */
  startActions: Array<{ node: number; action: number; atNs: number }>;
}

export class UnsupportedPlanError extends Error {}

export interface NetworkOptions {
  /** makes the node of a `kind process` host (runtime/live); without it, such hosts are refused */
  liveHost?: (host: PlanHost, ip: number, ownerOf: (ip: number) => number) => HostNode;
}

export function buildNetwork(plan: Plan, options: NetworkOptions = {}): Network {
  // vm hosts are live: backend qemu ones are process cells (QEMU inside the cell, runtime/live/qemu.ts),
  // the others KVM guests (runtime/live/vm.ts)
  const unsupported = options.liveHost === undefined ? plan.hosts.filter(isLiveHost) : [];
  if (unsupported.length > 0) {
    throw new UnsupportedPlanError(
      `${unsupported.length} host(s) are live (${unsupported.slice(0, 3).map((h) => `${h.name}: kind ${h.kind}`).join(', ')}${unsupported.length > 3 ? ', …' : ''}); ` +
        'live hosts need root, network namespaces, cgroups and (vm hosts) /dev/kvm or QEMU: see livestack doctor',
    );
  }
  const byIp = new Map<number, number>();
  const ownerOf = (address: number) => byIp.get(address) ?? -1;
  const hosts = plan.hosts.map((h, i) => {
    const ip = ipToInt(h.address);
    byIp.set(ip, i);
    return isLiveHost(h) ? options.liveHost!(h, ip, ownerOf) : new HostNode(i, h.name, i, ip, ownerOf);
  });
  const switches = plan.switches.map((s, i) => new SwitchNode(hosts.length + i, s.name, s.latencyNs));
  const nodes: NetworkNode[] = [...hosts, ...switches];
  const idOf = new Map<string, number>(nodes.map((n) => [n.name, n.id]));
  const switchPlan = new Map(plan.switches.map((s) => [s.name, s]));
  const directions = new Map<string, [LinkDirection, LinkDirection]>();
  const captures = new Map<string, CaptureRecord[]>();
  const portOf = new Map<string, [number, number]>();

  for (const link of plan.links) {
    const a = nodes[idOf.get(link.a)!]!;
    const b = nodes[idOf.get(link.b)!]!;
    const records = link.capture ? [] : null;
    if (records !== null) captures.set(link.name, records);
    const defaults = (name: string) => {
      const s = switchPlan.get(name);
      return s === undefined ? null : { bandwidthBitsPerSec: s.bandwidthBitsPerSec, queue: s.queue };
    };
    const ab = new LinkDirection(link, 0, plan.seed, defaults(link.a), records);
    const ba = new LinkDirection(link, 1, plan.seed, defaults(link.b), records);
    const portA = a.ports.length;
    const portB = b.ports.length;
    a.ports.push({ index: portA, peer: b.id, peerPort: portB, tx: ab });
    b.ports.push({ index: portB, peer: a.id, peerPort: portA, tx: ba });
    directions.set(link.name, [ab, ba]);
    portOf.set(link.name, [portA, portB]);
  }

  // frames toward a live host must be known before the host's window runs
  for (const node of nodes) {
    for (const port of node.ports) {
      const inbox = (nodes[port.peer] as { inbox?: LiveInbox }).inbox;
      if (inbox !== undefined) port.liveInbox = inbox;
    }
  }

  computeRoutes(nodes, hosts.length);

  const directory: HostDirectory = {
    lookup(name) {
      const index = idOf.get(name)!;
      return { hostIndex: index, ip: hosts[index]!.ip };
    },
  };
  plan.hosts.forEach((h, i) => {
    h.apps.forEach((app, k) => hosts[i]!.apps.push(createApp(k, app, directory, plan.seed, h.name)));
  });

  const runLog: LogLine[] = [];
  const startActions: Network['startActions'] = [];
  const logNode = nodes[0];
  if (logNode !== undefined) logNode.runLog = runLog;
  for (const action of plan.timeline) {
    if (action.type === 'log') {
      if (logNode === undefined) continue;
      startActions.push({ node: logNode.id, action: logNode.actions.length, atNs: action.atNs });
      logNode.actions.push({ type: 'log', port: -1, text: action.text });
    } else if (action.type === 'link-down' || action.type === 'link-up' || action.type === 'link-set') {
      const link = plan.links.find((l) => l.name === action.link)!;
      const [portA, portB] = portOf.get(link.name)!;
      for (const [name, port] of [[link.a, portA], [link.b, portB]] as const) {
        const node = nodes[idOf.get(name)!]!;
        startActions.push({ node: node.id, action: node.actions.length, atNs: action.atNs });
        node.actions.push(action.type === 'link-set' ? { type: action.type, port, changes: action.changes } : { type: action.type, port });
      }
    }
    // kill/pause/resume/run concern live hosts: the live scheduler handles them
  }
  return { nodes, hosts, switches, directions, captures, runLog, startActions };
}

/** First-hop tables from every node with more than one port, forwarding only through switches. */
function computeRoutes(nodes: NetworkNode[], hostCount: number): void {
  const firstPort = new Int32Array(nodes.length);
  const queue = new Int32Array(nodes.length);
  for (const source of nodes) {
    if (source.ports.length < 2) continue;
    firstPort.fill(-1);
    let head = 0;
    let tail = 0;
    firstPort[source.id] = -2;
    for (const port of source.ports) {
      if (firstPort[port.peer] !== -1) continue;
      firstPort[port.peer] = port.index;
      if (port.peer >= hostCount) queue[tail++] = port.peer;
    }
    while (head < tail) {
      const u = nodes[queue[head++]!]!;
      for (const port of u.ports) {
        if (firstPort[port.peer] !== -1) continue;
        firstPort[port.peer] = firstPort[u.id]!;
        if (port.peer >= hostCount) queue[tail++] = port.peer;
      }
    }
    const route = new Int32Array(hostCount);
    for (let h = 0; h < hostCount; h++) route[h] = firstPort[h]! >= 0 ? firstPort[h]! : -1;
    source.route = route;
  }
}
