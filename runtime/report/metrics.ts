// Metrics from host output (`metric NAME from HOST match "REGEX"`, group 1 is
// the number) and the evaluation of `expect` lines.
import type { Aggregate, Plan, PlanExpectation } from '../../dsl/plan.ts';

export interface LogLine {
  timeNs: number;
  line: string;
}

export interface MetricSample {
  host: string;
  timeNs: number;
  value: number;
}

export type MetricSamples = Map<string, MetricSample[]>;

export function collectMetrics(plan: Plan, logs: ReadonlyMap<string, readonly LogLine[]>): MetricSamples {
  const out: MetricSamples = new Map();
  for (const metric of plan.metrics) {
    const regex = new RegExp(metric.regex);
    const samples: MetricSample[] = [];
    for (const host of metric.hosts) {
      for (const entry of logs.get(host) ?? []) {
        const match = regex.exec(entry.line);
        if (match === null || match[1] === undefined) continue;
        const value = Number(match[1]);
        if (Number.isFinite(value)) samples.push({ host, timeNs: entry.timeNs, value });
      }
    }
    samples.sort((a, b) => a.timeNs - b.timeNs || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    out.set(metric.name, samples);
  }
  return out;
}

/** Nearest-rank percentile (p in (0, 100]). */
function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function aggregate(kind: Aggregate, samples: readonly MetricSample[]): number | null {
  if (kind === 'count') return samples.length;
  if (samples.length === 0) return null;
  const values = samples.map((s) => s.value);
  switch (kind) {
    case 'mean':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'min':
      return Math.min(...values);
    case 'max':
      return Math.max(...values);
    case 'last':
      return values[values.length - 1]!;
    default: {
      const sorted = [...values].sort((a, b) => a - b);
      return percentile(sorted, Number(kind.slice(1)));
    }
  }
}

export interface MetricSummary {
  count: number;
  mean: number | null;
  min: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  last: number | null;
}

export function summarise(samples: readonly MetricSample[]): MetricSummary {
  return {
    count: samples.length,
    mean: aggregate('mean', samples),
    min: aggregate('min', samples),
    p50: aggregate('p50', samples),
    p90: aggregate('p90', samples),
    p99: aggregate('p99', samples),
    max: aggregate('max', samples),
    last: aggregate('last', samples),
  };
}

export interface ExpectationResult {
  source: string;
  text: string;
  passed: boolean;
  expected: string;
  measured: string;
}

export interface LiveFacts {
  /** exit codes of each host's commands (live hosts; empty for model runs) */
  exitCodes: ReadonlyMap<string, ReadonlyArray<number | null>>;
  /** virtual time when the last command finished, null if some never did */
  finishedAtNs: number | null;
}

function compare(op: string, a: number, b: number): boolean {
  switch (op) {
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    case '>=': return a >= b;
    case '==': return a === b;
    default: return a !== b;
  }
}

function show(n: number | null): string {
  return n === null ? 'no samples' : String(Number.isInteger(n) ? n : Number(n.toPrecision(10)));
}

export function evaluate(expectations: readonly PlanExpectation[], metrics: MetricSamples, facts: LiveFacts): ExpectationResult[] {
  return expectations.map((e) => {
    const base = { source: e.source, text: e.text };
    switch (e.type) {
      case 'compare': {
        const value = aggregate(e.aggregate, metrics.get(e.metric) ?? []);
        return { ...base, passed: value !== null && compare(e.op, value, e.value), expected: `${e.aggregate}(${e.metric}) ${e.op} ${e.value}`, measured: show(value) };
      }
      case 'within': {
        const value = aggregate(e.aggregate, metrics.get(e.metric) ?? []);
        return { ...base, passed: value !== null && Math.abs(value - e.value) <= e.tolerance, expected: `${e.aggregate}(${e.metric}) in [${e.value - e.tolerance}, ${e.value + e.tolerance}]`, measured: show(value) };
      }
      case 'exit': {
        const codes = e.hosts.flatMap((h) => (facts.exitCodes.get(h) ?? [null]).map((c) => `${h}:${c === null ? 'no exit (running, killed or crashed)' : c}`));
        const passed = e.hosts.every((h) => {
          const list = facts.exitCodes.get(h);
          return list !== undefined && list.length > 0 && list.every((c) => c === e.code);
        });
        return { ...base, passed, expected: `exit ${e.code}`, measured: codes.join(' ') };
      }
      case 'finished': {
        const at = facts.finishedAtNs;
        return { ...base, passed: at !== null && at <= e.withinNs, expected: `finished by ${e.withinNs / 1e9}s`, measured: at === null ? 'not finished' : `${at / 1e9}s` };
      }
    }
  });
}
