// Seeded fuzzing of the front end (dsl/compile.ts). `compileText` must never
// throw or hang, whatever the input, and every result keeps the diagnostic
// contract: stable LS codes, a severity, a message and a span inside the text;
// `ok` exactly when there is no error; plans that serialise to JSON.
//
//   npx ava test/dsl/fuzz.test.ts                 # seed from the clock, printed
//   FUZZ_SEED=123456 npx ava test/dsl/fuzz.test.ts  # re-run a failure
//   FUZZ_ONLY=grammar#17 FUZZ_SEED=… npx ava …       # only that input
//   FUZZ_SCALE=0.1 npx ava …                         # fewer random inputs
//   FUZZ_DUMP=/tmp/inputs npx ava …                  # also write every input there, to look at
//
// Four sources of input, each from its own named random stream (one per input,
// so an input is rebuilt from seed + id alone): token soup from the language's
// vocabulary, grammar-aware scenarios (valid ones are also an oracle: they
// must compile with the expected host/link/switch counts), mutations of the
// .scn corpus, and a fixed list of pathological inputs. A second test holds
// the regression corpus: inputs that once threw or hung.
//
// Every input runs in a worker thread so that a hang is a failure that names
// its input instead of a stuck suite: the worker is terminated after
// INPUT_LIMIT_MS of wall time, and its stack and heap are capped like a CLI
// process (a main thread has ~1 MB of stack).
import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { keywordWords } from '../../dsl/lexer.ts';
import { unitNames } from '../../dsl/units.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

/** Any single input slower than this (wall time, in the worker) is a failure. */
const INPUT_LIMIT_MS = 5_000;
/** Heap of one compiling worker: a legitimate input fits easily; more is a runaway. */
const WORKER_HEAP_MB = 2_048;
/** Stack of one compiling worker: V8's default for a main thread (~984 KB), as in `livestack check`. */
const WORKER_STACK_MB = 1;
/** Random inputs per category; tuned so that the whole run stays under ~60 s on 2 cores. */
const COUNTS = { soup: 3_800, grammar: 3_350, mutation: 3_300 } as const;
/** Every Nth random input is compiled twice and must give identical diagnostics and plans. */
const DETERMINISM_EVERY = 20;

// ---- seeded randomness ------------------------------------------------------

function parseSeed(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text.trim());
  return Number.isFinite(value) ? Math.trunc(value) >>> 0 : undefined;
}

const SEED = parseSeed(process.env['FUZZ_SEED']) ?? (Date.now() ^ (process.pid << 16)) >>> 0;
const SCALE = Math.max(0, Number(process.env['FUZZ_SCALE'] ?? '1') || 1);
const ONLY = process.env['FUZZ_ONLY'];
const DUMP = process.env['FUZZ_DUMP'];

/** mulberry32: small, fast, good enough for test input; never Math.random. */
class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** The seed of the stream `name#index`: FNV-1a of the id, mixed with the run seed. */
function streamSeed(seed: number, id: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

const streamOf = (id: string) => new Rng(streamSeed(SEED, id));

// ---- inputs and outcomes ----------------------------------------------------

type Category = 'soup' | 'grammar' | 'mutation' | 'pathological' | 'regression';

interface CompileJobOptions {
  set?: Record<string, string>;
  scenario?: string;
  requireScenario?: boolean;
  agentCpus?: Record<string, number>;
}

interface Counts {
  hosts: number;
  switches: number;
  links: number;
}

/** What a valid generated file must compile to. */
interface Expected {
  plans: number;
  byScenario: Record<string, Counts>;
}

interface FuzzInput {
  id: string;
  category: Category;
  path: string;
  text: string;
  options: CompileJobOptions;
  /** other files, keyed by path.resolve; served through the `readFile` option */
  files?: Record<string, string>;
  expected?: Expected;
  twice?: boolean;
  note?: string;
}

interface DiagnosticLike {
  code?: unknown;
  severity?: unknown;
  message?: unknown;
  span?: { file?: unknown; line?: unknown; col?: unknown; endLine?: unknown; endCol?: unknown };
}

interface Outcome {
  id: string;
  /** compile time in the worker; the limit when it timed out */
  ms: number;
  timedOut?: boolean;
  /** a throw from compileText, or the worker dying (out of memory) */
  error?: string;
  /** the result is not { program, plans, diagnostics, ok } */
  shape?: string;
  ok?: boolean;
  diagnostics?: DiagnosticLike[];
  /** file name → line count (\n, \r\n and a lone \r end a line, as in the lexer) */
  lineCounts?: Record<string, number>;
  plans?: Array<Counts & { scenario: string }>;
  jsonProblem?: string;
  deterministic?: boolean;
}

// ---- the compiling worker -----------------------------------------------------

// Plain JavaScript, run with `eval`: tsx's hooks do not reach eval'd workers,
// so the .ts front end is loaded through tsx's tsImport API.
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
function lineCount(text) {
  let n = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) n++;
    else if (c === 13) { n++; if (text.charCodeAt(i + 1) === 10) i++; }
  }
  return n;
}
function jsonProblem(value, path, stack) {
  if (value === null) return undefined;
  switch (typeof value) {
    case 'string': case 'boolean': return undefined;
    case 'number': return Number.isFinite(value) ? undefined : path + ' is ' + value;
    case 'object': {
      if (stack.includes(value)) return path + ' is circular';
      const proto = Object.getPrototypeOf(value);
      if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return path + ' is a ' + (value.constructor && value.constructor.name);
      stack.push(value);
      try {
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) { const p = jsonProblem(value[i], path + '[' + i + ']', stack); if (p) return p; }
        } else {
          for (const key of Object.keys(value)) {
            if (value[key] === undefined) return path + '.' + key + ' is undefined';
            const p = jsonProblem(value[key], path + '.' + key, stack); if (p) return p;
          }
        }
      } finally { stack.pop(); }
      return undefined;
    }
    default: return path + ' is a ' + typeof value;
  }
}
import(workerData.tsxApi)
  .then((api) => api.tsImport(workerData.compileUrl, workerData.parentUrl))
  .then((m) => {
    parentPort.on('message', (job) => {
      const options = Object.assign({}, job.options);
      if (job.files) {
        const files = job.files;
        options.readFile = (path) => {
          if (Object.prototype.hasOwnProperty.call(files, path)) return files[path];
          const error = new Error('ENOENT: no such file, open ' + path);
          error.code = 'ENOENT';
          throw error;
        };
      }
      const start = performance.now();
      let result;
      try {
        result = m.compileText(job.path, job.text, options);
      } catch (error) {
        parentPort.postMessage({ id: job.id, ms: performance.now() - start, error: String((error && error.stack) || error) });
        return;
      }
      const ms = performance.now() - start;
      const out = { id: job.id, ms };
      if (result === null || typeof result !== 'object' || !Array.isArray(result.diagnostics) || typeof result.ok !== 'boolean' || !Array.isArray(result.plans) || !(result.program && result.program.sources instanceof Map)) {
        out.shape = 'result is not { program, plans, diagnostics, ok }: ' + Object.keys(result || {}).join(', ');
        parentPort.postMessage(out);
        return;
      }
      out.ok = result.ok;
      out.diagnostics = result.diagnostics;
      out.lineCounts = {};
      for (const [file, text] of result.program.sources) out.lineCounts[file] = lineCount(text);
      out.plans = result.plans.map((p) => ({ scenario: p.scenario, hosts: p.hosts.length, switches: p.switches.length, links: p.links.length }));
      out.jsonProblem = jsonProblem(result.plans, 'plans', []);
      if (job.twice) {
        try {
          const again = m.compileText(job.path, job.text, options);
          out.deterministic = JSON.stringify(again.diagnostics) === JSON.stringify(result.diagnostics) && JSON.stringify(again.plans) === JSON.stringify(result.plans);
        } catch (error) {
          out.deterministic = false;
        }
      }
      try {
        parentPort.postMessage(out);
      } catch (error) {
        parentPort.postMessage({ id: job.id, ms, shape: 'result cannot be sent between threads: ' + error });
      }
    });
    parentPort.postMessage({ ready: true });
  }, (error) => parentPort.postMessage({ fatal: String((error && error.stack) || error) }));
