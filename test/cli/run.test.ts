// livestack run end to end through the real bin: run directory contents,
// sweeps side by side, and Ctrl-C keeping partial results marked INCOMPLETE.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function scratch(text: string): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-run-'));
  const file = join(dir, 's.scn');
  writeFileSync(file, text);
  return { file, dir };
}

const bin = ['bin/livestack.js'];

test('a sweep runs every point, prints them side by side and writes one directory per point', async (t) => {
  const { file, dir } = scratch(`scenario "sw" {
  duration 1s
  sweep wan in [1ms, 5ms, 20ms]
  host c { app request { to s  every 50ms  size 200B  reply 200B } }
  host s { app echo { port 7 } }
  link c -- s { latency wan  bandwidth 100Mbit  capture }
  metric rtt from c match "rtt_ms=([0-9.]+)"
  expect max(rtt) < 30
}
`);
  const out = join(dir, 'out');
  const r = await execa('node', [...bin, 'run', file, '-o', out], { reject: false, env: { ...process.env, CI: 'true' } });
  t.is(r.exitCode, 1, r.stderr); // 20 ms each way fails max(rtt) < 30
  t.regex(r.stdout, /wan=1ms\s+wan=5ms\s+wan=20ms/);
  t.regex(r.stdout, /mean\(rtt\)\s+2\.0\d*\s+10\.0\d*\s+40\.0\d*/);
  t.regex(r.stdout, /expect max\(rtt\) < 30\s+PASS 2\.0\d*\s+PASS 10\.0\d*\s+FAIL 40\.0\d*/);
  t.deepEqual(readdirSync(out).sort(), ['point-000', 'point-001', 'point-002']);
  const point = join(out, 'point-002');
  for (const name of ['plan.json', 'environment.json', 'summary.json', 'summary.txt', 'metrics.csv', 'events.log', join('logs', 'c.log'), join('pcap', 'c--s.pcap')]) {
    t.true(existsSync(join(point, name)), name);
  }
  t.false(existsSync(join(point, 'INCOMPLETE')));
  const summary = JSON.parse(readFileSync(join(point, 'summary.json'), 'utf8')) as { complete: boolean; traceHash: string; metrics: { rtt: { count: number } }; links: Array<{ directions: Array<{ packets: number }> }> };
  t.true(summary.complete);
  t.regex(summary.traceHash, /^[0-9a-f]{64}$/);
  t.is(summary.metrics.rtt.count, 20);
  t.is(summary.links[0]!.directions[0]!.packets, 20);
  t.regex(readFileSync(join(point, 'metrics.csv'), 'utf8'), /^metric,host,time_s,value\nrtt,c,0\.040\d+,40\.0/);
});

test('Ctrl-C stops at the next window, keeps partial results and marks the directory INCOMPLETE', async (t) => {
  const { file, dir } = scratch(`scenario "long" {
  duration 100000s
  host a { app onoff { to b  rate 10Mbit  size 1000B  arrivals poisson } }
  host b { app sink { port 9 } }
  link a -- b { latency 1ms  bandwidth 100Mbit }
}
`);
  const out = join(dir, 'out');
  const child = execa('node', [...bin, 'run', file, '-o', out], { reject: false, env: { ...process.env, CI: 'true' } });
  // wait until the run has started writing, then interrupt it
  for (let i = 0; i < 600 && !existsSync(join(out, 'environment.json')); i++) await sleep(50);
  await sleep(500);
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 130, r.stderr);
  t.regex(r.stdout, /INCOMPLETE: interrupted/);
  t.regex(readFileSync(join(out, 'INCOMPLETE'), 'utf8'), /^interrupted: stopped at virtual \d+\.\d{9}s/);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { complete: boolean; reachedNs: number; passed: boolean };
  t.false(summary.complete);
  t.false(summary.passed);
  t.true(summary.reachedNs > 0 && summary.reachedNs < 100000e9);
  t.regex(readFileSync(join(out, 'summary.txt'), 'utf8'), /status {5}INCOMPLETE \(interrupted\)/);
  t.is((summary as unknown as { live: unknown }).live, null, 'a model-only run has no live stats');
});

test('Ctrl-C during a live run tears every cell down (no namespace, cgroup or process left)', async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env['LIVESTACK_REQUIRE_LIVE'] === '1') t.fail('live runs need root');
    else t.pass('not root: live runs cannot start here');
    return;
  }
  const { file, dir } = scratch(`scenario "busy" {
  duration 1000s
  host a { kind process  run "while :; do :; done" }
  host b { kind process }
  link a -- b { latency 1ms }
}
`);
  const out = join(dir, 'out');
  const child = execa('node', [...bin, 'run', file, '-o', out], { reject: false, env: { ...process.env, CI: 'true' } });
  for (let i = 0; i < 600 && !existsSync(join(out, 'environment.json')); i++) await sleep(50);
  await sleep(1500);
  const pid = child.pid!;
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 130, r.stderr);
  const netns = (await execa('ip', ['netns', 'list'])).stdout;
  t.false(netns.includes(`ls-${pid}-`), netns);
  for (const hierarchy of ['freezer', 'cpuset', 'memory', 'unified']) {
    const base = join('/sys/fs/cgroup', hierarchy, 'livestack');
    if (existsSync(base)) t.false(readdirSync(base).some((name) => name.startsWith(`${pid}-`)), hierarchy);
  }
  t.false(readdirSync('/dev/shm').some((name) => name.startsWith(`livestack-${pid}-`)));
  t.regex(readFileSync(join(out, 'INCOMPLETE'), 'utf8'), /^interrupted/);
  // the partial results say how the cells' windows went
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { live: { windows: number; holds: number; heldNs: number } | null };
  t.true(summary.live !== null && summary.live.windows > 0 && summary.live.heldNs >= 0, JSON.stringify(summary.live));
  t.regex(readFileSync(join(out, 'summary.txt'), 'utf8'), /^live {7}\d+ frames in, \d+ out \(\d+ dropped\); clocks held \d+ times/m);
});
