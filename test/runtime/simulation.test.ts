// Windows of runs with live cells (runtime/simulation.ts liveWindow) and the run-ahead they rest
// on (core/sync.ts aheadNs, live/host.ts egress): checked here without cells, by a stand-in that
// sends frames at given stamps the way the live scheduler does.
import test, { type ExecutionContext } from 'ava';
import type { Plan } from '../../dsl/plan.ts';
import { Partition } from '../../runtime/core/partition.ts';
import { inProcess, runWindows } from '../../runtime/core/sync.ts';
import { LiveHostNode, scheduleNodeAction } from '../../runtime/live/host.ts';
import { buildNetwork } from '../../runtime/model/network.ts';
import { hostMac, type Packet } from '../../runtime/model/packet.ts';
import { LIVE_MAX_WINDOW_NS, liveWindow } from '../../runtime/simulation.ts';
import { planOf, scn } from '../dsl/helpers.ts';

const US = 1_000;
const MS = 1_000_000;

const switched = (...extra: string[]) => scn(
  '  host a { kind process  run "true" }',
  '  host b { kind process  run "true" }',
  '  switch sw { latency 0us }',
  '  link a -- sw { latency 500us  bandwidth 1Gbit }',
  '  link b -- sw { latency 500us  bandwidth 1Gbit }',
  ...extra,
);

test('live windows span a path between cells: two 0.5 ms hops through a switch make 1 ms windows, the model 0.5 ms ahead', (t) => {
  const plan = planOf(t, switched());
  t.is(plan.syncWindowNs, 500 * US, 'the plan keeps the per-link window (distributed runs use it)');
  t.deepEqual(liveWindow(plan), { windowNs: 1 * MS, aheadNs: 500 * US });
});

test('live windows: a direct link between cells bounds the window by itself; a modeled host next to a cell doubles it', (t) => {
  const direct = planOf(t, scn('  host a { kind process  run "true" }', '  host b { kind process  run "true" }', '  link a -- b { latency 1ms }'));
  t.deepEqual(liveWindow(direct), { windowNs: 1 * MS, aheadNs: 1 * MS });
  const model = planOf(t, scn('  host a { kind process  run "true" }', '  host m { app sink { port 9 } }', '  link a -- m { latency 1ms }'));
  t.deepEqual(liveWindow(model), { windowNs: 2 * MS, aheadNs: 1 * MS });
  // a direct 300 us link between cells and a 1 ms link out to the model: the direct one bounds both
  const mixed = planOf(t, scn(
    '  host a { kind process  run "true" }', '  host b { kind process  run "true" }', '  host m { app sink { port 9 } }',
    '  link a -- b { latency 300us }', '  link a -- m { latency 1ms }',
  ));
  t.deepEqual(liveWindow(mixed), { windowNs: 300 * US, aheadNs: 300 * US });
});

test('live windows keep to the scenario\'s sync window, to the smallest latency a link is ever set to, and to the live maximum', (t) => {
  t.deepEqual(liveWindow(planOf(t, switched('  sync { window 200us }'))), { windowNs: 200 * US, aheadNs: 200 * US });
  t.deepEqual(liveWindow(planOf(t, switched('  sync { window 500us }'))), { windowNs: 500 * US, aheadNs: 500 * US }, 'a cap equal to the smallest latency is still a cap');
  t.deepEqual(liveWindow(planOf(t, switched('  at 1s { link b -- sw set { latency 300us } }', '  sync { window 300us }'))), { windowNs: 300 * US, aheadNs: 300 * US });
  const slow = planOf(t, scn('  host a { kind process  run "true" }', '  host b { kind process  run "true" }', '  switch sw { latency 0us }', '  link a -- sw { latency 40ms }', '  link b -- sw { latency 40ms }'));
  t.deepEqual(liveWindow(slow), { windowNs: LIVE_MAX_WINDOW_NS, aheadNs: LIVE_MAX_WINDOW_NS });
  const alone = planOf(t, scn('  host a { kind process  run "true" }'));
  t.deepEqual(liveWindow(alone), { windowNs: LIVE_MAX_WINDOW_NS, aheadNs: LIVE_MAX_WINDOW_NS });
});

/** A 64-byte frame from host index `from` to host index `to` (the model routes on the destination MAC). */
function frame(from: number, to: number, id: number): Packet {
  const bytes = new Uint8Array(64);
  bytes.set(hostMac(to), 0);
  bytes.set(hostMac(from), 6);
  bytes[12] = 0x08;
  bytes[14] = id & 255;
  bytes[15] = id >> 8;
  return { bytes, wireBytes: 64 };
}

interface Delivery {
  to: string;
  id: number;
  atNs: number;
}

/**
 * Runs `plan`'s network with stand-in cells: each sends its frames at the given stamps, in the window
 * that holds them, and takes its deliveries at the window's start (as the live scheduler writes them).
 * Returns the deliveries, the windows run, and how far the model was ahead of a frame at its send.
 */
