// Speed of process cells (issue "Process cells", bench): each row is a ratio
// against a baseline measured in the same run.
//
//   npx tsx bench/live.ts           # full: 0.4 s and 6 s CPU loops, 4 cells, sleep 20 s, 0.1M and 0.6M frames, 3 s iperf3
//   npx tsx bench/live.ts --smoke   # small versions; checks results, not speed
//
// rows:
//  - CPU-bound, cells ≤ cores: wall/virtual for one busy cell (goal ≤ 1.05×), steady state: the
//    difference of a short and a long run, so the cells' set-up (~0.4 s) does not count
//  - N cells on P cores: wall/virtual against N/P (goal ≤ 1.1 × N/P), steady state as above
//  - idle-heavy: virtual/wall of a sleeping program (goal ≥ 20× faster than real time)
//  - bridge: frames per second of wall time from a cell to a modeled sink (UDP as fast as sendmmsg
//    sends: bench/blast.c, compiled with cc), steady state as above
//  - TCP through the bridge: iperf3 at 100 Mbit/s, frames per second
//  - TCP bending: 1, 2, 4 iperf3 pairs (2, 4, 8 cells on the cells' cores): per-pair Mbit/s, which
//    host-kernel timers (delayed ACK, RTO, pacing on real time) would bend as wall/virtual grows
//  - freeze/thaw: worst cost per window seen by the C loop
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileText } from '../dsl/compile.ts';
import type { Plan } from '../dsl/plan.ts';
import { collectMetrics } from '../runtime/report/metrics.ts';
import { hostLogs } from '../runtime/report/summary.ts';
import { simulate, type SimulationResult } from '../runtime/simulation.ts';

export interface LiveBenchRow {
  name: string;
  virtualS: number;
  wallS: number;
  ratio: number;
  goal: string;
  pass: boolean;
  detail: string;
}

function plan(source: string): Plan {
  const result = compileText('bench.scn', source);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result.plans[0]!;
}

async function timed(p: Plan): Promise<{ result: SimulationResult; wallS: number; virtualS: number }> {
  const started = performance.now();
  const result = await simulate(p);
  const wallS = (performance.now() - started) / 1000;
  return { result, wallS, virtualS: result.reachedNs / 1e9 };
}

const loop = (iterations: number) => `perl -e '$x = 0; $x += $_ for 1..${iterations}'`;