`;

const workerData = {
  tsxApi: import.meta.resolve('tsx/esm/api'),
  compileUrl: new URL('../../dsl/compile.ts', import.meta.url).href,
  parentUrl: import.meta.url,
};

/** One worker that compiles one input at a time; replaced when it hangs or dies. */
class CompilerSlot {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private pending: ((outcome: Outcome) => void) | undefined;

  private start(): Promise<void> {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, stackSizeMb: WORKER_STACK_MB },
    });
    this.worker = worker;
    this.ready = new Promise<void>((resolveReady, rejectReady) => {
      worker.on('message', (message: Outcome & { ready?: boolean; fatal?: string }) => {
        if (message.ready) resolveReady();
        else if (message.fatal !== undefined) rejectReady(new Error(`fuzz worker failed to load the compiler: ${message.fatal}`));
        else this.settle(message);
      });
      const died = (why: string) => {
        rejectReady(new Error(`fuzz worker died while loading: ${why}`));
        if (this.worker === worker) this.worker = undefined;
        this.settle({ id: '', ms: 0, error: `the worker died: ${why}` });
      };
      worker.on('error', (error: Error) => died(`${(error as { code?: string }).code ?? ''} ${error.stack ?? error.message}`));
      worker.on('exit', (code) => died(`exit code ${code}`));
    });
    return this.ready;
  }

  private settle(outcome: Outcome): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.(outcome);
  }

  async compile(input: FuzzInput): Promise<Outcome> {
    if (this.worker === undefined) await this.start();
    else await this.ready;
    const worker = this.worker!;
    const job = { id: input.id, path: input.path, text: input.text, options: input.options, files: input.files, twice: input.twice === true };
    return new Promise<Outcome>((resolveOutcome) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.worker = undefined;
        void worker.terminate();
        resolveOutcome({ id: input.id, ms: INPUT_LIMIT_MS, timedOut: true });
      }, INPUT_LIMIT_MS);
      this.pending = (outcome) => {
        clearTimeout(timer);
        resolveOutcome({ ...outcome, id: input.id });
      };
      worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) {
      worker.removeAllListeners('exit');
      await worker.terminate();
    }
  }
}

/** Runs inputs on `size` workers; `onOutcome` sees them in completion order. */
async function runAll(inputs: Iterable<FuzzInput>, size: number, onOutcome: (input: FuzzInput, outcome: Outcome) => void): Promise<void> {
  const iterator = inputs[Symbol.iterator]();
  const slots = Array.from({ length: size }, () => new CompilerSlot());
  const lane = async (slot: CompilerSlot) => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      onOutcome(next.value, await slot.compile(next.value));
    }
  };
  try {
    await Promise.all(slots.map(lane));
  } finally {
    await Promise.all(slots.map((s) => s.close()));
  }
}

// ---- checking one outcome -------------------------------------------------------

function check(input: FuzzInput, outcome: Outcome): string[] {
  if (outcome.timedOut) return [`took more than ${INPUT_LIMIT_MS} ms (worker terminated)`];
  if (outcome.error !== undefined) return [`compileText threw: ${outcome.error.split('\n').slice(0, 12).join('\n')}`];
  if (outcome.shape !== undefined) return [outcome.shape];
  const problems: string[] = [];
  if (outcome.ms > INPUT_LIMIT_MS) problems.push(`took ${outcome.ms.toFixed(0)} ms (limit ${INPUT_LIMIT_MS})`);
  const diagnostics = outcome.diagnostics ?? [];
  const lineCounts = outcome.lineCounts ?? {};
  let hasError = false;
  for (const [i, d] of diagnostics.entries()) {
    const where = `diagnostics[${i}] ${String(d.code)} ${String(d.message).slice(0, 120)}`;
    if (typeof d.code !== 'string' || !/^LS\d{4}$/.test(d.code)) problems.push(`${where}: code ${JSON.stringify(d.code)} is not LSnnnn`);
    if (d.severity !== 'error' && d.severity !== 'warning') problems.push(`${where}: severity ${JSON.stringify(d.severity)}`);
    if (d.severity === 'error') hasError = true;
    if (typeof d.message !== 'string' || d.message.trim() === '') problems.push(`${where}: empty message`);
    const span = d.span;
    if (span === undefined || span === null || typeof span !== 'object') {
      problems.push(`${where}: no span`);
      continue;
    }
    const { file, line, col, endLine } = span;
    if (typeof file !== 'string') {
      problems.push(`${where}: span.file ${JSON.stringify(file)}`);
      continue;
    }
    const lines = file === '<command line>' ? 1 : lineCounts[file];
    if (lines === undefined) problems.push(`${where}: span.file '${file}' is not a loaded file (${Object.keys(lineCounts).join(', ')})`);
    if (!Number.isInteger(line) || (line as number) < 1) problems.push(`${where}: span.line ${String(line)} < 1`);
    else if (lines !== undefined && (line as number) > lines + 1) problems.push(`${where}: span.line ${String(line)} beyond the ${lines} lines of ${file}`);
    if (!Number.isInteger(col) || (col as number) < 1) problems.push(`${where}: span.col ${String(col)} < 1`);
    if (endLine !== undefined && lines !== undefined && (!Number.isInteger(endLine) || (endLine as number) > lines + 1)) problems.push(`${where}: span.endLine ${String(endLine)} beyond the ${lines} lines`);
    if (problems.length > 20) break;
  }
  if (outcome.ok !== !hasError) problems.push(`ok is ${String(outcome.ok)} but ${hasError ? 'there are' : 'there is no'} error diagnostics`);
  if (outcome.ok && outcome.jsonProblem !== undefined) problems.push(`plans are not JSON-serialisable: ${outcome.jsonProblem}`);
  if (!outcome.ok && (outcome.plans?.length ?? 0) > 0) problems.push(`not ok, yet ${outcome.plans!.length} plans were returned`);
  if (outcome.deterministic === false) problems.push('compiling the same input twice gave different diagnostics or plans');
  if (input.expected !== undefined) {
    if (!outcome.ok) {
      const errors = diagnostics.filter((d) => d.severity === 'error').slice(0, 5);
      problems.push(`a valid generated scenario was rejected:\n${errors.map((d) => `    ${String(d.code)} ${d.span?.line as number}:${d.span?.col as number} ${String(d.message)}`).join('\n')}`);
    } else {
      const plans = outcome.plans ?? [];
      if (plans.length !== input.expected.plans) problems.push(`expected ${input.expected.plans} plans, got ${plans.length}`);
      for (const plan of plans) {
        const want = input.expected.byScenario[plan.scenario];
        if (want === undefined) problems.push(`unexpected plan for scenario "${plan.scenario}"`);
        else if (want.hosts !== plan.hosts || want.links !== plan.links || want.switches !== plan.switches) {
          problems.push(`scenario "${plan.scenario}": expected ${JSON.stringify(want)}, got ${JSON.stringify({ hosts: plan.hosts, switches: plan.switches, links: plan.links })}`);
        }
      }
    }
  }
  return problems;
}

// ---- (a) token soup ---------------------------------------------------------------

const settingWords = [
  'latency', 'bandwidth', 'loss', 'jitter', 'queue', 'mtu', 'window', 'to', 'port', 'rate', 'size', 'every', 'reply', 'off',
  'process', 'model', 'vm', 'kvm', 'qemu', 'onoff', 'echo', 'request', 'sink', 'mean', 'p50', 'p90', 'p99', 'count', 'last', 'avg',
];
const soupNames = ['a', 'b', 'c', 'web', 'web1', 'h', 'db-primary', 'sw0', 'leaf', 'spine', '_x', 'x_1', 'client', 'server', 'exit', 'link', 'set', 'in'];
const wrongUnits = ['xs', 'msec', 'Mbitz', 'µ', '%%', 'e5', '_', 'h1', 'ms/s', 'B/s', 'kbps', 'mb', 'Sec', 'M', 'Kib', 'packets'];
const punctuation = [
  '{', '}', '[', ']', '(', ')', ',', '..', '...', '--', '---', '+-', '±', '-', '<', '<=', '>', '>=', '==', '!=', '=', '*',
  '.', '/', '!', '+', '#', '@', '$', '%', '&', '|', '^', '~', '`', ';', ':', '?', '\\', "'", '=>', '->', '<>',
];
const unicode = ['é', '😀', '\u2028', '\u2029', '\u00a0', 'µ', '\ufeff', '\u200b', '\u202e', '\ud800', '\udfff', 'ﬁ', 'Ω', 'ß', 'e\u0301', '中文', 'ℌ', '１'];
const stringParts = ['a', 'ping -c 1 server', 'time=([0-9.]+) ms', '\\"', '\\\\', '\\n', '\\t', '\\q', '\\u00e9', '\\', '(', ')', '[', '*', '$HOME', 'é', '😀', ' ', '%s', '{}'];

function identifier(rng: Rng, length: number): string {
  const first = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_';
  const rest = first + '0123456789';
  let out = first[rng.int(0, first.length - 1)]!;
  for (let i = 1; i < length; i++) out += rng.chance(0.05) && out[out.length - 1] !== '-' ? '-' : rest[rng.int(0, rest.length - 1)]!;
  return out.replace(/-$/, '');
}

function soupNumber(rng: Rng): string {
  let digits = String(rng.chance(0.1) ? 0 : rng.int(0, rng.pick([9, 99, 9999, 2 ** 31])));
  if (rng.chance(0.02)) digits = '9'.repeat(rng.int(16, 400));
  if (rng.chance(0.25)) digits += '.' + String(rng.int(0, 999));
  const roll = rng.next();
  const unit = roll < 0.35 ? '' : roll < 0.8 ? rng.pick(unitNames) : rng.pick(wrongUnits);
  return digits + unit + (unit !== '' && rng.chance(0.1) ? '/s' : '');
}

function soupString(rng: Rng): string {
  let body = '';
  const parts = rng.int(0, 5);
  for (let i = 0; i < parts; i++) body += rng.pick(stringParts);
  if (rng.chance(0.03)) body += '\n' + rng.pick(stringParts);
  return '"' + body + (rng.chance(0.08) ? '' : '"');
}

function soupComment(rng: Rng): string {
  const body = rng.chance(0.5) ? identifier(rng, rng.int(1, 10)) : rng.pick(unicode) + ' */ "' ;
  const roll = rng.next();
  if (roll < 0.45) return '// ' + body + (rng.chance(0.9) ? '\n' : '');
  if (roll < 0.9) return '/* ' + body + (rng.chance(0.2) ? '\n' : '') + ' */';
  if (roll < 0.95) return '/**/';
  return '/* ' + body; // unterminated
}

