// Every shipped scenario checks clean and compiles to a stable plan.
import test from 'ava';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compileFile } from '../dsl/compile.ts';
import { planToJson } from '../dsl/plan.ts';

function scnFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? scnFiles(path) : name.endsWith('.scn') ? [path] : [];
  });
}

const files = scnFiles('scenarios');

test('the shipped scenarios include a quick start, a lab and a paper artifact', (t) => {
  t.true(files.includes(join('scenarios', 'quickstart.scn')));
  t.true(files.includes(join('scenarios', 'live', 'ping.scn')));
  t.true(files.some((f) => f.includes('labs')));
  t.true(files.some((f) => f.includes('paper')));
});

for (const file of files) {
  test(`${file} checks without diagnostics and compiles stably`, (t) => {
    const first = compileFile(file);
    t.deepEqual(first.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`), []);
    t.true(first.ok);
    const again = compileFile(file);
    t.deepEqual(again.plans.map(planToJson), first.plans.map(planToJson));
  });
}

test('the latency sweep makes one plan per latency with distinct hashes', (t) => {
  const result = compileFile(join('scenarios', 'paper', 'latency-sweep.scn'));
  t.is(result.plans.length, 4);
  const latencies = result.plans.map((p) => p.links.find((l) => l.name === 'core--server')!.latencyNs);
  t.deepEqual(latencies, [1e6, 5e6, 10e6, 50e6]);
  t.is(new Set(result.plans.map(planToJson)).size, 4);
});

test('the dumbbell lab: 4 senders through a bottleneck with a packet queue, changed at 10 s', (t) => {
  const [plan] = compileFile(join('scenarios', 'labs', 'dumbbell.scn'), { set: { queue_packets: '20' } }).plans;
  t.truthy(plan);
  const bottleneck = plan!.links.find((l) => l.name === 'left--right')!;
  t.deepEqual(bottleneck.queue, { packets: 20 });
  t.is(bottleneck.bandwidthBitsPerSec, 10_000_000);
  t.true(bottleneck.capture);
  t.is(plan!.hosts.filter((h) => h.name.startsWith('src') && h.apps[0]?.kind === 'onoff').length, 4);
  t.deepEqual(plan!.timeline.map((a) => [a.atNs, a.type]), [[10e9, 'log'], [10e9, 'link-set'], [15e9, 'link-set']]);
});

test('every shipped model-only scenario runs and meets its expectations', async (t) => {
  const { simulate } = await import('../runtime/simulation.ts');
  const { buildSummary } = await import('../runtime/report/summary.ts');
  const { planHash } = await import('../dsl/plan.ts');
  let ran = 0;
  for (const file of files) {
    for (const plan of compileFile(file).plans) {
      if (plan.hosts.some((h) => h.kind !== 'model')) continue;
      const result = await simulate(plan);
      const { summary } = buildSummary(plan, planHash(plan), result, 1, true);
      t.true(summary.passed, `${file}: ${summary.expectations.filter((e) => !e.passed).map((e) => e.text).join('; ')}`);
      ran++;
    }
  }
  t.true(ran >= 2);
});
