// The checker: resolves names, expands ranges, templates, lets, params and a
// sweep point, checks units and every rule of LANGUAGE.md, and builds the
// checked scenario as a Plan. It reports problems as diagnostics and never
// throws for user input; an `assert` failure here is a bug in LiveStack.
import type * as A from './ast.ts';
import { Codes, closest, diagnostic, didYouMean, type Code, type Diagnostic, type Severity, type Span } from './diagnostics.ts';
import { MAX_HOSTS, MAX_LINKS, MAX_RANGE_SIZE, MAX_TIME_NS } from './limits.ts';
import type { Program } from './load.ts';
import {
  PLAN_VERSION, hostAddress,
  type Aggregate, type HostKind, type Plan, type PlanAction, type PlanApp, type PlanCommand, type PlanExpectation,
  type PlanHost, type PlanLink, type PlanVm, type PlanLinkSettings, type PlanMetric, type PlanQueue, type PlanSwitch, type PlanUntil,
} from './plan.ts';
import { lookupUnit, unitExamples, unitHints, unitNames, type UnitKind } from './units.ts';

/** One sweep point's values and the --set overrides, by name. */
export type Bindings = ReadonlyMap<string, A.Value>;

export interface CheckOptions {
  /** cores of each agent, for the `place` capacity warning */
  agentCpus?: Readonly<Record<string, number>>;
  sweep?: { index: number; count: number; names: string[] };
}

interface Binding {
  value: A.Value;
  /** where the value's own names resolve: the scope it was defined in (lexical) */
  scope: Map<string, Binding>;
  span: Span;
  origin: 'let' | 'param' | 'sweep';
  resolving: boolean;
}

interface Resolved {
  value: A.Value;
  /** the name it was reached through, for messages: `wan (= 10ms)` */
  via?: string;
}

type Settings = Map<string, A.Setting>;

const aggregates: Aggregate[] = ['mean', 'min', 'max', 'p50', 'p90', 'p99', 'count', 'last'];
const synonyms: Record<string, Aggregate> = { avg: 'mean', average: 'mean', median: 'p50', minimum: 'min', maximum: 'max', n: 'count', final: 'last' };
const hostItemWords = ['kind', 'cpus', 'cpu_scale', 'memory', 'cache_ways', 'mem_bandwidth', 'run', 'env', 'file', 'image', 'kernel', 'initrd', 'append', 'backend', 'app'];
const scenarioWords = ['seed', 'duration', 'until', 'sync', 'param', 'sweep', 'let', 'template', 'host', 'switch', 'link', 'at', 'metric', 'expect', 'place'];
const actionWords = ['link', 'kill', 'pause', 'resume', 'run', 'log'];
const linkWords = ['latency', 'bandwidth', 'loss', 'jitter', 'queue', 'mtu', 'capture'];
const switchWords = ['latency', 'bandwidth', 'queue'];
const appWords: Record<PlanApp['kind'], string[]> = {
  onoff: ['to', 'port', 'rate', 'size', 'on', 'off', 'arrivals'],
  echo: ['port'],
  request: ['to', 'port', 'every', 'size', 'reply'],
  sink: ['port'],
};
const MAX_CPUS = 4096;

/** A host declaration's settings, resolved once and copied to every host of its range. */
interface HostConfig extends Pick<PlanHost, 'kind' | 'cpus' | 'cpuScale' | 'memoryBytes' | 'cacheWays' | 'memBandwidthPercent' | 'commands'> {
  env: Map<string, string>;
  files: Map<string, string>;
  vm: PlanVm;
  apps: Array<{ app: A.HostItem & { type: 'app' }; settings: Settings }>;
}

interface NodeInfo {
  kind: 'host' | 'switch';
  span: Span;
  /** the range declaration it came from, for overlap messages */
  range?: string;
  host?: PlanHost;
  config?: HostConfig;
}

export class ScenarioChecker {
  readonly diagnostics: Diagnostic[] = [];
  private scope = new Map<string, Binding>();
  private readonly templates = new Map<string, A.Template>();
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly rangeNames: string[] = [];
  private readonly links = new Map<string, PlanLink>();
  private readonly hosts: PlanHost[] = [];
  private readonly switches: PlanSwitch[] = [];
  private durationNs: number | null = null;

  constructor(
    private readonly program: Program,
    private readonly scenario: A.Scenario,
    private readonly bindings: Bindings,
    private readonly options: CheckOptions = {},
  ) {}

  // ---- diagnostics ---------------------------------------------------------

  /** "did you mean" costs a scan of the candidates: a budget keeps a file with thousands of
   *  unknown names from taking minutes (the problems are all reported; only the hints stop). */
  private suggestionsLeft = 50;

  private suggest(word: string, candidates: Iterable<string> | (() => Iterable<string>)): string | undefined {
    if (this.suggestionsLeft <= 0) return undefined;
    this.suggestionsLeft--;
    return didYouMean(word, typeof candidates === 'function' ? candidates() : candidates);
  }

  private report(code: Code, span: Span, message: string, hint?: string, severity: Severity = 'error'): void {
    this.diagnostics.push(diagnostic(code, span, message, hint, severity));
  }

  private source(span: Span): string {
    return `${span.file}:${span.line}`;
  }

  private spanText(span: Span): string {
    return this.program.sources.get(span.file)?.slice(span.offset, span.endOffset) ?? '';
  }

  private readonly lines = new Map<string, string[]>();

  private lineText(span: Span): string {
    let lines = this.lines.get(span.file);
    if (lines === undefined) {
      lines = this.program.sources.get(span.file)?.split('\n') ?? [];
      this.lines.set(span.file, lines);
    }
    return (lines[span.line - 1] ?? '').trim();
  }

  // ---- values ----------------------------------------------------------------

  /** Follows let/param/sweep names to a value, in the scope each was defined in. Iterative: a chain of
   *  100k lets must not overflow the stack. */
  private resolve(value: A.Value, scope: Map<string, Binding> = this.scope): Resolved {
    if (value.type !== 'name') return { value };
    let current: A.Value = value;
    let currentScope = scope;
    const seen = new Set<Binding>();
    for (;;) {
      if (current.type !== 'name') return { value: current, via: value.name };
      const binding = currentScope.get(current.name);
      if (binding === undefined) return current === value ? { value } : { value: current, via: value.name };
      if (seen.has(binding) || binding.resolving) {
        // reported where the cycle closes: the name inside the let that leads back
        this.report(Codes.cycle, current.span, `'${current.name}' is defined in terms of itself`, 'break the cycle between these lets');
        return { value: { type: 'missing', span: value.span } };
      }
      seen.add(binding);
      current = binding.value;
      currentScope = binding.scope;
    }
  }

  private shown(resolved: Resolved): string {
    const v = resolved.value;
    const text = v.type === 'number' ? v.text : v.type === 'string' ? JSON.stringify(v.value) : v.type === 'name' ? v.name : '(missing)';
    return resolved.via === undefined ? text : `${resolved.via} (= ${text})`;
  }

  private unknownName(value: A.Value & { type: 'name' }, what: string): void {
    this.report(Codes.unknownName, value.span, `unknown name '${value.name}' for ${what}`, this.suggest(value.name, this.scope.keys()) ?? 'define it with let or param');
  }

