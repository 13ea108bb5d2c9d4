// Speed of process cells (issue "Process cells", bench): each row is a ratio
// against a baseline measured in the same run.
//
//   npx tsx bench/live.ts           # full: 4 s CPU loops, 4 cells, sleep 20 s, 3 s iperf3
//   npx tsx bench/live.ts --smoke   # small versions; checks results, not speed
//
// rows:
//  - CPU-bound, cells ≤ cores: wall/virtual for one busy cell (goal ≤ 1.05×)
//  - N cells on P cores: wall/virtual against N/P (goal ≤ 1.1 × N/P)
//  - idle-heavy: virtual/wall of a sleeping program (goal ≥ 20× faster than real time)
//  - bridge: frames per second of wall time from a cell to a modeled sink (UDP as fast as perl sends)
//  - TCP through the bridge: iperf3 at 100 Mbit/s, frames per second
//  - TCP bending: 1, 2, 4 iperf3 pairs (2, 4, 8 cells on the cells' cores): per-pair Mbit/s, which
//    host-kernel timers (delayed ACK, RTO, pacing on real time) would bend as wall/virtual grows
//  - freeze/thaw: worst cost per window seen by the C loop
import { availableParallelism } from 'node:os';
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

export async function runLiveBench(smoke: boolean): Promise<LiveBenchRow[]> {
  const rows: LiveBenchRow[] = [];
  const iterations = smoke ? 3_000_000 : 200_000_000;
  const cores = Math.max(1, availableParallelism() - 1); // the controller keeps core 0

  const one = await timed(plan(`scenario "cpu1" { duration 600s  until exit  host a { run "${loop(iterations)}" } }`));
  const slowdown = one.wallS / one.virtualS;
  rows.push({ name: 'CPU-bound, 1 cell on its core', virtualS: one.virtualS, wallS: one.wallS, ratio: slowdown, goal: 'wall/virtual ≤ 1.05', pass: slowdown <= 1.05, detail: 'includes cell setup' });

  const n = 4;
  const many = await timed(plan(`scenario "cpuN" { duration 600s  until exit  host w[1..${n}] { run "${loop(iterations)}" } }`));
  const manySlowdown = many.wallS / many.virtualS;
  const bound = 1.1 * (n / cores);
  rows.push({ name: `${n} CPU-bound cells on ${cores} core(s)`, virtualS: many.virtualS, wallS: many.wallS, ratio: manySlowdown, goal: `wall/virtual ≤ ${bound.toFixed(2)} (1.1 × N/P)`, pass: manySlowdown <= bound, detail: `virtual ${(many.virtualS / one.virtualS).toFixed(3)}× the single cell's` });

  const sleepS = smoke ? 2 : 20;
  const idle = await timed(plan(`scenario "idle" { duration 600s  until exit  host a { run "sleep ${sleepS}" } }`));
  const speedUp = idle.virtualS / idle.wallS;
  rows.push({ name: `idle-heavy (sleep ${sleepS})`, virtualS: idle.virtualS, wallS: idle.wallS, ratio: speedUp, goal: 'virtual/wall ≥ 20', pass: speedUp >= 20, detail: `${idle.result.live?.stats.jumps} jumps` });

  // the bridge itself: one cell sends small UDP frames as fast as it can to a modeled sink over a
  // 10 Gbit/s link; frames/s of wall time through ring → C → JS → model (the cell's own sending cost included)
  const blastFrames = smoke ? 20_000 : 300_000;
  const blast = plan(`scenario "blast" { duration 600s  until exit
    host src { kind process  run "perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(PeerAddr => q(sink:9), Proto => q(udp)) or die; $m = q(x) x 64; $s->send($m) for 1..${blastFrames}'" }
    host sink { app sink { port 9 } }
    link src -- sink { latency 1ms  bandwidth 10Gbit } }`);
  const blasted = await timed(blast);
  const sunk = blasted.result.network.hosts.find((h) => h.name === 'sink')!.stats.rxPackets;
  rows.push({ name: 'bridge (UDP from a cell to a modeled sink)', virtualS: blasted.virtualS, wallS: blasted.wallS, ratio: sunk / blasted.wallS, goal: 'frames/s (≥ 200k/s per core is the goal)', pass: sunk / blasted.wallS >= 200_000, detail: `${sunk} of ${blastFrames} frames arrived; ${(blasted.virtualS * 1e6 / blastFrames).toFixed(1)} µs virtual per send` });

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
  rows.push({ name: 'TCP through the bridge (iperf3, 100 Mbit/s link)', virtualS: bridge.virtualS, wallS: bridge.wallS, ratio: frames / bridge.wallS, goal: 'frames/s (≥ 200k/s per core is the goal)', pass: frames / bridge.wallS >= 200_000, detail: `${frames} frames, iperf3 ${mbps} Mbit/s` });
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
