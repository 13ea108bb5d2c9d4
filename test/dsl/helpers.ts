// Shared helpers for the dsl tests: compile in memory, find diagnostics, fake a file system.
import { resolve } from 'node:path';
import type { ExecutionContext } from 'ava';
import { compileText, type CompileOptions, type CompileResult } from '../../dsl/compile.ts';
import type { Diagnostic } from '../../dsl/diagnostics.ts';
import type { Plan } from '../../dsl/plan.ts';

/** Lines joined with '\n', so tests can state line numbers plainly. */
export function lines(...text: string[]): string {
  return text.join('\n');
}

/** A scenario "s" with `duration 10s` on line 2; the given lines start at line 3. */
export function scn(...body: string[]): string {
  return lines('scenario "s" {', '  duration 10s', ...body, '}');
}

export function compile(src: string, options: CompileOptions = {}): CompileResult {
  return compileText('t.scn', src, options);
}

export function describeDiagnostics(diagnostics: readonly Diagnostic[]): string {
  return diagnostics.map((d) => `${d.code} ${d.span.file}:${d.span.line}:${d.span.col} ${d.message}${d.hint === undefined ? '' : ` (${d.hint})`}`).join('\n') || '(none)';
}

/** Compiles and asserts there is no diagnostic at all; returns the plans. */
export function plansOf(t: ExecutionContext, src: string, options: CompileOptions = {}): Plan[] {
  const result = compile(src, options);
  t.deepEqual(result.diagnostics, [], describeDiagnostics(result.diagnostics));
  t.true(result.ok);
  return result.plans;
}

/** Compiles a source that must give exactly one plan and no diagnostics. */
export function planOf(t: ExecutionContext, src: string, options: CompileOptions = {}): Plan {
  const plans = plansOf(t, src, options);
  t.is(plans.length, 1);
  return plans[0]!;
}

/** An in-memory file system keyed by absolute path (paths are resolved against the cwd, like the loader does). */
export function memoryFiles(files: Record<string, string>): (path: string) => string {
  const map = new Map(Object.entries(files).map(([path, text]) => [resolve(path), text]));
  return (path: string) => {
    const text = map.get(path);
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };
}
