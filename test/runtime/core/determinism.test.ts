// Determinism: the same plan and seed give the same trace hash, run twice or
// split across 1, 2 or 4 in-process partitions (random splits of random topologies).
import test from 'ava';
import { Rng } from '../../../runtime/core/random.ts';
import { randomAssignment, simulate } from '../../../runtime/simulation.ts';
import { planOf } from '../model/helpers.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);

/** A random but valid scenario: hosts on switches, a random switch tree plus extra links, mixed traffic and faults. */
export function randomScenario(rng: Rng, scenarioSeed: number): string {
  const hosts = 4 + rng.below(24);
  const switches = 1 + rng.below(5);
  const lines: string[] = [`scenario "random" {`, `  seed ${scenarioSeed}`, `  duration ${200 + rng.below(800)}ms`];
  for (let s = 0; s < switches; s++) lines.push(`  switch s${s} { latency ${rng.below(20)}us ${rng.chance(0.5) ? `queue ${20 + rng.below(200)} packets` : ''} }`);
  const latency = () => `${100 + rng.below(5000)}us`;
  const bandwidth = () => `${1 + rng.below(200)}Mbit`;
  for (let s = 1; s < switches; s++) lines.push(`  link s${rng.below(s)} -- s${s} { latency ${latency()}  bandwidth ${bandwidth()} }`);
  for (let h = 0; h < hosts; h++) {
    const peer = (h + 1 + rng.below(hosts - 1)) % hosts;
    const apps: string[] = ['app sink { port 9 }', 'app echo { port 7 }'];
    if (rng.chance(0.6)) apps.push(`app onoff { to h${peer}  rate ${100 + rng.below(5000)}Kbit  size ${100 + rng.below(1300)}B  on ${50 + rng.below(300)}ms  off ${rng.below(200)}ms ${rng.chance(0.5) ? 'arrivals poisson' : ''} }`);
    if (rng.chance(0.5)) apps.push(`app request { to h${peer}  every ${1 + rng.below(50)}ms  size ${50 + rng.below(4000)}B  reply ${50 + rng.below(8000)}B }`);
    lines.push(`  host h${h} { ${apps.join('  ')} }`);
    const extras = rng.chance(0.2) && switches > 1 ? 2 : 1;
    const first = rng.below(switches);
    lines.push(`  link h${h} -- s${first} { latency ${latency()}  bandwidth ${bandwidth()} ${rng.chance(0.3) ? `loss ${rng.below(5)}%` : ''} ${rng.chance(0.3) ? `jitter ${rng.below(500)}us` : ''} ${rng.chance(0.2) ? 'capture' : ''} }`);
    if (extras === 2) lines.push(`  link h${h} -- s${(first + 1) % switches} { latency ${latency()} }`);
  }
  const faultHost = rng.below(hosts);
  lines.push(`  at 50ms { link h${faultHost} -- s0 ${'down'} }`.replace(` -- s0 `, ` -- s${firstSwitchOf(lines, faultHost)} `));
  lines.push(`  at 120ms { link h${faultHost} -- s${firstSwitchOf(lines, faultHost)} up  log "restored" }`);
  lines.push(`  at 150ms { link h${faultHost} -- s${firstSwitchOf(lines, faultHost)} set { bandwidth 2Mbit  loss 1% } }`);
  lines.push('}');
  return lines.join('\n');
}

function firstSwitchOf(lines: string[], host: number): number {
  const line = lines.find((l) => l.startsWith(`  link h${host} -- s`))!;
  return Number(/-- s(\d+)/.exec(line)![1]);
}

test('random topologies: 1, 2 and 4 partitions give the same trace hash; so does a second run', async (t) => {
  t.log(`seed ${seed} (re-run with SEED=${seed})`);
  const rng = new Rng(seed, 'topologies');
  for (let round = 0; round < 12; round++) {
    const source = randomScenario(rng, rng.below(1e6));
    const plan = planOf(source);
    const nodes = plan.hosts.length + plan.switches.length;
    const one = await simulate(plan);
    const again = await simulate(plan);
    const two = await simulate(plan, { partitions: 2, assignment: randomAssignment(nodes, 2, seed + round) });
    const four = await simulate(plan, { partitions: 4, assignment: randomAssignment(nodes, 4, seed * 7 + round) });
    const context = `seed ${seed}, round ${round}\n${source}`;
    t.true(one.events > 100, context);
    t.is(again.traceHash, one.traceHash, context);
    t.is(two.traceHash, one.traceHash, context);
    t.is(four.traceHash, one.traceHash, context);
    // the model's observable results match too, not only the hash
    t.deepEqual(four.network.hosts.map((h) => h.log.map((l) => `${l.timeNs} ${l.line}`)), one.network.hosts.map((h) => h.log.map((l) => `${l.timeNs} ${l.line}`)), context);
  }
});

test('the trace hash changes with the seed when randomness is used', async (t) => {
  const source = `scenario "s" { seed SEED  duration 1s
    host a { app onoff { to b  rate 1Mbit  size 500B  arrivals poisson } }
    host b { app sink { port 9 } }
    link a -- b { latency 1ms  loss 1% } }`;
  const first = await simulate(planOf(source.replace('SEED', '1')));
  const second = await simulate(planOf(source.replace('SEED', '2')));
  t.not(first.traceHash, second.traceHash);
});