function soupToken(rng: Rng): string {
  const roll = rng.next();
  if (roll < 0.2) return rng.pick(keywordWords);
  if (roll < 0.3) return rng.pick(settingWords);
  if (roll < 0.42) return rng.chance(0.5) ? rng.pick(soupNames) : identifier(rng, rng.int(1, 14));
  if (roll < 0.57) return soupNumber(rng);
  if (roll < 0.65) return soupString(rng);
  if (roll < 0.88) return rng.pick(punctuation);
  if (roll < 0.92) return soupComment(rng);
  if (roll < 0.96) return rng.pick(unicode);
  return rng.pick(['\0', '\x01', '\x07', '\x1b', '\x7f', '\r', '\r\n', '\f', '\v', '\t', String.fromCharCode(rng.int(0, 31))]);
}

function soupSeparator(rng: Rng): string {
  const roll = rng.next();
  return roll < 0.6 ? ' ' : roll < 0.8 ? '\n' : roll < 0.9 ? '' : rng.pick(['\t', '  ', '\r\n', '\n\n']);
}

function soupInput(index: number): FuzzInput {
  const id = `soup#${index}`;
  const rng = streamOf(id);
  const count = rng.chance(0.04) ? rng.int(200, 2_000) : rng.int(1, 120);
  let text = '';
  for (let i = 0; i < count; i++) text += soupToken(rng) + soupSeparator(rng);
  const frame = rng.next();
  if (frame < 0.3) text = `scenario "soup" {\n  duration 1s host a host b\n${text}\n}`;
  else if (frame < 0.45) text = `scenario "soup" { ${text} }`;
  else if (frame < 0.55) text = `scenario "soup" { duration 1s host a { ${text} } }`;
  else if (frame < 0.62) text = `scenario "soup" { duration 1s host a host b link a -- b { ${text} } }`;
  else if (frame < 0.68) text = `scenario "soup" { duration 1s host a { run "x" } host b link a -- b { latency 1ms } at 1ms { ${text} } }`;
  return { id, category: 'soup', path: '/fuzz/soup.scn', text, options: {} };
}

// ---- (b) grammar-aware scenarios ----------------------------------------------------

/** Latencies: every one is ≥ 1us, so `sync { window 1us }` is always valid. */
const latencies = ['1us', '50us', '250us', '1ms', '10ms', '100ms'];
const durations: Array<[string, number]> = [['1s', 1e9], ['10s', 1e10], ['30s', 3e10], ['2min', 1.2e11], ['1h', 3.6e12]];
const rates = ['100Mbit', '1Gbit/s', '10Gbps', '64Kbps', '1.5Mbps', '40Gbit'];
const sizes = ['1500B', '64KiB', '2KB', '1MiB', '512MiB', '1GB'];
const percents = ['0%', '0.5%', '5%', '100%'];
const regexes = ['time=([0-9.]+) ms', '([0-9]+) ops/s', 'rtt=([0-9.]+)', '(\\\\d+) Mbit'];
const aggregateWords = ['mean', 'min', 'max', 'p50', 'p90', 'p99', 'count', 'last'];
const compareOps = ['<', '<=', '>', '>=', '==', '!='];
type ValueKind = 'duration' | 'rate' | 'size' | 'percent' | 'plain' | 'string';
type Kind = 'process' | 'model' | 'vm';

interface HostGroup {
  base: string;
  names: string[];
  /** `n3`, or `w2x[1..4]` */
  selector: string;
  range?: [number, number];
  kind: Kind;
  commands: boolean;
}

interface TemplateInfo {
  name: string;
  kind: Kind;
}

/** Writes one scenario; with `messy`, each decision goes wrong with probability `errorRate`. */
class ScenarioWriter {
  private readonly items: string[] = [];
  private readonly groups: HostGroup[] = [];
  private readonly switchNames: string[] = [];
  private readonly switchSelectors: string[] = [];
  private readonly pairs = new Set<string>();
  private readonly pairList: Array<[string, string]> = [];
  private readonly latencyRefs: string[] = [];
  private readonly metrics: string[] = [];
  private durationNs: number | null = null;
  points = 1;

  constructor(
    private readonly rng: Rng,
    private readonly messy: boolean,
    private readonly errorRate: number,
    private readonly outer: { lets: string[]; templates: TemplateInfo[] },
    private readonly set: Record<string, string> | undefined,
  ) {}

  private err(): boolean {
    return this.messy && this.rng.chance(this.errorRate);
  }

  private bad(kind: ValueKind): string {
    const r = this.rng;
    const wrongFamily: Record<ValueKind, string[]> = {
      duration: ['10Mbps', '64KiB', '5%', '"10ms"'],
      rate: ['10ms', '1500B', '"fast"'],
      size: ['10ms', '1Gbit', '50%'],
      percent: ['10ms', '0.5', '101%', '-1%'],
      plain: ['10ms', '"3"', '1.5', '-1'],
      string: ['10ms', '42', 'unquoted'],
    };
    return r.pick([
      ...wrongFamily[kind], '10', '10xs', '5msec', '3Mbitz/s', '0ms', '-5ms', '99999999999999999999h', 'v_missing', 'lat', 'host', '', '{', '1..2',
      '9'.repeat(r.int(20, 330)), '0.000000001ns',
    ]);
  }

  private value(kind: ValueKind, clean: string): string {
    return this.err() ? this.bad(kind) : clean;
  }

  private name(clean: string, candidates: readonly string[] = []): string {
    if (!this.err()) return clean;
    return this.rng.pick([clean + 'x', clean.slice(0, -1) || 'q', clean.toUpperCase(), 'nosuch', ...candidates, clean + '[1..2]', clean + '[0]', 'link', '"' + clean + '"']);
  }

  private push(item: string): void {
    this.items.push(item);
    if (this.err()) this.items.push(item); // duplicates: names, links, settings
    if (this.err()) this.items.push(this.rng.pick(['hots x', 'linkk a -- b', 'durations 1s', 'expectt a exit 0', 'metric', 'at', 'host', '}', '{', 'scenario "inner" { }']));
  }

  private latency(): string {
    if (this.latencyRefs.length > 0 && this.rng.chance(0.4)) return this.name(this.rng.pick(this.latencyRefs));
    return this.value('duration', this.rng.pick(latencies));
  }

  private settings(keys: Array<[string, () => string]>, required: string[] = []): string {
    const chosen = keys.filter(([key]) => required.includes(key) || this.rng.chance(0.35));
    const parts = this.rng.shuffle(chosen.map(([key, make]) => (key === 'capture' ? 'capture' : `${this.err() ? this.rng.pick(['latancy', 'bw', 'window', 'port']) : key} ${make()}`)));
    if (this.err() && parts.length > 0) parts.push(parts[0]!);
    return `{ ${parts.join('  ')} }`;
  }

  private linkSettings(requireLatency: boolean): string {
    return this.settings(
      [
        ['latency', () => this.latency()],
        ['bandwidth', () => this.value('rate', this.rng.pick(rates))],
        ['loss', () => this.value('percent', this.rng.pick(percents))],
        ['jitter', () => this.value('duration', this.rng.pick(['0s', '1us', '2ms']))],
        ['queue', () => (this.rng.chance(0.5) ? `${this.value('plain', String(this.rng.int(1, 1000)))} packets` : this.value('size', this.rng.pick(sizes)))],
        ['mtu', () => this.value('plain', this.rng.pick(['1500', '9000', '68', '65535', '9KB']))],
        ['capture', () => ''],
      ],
      requireLatency && !this.err() ? ['latency'] : [],
    );
  }

  /** Declarations that make names usable as latencies: lets, a param, sweeps. */
  private valueDeclarations(k: string): void {
    const r = this.rng;
    for (let i = r.int(0, 2); i > 0; i--) {
      const name = `v_lat${k}${i}`;
      this.push(`let ${name} = ${this.value('duration', r.pick(latencies))}`);
      this.latencyRefs.push(name);
    }
    if (r.chance(0.3)) {
      const name = `p_lat${k}`;
      this.push(`param ${name} = ${this.value('duration', r.pick(latencies))}`);
      this.latencyRefs.push(name);
      if (this.set !== undefined && r.chance(0.5)) this.set[name] = r.pick(['2ms', '1us', '3.5ms']);
    }
    if (r.chance(0.25)) {
      const name = `s_lat${k}`;
      const values = r.shuffle([...latencies]).slice(0, r.int(this.err() ? 0 : 1, 3));
      this.push(`sweep ${name} in [${values.map((v) => this.value('duration', v)).join(', ')}]`);
      this.latencyRefs.push(name);
      if (this.set !== undefined && r.chance(0.3)) this.set[name] = '7ms';
      else this.points *= Math.max(1, values.length);
    }
    if (r.chance(0.15)) {
      const values = Array.from({ length: r.int(1, 3) }, (_, i) => String(i + 1));
      this.push(`sweep s_n${k} in [${values.join(', ')}]`);
      this.points *= values.length;
    }
  }

  private templates(k: string): TemplateInfo[] {
    const r = this.rng;
    const made: TemplateInfo[] = [];
    for (let i = r.int(0, 2); i > 0; i--) {
      const kind: Kind = r.pick(['process', 'model', 'vm']);
      const name = `t_${k}${i}`;
      const base = [...this.outer.templates, ...made].filter((t) => t.kind === kind);
      const from = base.length > 0 && r.chance(0.4) ? ` from ${this.name(r.pick(base).name)}` : this.err() ? ` from ${name}` : '';
      this.push(`template ${name}${from} { ${this.hostItems(kind, true, false, name).join('  ')} }`);
      made.push({ name, kind });
    }
    return made;
  }