  /** A number with a unit of `kind` (or a plain number when kind is 'plain'), converted to base units. */
  private quantity(value: A.Value, kind: UnitKind | 'plain', what: string): number | undefined {
    const resolved = this.resolve(value);
    const v = resolved.value;
    if (v.type === 'missing') return undefined; // the parser has reported it
    if (v.type === 'name') {
      this.unknownName(v, what);
      return undefined;
    }
    if (v.type === 'string') {
      this.report(Codes.wrongValueType, value.span, `${what} needs ${unitExamples[kind]}, not a string`);
      return undefined;
    }
    if (!Number.isFinite(v.value)) {
      // a literal of hundreds of digits reads as Infinity, which no plan (JSON) can hold
      this.report(Codes.outOfRange, value.span, `${what} is too large to be a number`, 'write it with fewer digits');
      return undefined;
    }
    if (v.unit === '') {
      if (kind === 'plain') return v.value;
      this.report(Codes.missingUnit, value.span, `${what} needs a ${kind} unit, e.g. ${example(kind, v.text)}`, `units: ${unitHints[kind]}`);
      return undefined;
    }
    const unit = lookupUnit(v.unit);
    if (unit === undefined) {
      this.report(Codes.unknownUnit, value.span, `unknown unit '${v.unit}' in ${this.shown(resolved)}`, this.suggest(v.unit, unitNames) ?? `units: ${kind === 'plain' ? 'none' : unitHints[kind]}`);
      return undefined;
    }
    if (unit.kind !== kind) {
      this.report(
        Codes.wrongUnitKind,
        value.span,
        `${what} needs ${unitExamples[kind]}, but ${this.shown(resolved)} is ${unitExamples[unit.kind].split(',')[0]}`,
      );
      return undefined;
    }
    return v.value * unit.factor;
  }

  private duration(value: A.Value, what: string, positive: boolean): number | undefined {
    const ns = this.quantity(value, 'duration', what);
    if (ns === undefined) return undefined;
    const rounded = Math.round(ns);
    if (positive ? rounded <= 0 : rounded < 0) {
      this.report(Codes.outOfRange, value.span, `${what} must be ${positive ? 'greater than 0' : '0 or more'}, not ${this.shown(this.resolve(value))}`);
      return undefined;
    }
    if (rounded > MAX_TIME_NS) {
      this.report(Codes.outOfRange, value.span, `${what} is beyond the ~104 days that virtual time can count in ns`);
      return undefined;
    }
    return rounded;
  }

  private bounded(value: A.Value, kind: UnitKind | 'plain', what: string, min: number, max: number, integer: boolean, minExclusive = false): number | undefined {
    const n = this.quantity(value, kind, what);
    if (n === undefined) return undefined;
    // unit factors make float noise (1.1 × 1000 = 1100.0000000000002): snap it, keep real fractions
    const result = (kind === 'size' || kind === 'rate') && Math.abs(n - Math.round(n)) < 1e-6 ? Math.round(n) : n;
    if (integer && !Number.isInteger(result)) {
      this.report(Codes.notInteger, value.span, `${what} must be a whole number, not ${this.shown(this.resolve(value))}`);
      return undefined;
    }
    if ((minExclusive ? result <= min : result < min) || result > max) {
      const range = `${minExclusive ? 'greater than' : 'at least'} ${min}${max < Number.MAX_SAFE_INTEGER ? ` and at most ${max}` : ''}`;
      this.report(Codes.outOfRange, value.span, `${what} must be ${range}, not ${this.shown(this.resolve(value))}`);
      return undefined;
    }
    return result;
  }

  private text(value: A.Value, what: string): string | undefined {
    const resolved = this.resolve(value);
    const v = resolved.value;
    if (v.type === 'string') return v.value;
    if (v.type === 'missing') return undefined;
    if (v.type === 'name' && resolved.via === undefined && !this.scope.has(v.name)) {
      this.report(Codes.wrongValueType, value.span, `${what} needs a "string", not the name '${v.name}'`, `write "${v.name}" in quotes, or define it with let`);
      return undefined;
    }
    this.report(Codes.wrongValueType, value.span, `${what} needs a "string", not ${this.shown(resolved)}`);
    return undefined;
  }

  private word<W extends string>(value: A.Value, what: string, options: readonly W[]): W | undefined {
    const resolved = this.resolve(value);
    const v = resolved.value;
    if (v.type === 'missing') return undefined;
    const word = v.type === 'name' ? v.name : v.type === 'string' ? v.value : v.text;
    if ((options as readonly string[]).includes(word)) return word as W;
    this.report(Codes.unknownEnum, value.span, `${what} must be one of ${options.join(', ')}, not '${word}'`, this.suggest(word, options));
    return undefined;
  }

  /** A plain number to compare metrics with: a unit here is an error (metrics are plain numbers). */
  private metricNumber(value: A.Value): number | undefined {
    const resolved = this.resolve(value);
    const v = resolved.value;
    if (v.type === 'number' && v.unit !== '') {
      this.report(
        Codes.metricWithUnit,
        value.span,
        `a metric is a plain number; it cannot be compared with ${this.shown(resolved)}`,
        `write the number in the unit the program prints, e.g. ${v.value}`,
      );
      return undefined;
    }
    return this.quantity(value, 'plain', 'the expected value');
  }

  // ---- scope -----------------------------------------------------------------

  private importedFiles(): A.SourceFile[] {
    // depth-first, imports before importers, each file once
    const order: A.SourceFile[] = [];
    const seen = new Set<string>();
    const visit = (path: string) => {
      if (seen.has(path)) return;
      seen.add(path);
      for (const child of this.program.importsOf.get(path) ?? []) visit(child);
      const file = this.program.files.get(path);
      if (file !== undefined) order.push(file);
    };
    visit(this.program.main.path);
    return order;
  }

  private buildScope(): void {
    // each file sees its imports' lets (a later import shadows an earlier one) and then its own
    const fileScopes = new Map<string, Map<string, Binding>>();
    for (const file of this.importedFiles()) {
      const scope = new Map<string, Binding>();
      for (const child of this.program.importsOf.get(file.path) ?? []) for (const [k, b] of fileScopes.get(child) ?? []) scope.set(k, b);
      const local = new Set<string>();
      for (const item of file.lets) {
        if (item.name.name === '') continue;
        if (local.has(item.name.name)) this.report(Codes.duplicateName, item.name.span, `let '${item.name.name}' is defined twice in this file`);
        local.add(item.name.name);
        scope.set(item.name.name, { value: item.value, scope, span: item.name.span, origin: 'let', resolving: false });
      }
      fileScopes.set(file.path, scope);
      const localTemplates = new Set<string>();
      for (const item of file.templates) {
        if (localTemplates.has(item.name.name)) this.report(Codes.duplicateName, item.name.span, `template '${item.name.name}' is defined twice in this file`);
        localTemplates.add(item.name.name);
        this.templates.set(item.name.name, item);
      }
    }
    this.scope = new Map(fileScopes.get(this.program.main.path) ?? []);
    for (const template of this.templates.values()) if (template.from !== undefined) this.templateItems(template.name);
    const scenarioNames = new Map<string, Span>();
    const declare = (name: A.Name, what: string) => {
      const previous = scenarioNames.get(name.name);
      if (previous !== undefined) {
        this.report(Codes.duplicateName, name.span, `${what} '${name.name}' is already defined at line ${previous.line}`, 'rename one of them');
        return false;
      }
      scenarioNames.set(name.name, name.span);
      return true;
    };
    const scenarioTemplates = new Set<string>();
    for (const item of this.scenario.items) {
      if (item.type === 'let' && item.name.name !== '' && declare(item.name, 'let')) {
        this.scope.set(item.name.name, { value: item.value, scope: this.scope, span: item.name.span, origin: 'let', resolving: false });
      } else if (item.type === 'param' && item.name.name !== '' && declare(item.name, 'param')) {
        const value = this.bindings.get(item.name.name) ?? item.value;
        this.scope.set(item.name.name, { value, scope: this.scope, span: item.name.span, origin: 'param', resolving: false });
      } else if (item.type === 'sweep' && item.name.name !== '' && declare(item.name, 'sweep')) {
        const value = this.bindings.get(item.name.name) ?? item.values[0] ?? { type: 'missing', span: item.span };
        this.scope.set(item.name.name, { value, scope: this.scope, span: item.name.span, origin: 'sweep', resolving: false });
      } else if (item.type === 'template' && item.name.name !== '') {
        if (scenarioTemplates.has(item.name.name)) this.report(Codes.duplicateName, item.name.span, `template '${item.name.name}' is defined twice in this scenario`);
        scenarioTemplates.add(item.name.name);
        this.templates.set(item.name.name, item);
      }
    }
    // unknown bases and cycles are reported even for templates no host uses (scenario templates may
    // shadow file templates: forget what was worked out before they were added)
    this.layersOf.clear();
    for (const item of this.scenario.items) if (item.type === 'template' && item.from !== undefined) this.templateItems(item.name);
  }

