// The compiler front door: load a file (and its imports), pick scenarios,
// expand sweeps into points, check each point and emit one Plan per point.
import type * as A from './ast.ts';
import { ScenarioChecker, type CheckOptions } from './check.ts';
import { Codes, diagnostic, didYouMean, hasErrors, sortDiagnostics, type Diagnostic, type Span } from './diagnostics.ts';
import { lex } from './lexer.ts';
import { MAX_SWEEP_HOST_POINTS, MAX_SWEEP_POINTS } from './limits.ts';
import { loadProgram, type LoadOptions, type Program } from './load.ts';
import { NumberLiteral, Minus, StringLiteral } from './lexer.ts';
import type { Plan } from './plan.ts';

export interface CompileOptions extends LoadOptions {
  /** `--set NAME=VALUE` overrides, as typed on the command line */
  set?: Readonly<Record<string, string>>;
  /** only this scenario (by name) */
  scenario?: string;
  /** report LS1016 when the file has no scenario (plan/run need one; check does not) */
  requireScenario?: boolean;
  agentCpus?: CheckOptions['agentCpus'];
}

export interface CompileResult {
  program: Program;
  plans: Plan[];
  diagnostics: Diagnostic[];
  ok: boolean;
}

const commandLine: Span = { file: '<command line>', line: 1, col: 1, endLine: 1, endCol: 1, offset: 0, endOffset: 0 };

/** Reads `--set` text as a value of the same sort as the default it replaces. */
export function parseSetValue(text: string, like: A.Value | undefined): A.Value {
  const span = commandLine;
  if (like?.type === 'string') return { type: 'string', value: text.replace(/^"(.*)"$/s, '$1'), span };
  const tokens = lex('<command line>', text).tokens;
  const [first, second] = tokens;
  if (tokens.length === 1 && first!.tokenType === NumberLiteral) return numberValue(first!.image, 1, span);
  if (tokens.length === 2 && first!.tokenType === Minus && second!.tokenType === NumberLiteral) return numberValue(second!.image, -1, span);
  if (tokens.length === 1 && first!.tokenType === StringLiteral) return { type: 'string', value: first!.image.slice(1, -1), span };
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(text)) return { type: 'name', name: text, span };
  return { type: 'string', value: text, span };
}

function numberValue(image: string, sign: number, span: Span): A.Value {
  const match = /^(\d+(?:\.\d+)?)(.*)$/.exec(image)!;
  return { type: 'number', value: sign * Number(match[1]), unit: match[2]!, text: (sign < 0 ? '-' : '') + image, span };
}

interface SweepAxis {
  name: string;
  values: A.Value[];
}

function sweepAxes(scenario: A.Scenario, overrides: Map<string, A.Value>): SweepAxis[] {
  const axes: SweepAxis[] = [];
  const seen = new Set<string>();
  for (const item of scenario.items) {
    if (item.type !== 'sweep' || item.name.name === '' || seen.has(item.name.name) || item.values.length === 0) continue;
    seen.add(item.name.name);
    const pinned = overrides.get(item.name.name);
    axes.push({ name: item.name.name, values: pinned === undefined ? item.values : [pinned] });
  }
  return axes;
}

/** Point k of the cartesian product; the first sweep changes slowest. */
function pointAt(axes: SweepAxis[], k: number): Map<string, A.Value> {
  const point = new Map<string, A.Value>();
  for (let i = axes.length - 1; i >= 0; i--) {
    const axis = axes[i]!;
    point.set(axis.name, axis.values[k % axis.values.length]!);
    k = Math.floor(k / axis.values.length);
  }
  return point;
}

