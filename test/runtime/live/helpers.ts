// Shared helpers for the live cell tests: they use real namespaces, taps and
// cgroups (we run as root). A missing capability skips them, unless
// LIVESTACK_REQUIRE_LIVE=1 says this machine must have it: then they fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { compileText } from '../../../dsl/compile.ts';
import type { Plan } from '../../../dsl/plan.ts';
import { launcherPath } from '../../../ffi/cell.ts';
import type { Cell, CellExit, CellLine } from '../../../runtime/live/cell.ts';
import { Cells } from '../../../runtime/live/cells.ts';
import type { CellsOptions } from '../../../runtime/live/cells.ts';

export const REQUIRE_LIVE = process.env.LIVESTACK_REQUIRE_LIVE === '1';

export function onPath(program: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')].some((dir) => {
    try {
      accessSync(`${dir}/${program}`, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What this machine lacks for live cells (empty: everything is there). */
export function liveProblems(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('not root');
  if (!onPath('ip')) problems.push('ip (iproute2) is not installed');
  if (!existsSync('/dev/net/tun')) problems.push('/dev/net/tun is missing');
  if (!existsSync('/sys/fs/cgroup/freezer/cgroup.procs') && !existsSync('/sys/fs/cgroup/unified/cgroup.procs') && !existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    problems.push('no cgroup freezer');
  }
  if (!existsSync(launcherPath())) problems.push(`${launcherPath()} is not built (npm run build:ffi)`);
  return problems;
}

const problems = liveProblems();

/** The test function for live tests: serial (they share two cores and time
 * freezes); skipped where the machine cannot run cells, unless required. */
export const liveTest = problems.length === 0 || REQUIRE_LIVE ? test.serial : test.skip;

/** Registers the test that states (and, when required, enforces) the
 * capabilities, so a skip is never silent. */
export function capabilityTest(): void {
  test('live capabilities are present (LIVESTACK_REQUIRE_LIVE=1 makes their absence a failure)', (t) => {
    if (problems.length && REQUIRE_LIVE) t.fail(`live cells cannot run here: ${problems.join('; ')}`);
    else if (problems.length) t.log(`skipping live tests: ${problems.join('; ')}`);
    t.pass();
  });
}

/** A small plan: a with memory, an env item and a file; b with resctrl
 * settings (ignored on machines without resctrl). */
export function smallPlan(filePath: string): Plan {
  const result = compileText(
    'cells.scn',
    [
      'scenario "cells" {',
      '  duration 1s',
      `  host a { kind process  cpus 1  memory 256MiB  env GREETING = "hello from a"  file "${filePath}" = "alpha" }`,
      '  host b { kind process  cpus 1  cache_ways 2  mem_bandwidth 50% }',
      '  link a -- b { latency 1ms }',
      '}',
    ].join('\n'),
  );
  if (!result.ok) throw new Error(`test plan does not compile: ${JSON.stringify(result.diagnostics)}`);
  return result.plans[0]!;
}

export interface Harness {
  readonly cells: Cells;
  readonly lines: CellLine[];
  readonly exits: CellExit[];
  readonly notices: string[];
}

/** A Cells registry that records lines, exits and notices, and is destroyed
 * when the test ends, also when it fails. */
export function harness(t: ExecutionContext, plan: Plan, options: Partial<CellsOptions> = {}): Harness {
  const lines: CellLine[] = [];
  const exits: CellExit[] = [];
  const notices: string[] = [];
  const cells = new Cells({
    hosts: plan.hosts,
    prefixLength: plan.network.prefixLength,
    onLine: (line) => lines.push(line),
    onExit: (exit) => exits.push(exit),
    onNotice: (message) => notices.push(message),
    ...options,
  });
  t.teardown(() => cells.destroyAll());
  return { cells, lines, exits, notices };
}

let commandNumber = 0;

/** Runs a shell command in a cell and returns its exit and output (bounded). */
export async function runIn(
  h: Harness,
  cell: Cell,
  command: string,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ exit: CellExit; stdout: string[]; stderr: string[] }> {
  const name = `t${++commandNumber}`;
  const started = cell.start({ name, command }, options.env ?? {});
  const exit = await within(started.exited, options.timeoutMs ?? 10_000, `command ${JSON.stringify(command)} in ${cell.host}`);
  const mine = h.lines.filter((line) => line.host === cell.host && line.command === name);
  return {
    exit,
    stdout: mine.filter((line) => line.stream === 'stdout').map((line) => line.line),
    stderr: mine.filter((line) => line.stream === 'stderr').map((line) => line.line),
  };
}

export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until condition() is truthy; returns its value, or throws after timeoutMs. */
export async function waitFor<T>(condition: () => T | null | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** A CPU hog on every core of the machine (the cells' cores and the controller's): stress-ng, as the
 *  issue asks, in its own process group so that it and its workers end by that group's id. */
export function cpuHogs(t: { teardown: (fn: () => void) => void; fail: (message: string) => void }): ChildProcess | null {
  if (!onPath('stress-ng')) {
    if (REQUIRE_LIVE) t.fail('stress-ng is missing (apt-get install -y stress-ng)');
    return null;
  }
  const hog = spawn('stress-ng', ['--cpu', String(availableParallelism()), '--timeout', '600s', '--quiet'], { stdio: 'ignore', detached: true });
  t.teardown(() => {
    try {
      process.kill(-hog.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return hog;
}
