import { compileText } from '../../../dsl/compile.ts';
import type { Plan } from '../../../dsl/plan.ts';
import { simulate, type SimulationOptions, type SimulationResult } from '../../../runtime/simulation.ts';

export function planOf(source: string, set?: Record<string, string>): Plan {
  const result = compileText('test.scn', source, set === undefined ? {} : { set });
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`).join('\n'));
  return result.plans[0]!;
}

export async function run(source: string, options: SimulationOptions = {}): Promise<SimulationResult> {
  return simulate(planOf(source), options);
}

/** The key=value fields of the last log line of a host that starts with `prefix`. */
export function logFields(result: SimulationResult, host: string, prefix: string): Record<string, number> {
  const log = result.network.hosts.find((h) => h.name === host)!.log;
  const line = [...log].reverse().find((l) => l.line.startsWith(prefix));
  if (line === undefined) throw new Error(`no '${prefix}' line in ${host}'s log`);
  const fields: Record<string, number> = {};
  for (const [, key, value] of line.line.matchAll(/(\w+)=([-0-9.]+)/g)) fields[key!] = Number(value);
  return fields;
}

export function lines(result: SimulationResult, host: string, prefix: string): string[] {
  return result.network.hosts.find((h) => h.name === host)!.log.filter((l) => l.line.startsWith(prefix)).map((l) => l.line);
}