  /** The items of a host (or template) body of `kind`; `inherited`: a template gives the kind and commands. */
  private hostItems(kind: Kind, full: boolean, inherited: boolean, self: string): string[] {
    const r = this.rng;
    const items: string[] = [];
    if (full && (kind !== 'process' || r.chance(0.5))) items.push(`kind ${this.err() ? r.pick(['proces', 'container', '3']) : kind}`);
    if (kind === 'process' && full) {
      for (let i = r.int(1, 2); i > 0; i--) {
        const at = r.chance(0.3) ? ` at ${this.value('duration', r.pick(['0s', '1ms', '2s']))}` : '';
        const as = r.chance(0.3) ? ` as job_${self}_${i}` : ''; // unique along a template chain
        items.push(`run ${this.value('string', `"cmd ${self} ${i}"`)}${at}${as}`);
      }
    }
    if (kind === 'vm' && full) {
      if (r.chance(0.6)) items.push(`image "/images/${self}.qcow2"`, `backend ${this.value('string', 'kvm')}`);
      else items.push(`kernel "/boot/vmlinuz"`, `initrd "/boot/initrd.img"`, `append "console=ttyS0"`, 'backend qemu');
    }
    if (r.chance(0.3)) items.push(`cpus ${this.value('plain', String(r.int(1, 8)))}`);
    if (r.chance(0.2)) items.push(`cpu_scale ${this.value('plain', r.pick(['0.5', '2', '1']))}`);
    if (r.chance(0.2)) items.push(`memory ${this.value('size', r.pick(['512MiB', '1GiB', '2GB']))}`);
    if (kind !== 'vm' && r.chance(0.1)) items.push(`cache_ways ${this.value('plain', String(r.int(1, 16)))}`, `mem_bandwidth ${this.value('percent', r.pick(['10%', '50%', '100%']))}`);
    if (kind === 'process' && r.chance(0.3)) items.push(`env ${r.pick(['MODE', 'PEER', 'N'])} = ${this.value('string', r.pick(['"server"', '"1"', '42']))}`);
    if (kind === 'process' && r.chance(0.2)) items.push(`file ${this.value('string', '"/etc/fuzz.conf"')} = "a=1\\nb=2"`);
    if (this.err()) items.push(r.pick(['run "on a model host"', 'app echo { port 7 }', 'image "/x.img"', 'latency 1ms', 'cpuss 2', 'app bogus']));
    if (inherited && this.err()) items.push('kind model');
    return r.shuffle(items);
  }

  private apps(group: HostGroup): string[] {
    const r = this.rng;
    const targets = this.groups.filter((g) => g.range === undefined && g !== group).map((g) => g.names[0]!);
    const apps: string[] = [];
    for (let i = r.int(0, 2); i > 0; i--) {
      const kind = targets.length > 0 ? r.pick(['echo', 'sink', 'onoff', 'request']) : r.pick(['echo', 'sink']);
      const to = () => this.name(r.pick(targets), group.names);
      if (kind === 'echo' || kind === 'sink') {
        apps.push(`app ${kind}${r.chance(0.5) ? ` { port ${this.value('plain', String(r.int(1, 65535)))} }` : ''}`);
      } else if (kind === 'onoff') {
        apps.push(`app onoff ${this.settings([['to', to], ['rate', () => this.value('rate', r.pick(rates))], ['size', () => this.value('size', r.pick(['1500B', '200B', '64KB']))], ['on', () => this.value('duration', '1s')], ['off', () => this.value('duration', '500ms')], ['port', () => '9']], ['to', 'rate'])}`);
      } else {
        apps.push(`app request ${this.settings([['to', to], ['every', () => this.value('duration', r.pick(['10ms', '1s']))], ['size', () => this.value('size', '200B')], ['reply', () => this.value('size', '2KB')]], ['to', 'every'])}`);
      }
    }
    return apps;
  }

  private pairKey(a: string, b: string): string {
    return a < b ? `${a} ${b}` : `${b} ${a}`;
  }

  /** Declares a link if it is valid (no self link, no pair already linked); returns whether it did. */
  private link(aSelector: string, aNames: string[], bSelector: string, bNames: string[]): boolean {
    const pairs: Array<[string, string]> = [];
    for (const a of aNames) {
      for (const b of bNames) {
        if (a === b || this.pairs.has(this.pairKey(a, b))) {
          if (!this.err()) return false;
        }
        pairs.push([a, b]);
      }
    }
    if (pairs.length > 5_000) return false;
    for (const [a, b] of pairs) {
      if (!this.pairs.has(this.pairKey(a, b)) && a !== b) this.pairList.push([a, b]);
      this.pairs.add(this.pairKey(a, b));
    }
    const body = this.linkSettings(true);
    this.push(`link ${this.name(aSelector)} ${this.err() ? '-' : '--'} ${bSelector}${this.err() ? '' : ' ' + body}`);
    return true;
  }

  private selectorOf(group: HostGroup): { text: string; names: string[] } {
    const r = this.rng;
    if (group.range === undefined || r.chance(0.6)) return { text: group.selector, names: group.names };
    const [lo, hi] = group.range;
    const from = r.int(lo, hi);
    const to = r.int(from, hi);
    const text = from === to && r.chance(0.5) ? `${group.base}[${from}]` : `${group.base}[${from}..${to}]`;
    return { text, names: group.names.slice(from - lo, to - lo + 1) };
  }