function compileScenario(program: Program, scenario: A.Scenario, options: CompileOptions, diagnostics: Diagnostic[]): Plan[] {
  const defaults = new Map<string, A.Value>();
  for (const item of scenario.items) {
    if (item.type === 'param') defaults.set(item.name.name, item.value);
    if (item.type === 'sweep') defaults.set(item.name.name, item.values[0] ?? { type: 'missing', span: item.span });
  }
  const overrides = new Map<string, A.Value>();
  for (const [name, text] of Object.entries(options.set ?? {})) {
    if (!defaults.has(name)) {
      diagnostics.push(
        diagnostic(Codes.unknownParam, commandLine, `--set ${name}: scenario "${scenario.name}" has no param or sweep '${name}'`, didYouMean(name, defaults.keys()) ?? (defaults.size > 0 ? `params: ${[...defaults.keys()].join(', ')}` : 'declare it: param NAME = value')),
      );
      continue;
    }
    overrides.set(name, parseSetValue(text, defaults.get(name)));
  }
  const axes = sweepAxes(scenario, overrides);
  let count = axes.reduce((n, axis) => n * axis.values.length, 1);
  if (count > MAX_SWEEP_POINTS) {
    diagnostics.push(diagnostic(Codes.tooManyPoints, scenario.nameSpan, `the sweeps make ${count} points; the limit is ${MAX_SWEEP_POINTS}`, 'sweep fewer values, or pin some with --set'));
    count = 1;
  }
  const plans: Plan[] = [];
  const names = axes.map((a) => a.name);
  for (let k = 0; k < count; k++) {
    const bindings = new Map(overrides);
    for (const [name, value] of pointAt(axes, k)) bindings.set(name, value);
    const checker = new ScenarioChecker(program, scenario, bindings, {
      ...(options.agentCpus === undefined ? {} : { agentCpus: options.agentCpus }),
      ...(axes.length === 0 ? {} : { sweep: { index: k, count, names } }),
    });
    const plan = checker.check();
    for (const d of checker.diagnostics) diagnostics.push(d); // not push(...): 100k+ items overflow the stack
    if (plan !== undefined) plans.push(plan);
    if (k === 0 && plan !== undefined && count * Math.max(1, plan.hosts.length) > MAX_SWEEP_HOST_POINTS) {
      diagnostics.push(
        diagnostic(Codes.tooManyPoints, scenario.nameSpan, `${count} sweep points × ${plan.hosts.length} hosts is more than ${MAX_SWEEP_HOST_POINTS} host-points to check`, 'sweep fewer values, or pin some with --set'),
      );
      break;
    }
  }
  return plans;
}

/** The same problem found at several sweep points (or through a range) is reported once. */
function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.code}\u0000${d.span.file}\u0000${d.span.offset}\u0000${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Compiles a file to plans. Never throws for any input: problems are diagnostics. */
export function compileFile(path: string, options: CompileOptions = {}): CompileResult {
  const program = loadProgram(path, options);
  const diagnostics = [...program.diagnostics];
  for (const file of program.files.values()) {
    for (const word of file.unknown) {
      diagnostics.push(diagnostic(Codes.unknownItem, word.span, `unknown top-level item '${word.name}'`, didYouMean(word.name, ['import', 'let', 'template', 'scenario']) ?? 'a file holds import, let, template and scenario "name" { … }'));
    }
  }
  let scenarios = program.main.scenarios;
  const seen = new Map<string, Span>();
  for (const scenario of scenarios) {
    const previous = seen.get(scenario.name);
    if (previous !== undefined) diagnostics.push(diagnostic(Codes.duplicateName, scenario.nameSpan, `scenario "${scenario.name}" is already defined at line ${previous.line}`));
    seen.set(scenario.name, scenario.nameSpan);
  }
  if (options.scenario !== undefined) {
    scenarios = scenarios.filter((s) => s.name === options.scenario);
    if (scenarios.length === 0) {
      diagnostics.push(diagnostic(Codes.unknownScenario, commandLine, `no scenario "${options.scenario}" in ${program.main.path}`, didYouMean(options.scenario, seen.keys()) ?? `scenarios: ${[...seen.keys()].join(', ') || 'none'}`));
    }
  } else if (scenarios.length === 0 && options.requireScenario) {
    const span: Span = { file: program.main.path, line: 1, col: 1, endLine: 1, endCol: 1, offset: 0, endOffset: 0 };
    diagnostics.push(diagnostic(Codes.noScenario, span, `${program.main.path} has no scenario`, 'add scenario "name" { … } (a file of lets and templates is for import)'));
  }
  const plans: Plan[] = [];
  for (const scenario of scenarios) for (const plan of compileScenario(program, scenario, options, diagnostics)) plans.push(plan);
  const unique = sortDiagnostics(dedupe(diagnostics));
  const ok = !hasErrors(unique);
  return { program, plans: ok ? plans : [], diagnostics: unique, ok };
}

/** Compiles text held in memory (tests, fuzzing, editors); imports resolve through `readFile`. */
export function compileText(path: string, text: string, options: CompileOptions = {}): CompileResult {
  return compileFile(path, { ...options, text });
}
