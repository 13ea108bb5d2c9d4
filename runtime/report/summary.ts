// summary.json / summary.txt / metrics.csv / logs of one run.
import type { Plan } from '../../dsl/plan.ts';
import { formatVirtual } from '../core/time.ts';
import type { DirectionStats } from '../model/link.ts';
import type { SimulationResult } from '../simulation.ts';
import type { LiveStats } from '../live/scheduler.ts';
import { collectMetrics, evaluate, summarise, type ExpectationResult, type LogLine, type MetricSamples, type MetricSummary } from './metrics.ts';

/** A window's width for people: 1 ms, 500 µs, 2.5 ms. */
function width(ns: number): string {
  return ns >= 1e6 ? `${+(ns / 1e6).toFixed(3)} ms` : `${+(ns / 1e3).toFixed(3)} µs`;
}

/** A link direction's counters, with busy time turned into utilisation of the run. */
export interface DirectionSummary extends Omit<DirectionStats, 'busyNs'> {
  from: string;
  to: string;
  utilisation: number;
}

export interface RunSummary {
  scenario: string;
  planHash: string;
  seed: number;
  sweep: Plan['sweep'];
  complete: boolean;
  traceHash: string;
  durationNs: number;
  reachedNs: number;
  wallMs: number;
  events: number;
  eventsPerSecond: number;
  windows: number;
  /** the windows' width, and how far the model ran ahead of live cells (simulation.ts liveWindow) */
  windowNs: number;
  aheadNs: number;
  partitions: number;
  hosts: Array<{ name: string; kind: string; address: string; txPackets: number; txBytes: number; rxPackets: number; rxBytes: number; drops: number }>;
  switches: Array<{ name: string; forwarded: number; dropsUnroutable: number }>;
  links: Array<{ name: string; directions: DirectionSummary[] }>;
  metrics: Record<string, MetricSummary>;
  expectations: ExpectationResult[];
  passed: boolean;
  /** runs with process or vm hosts: how the cells' windows went (held clocks, late deliveries, freezes); else null */
  live: LiveStats | null;
}

export function hostLogs(result: SimulationResult): Map<string, LogLine[]> {
  return new Map(result.network.hosts.map((h) => [h.name, h.log]));
}

