// Real programs under one virtual time: ping over a simulated 10 ms link,
// sleeps that jump idle time, mixed live and model hosts, at-actions, and a
// clean machine afterwards. Real namespaces, cgroups, taps and the shim.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { compileText } from '../../../dsl/compile.ts';
import type { Plan } from '../../../dsl/plan.ts';
import { collectMetrics, aggregate } from '../../../runtime/report/metrics.ts';
import { hostLogs } from '../../../runtime/report/summary.ts';
import { liveWindow, simulate } from '../../../runtime/simulation.ts';
import { capabilityTest, cpuHogs, liveTest, REQUIRE_LIVE } from './helpers.ts';

capabilityTest();

function plan(source: string): Plan {
  const result = compileText('live.scn', source);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`).join('\n'));
  return result.plans[0]!;
}

const pingScenario = `scenario "ping" {
  duration 30s
  until exit
  host client { kind process  run "ping -c 20 -i 0.2 server" }
  host server { kind process }
  link client -- server { latency 10ms }
  metric rtt_ms from client match "time=([0-9.]+) ms"
}`;

function ourNetns(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.startsWith(`ls-${process.pid}-`));
}

async function pingRtts(p: Plan) {
  const result = await simulate(p);
  const samples = collectMetrics(p, hostLogs(result)).get('rtt_ms') ?? [];
  return { result, samples, p50: aggregate('p50', samples), mean: aggregate('mean', samples) };
}

liveTest('ping between two cells over a 10 ms link: RTT 20 ms ± 2% (virtual), exit 0, nothing left behind', async (t) => {
  const p = plan(pingScenario);
  const { result, samples, p50, mean } = await pingRtts(p);
  t.log(`rtt p50 ${p50} mean ${mean} over ${samples.length}; ${result.windows} windows, live ${JSON.stringify(result.live?.stats)}`);
  t.is(samples.length, 20);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  t.true(Math.abs(p50! - 20) <= 0.4, `p50 ${p50}`);
  t.true(Math.abs(mean! - 20) <= 1, `mean ${mean}`);
  // ping's 20 × 0.2 s take ~4 s of virtual time, mostly idle: the run jumps it
  t.true(result.reachedNs > 3.8e9 && result.reachedNs < 5e9, `${result.reachedNs}`);
  t.deepEqual(ourNetns(), []);
});

liveTest('the same ping with CPU hogs on every core', async (t) => {
  if (cpuHogs(t) === null && REQUIRE_LIVE) return;
  const { result, samples, p50, mean } = await pingRtts(plan(pingScenario));
  t.log(`with hogs: rtt p50 ${p50} mean ${mean}; samples ${samples.map((s) => s.value).join(" ")}`);
  t.is(samples.length, 20);
  t.true(Math.abs(p50! - 20) <= 0.4, `p50 ${p50}`);
  // One ping in 20 read 49.6 ms in one fresh-clone CI run (2026-12-02); 38 runs here did not repeat it.
  // Whether that reply came late or its receive stamp was mapped wrong shows in when ping printed it:
  // an outlier's log line (virtual time of the print) and the run's live figures are logged for that.
  const outliers = samples.filter((s) => Math.abs(s.value - 20) > 1);
  if (outliers.length > 0) {
    const lines = hostLogs(result).get('client') ?? [];
    t.log(`outliers: ${outliers.map((o) => `${o.value} ms printed at ${o.timeNs} ns`).join('; ')}\n${lines.map((l) => `[${l.timeNs}] ${l.line}`).join('\n')}\nlive ${JSON.stringify(result.live?.stats)}`);
  }
  t.true(outliers.length <= 1, `${outliers.length} of 20 off by more than 1 ms`);
  const rest = samples.filter((s) => !outliers.includes(s)).map((s) => s.value);
  const restMean = rest.reduce((a, b) => a + b, 0) / rest.length;
  t.true(Math.abs(restMean - 20) <= 0.4, `mean ${mean}, ${restMean} without the outlier`);
});

liveTest('a 5 s sleep takes 5 s ± 1 ms of virtual time and far less wall time (idle jump)', async (t) => {
  const p = plan(`scenario "sleep" {
    duration 60s
    until exit
    host a { run "perl -MTime::HiRes=time,sleep -e '$t = time; sleep 5; printf qq(slept=%.6f\\n), time - $t'" }
    metric slept from a match "slept=([0-9.]+)"
  }`);
  const started = performance.now();
  const result = await simulate(p);
  const wallMs = performance.now() - started;
  const slept = collectMetrics(p, hostLogs(result)).get('slept')!;
  t.log(`slept ${slept[0]?.value} s virtual in ${wallMs.toFixed(0)} ms wall (cell setup included); ended at ${result.reachedNs} ns`);
  t.is(slept.length, 1);
  t.true(Math.abs(slept[0]!.value - 5) <= 0.001);
  t.true(wallMs < 3000);
  t.deepEqual(result.live?.exitCodes.get('a'), [0]);
  t.true(result.reachedNs < 6e9); // until exit: the run ends with the command
});

liveTest('live and model hosts share switches and links; at-actions reach live hosts', async (t) => {
  const p = plan(`scenario "mixed" {
    duration 3s
    host client { kind process  run "ping -c 5 -i 0.2 server" }
    host server { kind process  run "sleep 100" as idle }
    host gen  { app onoff { to sink  rate 1Mbit  size 1000B } }
    host sink { app sink { port 9 } }
    switch sw { latency 5us }
    link client -- sw { latency 2ms }
    link server -- sw { latency 3ms }
    link gen -- sw { latency 1ms  bandwidth 100Mbit }
    link sink -- sw { latency 1ms  bandwidth 100Mbit }
    at 2s { kill server }
    metric rtt_ms from client match "time=([0-9.]+) ms"
  }`);
  const result = await simulate(p);
  const rtt = collectMetrics(p, hostLogs(result)).get('rtt_ms')!;
  t.log(`rtts ${rtt.map((s) => s.value).join(' ')}`);
  t.is(rtt.length, 5);
  // 2 × (2 ms + 5 us + 3 ms) = 10.01 ms, which ping prints with 3 digits: 10.0 (this test is about
  // coverage, the ping tests about accuracy)
  const p50 = aggregate('p50', rtt)!;
  t.true(p50 >= 10 && p50 <= 10.6, `${p50}`);
  t.true(rtt.every((s) => s.value >= 10), rtt.map((s) => s.value).join(' '));
  const sinkLine = result.network.hosts.find((h) => h.name === 'sink')!.log.at(-1)!.line;
  t.regex(sinkLine, /packets=37[0-9]/); // 375 sent in 3 s, minus those in flight
  t.deepEqual(result.live?.exitCodes.get('server'), [null]); // killed at 2 s
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  t.true(readdirSync('/dev/shm').every((f) => !f.startsWith(`livestack-${process.pid}-`)));
});

liveTest('cells behind a switch take turns in windows of a whole path (0.5 + 0.5 ms); pings read their paths exactly, also across a link-set', async (t) => {
  const p = plan(`scenario "switched" {
    duration 5s
    until client exits
    host client { kind process  run "ping -c 40 -i 0.02 server" }
    host server { kind process }
    switch sw { latency 0us }
    link client -- sw { latency 500us }
    link server -- sw { latency 500us }
    at 400ms { link client -- sw set { latency 2ms } }
    metric rtt_ms from client match "time=([0-9.]+) ms"
  }`);
  t.is(liveWindow(p).windowNs, 1_000_000);
  const { result, samples } = await pingRtts(p);
  const rtts = samples.map((s) => s.value);
  t.log(`rtts ${rtts.join(' ')}; ${result.windows} windows over ${result.reachedNs / 1e6} ms; live ${JSON.stringify(result.live?.stats)}`);
  t.is(rtts.length, 40);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  // before the change 2 × (0.5 + 0.5) ms; after it 2 × (2 + 0.5) ms; one ping may straddle it (2 + 0.5 + 0.5 + 0.5).
  // The first ping is slower in any window (cold kernel paths in both cells: 2.28-3.38 ms here, also
  // with per-hop windows): never faster than its path.
  t.true(rtts[0]! >= 2 && rtts[0]! < 3.5, `first ${rtts[0]}`);
  const rest = rtts.slice(1);
  // (ping's own work in two cells adds 20-170 µs here; a frame held to a window's end would add up to 1 ms)
  const near = (ms: number) => rest.filter((r) => r >= ms && r <= ms + 0.3).length;
  t.true(near(2) >= 15 && near(5) >= 15, `${near(2)} at 2 ms, ${near(5)} at 5 ms`);
  t.is(near(2) + near(3.5) + near(5), rest.length, rtts.join(' '));
  t.true(rest.slice(0, near(2)).every((r) => r < 2.2) && rest.slice(-near(5)).every((r) => r >= 5), 'the change comes once, in order');
  t.is(result.live!.stats.lateDeliveries, 0);
  t.deepEqual([result.windowNs, result.aheadNs], [1_000_000, 500_000], 'the run reports its windows');
});

liveTest('a CPU-bound loop: its virtual runtime is the CPU time it used, alone and as one of 4 cells taking turns', async (t) => {
  // The property: a cell's clock advances with the time it actually ran, never with time it waited for
  // the core. Compared against the process's own CPU time (times(2), not virtualised), so drifts of this
  // VM's speed between runs do not matter. solo runs alone, then 4 workers start together at 2 s and take
  // turns on one core (wall time grows 4×; each one's virtual time should not).
  const loop = `perl -MTime::HiRes=time -e '$t = time; @c = times; $x = 0; $x += $_ for 1..60000000; @d = times; printf qq(loop=%.6f cpu=%.6f\\n), time - $t, $d[0] + $d[1] - $c[0] - $c[1]'`;
  const p = plan(`scenario "cpu" {
    duration 120s
    until exit
    host solo { run "${loop}" }
    host w[1..4] { run "${loop}" at 5s }
  }`);
  const check = async (label: string) => {
    const result = await simulate(p);
    const lines = result.network.hosts.flatMap((h) => h.log.filter((l) => l.line.startsWith('loop=')).map((l) => ({ host: h.name, line: l.line })));
    const runs = lines.map(({ host, line }) => {
      const [, loopS, cpuS] = /loop=([0-9.]+) cpu=([0-9.]+)/.exec(line)!;
      return { host, virtualS: Number(loopS), cpuS: Number(cpuS) };
    });
    t.log(`${label}: ` + runs.map((r) => `${r.host}: virtual ${r.virtualS} s, cpu ${r.cpuS} s (${(((r.virtualS - r.cpuS) / r.cpuS) * 100).toFixed(1)}%)`).join('; '));
    t.is(runs.length, 5);
    for (const r of runs) {
      const error = (r.virtualS - r.cpuS) / r.cpuS;
      // times(2) counts in 10 ms ticks: ±1 tick on ~1 s; the issue's 3% plus that. A clock that counts
      // time the cell did not run (waiting for the core, frozen) fails here, for every cell.
      t.true(error < 0.04, `${label}, ${r.host}: virtual ${r.virtualS} vs cpu ${r.cpuS}`);
      // and not less either: a cell whose freeze is slow (launchers of other cells holding the kernel's
      // cgroup_mutex) runs on after its clock stopped; live.c adds that CPU time to its clock (the first
      // of the four workers read 25-66% low in the full suite before)
      t.true(error > -0.04, `${label}, ${r.host}: virtual ${r.virtualS} vs cpu ${r.cpuS}`);
    }
  };
  await check('alone');
  // a host hog on every core competes for the cells' core: the cells get it (largest CPU weight), so
  // their clocks do not count the hog's time (without that: 0.87 s virtual for 0.55 s of CPU)
  if (cpuHogs(t) === null && REQUIRE_LIVE) return;
  await check('with stress-ng on every core');
});

liveTest('quiescent cells jump to their next event: sleeps still end on time, pings still read 2 ms, and the jumps are counted', async (t) => {
  // a sleeps 3 ms at a time while b pings it over a 1 ms link: between b's echo requests both cells wait,
  // so their clocks jump (ffi/c/live.c, "Yielding"); a's sleeps wait on the clock page and are woken by
  // the loop when the clock reaches their deadline, not by their own host timeouts (too late by the jump)
  const p = plan(`scenario "jumps" {
    duration 30s
    until b exits
    host a { kind process  run "perl -MTime::HiRes=time,sleep -e 'for (1..300) { $t = time; sleep 0.003; $d = time - $t; $m = $d if $d > $m; $s += $d; $n++ if $d > 0.0035 } printf qq(max=%.6f mean=%.6f long=%d\\\\n), $m, $s / 300, $n'" }
    host b { kind process  run "sleep 0.1; ping -c 250 -i 0.005 a" }
    link a -- b { latency 1ms }
    metric rtt_ms from b match "time=([0-9.]+) ms"
    metric max from a match "max=([0-9.]+)"
    metric mean from a match "mean=([0-9.]+)"
    metric long from a match "long=([0-9]+)"
  }`);
  const result = await simulate(p);
  const metrics = collectMetrics(p, hostLogs(result));
  const rtts = metrics.get('rtt_ms') ?? [];
  const max = metrics.get('max')?.[0]?.value;
  const mean = metrics.get('mean')?.[0]?.value;
  const long = metrics.get('long')?.[0]?.value;
  const stats = result.live?.stats;
  t.log(`sleeps of 3 ms: mean ${mean} s, max ${max} s, ${long} over 3.5 ms; rtt p50 ${aggregate('p50', rtts)} over ${rtts.length}; live ${JSON.stringify(stats)}`);
  t.is(rtts.length, 250);
  t.true(Math.abs(aggregate('p50', rtts)! - 2) <= 0.04, `p50 ${aggregate('p50', rtts)}`);
  // a shim sleep ends 50-100 us late on average here, with or without jumps (3.094 ms without, 3.07-3.09
  // with); a sleeper left to its own host timeout after a jump would be late by the jump (up to ms), most
  // sleeps. A rare one is long either way: a slow freeze (the kernel's cgroup_mutex, held by other runs'
  // launchers) adds the CPU time the cell ran meanwhile to its clock (one of 300 took 3.94 ms in a CI run)
  t.true(mean !== undefined && mean >= 0.003 && mean < 0.0032, `mean sleep ${mean}`);
  t.true(long !== undefined && long <= 3, `${long} sleeps over 3.5 ms (max ${max})`);
  t.true((stats?.yields ?? 0) > 100, `yields ${stats?.yields}`);
  t.true((stats?.yieldedNs ?? 0) > 0.2e9, `yielded ${stats?.yieldedNs}`);
});
