// Distributed runs with agents as separate OS processes on loopback: the same plan
// gives the same trace hash, host logs, link counters and captures as a
// single-process run, split over 2, 3 or 4 agents (by the partitioner, by place
// lines, or at random), including random topologies; with events and time
// advances relayed by the coordinator (star) or exchanged by the agents (direct).
import test from 'ava';
import { Rng } from '../../../runtime/core/random.ts';
import { pcapBytes } from '../../../runtime/report/pcap.ts';
import { randomAssignment, simulate, type SimulationResult } from '../../../runtime/simulation.ts';
import { simulateDistributed, type DistributedResult } from '../../../runtime/sync/coordinator.ts';
import { compileTree, SMOKE } from '../../../bench/core.ts';
import { planOf } from '../model/helpers.ts';
import { addressOf, killAll, startAgents, tokenFile, TOKEN, type AgentProcess } from './helpers.ts';

const token = Buffer.from(TOKEN);
// A fixed default seed, so that CI runs are repeatable; SEED=random explores (25 random seeds passed
// on 2026-11-25). An earlier hang here was no seed's fault: in direct mode, an agent slow to handle
// its Peers frame refused a peer that joined first (see the 'joins before' test).
const seed = process.env['SEED'] === 'random' ? Date.now() % 1_000_000 : Number(process.env['SEED'] ?? 20261125);
let agents: AgentProcess[] = [];

test.before(async () => {
  agents = await startAgents(null, ['a1', 'a2', 'a3', 'a4'], tokenFile());
});
test.after.always(() => killAll(agents));

/** Everything a run directory is made of, except wall time. */
function observable(r: SimulationResult) {
  return {
    traceHash: r.traceHash,
    events: r.events,
    reachedNs: r.reachedNs,
    logs: r.network.hosts.map((h) => [h.name, h.log.map((l) => `${l.timeNs} ${l.line}`)]),
    hostStats: r.network.hosts.map((h) => ({ ...h.stats, unroutable: h.dropsUnroutable })),
    switches: r.network.switches.map((s) => [s.forwarded, s.dropsUnroutable]),
    links: [...r.network.directions].map(([name, pair]) => [name, pair.map((d) => d.stats)]),
    captures: [...r.network.captures].map(([name, records]) => [name, pcapBytes(records).toString('base64')]),
    runLog: r.network.runLog.map((l) => `${l.timeNs} ${l.line}`),
  };
}

async function distributed(plan: Parameters<typeof simulate>[0], count: number, assignment?: Int32Array, direct = false): Promise<DistributedResult> {
  const result = await simulateDistributed(plan, { agents: agents.slice(0, count).map(addressOf), token, direct, ...(assignment === undefined ? {} : { assignment }) });
  if (result.failure !== null) throw new Error(result.failure);
  return result;
}

const scenarios: Record<string, string> = {
  'request/echo with a capture': `scenario "qs" { seed 1  duration 2s
    host client { app request { to server  every 10ms  size 3000B  reply 9000B } }
    host server { app echo { port 7 } }
    link client -- server { latency 10ms  bandwidth 100Mbit  capture } }`,
  'dumbbell with faults, a changed bottleneck and a log line': `scenario "db" { seed 7  duration 1500ms
    host src[1..4] { app onoff { to sink  rate 4Mbit  size 1200B  on 300ms  off 100ms  arrivals poisson } }
    host sink { app sink { port 9 } }
    host probe { app request { to echo  every 50ms  size 64B  reply 64B } }
    host echo { app echo { port 7 } }
    switch left { latency 5us  queue 64KiB }
    switch right { latency 5us }
    link src[1..4] -- left { latency 1ms  bandwidth 100Mbit }
    link probe -- left { latency 1ms  bandwidth 100Mbit }
    link left -- right { latency 10ms  bandwidth 10Mbit  queue 40 packets  loss 0.5%  jitter 200us  capture }
    link right -- sink { latency 1ms  bandwidth 100Mbit }
    link right -- echo { latency 1ms  bandwidth 100Mbit }
    at 500ms { log "bottleneck halves"  link left -- right set { bandwidth 5Mbit } }
    at 900ms { link src1 -- left down }
    at 1200ms { link src1 -- left up  link left -- right set { latency 2ms } } }`,
};

for (const [title, source] of Object.entries(scenarios)) {
  test.serial(`${title}: 2, 3 and 4 agents give the result of one process`, async (t) => {
    const plan = planOf(source);
    const local = observable(await simulate(plan));
    t.true(local.events > 100);
    for (const count of [2, 3, 4]) {
      const result = await distributed(plan, count);
      t.deepEqual(observable(result), local, `${count} agents`);
      t.is(result.partitions, count);
      t.log(`${count} agents: window ${result.windowNs} ns, ${result.split.cutLinks} links cut, ${result.sync.windows} windows, ${result.messages} events crossed`);
    }
    for (const count of [2, 4]) t.deepEqual(observable(await distributed(plan, count, undefined, true)), local, `${count} agents, direct mode`);
  });
}

test.serial('the 50-host tree of bench/core.ts: 2 and 4 agents, events cross between agents, through the coordinator or directly', async (t) => {
  const plan = compileTree(SMOKE);
  const local = observable(await simulate(plan));
  for (const [count, direct] of [[2, false], [4, false], [2, true], [4, true]] as const) {
    const result = await distributed(plan, count, undefined, direct);
    t.deepEqual(observable(result), local, `${count} agents`);
    t.true(result.messages > 0, 'events crossed between agents');
    t.true(result.agents.every((a) => a.components > 0), 'every agent holds components');
  }
});

