// The `livestack` command line. Exit codes (ARCHITECTURE.md): 0 ok,
// 1 scenario error or failed expectation, 2 usage error, 3 missing capability.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import chalk from 'chalk';
import type { CompileResult } from '../dsl/compile.ts';
import { formatDiagnostic, type Diagnostic } from '../dsl/diagnostics.ts';
import { MAX_DIAGNOSTICS } from '../dsl/limits.ts';
import { lookupUnit } from '../dsl/units.ts';
import { planHash, planToJson, canonicalJson } from '../dsl/plan.ts';
import { keyValues, parseArgs, UsageError, type FlagSpec } from './args.ts';
import { tokenFromText } from '../runtime/sync/wire.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_ENVIRONMENT = 3;

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  color: boolean;
}

const defaultIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  color: process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined,
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

interface Command {
  summary: string;
  usage: string;
  help: string;
  flags: Record<string, FlagSpec>;
  run: (args: ReturnType<typeof parseArgs>, io: Io) => Promise<number> | number;
}

const compileFlags: Record<string, FlagSpec> = {
  set: { value: true, repeat: true },
  scenario: { value: true },
  'agent-cpus': { value: true, repeat: true },
  help: { short: 'h' },
};

function compileOptions(args: ReturnType<typeof parseArgs>) {
  const agentCpus: Record<string, number> = {};
  for (const [name, text] of Object.entries(keyValues(args.flags.get('agent-cpus'), 'agent-cpus'))) {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--agent-cpus ${name}=${text}: the core count must be a whole number ≥ 1`);
    agentCpus[name] = n;
  }
  const scenario = args.flags.get('scenario')?.[0];
  return {
    set: keyValues(args.flags.get('set'), 'set'),
    agentCpus,
    ...(scenario === undefined ? {} : { scenario }),
  };
}

/** The compiler (Chevrotain builds its parser on load, ~1.5 s): loaded only by the commands that compile, not by `agent`. */
async function compileFile(...args: Parameters<typeof import('../dsl/compile.ts').compileFile>): Promise<CompileResult> {
  const { compileFile: compile } = await import('../dsl/compile.ts');
  return compile(...args);
}

function printDiagnostics(result: CompileResult, io: Io): void {
  const shown = result.diagnostics.slice(0, MAX_DIAGNOSTICS);
  for (const d of shown) io.err(colorize(formatDiagnostic(d, result.program.sources), d, io) + '\n');
  if (result.diagnostics.length > shown.length) io.err(`… and ${result.diagnostics.length - shown.length} more diagnostics\n`);
}

function colorize(text: string, d: Diagnostic, io: Io): string {
  if (!io.color) return text;
  const [head, ...rest] = text.split('\n');
  const paint = d.severity === 'error' ? chalk.red : chalk.yellow;
  return [paint(head!), ...rest.map((line) => (line.trimStart().startsWith('=') ? chalk.cyan(line) : line))].join('\n');
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const commands: Record<string, Command> = {
  check: {
    summary: 'check scenarios and report every problem',
    usage: 'livestack check FILE… [--set NAME=VALUE]… [--scenario NAME] [--agent-cpus AGENT=N]…',
    help: `Parses and checks each FILE (and what it imports) against the language
contract, expanding ranges, templates, params and every sweep point. Prints each
problem as file:line:col, a code (LSxxxx), a caret excerpt and a hint.
Exits 1 if any file has an error (warnings alone exit 0).

Options:
  --set NAME=VALUE      override a param (or pin a sweep) while checking
  --scenario NAME       check only this scenario of each file
  --agent-cpus A=N      cores of agent A, to warn when placed hosts ask for more`,
    flags: compileFlags,
    async run(args, io) {
      if (args.positionals.length === 0) throw new UsageError('check needs at least one FILE');
      const options = compileOptions(args);
      let failed = false;
      for (const file of args.positionals) {
        const result = await compileFile(file, options);
        printDiagnostics(result, io);
        const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
        const warnings = result.diagnostics.length - errors;
        if (errors > 0) {
          failed = true;
          io.err(`${file}: ${count(errors, 'error')}${warnings > 0 ? `, ${count(warnings, 'warning')}` : ''}\n`);
          continue;
        }
        const scenarios = new Set(result.plans.map((p) => p.scenario)).size;
        const first = result.plans[0];
        const shape =
          first === undefined
            ? 'no scenario (a library for import)'
            : [count(scenarios, 'scenario'), count(result.plans.length, 'plan'), count(first.hosts.length, 'host'), `${first.switches.length} switch${first.switches.length === 1 ? '' : 'es'}`, count(first.links.length, 'link')].join(', ');
        io.out(`${io.color ? chalk.green('ok') : 'ok'} ${file}: ${shape}${warnings > 0 ? `, ${count(warnings, 'warning')}` : ''}\n`);
      }
      return failed ? EXIT_FAILED : EXIT_OK;
    },
  },
  plan: {
    summary: 'print the compiled plan as JSON',
    usage: 'livestack plan FILE [--set NAME=VALUE]… [--scenario NAME] [--point N] [--hash]',
    help: `Compiles FILE to its plan: hosts with resolved resources, commands and
addresses (198.18.0.0/15), switches, links (integer ns, bytes, bits/s), the
timeline, metrics, expectations, placement, seed and sweep point. The JSON is
canonical (sorted keys): the same file gives byte-identical output, and
"planHash" (sha256) identifies it. One plan prints as an object; several
(sweep points, several scenarios) print as an array.

Options:
  --set NAME=VALUE   override a param, or pin a sweep to one value
  --scenario NAME    only this scenario
  --point N          only sweep point N (0-based)
  --hash             print only the plan hash(es), one per line`,
    flags: { ...compileFlags, point: { value: true }, hash: {} },
    async run(args, io) {
      if (args.positionals.length !== 1) throw new UsageError('plan needs exactly one FILE');
      const result = await compileFile(args.positionals[0]!, { ...compileOptions(args), requireScenario: true });
      printDiagnostics(result, io);
      if (!result.ok) return EXIT_FAILED;
      let plans = result.plans;
      const point = args.flags.get('point')?.[0];
      if (point !== undefined) {
        const n = Number(point);
        if (!Number.isInteger(n) || n < 0 || n >= plans.length) throw new UsageError(`--point must be 0…${plans.length - 1}`);
        plans = [plans[n]!];
      }
      if (args.flags.has('hash')) {
        for (const plan of plans) io.out(planHash(plan) + '\n');
      } else if (plans.length === 1) {
        io.out(planToJson(plans[0]!));
      } else {
        io.out(canonicalJson(plans.map((plan) => ({ ...plan, planHash: planHash(plan) })), 2) + '\n');
      }
      return EXIT_OK;
    },
  },
  doctor: {
    summary: 'report what this machine can do (KVM, cgroups, resctrl, netns, tools)',
    usage: 'livestack doctor [--json]',
    help: `Probes this machine for what live runs need: KVM (and whether a guest kernel
can run), cgroup v1/v2 controllers and the freezer, resctrl, network namespaces
and tap devices, the CPU count, QEMU and the tools tests use. Each line says
ok or missing, and for what is missing, what to do.`,
    flags: { json: {}, help: { short: 'h' } },
    async run(args, io) {
      const { runDoctor, formatDoctor } = await import('../runtime/doctor.ts');
      const report = runDoctor();
      io.out(args.flags.has('json') ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report));
      return EXIT_OK;
    },
  },
  run: {
    summary: 'run a scenario and write a run directory',
    usage: 'livestack run FILE [-o DIR] [--set NAME=VALUE]… [--seed N] [--until D] [--scenario NAME] [--partitions N | --agents HOST:PORT,… --token-file FILE] [--quiet]',
    help: `Compiles FILE and simulates every plan (each sweep point), then writes the run
directory: plan.json, environment.json, summary.txt and summary.json (per host,
per link, metrics, expectations, trace hash), metrics.csv, logs/HOST.log,
events.log and pcap/LINK.pcap for links marked capture (virtual timestamps).
An interrupted run (Ctrl-C) keeps its partial results, marked INCOMPLETE.
Exits 1 when an expectation fails.

Options:
  -o, --out DIR      run directory (default runs/<scenario>-<timestamp>)
  --set NAME=VALUE   override a param, or pin a sweep to one value
  --seed N           override the scenario's seed
  --until D          simulate only until virtual time D (e.g. 2s)
  --partitions N     split the model into N partitions (same results, a test of the sync)
  --quiet            no progress line

Distributed runs (model hosts; see docs/wire.md):
  --agents LIST        run on these agents (HOST:PORT,HOST:PORT,…), one partition each;
                       start each with livestack agent --listen HOST:PORT --token-file FILE
  --agents-file FILE   agents one a line: HOST:PORT or NAME HOST:PORT (# comments)
  --token-file FILE    the shared token (same file content on every agent; ≥ 16 bytes)
  --agent-timeout D    an agent silent this long is declared hung (default 10s)
  --direct             agents send events and time advances to each other (one hop
                       per window instead of a round trip through this process;
                       the agents must reach each other at the addresses given)
Hosts with \`place … on "NAME"\` go to the agent started with --name NAME; the
rest is balanced, cutting at the highest-latency links (the window is the
smallest latency of a cut link). Results, trace hash and logs are those of a
local run. If an agent dies, hangs or cannot be reached, the run stops with an
error naming it and the virtual time, keeps partial results (INCOMPLETE) and
exits 1.`,
    flags: {
      ...compileFlags, out: { value: true, short: 'o' }, seed: { value: true }, until: { value: true }, partitions: { value: true }, quiet: {},
      agents: { value: true, repeat: true }, 'agents-file': { value: true }, 'token-file': { value: true }, 'agent-timeout': { value: true }, direct: {},
    },
    async run(args, io) {
      if (args.positionals.length !== 1) throw new UsageError('run needs exactly one FILE');
      const result = await compileFile(args.positionals[0]!, { ...compileOptions(args), requireScenario: true });
      printDiagnostics(result, io);
      if (!result.ok) return EXIT_FAILED;
      let plans = result.plans;
      const seed = args.flags.get('seed')?.[0];
      if (seed !== undefined) {
        const n = Number(seed);
        if (!Number.isSafeInteger(n) || n < 0) throw new UsageError('--seed needs a whole number ≥ 0');
        plans = plans.map((p) => ({ ...p, seed: n }));
      }
      const until = args.flags.get('until')?.[0];
      if (until !== undefined) {
        const ns = parseDurationNs(until);
        if (ns === undefined) throw new UsageError(`--until needs a duration with a unit, e.g. 2s (got '${until}')`);
        plans = plans.map((p) => ({ ...p, durationNs: p.durationNs === null ? ns : Math.min(p.durationNs, ns) }));
      }
      const partitionsText = args.flags.get('partitions')?.[0];
      const partitions = partitionsText === undefined ? undefined : Number(partitionsText);
      if (partitions !== undefined && (!Number.isInteger(partitions) || partitions < 1)) throw new UsageError('--partitions needs a whole number ≥ 1');
      const distributed = await distributedOptions(args, io);
      if (distributed !== undefined && partitions !== undefined) throw new UsageError('--partitions and --agents exclude each other: with agents, each agent runs one partition');
      const { runPlans, sweepTable, RunFailure } = await import('../runtime/run.ts');
      const { defaultRunPath } = await import('../runtime/report/rundir.ts');
      const { UnsupportedPlanError } = await import('../runtime/model/network.ts');
      const { CellError } = await import('../runtime/live/errors.ts');
      const { summaryText, expectationLine } = await import('../runtime/report/summary.ts');
      const outDir = args.flags.get('out')?.[0] ?? defaultRunPath(plans[0]!.scenario);
      const tty = process.stderr.isTTY === true && process.env['CI'] === undefined && !args.flags.has('quiet');
      let stop = false;
      const onSignal = () => {
        if (stop) process.exit(130);
        stop = true;
        io.err('\nstopping at the end of this window (Ctrl-C again to abort without results)…\n');
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const { points, interrupted } = await runPlans(plans, {
          outDir,
          version: version(),
          baseDir: dirname(resolve(args.positionals[0]!)),
          ...(partitions === undefined ? {} : { partitions }),
          ...(distributed === undefined ? {} : { distributed }),
          ...(tty ? { progress: (line: string, final: boolean) => io.err(final ? `\r\x1b[K${line}\n` : `\r\x1b[K${line}`) } : {}),
          shouldStop: () => stop,
        });
        if (points.length === 1) io.out(summaryText(points[0]!.summary));
        else {
          io.out(sweepTable(points));
          for (const p of points) for (const e of p.summary.expectations) if (!e.passed) io.out(`point ${p.plan.sweep?.index ?? 0}: ${expectationLine(e)}\n`);
        }
        io.out(`run directory: ${outDir}${interrupted ? ' (INCOMPLETE: interrupted)' : ''}\n`);
        if (interrupted) return 130;
        return points.every((p) => p.summary.passed) ? EXIT_OK : EXIT_FAILED;
      } catch (error) {
        if (error instanceof RunFailure) {
          io.err(`livestack run: ${error.message}\npartial results: ${error.dir} (INCOMPLETE)\n`);
          return EXIT_FAILED;
        }
        if (error instanceof UnsupportedPlanError) {
          io.err(`livestack run: ${error.message}\n`);
          return EXIT_ENVIRONMENT;
        }
        if (error instanceof CellError) {
          // a live host that cannot be set up: the message names the scenario line, the host and what to do
          io.err(`livestack run: ${error.message}\n`);
          return EXIT_FAILED;
        }
        throw error;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  },
  agent: {
    summary: 'serve partitions of distributed runs (livestack run --agents)',
    usage: 'livestack agent --listen ADDR:PORT --token-file FILE [--name NAME] [--heartbeat-timeout D]',
    help: `Listens for a coordinator (livestack run --agents …) and runs the partition
of the plan it is given, one run at a time, until stopped (Ctrl-C, SIGTERM).
Prints "listening on ADDR:PORT" once ready (port 0 picks a free port). Every
connection must prove it knows the token (HMAC challenge both ways; the token
never crosses the network); malformed, oversized, unauthenticated or
wrong-version connections are logged on stderr and dropped. When a run ends or
its coordinator goes away, everything of that run is dropped, process cells
included. Model and process hosts (process hosts where \`livestack doctor\` says
cells can run); no vm hosts yet. The protocol is described in docs/wire.md.

Options:
  --listen ADDR:PORT       where to listen (e.g. 0.0.0.0:7070; 127.0.0.1:0 for tests)
  --token-file FILE        the shared token (≥ 16 bytes; the same on the coordinator)
  --name NAME              this agent's name for \`place … on "NAME"\` (default: the host name)
  --heartbeat-timeout D    drop a coordinator silent this long (default 10s)`,
    flags: { listen: { value: true }, 'token-file': { value: true }, name: { value: true }, 'heartbeat-timeout': { value: true }, help: { short: 'h' } },
    async run(args, io) {
      if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
      const listen = args.flags.get('listen')?.[0];
      if (listen === undefined) throw new UsageError('--listen ADDR:PORT is required (e.g. --listen 0.0.0.0:7070)');
      const { parseAgentAddress } = await import('../runtime/sync/coordinator.ts');
      let address;
      try {
        address = listen.endsWith(':0') ? { host: listen.slice(0, -2).replace(/^\[|\]$/g, ''), port: 0 } : parseAgentAddress(listen);
      } catch (error) {
        throw new UsageError(`--listen: ${(error as Error).message}`);
      }
      const token = readToken(args, io);
      if (token === undefined) throw new UsageError('--token-file FILE is required (the same token as the coordinator\'s)');
      const timeoutText = args.flags.get('heartbeat-timeout')?.[0];
      const timeoutMs = timeoutText === undefined ? undefined : durationMs(timeoutText, '--heartbeat-timeout');
      const { hostname } = await import('node:os');
      const name = args.flags.get('name')?.[0] ?? hostname();
      const { Agent } = await import('../runtime/sync/agent.ts');
      const { runDoctor } = await import('../runtime/doctor.ts');
      const agent = new Agent({
        host: address.host, port: address.port, token, name,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        log: (line) => io.err(`${new Date().toISOString()} ${line}\n`),
        capabilities: () => {
          const doctor = runDoctor();
          return { livestack: version(), doctor, liveHosts: doctor.ok, kvmGuests: doctor.ok && doctor.capabilities.kvmGuests.status === 'ok' };
        },
      });
      let bound;
      try {
        bound = await agent.listen();
      } catch (error) {
        io.err(`livestack agent: cannot listen on ${listen}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`);
        return EXIT_ENVIRONMENT;
      }
      const shown = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
      io.out(`livestack agent ${name} listening on ${shown}:${bound.port}\n`);
      // the handler stays until the agent has closed: while it listens, the cells' own signal handler
      // (runtime/live/cells.ts) leaves the teardown to agent.close() instead of killing the process
      let stop = () => {};
      await new Promise<void>((resolve) => {
        stop = () => resolve();
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await agent.close();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.err(`livestack agent ${name}: stopped\n`);
      return EXIT_OK;
    },
  },
  report: notYet('render a run directory as a report', 'livestack report DIR', 'the simulation core (run directories)'),
};

function notYet(summary: string, usage: string, waitingFor: string): Command {
  return {
    summary: `${summary} (not yet available)`,
    usage,
    help: `Not yet available in this version: it lands with ${waitingFor}.`,
    flags: {},
    run(_args, io) {
      io.err(`livestack ${usage.split(' ')[1]}: not yet available in this version; it lands with ${waitingFor}.\nUse livestack check / plan meanwhile.\n`);
      return EXIT_ENVIRONMENT;
    },
  };
}

function readToken(args: ReturnType<typeof parseArgs>, io: Io): Buffer | undefined {
  const file = args.flags.get('token-file')?.[0];
  if (file === undefined) return undefined;
  try {
    if ((statSync(file).mode & 0o077) !== 0) io.err(`warning: ${file} is readable by other users; chmod 600 ${file}\n`);
  } catch {
    // reported by the read below
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--token-file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return tokenFromText(text, file);
  } catch (error) {
    throw new UsageError(`--token-file: ${(error as Error).message}`);
  }
}

function durationMs(text: string, flag: string): number {
  const ns = parseDurationNs(text);
  if (ns === undefined || ns < 1_000_000) throw new UsageError(`${flag} needs a duration of at least 1ms with a unit, e.g. 10s (got '${text}')`);
  return ns / 1_000_000;
}

async function distributedOptions(args: ReturnType<typeof parseArgs>, io: Io) {
  const list = args.flags.get('agents');
  const file = args.flags.get('agents-file')?.[0];
  if (list === undefined && file === undefined) {
    for (const flag of ['token-file', 'agent-timeout', 'direct']) if (args.flags.has(flag)) throw new UsageError(`--${flag} needs --agents or --agents-file`);
    return undefined;
  }
  const { parseAgentList, parseAgentsFile } = await import('../runtime/sync/coordinator.ts');
  const agents = [];
  try {
    for (const text of list ?? []) agents.push(...parseAgentList(text));
    if (file !== undefined) agents.push(...parseAgentsFile(readFileSync(file, 'utf8'), file));
  } catch (error) {
    throw new UsageError((error as NodeJS.ErrnoException).code === 'ENOENT' ? `--agents-file ${file}: no such file` : (error as Error).message);
  }
  if (agents.length === 0) throw new UsageError('--agents needs at least one HOST:PORT');
  const token = readToken(args, io);
  if (token === undefined) throw new UsageError('--agents needs --token-file FILE (the token the agents were started with)');
  const timeoutText = args.flags.get('agent-timeout')?.[0];
  return { agents, token, direct: args.flags.has('direct'), ...(timeoutText === undefined ? {} : { timeoutMs: durationMs(timeoutText, '--agent-timeout') }) };
}

function parseDurationNs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([a-zµ]+)$/.exec(text.trim());
  if (match === null) return undefined;
  const unit = lookupUnit(match[2]!);
  if (unit?.kind !== 'duration') return undefined;
  return Math.round(Number(match[1]) * unit.factor);
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return `LiveStack ${version()}: full-stack live simulation under one virtual time

Usage: livestack COMMAND [options]

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'livestack COMMAND --help' for a command's options.
Exit codes: 0 ok, 1 scenario error or failed expectation, 2 usage error, 3 missing capability.
`;
}

export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    const command = topic === undefined ? undefined : commands[topic];
    io.out(command === undefined ? mainHelp() : `Usage: ${command.usage}\n\n${command.help}\n`);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.out(`livestack ${version()}\n`);
    return EXIT_OK;
  }
  const command = commands[name];
  if (command === undefined) {
    const known = Object.keys(commands);
    const guess = known.find((k) => k.startsWith(name.slice(0, 2)));
    io.err(`livestack: unknown command '${name}'${guess === undefined ? '' : `; did you mean '${guess}'?`}\n${mainHelp()}`);
    return EXIT_USAGE;
  }
  try {
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`Usage: ${command.usage}\n\n${command.help}\n`);
      return EXIT_OK;
    }
    return await command.run(parseArgs(rest, command.flags), io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`livestack ${name}: ${error.message}\nUsage: ${command.usage}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
