// Speed of the paper's headline experiment (issue "OLTP artifact"): the 1 ms point of
// scenarios/paper/oltp.scn end to end — two cells, MariaDB installed into a fresh
// datadir, sysbench prepare (10 tables × 10,000 rows), then 4 threads for 30 s of
// virtual time — against the goal of 90 s of wall time and the paper's
// 90.4 s, and its slowdown (wall / virtual).
//
//   npx tsx bench/oltp.ts           # the full 1 ms point (~85 s here)
//   npx tsx bench/oltp.ts --smoke   # scenario oltp-smoke (2 tables of 1,000 rows, 5 s): checks the figures, not speed
//
// The baseline is the run's own virtual time: what the same programs take on
// dedicated machines joined by a 1 ms link. The same point run natively (two
// namespaces joined by a delay element) is the artifact's `--native`, not timed
// here: it takes real time by nature. The figures' accuracy (tps, p95 against the reference) is the artifact's job
// (npm run artifact:oltp); they are printed here so a fast run that got them
// wrong is not mistaken for a fast run. Exits 0 whatever the figures.
import { fileURLToPath } from 'node:url';
import { compileFile } from '../dsl/compile.ts';
import { aggregate, collectMetrics } from '../runtime/report/metrics.ts';
import { hostLogs } from '../runtime/report/summary.ts';
import { simulate } from '../runtime/simulation.ts';
import type { LiveStats } from '../runtime/live/scheduler.ts';
import { REFERENCE } from '../artifacts/reference.ts';

/** the goal for the 1 ms point, and the paper's figure for its run */
export const GOAL_WALL_S = 90;
export const PAPER_WALL_S = 90.4;
/** the reference at 1 ms */
const AT_1MS = REFERENCE.get(1_000_000)!;

export interface OltpBenchResult {
  scenario: string;
  wallS: number;
  virtualS: number;
  /** wall / virtual */
  slowdown: number;
  /** wall / GOAL_WALL_S (≤ 1: met); only meaningful for the full point */
  goalRatio: number;
  tps: number | null;
  p95Ms: number | null;
  exitCode: number | null;
  stats: LiveStats | null;
}

export async function runOltpBench(smoke: boolean): Promise<OltpBenchResult> {
  const scenario = smoke ? 'oltp-smoke' : 'oltp';
  const compiled = compileFile(fileURLToPath(new URL('../scenarios/paper/oltp.scn', import.meta.url)), { scenario, set: smoke ? {} : { latency: '1ms' } });
  if (!compiled.ok) throw new Error(compiled.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`).join('\n'));
  const plan = compiled.plans[0]!;
  const started = performance.now();
  const result = await simulate(plan);
  const wallS = (performance.now() - started) / 1000;
  const metrics = collectMetrics(plan, hostLogs(result));
  const virtualS = result.reachedNs / 1e9;
  return {
    scenario,
    wallS,
    virtualS,
    slowdown: wallS / virtualS,
    goalRatio: wallS / GOAL_WALL_S,
    tps: aggregate('last', metrics.get('tps') ?? []),
    p95Ms: aggregate('last', metrics.get('p95_ms') ?? []),
    exitCode: result.live?.exitCodes.get('client')?.[0] ?? null,
    stats: result.live?.stats ?? null,
  };
}

export function describe(r: OltpBenchResult): string {
  const pct = (x: number | null, ref: number) => (x === null ? '-' : `${x >= ref ? '+' : ''}${((x / ref - 1) * 100).toFixed(1)}%`);
  return [
    `${r.scenario}: ${r.wallS.toFixed(1)} s wall for ${r.virtualS.toFixed(1)} s virtual (slowdown ${r.slowdown.toFixed(2)}×)`,
    r.scenario === 'oltp'
      ? `  against the goal of ${GOAL_WALL_S} s: ${r.goalRatio.toFixed(2)}× (${r.goalRatio <= 1 ? 'met' : 'missed'}); the paper's run: ${PAPER_WALL_S} s (${(r.wallS / PAPER_WALL_S).toFixed(2)}×)`
      : `  (smoke: 2 tables of 1,000 rows, 5 s; the goal is for the full point)`,
    `  tps ${r.tps ?? '-'} (${pct(r.tps, AT_1MS.tps)} vs ${AT_1MS.tps}), p95 ${r.p95Ms ?? '-'} ms (${pct(r.p95Ms, AT_1MS.p95)} vs ${AT_1MS.p95})${r.scenario === 'oltp' ? '' : ' — smoke figures, not comparable'}`,
    `  client exit ${r.exitCode}; windows ${r.stats?.windows ?? '-'}, frames ${r.stats?.framesIn ?? '-'}, clock holds ${r.stats?.holds ?? '-'}, latest delivery ${((r.stats?.lateNsMax ?? 0) / 1e6).toFixed(2)} ms behind its cell's clock when written`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(describe(await runOltpBench(process.argv.includes('--smoke'))));
}