  /** The items of a template chain, base first; `from` cycles are reported once. */
  private templateItems(name: A.Name): A.HostItem[] {
    return this.templateLayers(name).flat();
  }

  /** The item lists of a template chain, base first, one list per template. */
  private readonly layersOf = new Map<string, A.HostItem[][]>();

  /** The item lists of a template chain, base first, one list per template (memoised: long chains stay linear). */
  private templateLayers(name: A.Name): A.HostItem[][] {
    const known = this.layersOf.get(name.name);
    if (known !== undefined) return known;
    const chain: A.Template[] = [];
    const onChain = new Set<string>();
    let current: A.Name | undefined = name;
    let base: A.HostItem[][] = [];
    while (current !== undefined) {
      const template = this.templates.get(current.name);
      if (template === undefined) {
        this.report(Codes.unknownTemplate, current.span, `unknown template '${current.name}'`, this.suggest(current.name, this.templates.keys()) ?? 'define it with template NAME { … }');
        break;
      }
      if (onChain.has(current.name)) {
        this.report(Codes.cycle, current.span, `template cycle: ${[...chain.map((t) => t.name.name), current.name].join(' → ')}`);
        break;
      }
      const cached = this.layersOf.get(current.name);
      if (cached !== undefined) {
        base = cached;
        break;
      }
      chain.push(template);
      onChain.add(current.name);
      current = template.from;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      base = [...base, chain[i]!.items];
      this.layersOf.set(chain[i]!.name.name, base);
    }
    return base;
  }

  // ---- settings blocks -----------------------------------------------------

  private settingsOf(settings: A.Setting[], allowed: readonly string[], context: string): Settings {
    const map: Settings = new Map();
    for (const setting of settings) {
      const key = setting.key.name;
      if (key === '') continue;
      if (!allowed.includes(key)) {
        const elsewhere = linkWords.includes(key) || key === 'window';
        this.report(
          elsewhere ? Codes.settingNotAllowed : Codes.unknownItem,
          setting.key.span,
          elsewhere ? `'${key}' is not a ${context} setting` : `unknown ${context} setting '${key}'`,
          this.suggest(key, allowed) ?? `${context} settings: ${allowed.join(', ')}`,
        );
        continue;
      }
      if (map.has(key)) {
        this.report(Codes.duplicateItem, setting.key.span, `'${key}' is given twice in this ${context}`, 'keep one');
        continue;
      }
      if (setting.packets && key !== 'queue') this.report(Codes.wrongValueType, setting.span, `'packets' only follows a queue length`);
      if (setting.value === undefined && key !== 'capture') continue;
      map.set(key, setting);
    }
    return map;
  }

  private queue(setting: A.Setting | undefined, context: string): PlanQueue | undefined {
    if (setting?.value === undefined) return undefined;
    if (setting.packets) {
      const packets = this.bounded(setting.value, 'plain', `${context} queue`, 1, 1e9, true);
      return packets === undefined ? undefined : { packets };
    }
    const v = this.resolve(setting.value).value;
    if (v.type === 'number' && v.unit === '') {
      this.report(Codes.missingUnit, setting.value.span, `${context} queue needs a size unit or 'packets', e.g. 64KiB or ${v.text} packets`);
      return undefined;
    }
    const bytes = this.bounded(setting.value, 'size', `${context} queue`, 1, Number.MAX_SAFE_INTEGER, true);
    return bytes === undefined ? undefined : { bytes };
  }

  private linkSettings(settings: Settings, context: string): Partial<PlanLinkSettings> {
    const out: Partial<PlanLinkSettings> = {};
    const latency = settings.get('latency')?.value;
    if (latency !== undefined) {
      // a link's latency is the lookahead and must be > 0; a switch may forward in zero time
      const ns = this.duration(latency, `${context} latency`, context !== 'switch');
      if (ns !== undefined) out.latencyNs = ns;
    }
    const bandwidth = settings.get('bandwidth')?.value;
    if (bandwidth !== undefined) {
      const rate = this.bounded(bandwidth, 'rate', `${context} bandwidth`, 0, Number.MAX_SAFE_INTEGER, true, true);
      if (rate !== undefined) out.bandwidthBitsPerSec = rate;
    }
    const loss = settings.get('loss')?.value;
    if (loss !== undefined) {
      const percent = this.bounded(loss, 'percent', `${context} loss`, 0, 100, false);
      if (percent !== undefined) out.lossRate = percent / 100;
    }
    const jitter = settings.get('jitter')?.value;
    if (jitter !== undefined) {
      const ns = this.duration(jitter, `${context} jitter`, false);
      if (ns !== undefined) out.jitterNs = ns;
    }
    const queue = this.queue(settings.get('queue'), context);
    if (queue !== undefined) out.queue = queue;
    const mtu = settings.get('mtu')?.value;
    if (mtu !== undefined) {
      const v = this.resolve(mtu).value;
      const bytes = this.bounded(mtu, v.type === 'number' && v.unit !== '' ? 'size' : 'plain', `${context} mtu`, 68, 65535, true);
      if (bytes !== undefined) out.mtuBytes = bytes;
    }
    if (settings.has('capture')) out.capture = true;
    return out;
  }

  // ---- nodes -----------------------------------------------------------------

  /** Integer range bounds, or undefined after reporting why not. */
  private rangeBounds(range: A.RangeSpec, what: string): [number, number] | undefined {
    const from = this.bounded(range.from, 'plain', `${what} range start`, 0, Number.MAX_SAFE_INTEGER, true);
    const to = range.to === undefined ? from : this.bounded(range.to, 'plain', `${what} range end`, 0, Number.MAX_SAFE_INTEGER, true);
    if (from === undefined || to === undefined) return undefined;
    if (to < from) {
      this.report(Codes.emptyRange, range.span, `range [${from}..${to}] is empty`, `write [${to}..${from}]`);
      return undefined;
    }
    if (to - from + 1 > MAX_RANGE_SIZE) {
      this.report(Codes.rangeTooLarge, range.span, `range [${from}..${to}] makes ${to - from + 1} names; the limit is ${MAX_RANGE_SIZE}`);
      return undefined;
    }
    return [from, to];
  }