export function buildSummary(plan: Plan, planHash: string, result: SimulationResult, wallMs: number, complete: boolean): { summary: RunSummary; samples: MetricSamples } {
  const samples = collectMetrics(plan, hostLogs(result));
  const expectations = evaluate(plan.expectations, samples, result.live === null ? { exitCodes: new Map(), finishedAtNs: 0 } : { exitCodes: result.live.exitCodes, finishedAtNs: result.live.finishedAtNs });
  const elapsed = Math.max(1, result.reachedNs);
  const links = plan.links.map((link) => {
    const pair = result.network.directions.get(link.name)!;
    return {
      name: link.name,
      directions: pair.map((d, i): DirectionSummary => {
        const { busyNs, ...counters } = d.stats;
        return {
          from: i === 0 ? link.a : link.b,
          to: i === 0 ? link.b : link.a,
          ...counters,
          utilisation: Number((Math.min(busyNs, elapsed) / elapsed).toFixed(6)),
        };
      }),
    };
  });
  const metrics: Record<string, MetricSummary> = {};
  for (const [name, list] of samples) metrics[name] = summarise(list);
  const summary: RunSummary = {
    scenario: plan.scenario,
    planHash,
    seed: plan.seed,
    sweep: plan.sweep,
    complete,
    traceHash: result.traceHash,
    durationNs: result.endNs,
    reachedNs: result.reachedNs,
    wallMs: Math.round(wallMs),
    events: result.events,
    eventsPerSecond: Math.round(result.events / Math.max(wallMs / 1000, 1e-6)),
    windows: result.windows,
    windowNs: result.windowNs,
    aheadNs: result.aheadNs,
    partitions: result.partitions,
    hosts: result.network.hosts.map((h) => {
      const p = plan.hosts[h.hostIndex]!;
      return { name: h.name, kind: p.kind, address: p.address, ...h.stats, drops: h.stats.dropsNotForMe + h.dropsUnroutable };
    }),
    switches: result.network.switches.map((s) => ({ name: s.name, forwarded: s.forwarded, dropsUnroutable: s.dropsUnroutable })),
    links,
    metrics,
    expectations,
    passed: complete && expectations.every((e) => e.passed),
    live: result.live?.stats ?? null,
  };
  return { summary, samples };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function metricCell(n: number | null): string {
  return n === null ? '-' : Number.isInteger(n) ? String(n) : n.toPrecision(6);
}

export function summaryText(s: RunSummary): string {
  const lines: string[] = [];
  lines.push(`scenario   ${s.scenario}${s.sweep === null ? '' : `  (sweep point ${s.sweep.index + 1}/${s.sweep.count}: ${Object.entries(s.sweep.values).map(([k, v]) => `${k}=${v}`).join(' ')})`}`);
  lines.push(`status     ${s.complete ? 'complete' : 'INCOMPLETE (interrupted)'}; expectations ${s.expectations.filter((e) => e.passed).length}/${s.expectations.length} passed`);
  lines.push(`plan       ${s.planHash}`);
  lines.push(`trace      ${s.traceHash}`);
  lines.push(`virtual    ${formatVirtual(s.reachedNs)} of ${formatVirtual(s.durationNs)}; seed ${s.seed}`);
  lines.push(`wall       ${(s.wallMs / 1000).toFixed(3)}s; ${s.events} events (${s.eventsPerSecond}/s); ${s.windows} windows of ${width(s.windowNs)}${s.aheadNs > 0 ? ` (the model ${width(s.aheadNs)} ahead of the cells)` : ''}; ${s.partitions} partition(s)`);
  if (s.live !== null) {
    const l = s.live;
    const ms = (ns: number) => (ns / 1e6).toFixed(2);
    lines.push(`live       ${l.framesIn} frames in, ${l.framesOut} out (${l.framesDropped} dropped); clocks held ${l.holds} times (${ms(l.heldNs)} ms in all); ` +
      `${l.lateDeliveries} deliveries late (latest ${ms(l.lateNsMax)} ms behind its cell's clock); slowest freeze ${ms(l.freezeNsMax)} ms, thaw ${ms(l.thawNsMax)} ms` +
      ((l.yields ?? 0) > 0 ? `; quiescent cells jumped ${l.yields} times (${ms(l.yieldedNs ?? 0)} ms in all), ${l.paced ?? 0} windows paced` : ''));
  }
  lines.push('', 'hosts');
  lines.push(table([['name', 'address', 'tx pkts', 'tx bytes', 'rx pkts', 'rx bytes', 'drops'], ...s.hosts.map((h) => [h.name, h.address, String(h.txPackets), String(h.txBytes), String(h.rxPackets), String(h.rxBytes), String(h.drops)])]));
  if (s.links.length > 0) {
    lines.push('', 'links (per direction)');
    lines.push(table([
      ['link', 'dir', 'packets', 'bytes', 'queue drops', 'loss drops', 'down drops', 'mtu drops', 'util', 'max queue'],
      ...s.links.flatMap((l) => l.directions.map((d) => [l.name, `${d.from}→${d.to}`, String(d.packets), String(d.bytes), String(d.dropsQueue), String(d.dropsLoss), String(d.dropsDown), String(d.dropsMtu), `${(d.utilisation * 100).toFixed(1)}%`, String(d.maxQueuePackets)])),
    ]));
  }
  if (Object.keys(s.metrics).length > 0) {
    lines.push('', 'metrics');
    lines.push(table([['metric', 'count', 'mean', 'min', 'p50', 'p90', 'p99', 'max'], ...Object.entries(s.metrics).map(([name, m]) => [name, String(m.count), metricCell(m.mean), metricCell(m.min), metricCell(m.p50), metricCell(m.p90), metricCell(m.p99), metricCell(m.max)])]));
  }
  if (s.expectations.length > 0) {
    lines.push('', 'expectations');
    for (const e of s.expectations) lines.push(expectationLine(e));
  }
  return lines.join('\n') + '\n';
}

export function expectationLine(e: ExpectationResult): string {
  return e.passed ? `PASS ${e.source}: ${e.text}  (measured ${e.measured})` : `FAIL ${e.source}: ${e.text}\n     expected ${e.expected}, measured ${e.measured}`;
}

export function metricsCsv(samples: MetricSamples): string {
  const rows = ['metric,host,time_s,value'];
  for (const [name, list] of samples) for (const s of list) rows.push(`${name},${s.host},${(s.timeNs / 1e9).toFixed(9)},${s.value}`);
  return rows.join('\n') + '\n';
}

export function logText(lines: readonly LogLine[]): string {
  return lines.map((l) => `[${formatVirtual(l.timeNs).padStart(16)}] ${l.line}`).join('\n') + (lines.length > 0 ? '\n' : '');
}