  write(k: string, scenarioName: string): { text: string; counts: Counts } {
    const r = this.rng;
    const ownTemplates = this.templates(k);
    const templates = [...this.outer.templates, ...ownTemplates];
    this.latencyRefs.push(...this.outer.lets);
    this.valueDeclarations(k);

    // hosts: decided first, so that apps can name any of them
    const singles = r.int(0, 5);
    const ranges = r.int(0, 3);
    const kinds: Kind[] = ['process', 'process', 'model', 'model', 'vm'];
    for (let i = 0; i < singles; i++) {
      const base = `n${k}${i}`;
      this.groups.push({ base, names: [base], selector: base, kind: r.pick(kinds), commands: false });
    }
    for (let i = 0; i < ranges; i++) {
      const base = `w${k}${i}x`;
      const lo = r.int(0, 3);
      const hi = lo + (r.chance(0.05) ? r.int(50, 300) : r.int(0, 7));
      const names = Array.from({ length: hi - lo + 1 }, (_, j) => `${base}${lo + j}`);
      const [a, b] = this.err() ? r.pick([[hi, lo], [lo, 999_999_999], [1, 1.5], [lo, hi + 1]]) : [lo, hi];
      this.groups.push({ base, names, selector: `${base}[${a}..${b}]`, range: [lo, hi], kind: r.pick(kinds), commands: false });
    }
    for (const group of this.groups) {
      const candidates = templates.filter((t) => t.kind === group.kind);
      const template = candidates.length > 0 && r.chance(0.4) ? r.pick(candidates) : undefined;
      const items = this.hostItems(group.kind, template === undefined, template !== undefined, group.base);
      if (group.kind === 'model') items.push(...this.apps(group));
      group.commands = group.kind === 'process';
      const from = template === undefined ? '' : ` from ${this.name(template.name)}`;
      const body = items.length === 0 && r.chance(0.5) ? '' : ` { ${items.join('  ')} }`;
      this.push(`host ${group.selector}${from}${body}`);
    }

    // switches
    for (let i = r.int(0, 3); i > 0; i--) {
      const settings = r.chance(0.7)
        ? ' ' + this.settings([['latency', () => this.value('duration', r.pick(latencies))], ['bandwidth', () => this.value('rate', r.pick(rates))], ['queue', () => (r.chance(0.5) ? '100 packets' : '1MiB')]])
        : '';
      if (r.chance(0.3)) {
        const base = `sp${k}${i}x`;
        const names = [`${base}1`, `${base}2`];
        this.switchNames.push(...names);
        this.switchSelectors.push(`${base}[1..2]`);
        this.push(`switch ${base}[1..2]${settings}`);
      } else {
        this.switchNames.push(`sw${k}${i}`);
        this.switchSelectors.push(`sw${k}${i}`);
        this.push(`switch sw${k}${i}${settings}`);
      }
    }

    // links: hosts to a switch or a host, switches to switches, sometimes a mesh
    const singleNodes = [...this.groups.filter((g) => g.range === undefined).map((g) => g.names[0]!), ...this.switchNames];
    for (const group of this.groups) {
      if (!r.chance(0.75) || singleNodes.length === 0) continue;
      const { text, names } = this.selectorOf(group);
      const partner = r.pick(singleNodes);
      this.link(text, names, partner, [partner]);
    }
    if (this.switchSelectors.length >= 2 && r.chance(0.5)) {
      const a = this.switchSelectors[0]!;
      const b = this.switchSelectors[1]!;
      this.link(a, this.namesOfSwitch(a), b, this.namesOfSwitch(b));
    }
    const rangeGroups = this.groups.filter((g) => g.range !== undefined && g.names.length <= 10);
    if (rangeGroups.length >= 2 && r.chance(0.3)) this.link(rangeGroups[0]!.selector, rangeGroups[0]!.names, rangeGroups[1]!.selector, rangeGroups[1]!.names);

    // time
    const live = this.groups.filter((g) => g.kind !== 'model');
    const withCommands = this.groups.filter((g) => g.commands);
    let until = false;
    if (withCommands.length > 0 && r.chance(0.3)) {
      until = true;
      this.push(r.chance(0.5) ? 'until exit' : `until ${this.name(this.selectorOf(r.pick(withCommands)).text)} exits`);
    } else if (this.err()) {
      this.push('until exit');
    }
    if (!until || r.chance(0.7) || this.err()) {
      const [text, ns] = r.pick(durations);
      this.durationNs = ns;
      this.push(`duration ${this.value('duration', text)}`);
    }
    if (r.chance(0.5)) this.push(`seed ${this.value('plain', String(r.int(0, 2 ** 31)))}`);
    if (this.pairList.length > 0 && r.chance(0.3)) this.push(`sync { window ${this.err() ? '1s' : r.pick(['1us', '500ns'])} }`);

    for (let i = r.int(0, 3); i > 0; i--) {
      const limit = this.durationNs ?? 3.6e12;
      const times = ['0s', '1ms', '500ms', ...durations.filter(([, ns]) => ns <= limit).map(([text]) => text)];
      const actions: string[] = [];
      for (let j = r.int(0, 3); j > 0; j--) {
        const roll = r.next();
        if (roll < 0.35 && this.pairList.length > 0) {
          const [a, b] = r.pick(this.pairList);
          const op = r.pick(['down', 'up', 'set']);
          const set = op === 'set' ? ' ' + this.settings([['latency', () => this.value('duration', r.pick(['100ms', '1s']))], ['loss', () => this.value('percent', '1%')], ['bandwidth', () => this.value('rate', '1Mbit')]], ['loss']) : '';
          actions.push(`link ${this.name(a)} -- ${b} ${op}${set}`);
        } else if (roll < 0.6 && live.length > 0) {
          actions.push(`${r.pick(['kill', 'pause', 'resume'])} ${this.name(this.selectorOf(r.pick(live)).text)}`);
        } else if (roll < 0.8 && live.length > 0) {
          actions.push(`run ${this.name(this.selectorOf(r.pick(live)).text)} ${this.value('string', '"echo hi"')}`);
        } else {
          actions.push(`log ${this.value('string', '"note \\"quoted\\""')}`);
        }
      }
      this.push(`at ${this.err() ? this.bad('duration') : r.pick(times)} { ${actions.join('  ')} }`);
    }

    // metrics and expectations
    for (let i = r.int(0, 2); i > 0 && this.groups.length > 0; i--) {
      const name = `m${k}${i}`;
      this.metrics.push(name);
      const regex = this.err() ? r.pick(['"("', '"no group"', '"[0-9"', 'rx']) : `"${r.pick(regexes)}"`;
      this.push(`metric ${name} from ${this.name(this.selectorOf(r.pick(this.groups)).text)} match ${regex}`);
    }
    for (let i = r.int(0, 3); i > 0; i--) {
      const roll = r.next();
      if (roll < 0.3 && withCommands.length > 0) {
        this.push(`expect ${this.name(this.selectorOf(r.pick(withCommands)).text)} exit ${this.value('plain', String(r.pick([0, 1, 255])))}`);
      } else if (roll < 0.75 && this.metrics.length > 0) {
        const metric = this.name(r.pick(this.metrics));
        const aggregate = this.err() ? r.pick(['avg', 'median', 'p95']) : r.pick(aggregateWords);
        const number = () => this.value('plain', r.pick(['0', '20', '0.4', '-3', '1000000']));
        if (r.chance(0.5)) this.push(`expect ${aggregate}(${metric}) ${r.pick(compareOps)} ${number()}`);
        else this.push(`expect ${aggregate}(${metric}) within ${number()} ${r.pick(['+-', '±'])} ${this.value('plain', r.pick(['0', '0.5', '10']))}`);
      } else {
        this.push(`expect finished within ${this.value('duration', r.pick(['1s', '10s', '250ms']))}`);
      }
    }

    // placement: each group at most once
    for (const group of this.groups) {
      if (!r.chance(0.2)) continue;
      const agent = this.value('string', `"agent-${r.pick(['a', 'b', 'c'])}"`);
      const pattern = group.range !== undefined && r.chance(0.5) ? r.pick([`"${group.base}*"`, `${group.base}*`]) : this.name(group.selector);
      this.push(`place ${pattern} on ${agent}`);
    }
    if (this.err()) this.push(`place "zz*" on "agent-a"`);

    let items = this.items;
    if (r.chance(0.5)) items = r.shuffle([...items]); // the checker must not depend on item order
    const separator = r.pick(['\n  ', '\n  ', '  ', '\n\n  ', '\n  // a comment\n  ', ' /* c */ ']);
    const text = `scenario "${scenarioName}" {\n  ${items.join(separator)}\n}\n`;
    let hosts = 0;
    for (const group of this.groups) hosts += group.names.length;
    return { text, counts: { hosts, switches: this.switchNames.length, links: this.pairs.size } };
  }

  private namesOfSwitch(selector: string): string[] {
    const match = /^(.*)\[1\.\.2\]$/.exec(selector);
    return match === null ? [selector] : [`${match[1]}1`, `${match[1]}2`];
  }
}

/** A file of lets and templates (imported or at the top of the main file). */
function topLevel(rng: Rng, prefix: string, messy: boolean): { text: string; lets: string[]; templates: TemplateInfo[] } {
  const lines: string[] = [];
  const lets: string[] = [];
  const templates: TemplateInfo[] = [];
  for (let i = rng.int(0, 2); i > 0; i--) {
    const name = `g_lat${prefix}${i}`;
    lines.push(`let ${name} = ${messy && rng.chance(0.1) ? name : rng.pick(latencies)}`);
    lets.push(name);
  }
  for (let i = rng.int(0, 2); i > 0; i--) {
    const name = `g_tpl${prefix}${i}`;
    if (rng.chance(0.5)) {
      lines.push(`template ${name} { kind process  cpus ${rng.int(1, 4)}  run "serve ${name}" }`);
      templates.push({ name, kind: 'process' });
    } else {
      lines.push(`template ${name} { kind model  cpu_scale 2  memory 1GiB }`);
      templates.push({ name, kind: 'model' });
    }
  }
  return { text: lines.join('\n') + '\n', lets, templates };
}

function grammarInput(index: number): FuzzInput {
  const id = `grammar#${index}`;
  const rng = streamOf(id);
  const messy = rng.chance(0.5);
  const errorRate = rng.pick([0.02, 0.05, 0.15]);
  const files: Record<string, string> = {};
  const header: string[] = [];
  const outer = { lets: [] as string[], templates: [] as TemplateInfo[] };
  if (rng.chance(0.35)) {
    // an imported library, itself importing another
    const lib = topLevel(rng, 'L', messy);
    const base = topLevel(rng, 'B', messy);
    files[resolve('/fuzz/lib/common.scn')] = `import "base.scn"\n${lib.text}${messy && rng.chance(0.2) ? 'import "../main.scn"\n' : ''}`;
    files[resolve('/fuzz/lib/base.scn')] = base.text;
    header.push(`import "lib/common.scn"`);
    outer.lets.push(...lib.lets, ...base.lets);
    outer.templates.push(...lib.templates, ...base.templates);
  }
  if (messy && rng.chance(0.1)) header.push(rng.pick(['import "missing.scn"', 'import "main.scn"', 'import "/"', 'import ""']));
  if (rng.chance(0.3)) {
    const top = topLevel(rng, 'T', messy);
    header.push(top.text);
    outer.lets.push(...top.lets);
    outer.templates.push(...top.templates);
  }
  const scenarioCount = rng.chance(0.85) ? 1 : rng.chance(0.8) ? 2 : 0;
  const options: CompileJobOptions = {};
  const pick = scenarioCount > 1 && rng.chance(0.5) ? rng.int(0, scenarioCount - 1) : undefined;
  const set: Record<string, string> | undefined = scenarioCount === 1 || pick !== undefined ? {} : undefined;
  const bodies: string[] = [];
  const expected: Expected = { plans: 0, byScenario: {} };
  for (let s = 0; s < scenarioCount; s++) {
    const name = `fuzz-${index}-${s}`;
    const writer = new ScenarioWriter(rng, messy, errorRate, outer, s === pick || pick === undefined ? set : undefined);
    const { text, counts } = writer.write(String(s), name);
    bodies.push(text);
    if (pick === undefined || pick === s) {
      expected.plans += writer.points;
      expected.byScenario[name] = counts;
    }
  }
  if (pick !== undefined) options.scenario = `fuzz-${index}-${pick}`;
  if (set !== undefined && Object.keys(set).length > 0) options.set = set;
  if (rng.chance(0.2)) options.requireScenario = scenarioCount > 0 || messy;
  if (rng.chance(0.1)) options.agentCpus = { 'agent-a': 1, 'agent-b': 64 };
  if (messy && rng.chance(0.05)) options.set = { ...options.set, nosuch: '1' };
  if (messy && rng.chance(0.05)) options.scenario = 'nosuch';
  const text = [...header, ...bodies].join('\n');
  const input: FuzzInput = { id, category: 'grammar', path: '/fuzz/main.scn', text, options, twice: index % DETERMINISM_EVERY === 0, note: messy ? `messy ${errorRate}` : 'valid' };
  if (Object.keys(files).length > 0) input.files = files;
  if (!messy) input.expected = expected;
  return input;
}

// ---- (c) mutations of the corpus -----------------------------------------------------

interface CorpusFile {
  name: string;
  path: string;
  text: string;
  files?: Record<string, string>;
}

const builtinLibrary = `// lets and templates for imported.scn
let lan = 100us
template worker { kind process  cpus 1  run "worker --serve" }
`;