  private declareNodes(name: A.Name, range: A.RangeSpec | undefined, kind: 'host' | 'switch', span: Span): string[] {
    if (name.name === '') return [];
    let names: string[];
    let rangeText: string | undefined;
    if (range === undefined) {
      names = [name.name];
    } else {
      const bounds = this.rangeBounds(range, `${kind} ${name.name}`);
      if (bounds === undefined) return [];
      names = [];
      for (let i = bounds[0]; i <= bounds[1]; i++) names.push(name.name + i);
      rangeText = `${name.name}[${bounds[0]}..${bounds[1]}]`;
      this.rangeNames.push(rangeText);
    }
    const declared: string[] = [];
    for (const each of names) {
      const previous = this.nodes.get(each);
      if (previous !== undefined) {
        if (rangeText !== undefined && previous.range !== undefined) {
          this.report(Codes.overlappingRange, range!.span, `range ${rangeText} overlaps ${previous.range} (line ${previous.span.line}) at '${each}'`, 'make the ranges disjoint');
        } else {
          this.report(Codes.duplicateName, rangeText === undefined ? name.span : range!.span, `'${each}' is already declared as a ${previous.kind} at line ${previous.span.line}`, 'names of hosts and switches must be unique');
        }
        return declared; // one report per declaration
      }
      const info: NodeInfo = { kind, span };
      if (rangeText !== undefined) info.range = rangeText;
      this.nodes.set(each, info);
      declared.push(each);
    }
    return declared;
  }

  /** `layerOf`: which template (or the host itself) each item comes from: a command named again in a later layer replaces the earlier one. */
  private hostConfig(items: A.HostItem[], layerOf: ReadonlyMap<A.HostItem, number>, declaredKind: A.Value | undefined, hostName: string): HostConfig {
    const hasRun = items.some((i) => i.type === 'run');
    const hasVmItem = items.some((i) => i.type === 'setting' && (i.key === 'image' || i.key === 'kernel'));
    let kind: HostKind = hasRun ? 'process' : hasVmItem ? 'vm' : 'model';
    if (declaredKind !== undefined) kind = this.word(declaredKind, 'kind', ['model', 'process', 'vm'] as const) ?? kind;
    const config: HostConfig = {
      kind, cpus: 1, cpuScale: 1, memoryBytes: null, cacheWays: null, memBandwidthPercent: null,
      commands: [], env: new Map(), files: new Map(),
      vm: { backend: 'kvm', image: null, kernel: null, initrd: null, append: null },
      apps: [],
    };
    const commandNames = new Map<string, { layer: number; index: number }>();
    for (const item of items) {
      switch (item.type) {
        case 'setting':
          this.hostSetting(config, item, hostName);
          break;
        case 'run': {
          if (kind === 'model') {
            this.report(Codes.runOnModelHost, item.span, `host '${hostName}' is a model host; it cannot run commands`, 'make it kind process (or vm), or use an app { } for modeled traffic');
          }
          const command = this.text(item.command, 'run');
          const atNs = item.at === undefined ? 0 : this.duration(item.at, 'run … at', false);
          const name = item.as?.name ?? `cmd${config.commands.length + 1}`;
          const layer = layerOf.get(item) ?? 0;
          const previous = commandNames.get(name);
          if (previous !== undefined && previous.layer === layer) {
            this.report(Codes.duplicateName, item.as?.span ?? item.span, `command name '${name}' is used twice on host '${hostName}'`);
            break;
          }
          if (command === undefined || atNs === undefined) break;
          if (previous !== undefined) {
            config.commands[previous.index] = { name, command, atNs }; // a derived template or the host redefines it
            commandNames.set(name, { layer, index: previous.index });
          } else {
            commandNames.set(name, { layer, index: config.commands.length });
            config.commands.push({ name, command, atNs });
          }
          break;
        }
        case 'env': {
          const value = this.envValue(item.value);
          if (item.name.name !== '' && value !== undefined) config.env.set(item.name.name, value);
          break;
        }
        case 'file': {
          const path = this.text(item.path, 'file path');
          const content = this.text(item.content, 'file content');
          if (path !== undefined && !path.startsWith('/')) {
            this.report(Codes.outOfRange, item.path.span, `file path must be absolute inside the host, not "${path}"`, `write "/${path}"`);
          } else if (path !== undefined && content !== undefined) {
            config.files.set(path, content);
          }
          break;
        }
        case 'app': {
          if (kind !== 'model') {
            this.report(Codes.appOnLiveHost, item.span, `app is for model hosts; '${hostName}' is a ${kind} host`, kind === 'process' ? 'run the real program with run "…", or make the host kind model' : 'make the host kind model');
            break;
          }
          const appKind = item.kind.name;
          if (!(appKind in appWords)) {
            this.report(Codes.badApp, item.kind.span, `unknown app '${appKind}'`, this.suggest(appKind, Object.keys(appWords)) ?? `apps: ${Object.keys(appWords).join(', ')}`);
            break;
          }
          config.apps.push({ app: item, settings: this.settingsOf(item.settings, appWords[appKind as PlanApp['kind']], `app ${appKind}`) });
          break;
        }
        case 'unknown': {
          const elsewhere = closest(item.keyword.name, linkWords);
          const hint = this.suggest(item.keyword.name, hostItemWords) ??
            (elsewhere === undefined ? `host items: ${hostItemWords.join(', ')}` : `'${elsewhere}' is a link setting: link ${hostName} -- OTHER { ${elsewhere} … }`);
          this.report(Codes.unknownItem, item.keyword.span, `unknown host item '${item.keyword.name}'`, hint);
          break;
        }
      }
    }
    if (kind === 'vm' && config.vm.image === null && config.vm.kernel === null) {
      this.report(Codes.vmWithoutImage, items.find((i) => i.type === 'setting' && i.key === 'kind')?.span ?? this.scenario.nameSpan, `vm host '${hostName}' needs an image "…" (kvm) or a kernel "…" (qemu)`);
    }
    return config;
  }

  private envValue(value: A.Value): string | undefined {
    const v = this.resolve(value).value;
    if (v.type === 'number') return v.text;
    return this.text(value, 'env value');
  }

