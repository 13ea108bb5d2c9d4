// A small argv parser: flags with values (`--set k=v`, `--set=k=v`), booleans,
// repeated flags and positionals; unknown flags are usage errors (exit 2).

export class UsageError extends Error {}

export interface FlagSpec {
  /** takes a value */
  value?: boolean;
  /** may repeat: values are collected */
  repeat?: boolean;
  short?: string;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string[]>;
}

export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, FlagSpec>>): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  const shorts = new Map(Object.entries(spec).flatMap(([name, s]) => (s.short === undefined ? [] : [[s.short, name] as const])));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const long = shorts.get(arg.slice(1));
      if (long === undefined) throw new UsageError(`unknown option ${arg}`);
      name = long;
    }
    const flag = spec[name];
    if (flag === undefined) throw new UsageError(`unknown option --${name}`);
    let value = 'true';
    if (flag.value) {
      const next = inline ?? argv[++i];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      value = next;
    } else if (inline !== undefined) {
      throw new UsageError(`--${name} takes no value`);
    }
    const list = flags.get(name) ?? [];
    if (list.length > 0 && !flag.repeat) throw new UsageError(`--${name} given twice`);
    list.push(value);
    flags.set(name, list);
  }
  return { positionals, flags };
}

/** `--set a=1 --set b=2ms` → { a: '1', b: '2ms' } */
export function keyValues(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of values ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} needs NAME=VALUE, got '${entry}'`);
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
