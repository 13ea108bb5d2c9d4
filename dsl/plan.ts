// The Plan: the versioned, JSON-serialisable contract between dsl/ and runtime/.
// A leaf module: the runtime imports it, it imports nothing of the runtime.
// All times are integer ns, sizes integer bytes, rates integer bits per second.
import { createHash } from 'node:crypto';

export const PLAN_VERSION = 1;

export type HostKind = 'model' | 'process' | 'vm';

export interface PlanCommand {
  /** `as NAME`, or `cmd<n>` (1-based, declaration order) */
  name: string;
  command: string;
  atNs: number;
}

export type PlanApp =
  /** sizeBytes: IP packet size; arrivals: constant spacing, or Poisson (exponential gaps, same mean rate) */
  | { kind: 'onoff'; to: string; port: number; rateBitsPerSec: number; sizeBytes: number; onNs: number; offNs: number; arrivals: 'constant' | 'poisson' }
  | { kind: 'echo'; port: number }
  | { kind: 'request'; to: string; port: number; everyNs: number; sizeBytes: number; replyBytes: number }
  | { kind: 'sink'; port: number };

export interface PlanVm {
  backend: 'kvm' | 'qemu';
  image: string | null;
  kernel: string | null;
  initrd: string | null;
  append: string | null;
}

export interface PlanHost {
  name: string;
  /** declaration order, also the order of addresses */
  index: number;
  kind: HostKind;
  /** from 198.18.0.0/15 */
  address: string;
  cpus: number;
  cpuScale: number;
  memoryBytes: number | null;
  cacheWays: number | null;
  memBandwidthPercent: number | null;
  commands: PlanCommand[];
  /** sorted by name */
  env: Array<{ name: string; value: string }>;
  files: Array<{ path: string; content: string }>;
  vm: PlanVm | null;
  apps: PlanApp[];
  /** `place … on "AGENT"`, or null for "anywhere" */
  agent: string | null;
  source: string;
}

export type PlanQueue = { bytes: number } | { packets: number } | null;

export interface PlanSwitch {
  name: string;
  index: number;
  latencyNs: number;
  bandwidthBitsPerSec: number | null;
  queue: PlanQueue;
  source: string;
}

export interface PlanLinkSettings {
  latencyNs: number;
  /** null: no serialisation delay */
  bandwidthBitsPerSec: number | null;
  /** probability in [0, 1] */
  lossRate: number;
  jitterNs: number;
  queue: PlanQueue;
  mtuBytes: number;
  capture: boolean;
}

export interface PlanLink extends PlanLinkSettings {
  /** `a--b`, endpoints in declaration order */
  name: string;
  index: number;
  a: string;
  b: string;
  source: string;
}

interface ActionBase {
  atNs: number;
  source: string;
}

export type PlanAction = ActionBase &
  (
    | { type: 'link-down' | 'link-up'; link: string }
    | { type: 'link-set'; link: string; changes: Partial<PlanLinkSettings> }
    | { type: 'kill' | 'pause' | 'resume'; host: string }
    | { type: 'run'; host: string; command: string }
    | { type: 'log'; text: string }
  );

export interface PlanMetric {
  name: string;
  hosts: string[];
  /** JavaScript RegExp source; group 1 is the number */
  regex: string;
  source: string;
}

export type Aggregate = 'mean' | 'min' | 'max' | 'p50' | 'p90' | 'p99' | 'count' | 'last';
export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

interface ExpectationBase {
  source: string;
  /** the scenario line, for pass/fail messages */
  text: string;
}

export type PlanExpectation = ExpectationBase &
  (
    | { type: 'exit'; hosts: string[]; code: number }
    | { type: 'compare'; aggregate: Aggregate; metric: string; op: CompareOp; value: number }
    | { type: 'within'; aggregate: Aggregate; metric: string; value: number; tolerance: number }
    | { type: 'finished'; withinNs: number }
  );

export type PlanUntil = { kind: 'duration' } | { kind: 'all-exit' } | { kind: 'hosts-exit'; hosts: string[] };

export interface Plan {
  planVersion: typeof PLAN_VERSION;
  scenario: string;
  file: string;
  seed: number;
  /** null only with an `until` condition: the run then ends on it alone */
  durationNs: number | null;
  until: PlanUntil;
  /** the conservative window: min(sync window cap, smallest link latency) */
  syncWindowNs: number;
  /** the scenario's own `sync { window D }`, when it has one (runs with live cells size their windows
   *  from the paths between cells, runtime/simulation.ts liveWindow, and keep to this cap) */
  syncWindowCapNs?: number;
  /** every param, sweep and --set value that shaped this plan, as written */
  params: Record<string, string>;
  sweep: { index: number; count: number; values: Record<string, string> } | null;
  network: { prefix: string; prefixLength: number };
  hosts: PlanHost[];
  switches: PlanSwitch[];
  links: PlanLink[];
  timeline: PlanAction[];
  metrics: PlanMetric[];
  expectations: PlanExpectation[];
  agents: string[];
}

/** JSON with object keys sorted at every level: one plan, one byte sequence. */
export function canonicalJson(value: unknown, indent = 0): string {
  return JSON.stringify(sortKeys(value), null, indent);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** sha256 of the canonical compact JSON: identifies a plan across machines and runs. */
export function planHash(plan: Plan): string {
  return createHash('sha256').update(canonicalJson(plan)).digest('hex');
}

/** The printed form: the plan's canonical JSON with its hash added. */
export function planToJson(plan: Plan): string {
  return canonicalJson({ ...plan, planHash: planHash(plan) }, 2) + '\n';
}

/** Parses and validates the version of a plan read back from JSON (run directories, agents). */
export function planFromJson(text: string): Plan {
  const value = JSON.parse(text) as Partial<Plan> & { planHash?: string };
  if (value.planVersion !== PLAN_VERSION) {
    throw new Error(`plan version ${String(value.planVersion)} is not supported (this LiveStack reads version ${PLAN_VERSION})`);
  }
  const { planHash: hash, ...plan } = value;
  if (hash !== undefined && planHash(plan as Plan) !== hash) throw new Error('plan hash does not match its content');
  return plan as Plan;
}

/** 198.18.0.0/15, skipping host numbers that end in .0 or .255 (some software rejects them). */
export function hostAddress(index: number): string {
  const base = (198 << 24) | (18 << 16);
  const block = Math.floor(index / 254);
  const within = (index % 254) + 1;
  const address = (base >>> 0) + block * 256 + within;
  return [address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].join('.');
}