  private hostSetting(config: HostConfig, item: A.HostItem & { type: 'setting' }, hostName: string): void {
    const v = item.value;
    switch (item.key) {
      case 'kind':
        return; // decided before the other items
      case 'cpus': {
        const n = this.bounded(v, 'plain', 'cpus', 1, MAX_CPUS, true);
        if (n !== undefined) config.cpus = n;
        return;
      }
      case 'cpu_scale': {
        const n = this.bounded(v, 'plain', 'cpu_scale', 0, 1000, false, true);
        if (n !== undefined) config.cpuScale = n;
        return;
      }
      case 'memory': {
        const n = this.bounded(v, 'size', 'memory', 1, Number.MAX_SAFE_INTEGER, true);
        if (n !== undefined) config.memoryBytes = n;
        return;
      }
      case 'cache_ways':
      case 'mem_bandwidth': {
        if (config.kind === 'model') {
          this.report(Codes.resctrlOnModelHost, item.keySpan, `${item.key} has no effect on model host '${hostName}'`, 'it partitions the real cache of live hosts', 'warning');
        }
        if (item.key === 'cache_ways') {
          const n = this.bounded(v, 'plain', 'cache_ways', 1, 64, true);
          if (n !== undefined) config.cacheWays = n;
        } else {
          const n = this.bounded(v, 'percent', 'mem_bandwidth', 0, 100, false, true);
          if (n !== undefined) config.memBandwidthPercent = n;
        }
        return;
      }
      case 'backend': {
        const b = this.word(v, 'backend', ['kvm', 'qemu'] as const);
        if (config.kind !== 'vm') this.vmOnly(item, hostName, config.kind);
        else if (b !== undefined) config.vm.backend = b;
        return;
      }
      case 'image':
      case 'kernel':
      case 'initrd':
      case 'append': {
        const text = this.text(v, item.key);
        if (config.kind !== 'vm') this.vmOnly(item, hostName, config.kind);
        else if (text !== undefined) config.vm[item.key] = text;
        return;
      }
    }
  }

  private vmOnly(item: A.HostItem & { type: 'setting' }, hostName: string, kind: HostKind): void {
    this.report(Codes.vmItemOnNonVm, item.keySpan, `${item.key} is for vm hosts; '${hostName}' is a ${kind} host`, 'add kind vm');
  }

  private apps(hostName: string, config: HostConfig): PlanApp[] {
    const apps: PlanApp[] = [];
    for (const { app, settings } of config.apps) {
      const kind = app.kind.name as PlanApp['kind'];
      const get = (key: string) => settings.get(key)?.value;
      const port = get('port') === undefined ? (kind === 'echo' || kind === 'request' ? 7 : 9) : this.bounded(get('port')!, 'plain', `app ${kind} port`, 1, 65535, true);
      const target = (): string | undefined => {
        const to = get('to');
        if (to === undefined) {
          this.report(Codes.badApp, app.span, `app ${kind} needs 'to HOST'`, `e.g. app ${kind} { to server … }`);
          return undefined;
        }
        const v = this.resolve(to).value;
        if (v.type !== 'name' && v.type !== 'string') {
          this.report(Codes.wrongValueType, to.span, `app ${kind} 'to' needs a host name`);
          return undefined;
        }
        const name = v.type === 'name' ? v.name : v.value;
        const node = this.nodes.get(name);
        if (node === undefined || node.kind !== 'host') {
          this.report(Codes.unknownEndpoint, to.span, `unknown host '${name}' in app ${kind}`, this.suggest(name, this.hostNames()) ?? undefined);
          return undefined;
        }
        if (name === hostName) {
          this.report(Codes.badApp, to.span, `app ${kind} on '${hostName}' sends to itself`);
          return undefined;
        }
        return name;
      };
      const required = (key: string, make: (v: A.Value) => number | undefined, fallback?: number): number | undefined => {
        const v = get(key);
        if (v === undefined) {
          if (fallback !== undefined) return fallback;
          this.report(Codes.badApp, app.span, `app ${kind} needs '${key}'`);
          return undefined;
        }
        return make(v);
      };
      if (kind === 'echo' || kind === 'sink') {
        if (port !== undefined) apps.push({ kind, port });
        continue;
      }
      const to = target();
      // onoff sizes are IP packets (IPv4 + UDP headers + LiveStack's 28-byte app header at least);
      // request/reply sizes are message payloads (at least the app header)
      const minimum = kind === 'onoff' ? 56 : 28;
      const size = required('size', (v) => this.bounded(v, 'size', `app ${kind} size`, minimum, kind === 'onoff' ? 65535 : 1e9, true), kind === 'onoff' ? 1500 : 100);
      if (kind === 'onoff') {
        const rate = required('rate', (v) => this.bounded(v, 'rate', 'app onoff rate', 0, Number.MAX_SAFE_INTEGER, true, true));
        const on = required('on', (v) => this.duration(v, 'app onoff on', true), MAX_TIME_NS);
        const off = required('off', (v) => this.duration(v, 'app onoff off', false), 0);
        const arrivalsValue = get('arrivals');
        const arrivals = arrivalsValue === undefined ? 'constant' : this.word(arrivalsValue, 'app onoff arrivals', ['constant', 'poisson'] as const);
        if (to !== undefined && port !== undefined && size !== undefined && rate !== undefined && on !== undefined && off !== undefined && arrivals !== undefined) {
          apps.push({ kind, to, port, rateBitsPerSec: rate, sizeBytes: size, onNs: on, offNs: off, arrivals });
        }
      } else {
        const every = required('every', (v) => this.duration(v, 'app request every', true));
        const reply = required('reply', (v) => this.bounded(v, 'size', 'app request reply', 28, 1e9, true), size);
        if (to !== undefined && port !== undefined && size !== undefined && every !== undefined && reply !== undefined) {
          apps.push({ kind, to, port, everyNs: every, sizeBytes: size, replyBytes: reply });
        }
      }
    }
    return apps;
  }

  private *hostNames(): Iterable<string> {
    for (const [name, info] of this.nodes) if (info.kind === 'host') yield name;
  }

  /** Host/switch names a selector denotes, or undefined after reporting. */
  private expand(selector: A.Selector, what: string, only?: 'host' | 'switch', code: Code = Codes.unknownEndpoint): string[] | undefined {
    if (selector.name === '') return undefined;
    const names: string[] = [];
    if (selector.range === undefined) {
      names.push(selector.name);
    } else {
      const bounds = this.rangeBounds(selector.range, what);
      if (bounds === undefined) return undefined;
      for (let i = bounds[0]; i <= bounds[1]; i++) names.push(selector.name + i);
    }
    for (const name of names) {
      const node = this.nodes.get(name);
      if (node === undefined || (only !== undefined && node.kind !== only)) {
        const candidates = () => (only === 'host' ? [...this.hostNames(), ...this.rangeNames] : [...this.nodes.keys(), ...this.rangeNames]);
        const hint =
          node !== undefined
            ? `'${name}' is a ${node.kind}`
            : (this.rangeNames.find((r) => r.startsWith(name + '[')) !== undefined ? `did you mean '${this.rangeNames.find((r) => r.startsWith(name + '['))}'?` : this.suggest(name, candidates));
        this.report(code, selector.span, `unknown ${only ?? 'host or switch'} '${name}' in ${what}`, hint);
        return undefined;
      }
    }
    return names;
  }

  // ---- the scenario --------------------------------------------------------