/** bench/blast.c, compiled into a temporary directory (cc, as for ffi/): a sendmmsg UDP sender. */
function blaster(): string {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-blast-'));
  const out = join(dir, 'blast');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', out, join(dirname(fileURLToPath(import.meta.url)), 'blast.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

/**
 * wall/virtual of the steady state: two runs of the same scenario, short and long, and the ratio of
 * their differences (cell set-up, ~0.4 s per run here, cancels out); the long run's plain ratio too.
 */
async function marginal(make: (size: number) => Plan, short: number, long: number): Promise<{ ratio: number; plain: number; setupS: number; short: Awaited<ReturnType<typeof timed>>; long: Awaited<ReturnType<typeof timed>> }> {
  const a = await timed(make(short));
  const b = await timed(make(long));
  const ratio = (b.wallS - a.wallS) / (b.virtualS - a.virtualS);
  return { ratio, plain: b.wallS / b.virtualS, setupS: a.wallS - ratio * a.virtualS, short: a, long: b };
}

export async function runLiveBench(smoke: boolean): Promise<LiveBenchRow[]> {
  const rows: LiveBenchRow[] = [];
  const [shortLoop, longLoop] = smoke ? [3_000_000, 9_000_000] : [30_000_000, 400_000_000];
  const cores = Math.max(1, availableParallelism() - 1); // the controller keeps core 0

  const one = await marginal((n) => plan(`scenario "cpu1" { duration 600s  until exit  host a { run "${loop(n)}" } }`), shortLoop, longLoop);
  rows.push({ name: 'CPU-bound, 1 cell on its core', virtualS: one.long.virtualS, wallS: one.long.wallS, ratio: one.ratio, goal: 'wall/virtual ≤ 1.05', pass: one.ratio <= 1.05, detail: `steady state (two runs); with set-up ${one.plain.toFixed(3)}, set-up ≈ ${one.setupS.toFixed(2)} s` });

  const n = 4;
  const many = await marginal((size) => plan(`scenario "cpuN" { duration 600s  until exit  host w[1..${n}] { run "${loop(size)}" } }`), shortLoop, longLoop);
  const bound = 1.1 * (n / cores);
  rows.push({ name: `${n} CPU-bound cells on ${cores} core(s)`, virtualS: many.long.virtualS, wallS: many.long.wallS, ratio: many.ratio, goal: `wall/virtual ≤ ${bound.toFixed(2)} (1.1 × N/P)`, pass: many.ratio <= bound, detail: `steady state; with set-up ${many.plain.toFixed(2)}; virtual ${(many.long.virtualS / one.long.virtualS).toFixed(3)}× the single cell's` });

  const sleepS = smoke ? 2 : 20;
  const idle = await timed(plan(`scenario "idle" { duration 600s  until exit  host a { run "sleep ${sleepS}" } }`));
  const speedUp = idle.virtualS / idle.wallS;
  rows.push({ name: `idle-heavy (sleep ${sleepS})`, virtualS: idle.virtualS, wallS: idle.wallS, ratio: speedUp, goal: 'virtual/wall ≥ 20', pass: speedUp >= 20, detail: `${idle.result.live?.stats.jumps} jumps` });

  // the bridge itself: one cell sends 64-byte UDP datagrams as fast as sendmmsg goes (~1 µs each) to a
  // modeled sink over a 10 Gbit/s link; frames per second of wall time through ring → C → JS → model,
  // steady state (two runs, as above), the sender's own time included
  const blast = blaster();
  try {
    const [fewFrames, manyFrames] = smoke ? [10_000, 20_000] : [100_000, 600_000];
    const blastPlan = (frames: number) => plan(`scenario "blast" { duration 600s  until exit
      host src { kind process  run "${blast} sink 9 ${frames}" }
      host sink { app sink { port 9 } }
      link src -- sink { latency 1ms  bandwidth 10Gbit  queue 100000 packets } }`);
    const { short: few, long: lots } = await marginal(blastPlan, fewFrames, manyFrames);
    const sunk = (r: SimulationResult) => r.network.hosts.find((h) => h.name === 'sink')!.stats.rxPackets;
    const rate = (sunk(lots.result) - sunk(few.result)) / (lots.wallS - few.wallS);
    const live = lots.result.live!.stats;
    rows.push({ name: 'bridge (UDP from a cell to a modeled sink)', virtualS: lots.virtualS, wallS: lots.wallS, ratio: rate, goal: 'frames/s, steady state (≥ 200k/s per core is the goal)', pass: rate >= 200_000, detail: `${sunk(lots.result)} of ${manyFrames} frames arrived (${live.framesDropped} lost in the ring); ${(lots.virtualS * 1e6 / manyFrames).toFixed(2)} µs virtual per send; with set-up ${(sunk(lots.result) / lots.wallS / 1000).toFixed(0)}k/s` });
  } finally {
    rmSync(dirname(blast), { recursive: true, force: true });
  }

  const seconds = smoke ? 1 : 3;
  const iperf = plan(`scenario "bridge" { duration 60s  until client exits
    host server { kind process  run "iperf3 -s -1" }
    host client { kind process  run "iperf3 -c server -t ${seconds} -f m" at 200ms }
    link client -- server { latency 1ms  bandwidth 100Mbit }
    metric mbps from client match "([0-9.]+) Mbits/sec.*sender" }`);
  const bridge = await timed(iperf);
  const stats = bridge.result.live!.stats;
  const frames = stats.framesIn + stats.framesOut;
  const mbps = collectMetrics(iperf, hostLogs(bridge.result)).get('mbps')?.[0]?.value ?? 0;
  rows.push({ name: 'TCP through the bridge (iperf3, 100 Mbit/s link)', virtualS: bridge.virtualS, wallS: bridge.wallS, ratio: frames / bridge.wallS, goal: 'frames/s of wall time (the 100 Mbit/s link bounds it: ~8.2k frames/s of virtual time each way); iperf3 ≥ 90 Mbit/s', pass: mbps >= 90, detail: `${frames} frames, iperf3 ${mbps} Mbit/s` });
  for (const pairs of smoke ? [1] : [1, 2, 4]) {
    const p = plan(`scenario "bend" { duration 60s  until exit
      host s[1..${pairs}] { kind process  run "iperf3 -s -1" }
      ${Array.from({ length: pairs }, (_, i) => `host c${i + 1} { run "iperf3 -c s${i + 1} -t ${seconds} -f m" at 200ms }
      link c${i + 1} -- s${i + 1} { latency 5ms  bandwidth 100Mbit }`).join('\n      ')}
      ${Array.from({ length: pairs }, (_, i) => `metric mbps${i + 1} from c${i + 1} match "([0-9.]+) Mbits/sec.*receiver"
      metric retr${i + 1} from c${i + 1} match "Mbits/sec +([0-9]+) +sender"`).join('\n      ')} }`);
    const run = await timed(p);
    const metrics = collectMetrics(p, hostLogs(run.result));
    const pick = (name: string) => Array.from({ length: pairs }, (_, i) => metrics.get(`${name}${i + 1}`)?.at(-1)?.value).filter((v): v is number => v !== undefined);
    const mbps = pick('mbps');
    const retr = pick('retr');
    const worst = mbps.length === pairs ? Math.min(...mbps) : 0;
    const oversubscription = (2 * pairs) / cores;
    rows.push({ name: `TCP bending: ${pairs} iperf3 pair(s), ${oversubscription}× cells per core`, virtualS: run.virtualS, wallS: run.wallS, ratio: worst, goal: 'worst pair Mbit/s (94-95 unbent)', pass: worst >= 90, detail: `pairs ${mbps.join(', ')} Mbit/s; retransmits ${retr.join(', ')}; wall/virtual ${(run.wallS / run.virtualS).toFixed(2)}` });
  }
  rows.push({ name: 'freeze / thaw, worst per window', virtualS: 0, wallS: 0, ratio: stats.freezeNsMax / 1000, goal: 'µs (thaw ' + (stats.thawNsMax / 1000).toFixed(0) + ' µs)', pass: true, detail: `${stats.windows} windows` });
  return rows;
}

function table(rows: LiveBenchRow[]): string {
  const head = ['case', 'virtual s', 'wall s', 'ratio', 'goal', 'met', 'detail'];
  const body = rows.map((r) => [r.name, r.virtualS.toFixed(3), r.wallS.toFixed(3), r.ratio.toFixed(2), r.goal, r.pass ? 'yes' : 'no', r.detail]);
  const widths = head.map((_, i) => Math.max(head[i]!.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runLiveBench(process.argv.includes('--smoke'));
  console.log(table(rows));
}