/** Valid scenarios for the fallback corpus: LANGUAGE.md's example, then one per feature area. */
const builtinCorpus: Array<{ name: string; text: string }> = [
  {
    name: 'ping-over-wan.scn',
    text: `// Two real hosts, a 10 ms link, a fault in the middle.
scenario "ping-over-wan" {
  seed 42
  duration 30s

  let wan = 10ms

  host client { kind process  cpus 1  run "ping -c 20 -i 0.5 server" }
  host server { kind process  cpus 1 }

  link client -- server { latency wan  bandwidth 100Mbit  loss 0% }

  at 5s  { link client -- server down }
  at 7s  { link client -- server up }

  metric rtt_ms from client match "time=([0-9.]+) ms"
  expect client exit 0
  expect mean(rtt_ms) within 20 +- 0.4
}
`,
  },
  {
    name: 'leaf-spine.scn',
    text: `// A leaf-spine fabric of model hosts: every leaf to every spine.
scenario "leaf-spine" {
  seed 7
  duration 2s
  sync { window 20us }
  let fabric = 20us

  switch spine[1..2] { latency 1us  bandwidth 100Gbit  queue 1MiB }
  switch leaf[1..4] { latency 1us  bandwidth 40Gbit  queue 256 packets }
  link leaf[1..4] -- spine[1..2] { latency fabric  bandwidth 40Gbit/s }

  host client[1..8] { kind model  app onoff { to server  rate 10Mbps  size 1500B  on 100ms  off 50ms } }
  host server { kind model  app sink { port 9 }  app echo { port 7 } }
  host prober { kind model  app request { to server  every 10ms  size 200B  reply 2KB } }
  link client[1..4] -- leaf1 { latency 50us  bandwidth 1Gbit }
  link client[5..8] -- leaf2 { latency 50us  bandwidth 1Gbit }
  link server -- leaf3 { latency 50us  bandwidth 10Gbit  loss 0.01%  jitter 5us  mtu 9000 }
  link prober -- leaf4 { latency 50us  capture }

  at 500ms { link leaf1 -- spine1 down  log "leaf1 loses spine1" }
  at 1s    { link leaf1 -- spine1 up  link server -- leaf3 set { latency 100us  loss 1% } }

  place client* on "agent-a"
  place "server" on "agent-b"
  place prober on "agent-b"
}
`,
  },
  {
    name: 'iperf-pair.scn',
    text: `let wan = 25ms
template server-base { kind process  cpus 2  memory 512MiB  env MODE = "server" }

/* A client and a server behind one switch; the client ends the run. */
scenario "iperf-pair" {
  seed 3
  duration 1min
  until client exits
  param rate = 100Mbit

  host server from server-base { run "iperf3 -s -1" as iperf-server  file "/etc/motd" = "hello\\n" }
  host client { cpus 1  cpu_scale 0.5  cache_ways 4  mem_bandwidth 50%  run "iperf3 -c server -t 10" at 1s  env TARGET = "server" }
  switch tor { latency 2us  bandwidth 10Gbit }
  link server -- tor { latency 10us  bandwidth rate }
  link client -- tor { latency wan  bandwidth rate  queue 128KiB }

  at 5s   { pause server  log "pause the \\"server\\"" }
  at 5.5s { resume server }
  at 20s  { run client "echo done" }

  metric gbps from client match "([0-9.]+) Gbits/sec"
  expect client exit 0
  expect max(gbps) <= 10
  expect count(gbps) > 0
  expect finished within 50s
}
`,
  },
  {
    name: 'sweep-vm.scn',
    text: `scenario "sweep-latency" {
  duration 10s
  sweep lat in [1ms, 10ms, 100ms]
  sweep loss_rate in [0%, 1%]
  host vm1 { kind vm  image "/images/debian.qcow2"  cpus 2  memory 1GiB  backend kvm }
  host vm2 { kind vm  kernel "/boot/vmlinuz"  initrd "/boot/initrd.img"  append "console=ttyS0"  backend qemu }
  link vm1 -- vm2 { latency lat  loss loss_rate }
  at 2s { kill vm2 }
  metric boot from vm[1..2] match "booted in ([0-9]+) ms"
  expect mean(boot) < 5000
}
`,
  },
  {
    name: 'imported.scn',
    text: `import "lib/common.scn"

scenario "imported" {
  duration 5s
  until exit
  host w[1..3] from worker
  host db { run "db --serve" at 10ms }
  link w[1..3] -- db { latency lan }
  expect w[1..3] exit 0
}
`,
  },
];

function builtinFiles(): CorpusFile[] {
  const library = { [resolve('/fuzz/corpus/lib/common.scn')]: builtinLibrary };
  return builtinCorpus.map(({ name, text }) => ({ name: `built-in/${name}`, path: resolve('/fuzz/corpus', name), text, files: library }));
}

function loadCorpus(): { files: CorpusFile[]; source: string; builtin: boolean } {
  const folder = join(repoRoot, 'scenarios');
  let names: string[] = [];
  try {
    // scenarios/*.scn and its subfolders (libraries that the scenarios import)
    names = readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.scn')).sort();
  } catch {
    names = [];
  }
  if (names.length > 0) {
    // imports inside the corpus resolve against the corpus itself, in memory
    const all: Record<string, string> = {};
    for (const name of names) all[resolve(folder, name)] = readFileSync(join(folder, name), 'utf8');
    return { files: names.map((name) => ({ name, path: resolve(folder, name), text: all[resolve(folder, name)]!, files: all })), source: `${names.length} files in scenarios/`, builtin: false };
  }
  return { files: builtinFiles(), source: `built-in corpus of ${builtinCorpus.length} scenarios (scenarios/ has no .scn yet)`, builtin: true };
}

const corpus = loadCorpus();

/** Roughly the lexer's tokens, with whitespace and comments kept, so that a mutation works on real units. */
function roughTokens(text: string): string[] {
  return text.match(/\s+|"(?:[^"\\\n]|\\.)*"?|\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|\d+(?:\.\d+)?[A-Za-z_%µ]*(?:\/s)?|[A-Za-z_][A-Za-z0-9_-]*|\.\.|--|\+-|[<>=!]=|[\s\S]/g) ?? [];
}

function mutate(rng: Rng, text: string, other: string): string {
  let tokens = roughTokens(text);
  const operations = rng.chance(0.7) ? rng.int(1, 3) : rng.int(4, 12);
  for (let n = 0; n < operations; n++) {
    const at = rng.int(0, Math.max(0, tokens.length - 1));
    switch (rng.int(0, 12)) {
      case 0: // delete a token
        tokens.splice(at, 1);
        break;
      case 1: // duplicate a token (or a run of them)
        tokens.splice(at, 0, ...tokens.slice(at, at + rng.int(1, 8)));
        break;
      case 2: { // swap two tokens (none to swap in an empty file: swapping would plant undefined)
        if (tokens.length === 0) break;
        const j = rng.int(0, Math.max(0, tokens.length - 1));
        [tokens[at], tokens[j]] = [tokens[j]!, tokens[at]!];
        break;
      }
      case 3: // insert a vocabulary token
        tokens.splice(at, 0, ' ', soupToken(rng), ' ');
        break;
      case 4: // replace a token
        tokens[at] = soupToken(rng);
        break;
      case 5: { // delete a character
        const joined = tokens.join('');
        const i = rng.int(0, joined.length);
        tokens = roughTokens(joined.slice(0, i) + joined.slice(i + 1));
        break;
      }
      case 6: { // insert a character
        const joined = tokens.join('');
        const i = rng.int(0, joined.length);
        const ch = rng.pick(['{', '}', '"', '[', ']', '-', '.', '/', '*', '\\', '\n', '0', 'x', '\0', 'é', '\r']);
        tokens = roughTokens(joined.slice(0, i) + ch + joined.slice(i));
        break;
      }
      case 7: { // flip a character's case or digit
        const joined = tokens.join('');
        const i = rng.int(0, Math.max(0, joined.length - 1));
        const c = joined[i] ?? '';
        const flipped = /\d/.test(c) ? String((Number(c) + rng.int(1, 9)) % 10) : c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
        tokens = roughTokens(joined.slice(0, i) + flipped + joined.slice(i + 1));
        break;
      }
      case 8: // truncate
        tokens = tokens.slice(0, at);
        break;
      case 9: { // duplicate or delete a line
        const lines = tokens.join('').split('\n');
        const i = rng.int(0, Math.max(0, lines.length - 1));
        if (rng.chance(0.5)) lines.splice(i, 0, lines[i] ?? '');
        else lines.splice(i, 1);
        tokens = roughTokens(lines.join('\n'));
        break;
      }
      case 10: { // splice in a piece of another file
        const piece = roughTokens(other);
        const from = rng.int(0, Math.max(0, piece.length - 1));
        tokens.splice(at, 0, ...piece.slice(from, from + rng.int(1, 40)));
        break;
      }
      case 11: { // change a number's magnitude or unit
        const numbers = tokens.map((t, i) => [t, i] as const).filter(([t]) => /^\d/.test(t));
        if (numbers.length > 0) {
          const [, i] = rng.pick(numbers);
          tokens[i] = soupNumber(rng);
        }
        break;
      }
      default: { // rename an identifier everywhere or once
        const words = tokens.filter((t) => /^[A-Za-z_]/.test(t));
        if (words.length > 0) {
          const word = rng.pick(words);
          const replacement = rng.pick([word + 'x', word.slice(1) || 'q', rng.pick(keywordWords), identifier(rng, rng.int(1, 8))]);
          const everywhere = rng.chance(0.5);
          let done = false;
          tokens = tokens.map((t) => (t === word && (everywhere || !done) ? ((done = true), replacement) : t));
        }
      }
    }
  }
  return tokens.join('');
}