  check(): Plan | undefined {
    this.buildScope();
    const single = new Map<string, Span>();
    const once = (item: { type: string; span: Span }) => {
      const previous = single.get(item.type);
      if (previous !== undefined) {
        this.report(Codes.duplicateItem, item.span, `'${item.type}' is given twice in this scenario (first at line ${previous.line})`, 'keep one');
        return false;
      }
      single.set(item.type, item.span);
      return true;
    };

    let seed = 1;
    let windowCapNs: number | undefined;
    let windowSpan: Span | undefined;
    const untilItems: Array<A.ScenarioItem & { type: 'until' }> = [];
    for (const item of this.scenario.items) {
      if (item.type === 'seed' && once(item)) {
        const n = this.bounded(item.value, 'plain', 'seed', 0, Number.MAX_SAFE_INTEGER, true);
        if (n !== undefined) seed = n;
      } else if (item.type === 'duration' && once(item)) {
        const ns = this.duration(item.value, 'duration', true);
        if (ns !== undefined) this.durationNs = ns;
      } else if (item.type === 'until' && once(item)) {
        untilItems.push(item);
      } else if (item.type === 'sync' && once(item)) {
        const settings = this.settingsOf(item.settings, ['window'], 'sync');
        const window = settings.get('window');
        if (window?.value !== undefined) {
          windowCapNs = this.duration(window.value, 'sync window', true);
          windowSpan = window.span;
        }
      } else if (item.type === 'sweep' && item.values.length === 0) {
        this.report(Codes.badSweep, item.span, `sweep '${item.name.name}' has no values`, 'list at least one: sweep x in [1ms, 10ms]');
      } else if (item.type === 'unknown') {
        this.report(Codes.unknownItem, item.keyword.span, `unknown scenario item '${item.keyword.name}'`, this.suggest(item.keyword.name, scenarioWords) ?? `scenario items: ${scenarioWords.join(', ')}`);
      }
    }

    // hosts and switches, in declaration order (addresses follow it)
    const hostDecls: Array<{ item: A.ScenarioItem & { type: 'host' }; names: string[] }> = [];
    for (const item of this.scenario.items) {
      if (item.type === 'host') {
        hostDecls.push({ item, names: this.declareNodes(item.name, item.range, 'host', item.name.span) });
      } else if (item.type === 'switch') {
        const names = this.declareNodes(item.name, item.range, 'switch', item.name.span);
        const settings = this.settingsOf(item.settings, switchWords, 'switch');
        const link = this.linkSettings(settings, 'switch');
        for (const name of names) {
          this.switches.push({
            name, index: this.switches.length, latencyNs: link.latencyNs ?? 0, bandwidthBitsPerSec: link.bandwidthBitsPerSec ?? null,
            queue: link.queue ?? null, source: this.source(item.span),
          });
        }
      }
    }
    let hostCount = 0;
    for (const { names } of hostDecls) hostCount += names.length;
    if (hostCount > MAX_HOSTS) {
      this.report(Codes.tooManyHosts, this.scenario.nameSpan, `${hostCount} hosts do not fit in 198.18.0.0/15 (limit ${MAX_HOSTS})`);
      return undefined;
    }
    for (const { item, names } of hostDecls) {
      if (names.length === 0) continue;
      const layers = [...(item.from === undefined ? [] : this.templateLayers(item.from)), item.items];
      const layerOf = new Map<A.HostItem, number>();
      layers.forEach((layer, i) => layer.forEach((x) => layerOf.set(x, i)));
      const items = layers.flat();
      this.reportDuplicateSettings(item.items);
      const kindItem = [...items].reverse().find((i): i is A.HostItem & { type: 'setting' } => i.type === 'setting' && i.key === 'kind');
      const config = this.hostConfig(items, layerOf, kindItem?.value, names.length === 1 ? names[0]! : `${item.name.name}[…]`);
      for (const name of names) {
        const host: PlanHost = {
          name, index: this.hosts.length, kind: config.kind, address: hostAddress(this.hosts.length),
          cpus: config.cpus, cpuScale: config.cpuScale, memoryBytes: config.memoryBytes, cacheWays: config.cacheWays,
          memBandwidthPercent: config.memBandwidthPercent,
          commands: config.commands.map((c) => ({ ...c })),
          env: [...config.env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, value]) => ({ name: n, value })),
          files: [...config.files].map(([path, content]) => ({ path, content })),
          vm: config.kind === 'vm' ? { ...config.vm } : null,
          apps: [], agent: null, source: this.source(item.span),
        };
        this.hosts.push(host);
        const node = this.nodes.get(name)!;
        node.host = host;
        node.config = config;
      }
    }
    // apps refer to hosts by name: resolve them once all hosts exist
    for (const { names } of hostDecls) {
      for (const name of names) {
        const node = this.nodes.get(name)!;
        if (node.config!.apps.length > 0) node.host!.apps = this.apps(name, node.config!);
      }
    }

    this.checkLinks();
    let minLatency: { ns: number; link: string } | undefined;
    for (const link of this.links.values()) if (minLatency === undefined || link.latencyNs < minLatency.ns) minLatency = { ns: link.latencyNs, link: link.name };
    if (windowCapNs !== undefined && minLatency !== undefined && windowCapNs > minLatency.ns) {
      this.report(
        Codes.windowTooLarge, windowSpan!,
        `sync window ${formatNs(windowCapNs)} is larger than the smallest link latency ${formatNs(minLatency.ns)} (link ${minLatency.link})`,
        'a window above the smallest lookahead could deliver a message in the past; lower the window or leave it out',
      );
    }
    const syncWindowNs = Math.min(windowCapNs ?? Infinity, minLatency?.ns ?? Infinity, this.durationNs ?? Infinity);
    const timeline = this.timeline(syncWindowNs);
    const metrics = this.metrics();
    const until = this.until(untilItems, timeline);
    if (this.durationNs === null && until.kind === 'duration') {
      this.report(Codes.neverEnds, this.scenario.nameSpan, `scenario "${this.scenario.name}" has no duration and no until: it would never end`, 'add duration 30s (or until exit)');
    }
    const expectations = this.expectations(metrics, timeline);
    const agents = this.placement();

    const params: Record<string, string> = {};
    for (const [name, binding] of this.scope) {
      if (binding.origin !== 'let') params[name] = valueText(this.resolve({ type: 'name', name, span: binding.span }).value);
    }
    const sweepValues: Record<string, string> = {};
    for (const name of this.options.sweep?.names ?? []) if (params[name] !== undefined) sweepValues[name] = params[name]!;

    return {
      planVersion: PLAN_VERSION,
      scenario: this.scenario.name,
      file: this.program.main.path,
      seed,
      durationNs: this.durationNs,
      until,
      syncWindowNs: Number.isFinite(syncWindowNs) ? syncWindowNs : 1_000_000_000,
      ...(windowCapNs === undefined ? {} : { syncWindowCapNs: windowCapNs }),
      params,
      sweep: this.options.sweep === undefined ? null : { index: this.options.sweep.index, count: this.options.sweep.count, values: sweepValues },
      network: { prefix: '198.18.0.0', prefixLength: 15 },
      hosts: this.hosts,
      switches: this.switches,
      links: [...this.links.values()],
      timeline,
      metrics,
      expectations,
      agents,
    };
  }

  private reportDuplicateSettings(items: A.HostItem[]): void {
    const seen = new Map<string, Span>();
    for (const item of items) {
      if (item.type !== 'setting') continue;
      const previous = seen.get(item.key);
      if (previous !== undefined) this.report(Codes.duplicateItem, item.keySpan, `'${item.key}' is given twice in this host (first at line ${previous.line})`, 'keep one');
      else seen.set(item.key, item.keySpan);
    }
  }

  private linkKey(a: string, b: string): string {
    return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
  }

  private checkLinks(): void {
    const firstLine = new Map<string, number>();
    for (const item of this.scenario.items) {
      if (item.type !== 'link') continue;
      const left = this.expand(item.a, 'link');
      const right = this.expand(item.b, 'link');
      const settings = this.settingsOf(item.settings, linkWords, 'link');
      if (!settings.has('latency')) {
        this.report(Codes.missingLatency, item.span, `link ${this.spanText(item.a.span)} -- ${this.spanText(item.b.span)} has no latency`, 'every link needs one: link a -- b { latency 1ms }');
      }
      const resolved = this.linkSettings(settings, 'link');
      if (left === undefined || right === undefined || resolved.latencyNs === undefined) continue;
      if (left.length * right.length + this.links.size > MAX_LINKS) {
        this.report(Codes.tooManyLinks, item.span, `this declaration makes ${left.length * right.length} links; the limit is ${MAX_LINKS} in all`);
        continue;
      }
      let reportedSelf = false;
      let reportedDuplicate = false;
      for (const a of left) {
        for (const b of right) {
          if (a === b) {
            if (!reportedSelf) this.report(Codes.selfLink, item.span, `link from '${a}' to itself`, 'a link joins two different hosts or switches');
            reportedSelf = true;
            continue;
          }
          const key = this.linkKey(a, b);
          if (this.links.has(key)) {
            if (!reportedDuplicate) {
              this.report(Codes.duplicateLink, item.span, `link ${a} -- ${b} is already declared at line ${firstLine.get(key)}`, 'two hosts share at most one link; change it with at … { link a -- b set { … } }');
            }
            reportedDuplicate = true;
            continue;
          }
          firstLine.set(key, item.span.line);
          this.links.set(key, {
            name: `${a}--${b}`, index: this.links.size, a, b,
            latencyNs: resolved.latencyNs, bandwidthBitsPerSec: resolved.bandwidthBitsPerSec ?? null,
            lossRate: resolved.lossRate ?? 0, jitterNs: resolved.jitterNs ?? 0, queue: resolved.queue ?? null,
            mtuBytes: resolved.mtuBytes ?? 1500, capture: resolved.capture ?? false,
            source: this.source(item.span),
          });
        }
      }
    }
  }

  private linksBetween(a: A.Selector, b: A.Selector): string[] | undefined {
    const left = this.expand(a, 'link action');
    const right = this.expand(b, 'link action');
    if (left === undefined || right === undefined) return undefined;
    const names: string[] = [];
    for (const x of left) {
      for (const y of right) {
        const link = this.links.get(this.linkKey(x, y));
        if (link === undefined) {
          this.report(Codes.unknownLink, a.span, `there is no link between '${x}' and '${y}'`, `declare it: link ${x} -- ${y} { latency … }`);
          return undefined;
        }
        names.push(link.name);
      }
    }
    return names;
  }

  private liveHosts(selector: A.Selector, verb: string): string[] | undefined {
    const names = this.expand(selector, verb, 'host');
    if (names === undefined) return undefined;
    for (const name of names) {
      const host = this.nodes.get(name)!.host;
      if (host !== undefined && host.kind === 'model') {
        this.report(Codes.actionOnModelHost, selector.span, `${verb} needs a live host; '${name}' is a model host`, 'make it kind process or vm');
        return undefined;
      }
    }
    return names;
  }

  private timeline(syncWindowNs: number): PlanAction[] {
    const actions: PlanAction[] = [];
    for (const item of this.scenario.items) {
      if (item.type !== 'at') continue;
      const atNs = this.duration(item.time, 'at', false);
      if (atNs === undefined) continue;
      if (this.durationNs !== null && atNs > this.durationNs) {
        this.report(Codes.atAfterDuration, item.time.span, `at ${formatNs(atNs)} is after the end of the scenario (duration ${formatNs(this.durationNs)})`, 'move it earlier or lengthen the duration');
      }
      for (const action of item.actions) {
        const source = this.source(action.span);
        switch (action.type) {
          case 'link': {
            const links = this.linksBetween(action.a, action.b);
            if (links === undefined) break;
            if (action.op === 'set') {
              const changes = this.linkSettings(this.settingsOf(action.settings, linkWords, 'link'), 'link');
              if (changes.latencyNs !== undefined && changes.latencyNs < syncWindowNs) {
                this.report(Codes.windowTooLarge, action.span, `latency ${formatNs(changes.latencyNs)} is below the sync window ${formatNs(syncWindowNs)}`, 'set sync { window … } at or below the smallest latency the scenario will ever use');
              }
              for (const link of links) actions.push({ atNs, source, type: 'link-set', link, changes });
            } else {
              for (const link of links) actions.push({ atNs, source, type: action.op === 'down' ? 'link-down' : 'link-up', link });
            }
            break;
          }
          case 'kill':
          case 'pause':
          case 'resume': {
            const hosts = this.liveHosts(action.host, action.type);
            for (const host of hosts ?? []) actions.push({ atNs, source, type: action.type, host });
            break;
          }
          case 'run': {
            const hosts = this.liveHosts(action.host, 'run');
            const command = this.text(action.command, 'run');
            if (command !== undefined) for (const host of hosts ?? []) actions.push({ atNs, source, type: 'run', host, command });
            break;
          }
          case 'log': {
            const text = this.text(action.text, 'log');
            if (text !== undefined) actions.push({ atNs, source, type: 'log', text });
            break;
          }
          case 'unknown':
            this.report(Codes.unknownItem, action.keyword.span, `unknown action '${action.keyword.name}'`, this.suggest(action.keyword.name, actionWords) ?? `actions: ${actionWords.join(', ')}`);
            break;
        }
      }
    }
    // stable: equal times keep declaration order
    return actions.map((a, i) => [a, i] as const).sort(([a, i], [b, j]) => a.atNs - b.atNs || i - j).map(([a]) => a);
  }

  private metrics(): PlanMetric[] {
    const metrics: PlanMetric[] = [];
    const seen = new Map<string, Span>();
    for (const item of this.scenario.items) {
      if (item.type !== 'metric' || item.name.name === '') continue;
      const previous = seen.get(item.name.name);
      if (previous !== undefined) {
        this.report(Codes.duplicateName, item.name.span, `metric '${item.name.name}' is already defined at line ${previous.line}`);
        continue;
      }
      seen.set(item.name.name, item.name.span);
      const hosts = this.expand(item.from, `metric ${item.name.name}`, 'host');
      const regex = this.text(item.regex, 'match');
      if (regex === undefined || hosts === undefined) continue;
      let groups: number;
      try {
        // group count: match the empty alternative and count the slots
        groups = new RegExp(regex + '|').exec('')!.length - 1;
      } catch (error) {
        this.report(Codes.badRegex, item.regex.span, `the regex does not compile: ${(error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`);
        continue;
      }
      if (groups < 1) {
        this.report(Codes.regexNoGroup, item.regex.span, 'the regex has no (group) to capture the number', 'put parentheses around the number, e.g. "time=([0-9.]+) ms"');
        continue;
      }
      metrics.push({ name: item.name.name, hosts, regex, source: this.source(item.span) });
    }
    return metrics;
  }

  private runActions: Map<string, number> | undefined;

  private commandsOf(host: string, timeline: PlanAction[]): number {
    if (this.runActions === undefined) {
      this.runActions = new Map();
      for (const a of timeline) if (a.type === 'run') this.runActions.set(a.host, (this.runActions.get(a.host) ?? 0) + 1);
    }
    const planHost = this.nodes.get(host)?.host;
    // a backend qemu vm host runs one program, QEMU: it exits when the guest powers off
    const qemu = planHost?.kind === 'vm' && planHost.vm?.backend === 'qemu' ? 1 : 0;
    // a kvm vm host runs one program, its image (a `run` only gives it its argument)
    const kvm = planHost?.kind === 'vm' && planHost.vm?.backend !== 'qemu' && planHost.commands.length === 0 ? 1 : 0;
    return (planHost?.commands.length ?? 0) + (this.runActions.get(host) ?? 0) + qemu + kvm;
  }

  private until(items: Array<A.ScenarioItem & { type: 'until' }>, timeline: PlanAction[]): PlanUntil {
    const item = items[0];
    if (item === undefined) return { kind: 'duration' };
    if (item.host === undefined) {
      // a vm host runs its program: the kvm image, or QEMU (backend qemu; it ends when the guest powers off)
      const any = this.hosts.some((h) => h.commands.length > 0 || h.kind === 'vm') || timeline.some((a) => a.type === 'run');
      if (!any) this.report(Codes.untilHostNoCommands, item.span, 'until exit, but no host runs a command', 'add run "…" to a host, or use duration');
      return { kind: 'all-exit' };
    }
    const hosts = this.expand(item.host, 'until', 'host') ?? [];
    for (const host of hosts) {
      if (this.commandsOf(host, timeline) === 0) {
        this.report(Codes.untilHostNoCommands, item.host.span, `until ${host} exits, but '${host}' runs no command`, 'add run "…" to it');
      }
    }
    return { kind: 'hosts-exit', hosts };
  }

  private expectations(metrics: PlanMetric[], timeline: PlanAction[]): PlanExpectation[] {
    const out: PlanExpectation[] = [];
    const metricNames = new Set(metrics.map((m) => m.name));
    const declaredMetrics = new Set(this.scenario.items.flatMap((i) => (i.type === 'metric' ? [i.name.name] : [])));
    for (const item of this.scenario.items) {
      if (item.type !== 'expect') continue;
      const e = item.expectation;
      const base = { source: this.source(item.span), text: this.lineText(item.span) };
      if (e.type === 'exit') {
        const hosts = this.expand(e.host, 'expect … exit', 'host');
        const code = this.bounded(e.code, 'plain', 'exit code', 0, 255, true);
        if (hosts === undefined || code === undefined) continue;
        const idle = hosts.find((h) => this.commandsOf(h, timeline) === 0);
        if (idle !== undefined) {
          this.report(Codes.expectExitNoCommands, e.host.span, `expect ${idle} exit ${code}, but '${idle}' runs no command`, 'add run "…" to it');
          continue;
        }
        out.push({ ...base, type: 'exit', hosts, code });
      } else if (e.type === 'finished') {
        const ns = this.duration(e.within, 'finished within', true);
        if (ns !== undefined) out.push({ ...base, type: 'finished', withinNs: ns });
      } else {
        const aggregate = e.aggregate.name as Aggregate;
        let ok = true;
        if (!aggregates.includes(aggregate)) {
          this.report(Codes.unknownAggregate, e.aggregate.span, `unknown aggregate '${e.aggregate.name}'`, (synonyms[e.aggregate.name] === undefined ? undefined : `did you mean '${synonyms[e.aggregate.name]}'?`) ?? this.suggest(e.aggregate.name, aggregates) ?? `aggregates: ${aggregates.join(', ')}`);
          ok = false;
        }
        if (e.metric.name !== '' && !declaredMetrics.has(e.metric.name)) {
          this.report(Codes.unknownMetric, e.metric.span, `metric '${e.metric.name}' is never defined`, this.suggest(e.metric.name, declaredMetrics) ?? `define it: metric ${e.metric.name} from HOST match "…(number)…"`);
          ok = false;
        }
        const value = this.metricNumber(e.value);
        if (e.type === 'compare') {
          if (ok && value !== undefined && metricNames.has(e.metric.name)) out.push({ ...base, type: 'compare', aggregate, metric: e.metric.name, op: e.op, value });
        } else {
          const tolerance = this.metricNumber(e.tolerance);
          if (tolerance !== undefined && tolerance < 0) {
            this.report(Codes.outOfRange, e.tolerance.span, 'the tolerance after +- must be 0 or more');
            continue;
          }
          if (ok && value !== undefined && tolerance !== undefined && metricNames.has(e.metric.name)) {
            out.push({ ...base, type: 'within', aggregate, metric: e.metric.name, value, tolerance });
          }
        }
      }
    }
    return out;
  }

  private placement(): string[] {
    const agents = new Set<string>();
    const placedAt = new Map<string, Span>();
    const cpusOn = new Map<string, { cpus: number; span: Span }>();
    for (const item of this.scenario.items) {
      if (item.type !== 'place') continue;
      const agent = this.text(item.agent, 'place … on');
      let hosts: string[] | undefined;
      if ('glob' in item.pattern) {
        const glob = item.pattern.glob;
        hosts = /[*?]/.test(glob) ? this.hosts.filter((h) => globMatch(glob, h.name)).map((h) => h.name) : this.nodes.get(glob)?.host !== undefined ? [glob] : [];
        if (hosts.length === 0) {
          this.report(Codes.placeMatchesNothing, item.pattern.span, `place pattern "${glob}" matches no host`, this.suggest(glob.replace(/\*/g, ''), this.hostNames()) ?? undefined);
          continue;
        }
      } else {
        hosts = this.expand(item.pattern, 'place', 'host', Codes.placeMatchesNothing);
      }
      if (hosts === undefined || agent === undefined) continue;
      if (agent === '') {
        this.report(Codes.outOfRange, item.agent.span, 'the agent name is empty');
        continue;
      }
      agents.add(agent);
      for (const name of hosts) {
        const host = this.nodes.get(name)!.host!;
        const previous = placedAt.get(name);
        if (previous !== undefined) {
          if (host.agent !== agent) this.report(Codes.duplicateItem, item.span, `host '${name}' is already placed on "${host.agent}" at line ${previous.line}`);
          continue; // placed before (on the same agent: counted once)
        }
        placedAt.set(name, item.span);
        host.agent = agent;
        if (host.kind !== 'model') {
          const entry = cpusOn.get(agent) ?? { cpus: 0, span: item.span };
          entry.cpus += host.cpus;
          entry.span = item.span;
          cpusOn.set(agent, entry);
        }
      }
    }
    for (const [agent, { cpus, span }] of cpusOn) {
      const available = this.options.agentCpus?.[agent];
      if (available !== undefined && cpus > available) {
        this.report(Codes.cpusOverPlaced, span, `hosts placed on "${agent}" ask for ${cpus} cpus; it has ${available}`, 'cells will take turns (slower wall time, same virtual results); place fewer hosts there for speed', 'warning');
      }
    }
    return [...agents].sort();
  }
}

/** `*` and `?` wildcards, matched greedily with one backtrack point: O(pattern × name) at worst, never exponential. */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

function example(kind: UnitKind, text: string): string {
  const suffix = { duration: 'ms', rate: 'Mbit', size: 'KiB', percent: '%' }[kind];
  return `${text}${suffix}`;
}

export function formatNs(ns: number): string {
  if (ns % 1e9 === 0) return `${ns / 1e9}s`;
  if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
  if (ns % 1e3 === 0) return `${ns / 1e3}us`;
  return `${ns}ns`;
}

export function valueText(value: A.Value): string {
  switch (value.type) {
    case 'number':
      return value.text;
    case 'string':
      return value.value;
    case 'name':
      return value.name;
    case 'missing':
      return '';
  }
}