async function standIn(plan: Plan, sends: Record<string, Array<[atNs: number, to: string]>>, windowNs: number, aheadNs: number | undefined) {
  const nodes = new Map<string, LiveHostNode>();
  const network = buildNetwork(plan, {
    liveHost: (host, ip, ownerOf) => {
      const node = new LiveHostNode(host.index, host.name, host.index, ip, ownerOf);
      nodes.set(host.name, node);
      return node;
    },
  });
  const partition = new Partition(0, new Int32Array(network.nodes.length));
  for (const node of network.nodes) partition.add(node);
  for (const { node, action, atNs } of network.startActions) scheduleNodeAction(partition, network.nodes[node]!, atNs, action);
  const index = new Map(plan.hosts.map((h) => [h.name, h.index]));
  const queue = new Map(Object.entries(sends).map(([name, list]) => [name, list.map(([atNs, to], i) => ({ atNs, to, id: i }))]));
  const delivered: Delivery[] = [];
  let aheadMaxNs = -Infinity;
  let missed = 0;
  const stats = await runWindows(inProcess([partition]), {
    endNs: 100 * MS,
    windowNs,
    ...(aheadNs === undefined ? {} : { aheadNs }),
    nextTime: (after) => {
      let next = Infinity;
      for (const list of queue.values()) if (list.length > 0) next = Math.min(next, list[0]!.atNs);
      for (const node of nodes.values()) {
        for (const d of node.inbox) next = Math.min(next, d.timeNs);
        next = Math.min(next, node.egressNext());
      }
      return Math.max(after, next);
    },
    beforeWindow: (start, horizon) => {
      for (const [name, node] of nodes) {
        // what a cell gets in its window must be known when the window starts
        for (const d of node.inbox) {
          if (d.timeNs < start) missed++;
        }
        const due = node.inbox.filter((d) => d.timeNs < horizon);
        node.inbox.splice(0, node.inbox.length, ...node.inbox.filter((d) => d.timeNs >= horizon));
        for (const d of due) delivered.push({ to: name, id: d.packet.bytes[14]! | (d.packet.bytes[15]! << 8), atNs: d.timeNs });
      }
      for (const [name, list] of queue) {
        while (list.length > 0 && list[0]!.atNs < horizon) {
          const send = list.shift()!;
          aheadMaxNs = Math.max(aheadMaxNs, partition.now - send.atNs);
          nodes.get(name)!.liveSend(send.atNs, frame(index.get(name)!, index.get(send.to)!, send.id), partition);
        }
      }
      for (const node of nodes.values()) node.runEgress(horizon, partition);
    },
  });
  delivered.sort((x, y) => x.atNs - y.atNs || x.to.localeCompare(y.to) || x.id - y.id);
  return { delivered, windows: stats.windows, aheadMaxNs, missed };
}

function sendsFor(t: ExecutionContext): Record<string, Array<[number, string]>> {
  const a: Array<[number, string]> = [];
  const b: Array<[number, string]> = [];
  // bursts of 5 frames (they queue behind each other at a's port), at stamps that fall anywhere in a
  // window, some just before and after the link-set at 20 ms, and a quiet stretch the run jumps over
  for (let k = 0; k < 40; k++) {
    const at = k < 30 ? 137 * US + k * 673 * US : 60 * MS + k * 97 * US;
    for (let j = 0; j < 5; j++) a.push([at, 'b']);
    b.push([at + 250 * US, 'a']);
  }
  a.push([20 * MS - 1, 'b'], [20 * MS, 'b'], [20 * MS + 1, 'b']);
  a.sort((x, y) => x[0] - y[0]);
  t.true(a.length > 200);
  return { a, b };
}

test('the model runs ahead of the cells and the hosts\' egress catches up: deliveries as with per-hop windows, exactly', async (t) => {
  const plan = planOf(t, switched('  at 20ms { link a -- sw set { latency 2ms } }'));
  const { windowNs, aheadNs } = liveWindow(plan);
  const reference = await standIn(plan, sendsFor(t), plan.syncWindowNs, undefined);
  const ahead = await standIn(plan, sendsFor(t), windowNs, aheadNs);
  t.is(reference.missed, 0);
  t.is(ahead.missed, 0, 'every delivery was known before its window');
  t.true(ahead.aheadMaxNs > 0, `the model was ahead of a frame's stamp when it was sent (by up to ${ahead.aheadMaxNs} ns)`);
  t.true(reference.aheadMaxNs <= 0);
  t.true(ahead.windows < reference.windows * 0.75, `${ahead.windows} windows against ${reference.windows}`);
  t.is(ahead.delivered.length, 3 + 40 * 6);
  t.deepEqual(ahead.delivered, reference.delivered);
  // and the link-set applied at a's side between the frames sent just before and at 20 ms
  const at = (id: number) => ahead.delivered.find((d) => d.to === 'b' && d.id === id)!.atNs;
  const sends = sendsFor(t).a;
  const before = sends.findIndex(([s]) => s === 20 * MS - 1);
  t.true(at(before) - (20 * MS - 1) < 1.1 * MS, 'sent before the change: 0.5 ms + 0.5 ms');
  t.true(at(before + 1) - 20 * MS >= 2.5 * MS, 'sent at the change: 2 ms + 0.5 ms');
});