function mutationInput(index: number): FuzzInput {
  const id = `mutation#${index}`;
  const rng = streamOf(id);
  const base = rng.pick(corpus.files);
  const other = rng.pick(corpus.files);
  const text = mutate(rng, base.text, other.text);
  const input: FuzzInput = { id, category: 'mutation', path: base.path, text, options: {}, twice: index % DETERMINISM_EVERY === 0, note: `of ${base.name}` };
  if (base.files !== undefined) input.files = base.files;
  return input;
}

// ---- (d) pathological inputs -------------------------------------------------------------

const lines = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i)).join('\n');
const values = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1)).join(', ');

function importGraph(count: number, edges: (i: number) => number[], body: (i: number) => string = () => ''): { files: Record<string, string>; text: string } {
  const files: Record<string, string> = {};
  for (let i = 1; i < count; i++) files[resolve(`/fuzz/imports/f${i}.scn`)] = edges(i).map((j) => `import "f${j}.scn"\n`).join('') + body(i);
  return { files, text: edges(0).map((j) => `import "f${j}.scn"\n`).join('') + body(0) + '\nscenario "imports" { duration 1s host a }\n' };
}

function pathologicalInputs(): FuzzInput[] {
  const make = (name: string, text: string, extra: Partial<FuzzInput> = {}): FuzzInput => ({ id: `pathological#${name}`, category: 'pathological', path: '/fuzz/imports/f0.scn', text, options: {}, ...extra });
  const id1e6 = 'x'.repeat(1_000_000);
  const chain = importGraph(200, (i) => (i < 199 ? [i + 1] : []), (i) => `let c${i} = ${i}ms\n`);
  const cycle = importGraph(50, (i) => [(i + 1) % 50]);
  const diamond = importGraph(60, (i) => [i + 1, i + 2].filter((j) => j < 60), (i) => `let d${i} = 1ms\ntemplate t${i} { cpus 1 }\n`);
  const wide = importGraph(2_000, (i) => (i === 0 ? Array.from({ length: 1_999 }, (_, j) => j + 1) : []), (i) => (i === 0 ? '' : `let w${i} = ${i}us\n`));
  const self = { [resolve('/fuzz/imports/f0.scn')]: 'import "f0.scn"\n' };
  return [
    make('curly-200k', '{'.repeat(200_000)),
    make('curly-200k-in-scenario', 'scenario "p" {' + '{'.repeat(200_000)),
    make('curly-200k-in-host', 'scenario "p" { duration 1s host a ' + '{'.repeat(200_000)),
    make('close-curly-200k', '}'.repeat(200_000)),
    make('brackets-200k', 'scenario "p" { duration 1s host h' + '['.repeat(200_000)),
    make('parens-200k', 'scenario "p" { expect mean' + '('.repeat(200_000)),
    make('identifier-1e6', id1e6),
    make('identifier-1e6-in-scenario', `scenario "p" { duration 1s host ${id1e6} host b link ${'y'.repeat(1_000_000)} -- b { latency 1ms } expect ${id1e6} exit 0 }`),
    make('string-1e6', `scenario "p" { duration 1s host a { run "${'y'.repeat(1_000_000)}" } }`),
    make('number-1e6-digits', `scenario "p" { duration ${'9'.repeat(1_000_000)}s }`),
    make('huge-range', 'scenario "p" { duration 1s host h[1..999999999] }'),
    make('huge-range-selector', 'scenario "p" { duration 1s host s link h[1..999999999] -- s { latency 1ms } }'),
    make('range-beyond-safe-integers', `scenario "p" { duration 1s host h[${'9'.repeat(30)}..${'9'.repeat(31)}] }`),
    make('hosts-over-address-space', 'scenario "p" { duration 1s host a[1..100000] host b[1..100000] }'),
    make('full-mesh-2000x2000', 'scenario "p" { duration 1s host a[1..2000] host b[1..2000] link a[1..2000] -- b[1..2000] { latency 1ms } }'),
    make('mesh-300x300', 'scenario "p" { duration 1s host a[1..300] host b[1..300] link a[1..300] -- b[1..300] { latency 1ms } }'),
    make('sweep-product-huge', `scenario "p" { duration 1s ${['a', 'b', 'c', 'd', 'e'].map((n) => `sweep ${n} in [${values(20)}]`).join(' ')} host h }`),
    make('sweep-10001-values', `scenario "p" { duration 1s sweep a in [${values(10_001)}] host h }`),
    make('sweep-at-the-limit', `scenario "p" { duration 1s sweep a in [${values(100)}] sweep b in [${values(100)}] host h }`),
    make('import-chain-200', chain.text, { files: chain.files }),
    make('import-cycle-50', cycle.text, { files: cycle.files }),
    make('import-diamond-60', diamond.text, { files: diamond.files }),
    make('import-wide-2000', wide.text, { files: wide.files }),
    make('import-self', 'import "f0.scn"\n', { files: self }),
    make('import-missing-and-odd', 'import "nope.scn"\nimport "/"\nimport ""\nimport "../../../../etc/none"\nimport "\\u0000"\n', { files: {} }),
    make('over-size-limit', 'a'.repeat(32 * 1024 * 1024 + 1)),
    make('million-newlines', '\n'.repeat(1_000_000) + 'x'),
    make('carriage-returns', '\r'.repeat(100_000) + 'x\r"open'),
    make('unterminated-comment-1e6', '/*' + 'a'.repeat(1_000_000)),
    make('unterminated-strings-50k', '"\n'.repeat(50_000)),
    make('unknown-items-50k', 'zz '.repeat(50_000)),
    make('let-cycle-1000', `scenario "p" { duration 1s host a host b ${lines(1000, (i) => `let l${i} = l${(i + 1) % 1000}`)} link a -- b { latency l0 } }`),
    make('control-characters', Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\x7f\ufeff\ud800scenario "\x00" { host \x01 }'),
    make('hosts-5k-links-5k', `scenario "p" { duration 1s switch s ${lines(5_000, (i) => `host h${i}`)}\n${lines(5_000, (i) => `link h${i} -- s { latency 1ms }`)} }`),
  ];
}

// ---- the regression corpus ------------------------------------------------------------------

/** Inputs that threw or hung when found (seed-independent). Each must pass like any other input. */
function regressionInputs(): FuzzInput[] {
  const make = (name: string, note: string, text: string): FuzzInput => ({ id: `regression#${name}`, category: 'regression', path: '/fuzz/regression.scn', text, options: {}, note });
  return [
    make('edit-distance-long-names', 'diagnostics.ts editDistance() is O(n·m) with an array push per cell when two long names differ by a letter (did-you-mean)',
      `scenario "r" { duration 1s host ${'x'.repeat(20_000)} host a link ${'x'.repeat(20_000)}y -- a { latency 1ms } }`),
    make('place-glob-backtracking', 'check.ts placement(): each * becomes .* in a RegExp: catastrophic backtracking',
      'scenario "r" { duration 1s host aaaaaaaaaaaaaaaaaaaaaaaaa place "**************x" on "a" }'),
    make('let-chain-stack', 'check.ts resolve() recurses once per let in a chain: RangeError',
      `scenario "r" { duration 1s host a host b\n${lines(15_000, (i) => `let x${i} = x${i + 1}`)}\nlet x15000 = 1ms\nlink a -- b { latency x0 } }`),
    make('lex-errors-spread', 'load.ts visit(): diagnostics.push(...parsed.diagnostics) with 150k diagnostics: RangeError (fixed in 65c7ee7)',
      '# '.repeat(150_000)),
    make('checker-diagnostics-spread', 'compile.ts compileScenario(): diagnostics.push(...checker.diagnostics) with 140k diagnostics: RangeError (fixed in 65c7ee7)',
      'scenario "r" { duration 1s host h[1..70000] { app onoff { } } }'),
    make('template-chain-cubic', 'check.ts templateItems() is re-walked from every template with `from`, copying `seen` at each step: O(n^3)',
      `scenario "r" { duration 1s\n${lines(1_500, (i) => `template t${i} from t${i + 1} { cpus 1 }`)}\ntemplate t1500 { cpus 2 }\nhost a from t0 }`),
    make('sweep-points-times-hosts', 'compile.ts: 10,000 sweep points each check and keep a full plan of 2,000 hosts (LS3021 since 69d16e6)',
      `scenario "r" { duration 1s sweep a in [${values(100)}] sweep b in [${values(100)}] host h[1..2000] }`),
    make('unknown-endpoints-many-hosts', 'check.ts expand(): each unknown endpoint copies every host name and scans 20k of them for a suggestion',
      `scenario "r" { duration 1s host h[1..130000]\n${lines(3_000, (i) => `link x${i} -- y { latency 1ms }`)} }`),
    make('unknown-names-big-scope', 'check.ts unknownName(): each unknown name scans up to 20k lets for a suggestion',
      `scenario "r" { duration 1s host a host b\n${lines(30_000, (i) => `let l${i} = 1ms`)}\n${lines(1_000, (i) => `at zz${i} { }`)} }`),
    make('place-times-hosts', 'check.ts placement(): every place line tests its pattern against every host',
      `scenario "r" { duration 1s host h[1..130000]\n${lines(10_000, (i) => `place "h${i + 1}" on "a"`)} }`),
    make('expect-line-text', 'check.ts lineText() split the whole source for every expectation: quadratic (fixed in 69d16e6)',
      `scenario "r" { duration 1s host h { run "x" }\n${lines(30_000, () => 'expect h exit 0')} }`),
    make('commands-of-timeline', 'check.ts commandsOf() filters the whole timeline for each host of an expect: quadratic',
      `scenario "r" { duration 1s host h[1..100000] { run "x" }\nat 1ms {\n${lines(20_000, (i) => `run h${i + 1} "y"`)}\n}\nexpect h[1..100000] exit 0 }`),
    make('number-literal-infinity', 'check.ts quantity(): a literal of 400 digits reads as Infinity, and the plan held it (not JSON-serialisable); LS2004 now',
      `scenario "r" { duration 1s host a { run "x" } metric m from a match "(1)" expect mean(m) within ${'9'.repeat(400)}.5 +- 0.4 expect mean(m) < ${'9'.repeat(400)} }`),
  ];
}

// ---- reporting -----------------------------------------------------------------------------

interface Failure {
  input: FuzzInput;
  outcome: Outcome;
  problems: string[];
}

const failureDir = join(tmpdir(), 'livestack-fuzz');

function describeFailure(f: Failure): string {
  let saved = '';
  try {
    mkdirSync(failureDir, { recursive: true });
    const file = join(failureDir, `${SEED}-${f.input.id.replace(/[^A-Za-z0-9_-]/g, '_')}.scn`);
    writeFileSync(file, f.input.text);
    saved = `\n  input saved to ${file}`;
  } catch {
    saved = '';
  }
  const shown = f.input.text.length > 600 ? JSON.stringify(f.input.text.slice(0, 600)) + ` … (${f.input.text.length} chars)` : JSON.stringify(f.input.text);
  const extra = [
    f.input.note === undefined ? '' : ` (${f.input.note})`,
    Object.keys(f.input.options).length > 0 ? `\n  options: ${JSON.stringify(f.input.options)}` : '',
    f.input.files === undefined ? '' : `\n  with ${Object.keys(f.input.files).length} in-memory files`,
  ].join('');
  return `${f.input.id}${extra} — ${f.outcome.ms.toFixed(0)} ms\n  ${f.problems.join('\n  ')}\n  input: ${shown}${saved}`;
}

function* limited(make: (i: number) => FuzzInput, count: number): Generator<FuzzInput> {
  for (let i = 0; i < count; i++) yield make(i);
}

function* everyInput(): Generator<FuzzInput> {
  // interleaved, so that a slow category does not end up alone on one worker
  const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));
  const soup = limited(soupInput, scaled(COUNTS.soup));
  const grammar = limited(grammarInput, scaled(COUNTS.grammar));
  const mutation = limited(mutationInput, scaled(COUNTS.mutation));
  // the heavy pathological inputs are spread out, so that two of them rarely share the CPU
  const pathological = pathologicalInputs();
  for (let round = 0; ; round++) {
    let any = false;
    for (const source of [soup, grammar, mutation]) {
      const next = source.next();
      if (!next.done) {
        any = true;
        yield next.value;
      }
    }
    if ((round % 100 === 0 || !any) && pathological.length > 0) {
      any = true;
      yield pathological.shift()!;
    }
    if (!any) return;
  }
}