test.serial('place lines put hosts on the named agents', async (t) => {
  const plan = planOf(`scenario "placed" { seed 3  duration 1s
    host a[1..4] { app onoff { to b1  rate 1Mbit  size 500B } }
    host b[1..4] { app sink { port 9 }  app echo { port 7 } }
    switch s { }
    link a[1..4] -- s { latency 1ms }
    link b[1..4] -- s { latency 2ms }
    place a[1..2] on "a3"
    place b4 on "a1" }`);
  const result = await distributed(plan, 3);
  const agentOf = (host: string) => result.agents[result.split.assignment[plan.hosts.findIndex((h) => h.name === host)]!]!.name;
  t.is(agentOf('a1'), 'a3');
  t.is(agentOf('a2'), 'a3');
  t.is(agentOf('b4'), 'a1');
  t.deepEqual(observable(result), observable(await simulate(plan)));
});

test.serial('direct mode: a peer that joins before the agent has its Peers frame is kept, not refused', async (t) => {
  // the second agent handles Peers 300 ms late, so the first one's Join (and first Round) reach it
  // before: it used to refuse that peer, wait for it for ever, and the run hung
  t.timeout(60_000, 'the direct run hung: a peer that joined early was refused');
  process.env['LIVESTACK_TEST_PEERS_DELAY_MS'] = '300';
  let late: AgentProcess[];
  try {
    late = await startAgents(t, ['late'], tokenFile());
  } finally {
    delete process.env['LIVESTACK_TEST_PEERS_DELAY_MS'];
  }
  const plan = planOf(scenarios['request/echo with a capture']!);
  const result = await simulateDistributed(plan, { agents: [agents[0]!, late[0]!].map(addressOf), token, direct: true, assignment: Int32Array.from([0, 1]) });
  t.is(result.failure, null);
  t.deepEqual(observable(result), observable(await simulate(plan)));
  t.notRegex(late[0]!.log(), /did not expect peer/);
});

/** A random modeled network: hosts on a random switch tree, mixed apps, faults (own generator; seeded). */
function randomScenario(rng: Rng, scenarioSeed: number): string {
  const hosts = 4 + rng.below(16);
  const switches = 1 + rng.below(4);
  const lines = [`scenario "random" {`, `  seed ${scenarioSeed}`, `  duration ${300 + rng.below(500)}ms`];
  const latency = () => `${50 + rng.below(3000)}us`;
  for (let s = 0; s < switches; s++) lines.push(`  switch s${s} { latency ${rng.below(10)}us }`);
  for (let s = 1; s < switches; s++) lines.push(`  link s${rng.below(s)} -- s${s} { latency ${latency()}  bandwidth ${5 + rng.below(100)}Mbit }`);
  for (let h = 0; h < hosts; h++) {
    const peer = (h + 1 + rng.below(hosts - 1)) % hosts;
    const apps = ['app sink { port 9 }', 'app echo { port 7 }'];
    if (rng.chance(0.7)) apps.push(`app onoff { to h${peer}  rate ${200 + rng.below(3000)}Kbit  size ${100 + rng.below(1300)}B  on ${20 + rng.below(200)}ms  off ${rng.below(100)}ms${rng.chance(0.5) ? '  arrivals poisson' : ''} }`);
    if (rng.chance(0.5)) apps.push(`app request { to h${peer}  every ${2 + rng.below(40)}ms  size ${50 + rng.below(3000)}B  reply ${50 + rng.below(6000)}B }`);
    lines.push(`  host h${h} { ${apps.join('  ')} }`);
    lines.push(`  link h${h} -- s${rng.below(switches)} { latency ${latency()}  bandwidth ${1 + rng.below(100)}Mbit${rng.chance(0.3) ? `  loss ${1 + rng.below(3)}%` : ''}${rng.chance(0.3) ? `  jitter ${rng.below(300)}us` : ''}${rng.chance(0.2) ? '  capture' : ''} }`);
  }
  lines.push(`  at 100ms { link h0 -- ${/h0 -- (s\d+)/.exec(lines.join('\n'))![1]} down  log "h0 cut" }`);
  lines.push(`  at 200ms { link h0 -- ${/h0 -- (s\d+)/.exec(lines.join('\n'))![1]} up }`);
  lines.push('}');
  return lines.join('\n');
}

test.serial('random topologies split at random over 2–4 agents give the result of one process', async (t) => {
  t.log(`seed ${seed} (re-run with SEED=${seed})`);
  process.stderr.write(`distributed random topologies: seed ${seed}\n`); // visible even if the test hangs
  t.timeout(240_000, `a distributed run hung (seed ${seed})`);
  const rng = new Rng(seed, 'distributed-topologies');
  for (let round = 0; round < 4; round++) {
    const source = randomScenario(rng, rng.below(1e6));
    const plan = planOf(source);
    const count = 2 + rng.below(3);
    const components = plan.hosts.length + plan.switches.length;
    const local = observable(await simulate(plan));
    const context = `seed ${seed}, round ${round}, ${count} agents\n${source}`;
    t.true(local.events > 50, context);
    t.deepEqual(observable(await distributed(plan, count, randomAssignment(components, count, seed + round))), local, context);
    t.deepEqual(observable(await distributed(plan, count, undefined, true)), local, `${context}\n(partitioner's split, direct mode)`);
  }
});
