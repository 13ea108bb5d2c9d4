// `livestack run`: simulate every plan (sweep point) and write its run directory.
import { arch, platform, release } from 'node:os';
import { join } from 'node:path';
import { planHash, planToJson, type Plan } from '../dsl/plan.ts';
import { runDoctor } from './doctor.ts';
import { formatVirtual } from './core/time.ts';
import { pcapBytes } from './report/pcap.ts';
import { RunDirectory } from './report/rundir.ts';
import { buildSummary, logText, metricsCsv, summaryText, type RunSummary } from './report/summary.ts';
import { UnsupportedPlanError } from './model/network.ts';
import { simulate, type SimulationResult } from './simulation.ts';
import { simulateDistributed, type DistributedOptions, type DistributedResult } from './sync/coordinator.ts';

export interface RunOptions {
  /** the run directory (sweep points go in point-NNN/ below it) */
  outDir: string;
  partitions?: number;
  /** progress lines (a TTY shows them in place); undefined: quiet */
  progress?: (line: string, final: boolean) => void;
  /** set by Ctrl-C: the run stops at the next window and keeps partial results */
  shouldStop?: () => boolean;
  /** called before each point starts and after it ended (artifacts time a CPU probe there) */
  aroundPoint?: (index: number, when: 'before' | 'after') => void | Promise<void>;
  version: string;
  /** the scenario's directory: relative vm `image` paths are resolved from it */
  baseDir?: string;
  /** run on these agents (runtime/sync) instead of in this process */
  distributed?: Omit<DistributedOptions, 'onProgress' | 'endNs'>;
}

export interface PointResult {
  plan: Plan;
  dir: string;
  summary: RunSummary;
}

function environment(version: string): string {
  return JSON.stringify(
    { livestack: version, node: process.version, platform: platform(), arch: arch(), kernel: release(), doctor: runDoctor() },
    null,
    2,
  ) + '\n';
}

function rate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n));
}

/** A distributed run ended early: an agent failed (partial results are in `dir`, marked INCOMPLETE). */
export class RunFailure extends Error {
  constructor(
    message: string,
    readonly dir: string,
  ) {
    super(message);
  }
}

export async function runPlans(plans: readonly Plan[], options: RunOptions): Promise<{ points: PointResult[]; interrupted: boolean }> {
  const points: PointResult[] = [];
  const env = environment(options.version);
  for (const [i, plan] of plans.entries()) {
    const dirPath = plans.length === 1 ? options.outDir : join(options.outDir, `point-${String(i).padStart(3, '0')}`);
    const dir = new RunDirectory(dirPath);
    const hash = planHash(plan);
    dir.write('plan.json', planToJson(plan));
    dir.write('environment.json', env);
    await options.aroundPoint?.(i, 'before');
    const started = performance.now();
    let lastShown = 0;
    let lastYield = performance.now();
    const label = plans.length === 1 ? '' : `[${i + 1}/${plans.length}] `;
    const end = plan.durationNs ?? 0;
    const onProgress = (t: number, events: number): boolean | Promise<boolean> => {
      const now = performance.now();
      if (options.progress !== undefined && now - lastShown > 200) {
        lastShown = now;
        const wall = (now - started) / 1000;
        options.progress(`${label}virtual ${formatVirtual(t)} / ${formatVirtual(end)} (${((100 * t) / Math.max(1, end)).toFixed(1)}%)  ${rate(events / Math.max(wall, 1e-3))} events/s  wall ${wall.toFixed(1)}s`, false);
      }
      // the windows run back to back on microtasks: yield to the event loop every 50 ms so that
      // Ctrl-C (a signal handler is a macrotask) is seen promptly
      if (now - lastYield > 50) {
        lastYield = now;
        return new Promise<boolean>((resolve) => setImmediate(() => resolve(options.shouldStop?.() !== true)));
      }
      return options.shouldStop?.() !== true;
    };
    let result: SimulationResult | DistributedResult;
    if (options.distributed === undefined) {
      result = await simulate(plan, { ...(options.partitions === undefined ? {} : { partitions: options.partitions }), ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }), onProgress });
    } else {
      try {
        result = await simulateDistributed(plan, { ...options.distributed, ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }), onProgress });
      } catch (error) {
        // nothing ran (an agent unreachable, refused, a placement that fits no agent)
        dir.interrupted(`not run: ${(error as Error).message}`);
        if (error instanceof UnsupportedPlanError) throw error;
        throw new RunFailure((error as Error).message, dirPath);
      }
    }
    const wallMs = performance.now() - started;
    // a distributed run also records where it ran: each agent's partition and capabilities
    if ('agents' in result) dir.write('environment.json', JSON.stringify({ ...JSON.parse(env), agents: result.agents.map(({ counters: _, ...agent }) => agent) }, null, 2) + '\n');
    const complete = !result.stoppedEarly;
    const { summary, samples } = buildSummary(plan, hash, result, wallMs, complete);
    for (const host of result.network.hosts) dir.write(join('logs', `${host.name}.log`), logText(host.log));
    dir.write('events.log', logText(result.network.runLog));
    for (const [link, records] of result.network.captures) dir.write(join('pcap', `${link}.pcap`), pcapBytes(records));
    dir.write('metrics.csv', metricsCsv(samples));
    dir.write('summary.json', JSON.stringify(summary, null, 2) + '\n');
    dir.write('summary.txt', summaryText(summary));
    options.progress?.(`${label}done: virtual ${formatVirtual(result.reachedNs)} in ${(wallMs / 1000).toFixed(2)}s wall, ${result.events} events`, true);
    const failure = 'failure' in result ? result.failure : null;
    if (complete) dir.complete();
    else dir.interrupted(failure ?? `stopped at virtual ${formatVirtual(result.reachedNs)}`);
    points.push({ plan, dir: dirPath, summary });
    await options.aroundPoint?.(i, 'after');
    if (failure !== null) throw new RunFailure(failure, dirPath);
    if (!complete) return { points, interrupted: true };
  }
  return { points, interrupted: false };
}

/** Sweep results side by side: one column per point. */
export function sweepTable(points: readonly PointResult[]): string {
  if (points.length === 0) return '';
  const header = ['', ...points.map((p) => Object.entries(p.plan.sweep?.values ?? {}).map(([k, v]) => `${k}=${v}`).join(' ') || p.plan.scenario)];
  const rows: string[][] = [header];
  const metricNames = [...new Set(points.flatMap((p) => Object.keys(p.summary.metrics)))];
  for (const name of metricNames) {
    rows.push([`mean(${name})`, ...points.map((p) => { const m = p.summary.metrics[name]?.mean; return m === null || m === undefined ? '-' : m.toPrecision(6); })]);
    rows.push([`count(${name})`, ...points.map((p) => String(p.summary.metrics[name]?.count ?? 0))]);
  }
  const expectationCount = points[0]!.summary.expectations.length;
  for (let e = 0; e < expectationCount; e++) {
    rows.push([points[0]!.summary.expectations[e]!.text, ...points.map((p) => { const x = p.summary.expectations[e]; return x === undefined ? '-' : `${x.passed ? 'PASS' : 'FAIL'} ${x.measured}`; })]);
  }
  rows.push(['events', ...points.map((p) => String(p.summary.events))]);
  rows.push(['trace', ...points.map((p) => p.summary.traceHash.slice(0, 12))]);
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