function* onlyRequested(inputs: Iterable<FuzzInput>): Generator<FuzzInput> {
  if (DUMP !== undefined) mkdirSync(DUMP, { recursive: true });
  for (const input of inputs) {
    if (ONLY !== undefined && input.id !== ONLY) continue;
    if (DUMP !== undefined && input.text.length < 1e6) writeFileSync(join(DUMP, `${input.id.replace(/[^A-Za-z0-9_-]/g, '_')}.scn`), input.text);
    yield input;
  }
}

const workerCount = Math.max(1, Math.min(2, availableParallelism()));

test.serial('fuzz: compileText never throws or hangs, and keeps the diagnostic contract', async (t) => {
  t.timeout(10 * 60_000);
  const rerun = `re-run with FUZZ_SEED=${SEED} npx ava test/dsl/fuzz.test.ts`;
  t.log(`seed ${SEED} (${rerun}); ${workerCount} workers; mutation corpus: ${corpus.source}`);
  const started = performance.now();
  const perCategory = new Map<Category, { inputs: number; ok: number; diagnostics: number; ms: number }>();
  const codes = new Map<string, number>();
  let slowest: { id: string; ms: number } = { id: '', ms: 0 };
  let validChecked = 0;
  const pathological: string[] = [];
  const failures: Failure[] = [];
  await runAll(onlyRequested(everyInput()), workerCount, (input, outcome) => {
    const stats = perCategory.get(input.category) ?? { inputs: 0, ok: 0, diagnostics: 0, ms: 0 };
    stats.inputs++;
    stats.ms += outcome.ms;
    if (outcome.ok) stats.ok++;
    stats.diagnostics += outcome.diagnostics?.length ?? 0;
    perCategory.set(input.category, stats);
    for (const d of outcome.diagnostics ?? []) codes.set(String(d.code), (codes.get(String(d.code)) ?? 0) + 1);
    if (outcome.ms > slowest.ms) slowest = { id: input.id, ms: outcome.ms };
    if (input.expected !== undefined) validChecked++;
    if (input.category === 'pathological') pathological.push(`${input.id.slice('pathological#'.length)} ${outcome.timedOut ? `>${INPUT_LIMIT_MS}` : outcome.ms.toFixed(0)}ms`);
    const problems = check(input, outcome);
    if (problems.length > 0) failures.push({ input, outcome, problems });
  });
  const totalMs = performance.now() - started;
  const total = [...perCategory.values()].reduce((n, s) => n + s.inputs, 0);
  for (const [category, s] of perCategory) {
    t.log(`${category.padEnd(12)} ${String(s.inputs).padStart(6)} inputs  ${String(s.ok).padStart(6)} ok  ${String(s.diagnostics).padStart(8)} diagnostics  ${(s.ms / 1000).toFixed(1).padStart(6)} s compiling`);
  }
  t.log(`total ${total} inputs in ${(totalMs / 1000).toFixed(1)} s; slowest ${slowest.id} ${slowest.ms.toFixed(0)} ms; ${validChecked} valid scenarios checked against expected counts`);
  t.log(`pathological: ${pathological.join(', ')}`);
  t.log(`diagnostic codes seen: ${[...codes].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, n]) => `${c}×${n}`).join(' ')}`);
  if (failures.length > 0) {
    const shown = failures.slice(0, 10).map(describeFailure).join('\n\n');
    t.fail(`${failures.length} of ${total} inputs failed (seed ${SEED}; ${rerun}; one input: FUZZ_ONLY=<id>)\n\n${shown}${failures.length > 10 ? `\n\n… and ${failures.length - 10} more` : ''}`);
    return;
  }
  if (ONLY === undefined) {
    t.true(total >= 10_000 * Math.min(1, SCALE), `only ${total} inputs ran`);
    // the grammar generator must reach the checker's success path, or it tests little
    t.true((perCategory.get('grammar')?.ok ?? 0) >= (perCategory.get('grammar')?.inputs ?? 0) * 0.3, 'too few generated scenarios compile');
  }
  t.pass();
});

test.serial('fuzz: the built-in corpus compiles cleanly (and scenarios/ is reported)', async (t) => {
  // The built-in corpus is LANGUAGE.md's example and one scenario per feature area: each must compile.
  // scenarios/ belongs to others and may hold deliberate mistakes: its results are only logged.
  const files = corpus.builtin ? corpus.files : [...builtinFiles(), ...corpus.files];
  const inputs: FuzzInput[] = files.map((f) => ({ id: `corpus#${f.name}`, category: 'mutation', path: f.path, text: f.text, options: {}, ...(f.files === undefined ? {} : { files: f.files }) }));
  const rejected: string[] = [];
  await runAll(inputs, 1, (input, outcome) => {
    const problems = check(input, outcome);
    const errors = (outcome.diagnostics ?? []).filter((d) => d.severity === 'error').map((d) => `${String(d.code)} ${d.span?.line as number}:${d.span?.col as number} ${String(d.message)}`);
    const builtin = input.id.startsWith('corpus#built-in/');
    t.log(`${input.id}: ${problems.length > 0 ? 'FAIL' : outcome.ok ? 'ok' : `not ok (${errors.length} errors)`}`);
    if (problems.length > 0) rejected.push(describeFailure({ input, outcome, problems }));
    else if (!outcome.ok && builtin) rejected.push(`${input.id}: ${errors.join('; ')}`);
  });
  t.deepEqual(rejected, [], 'every built-in corpus file is a valid scenario, and no corpus file breaks the contract');
});

test.serial('fuzz: regression corpus (inputs that once threw or hung)', async (t) => {
  t.timeout(5 * 60_000);
  const failures: Failure[] = [];
  const started = performance.now();
  // two workers: most of these ran into the time limit when they were found (a worker that
  // times out is replaced, at the cost of loading the compiler again), and more workers
  // than cores would push the heavy ones that now pass over the limit
  await runAll(onlyRequested(regressionInputs()), workerCount, (input, outcome) => {
    const problems = check(input, outcome);
    t.log(`${input.id.padEnd(45)} ${problems.length === 0 ? 'pass' : 'FAIL'} ${outcome.timedOut ? `> ${INPUT_LIMIT_MS}` : outcome.ms.toFixed(0)} ms`);
    if (problems.length > 0) failures.push({ input, outcome, problems });
  });
  t.log(`regression corpus: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (failures.length > 0) t.fail(`${failures.length} regression inputs fail\n\n${failures.map(describeFailure).join('\n\n')}`);
  else t.pass();
});
