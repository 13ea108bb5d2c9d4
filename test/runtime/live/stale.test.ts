// Teardown when LiveStack does not get to call destroy(): signals and exit
// (the Cells handlers), and SIGKILL (cleanupStale() before the next run).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { cleanupStale } from '../../../runtime/live/stale.ts';
import { capabilityTest, harness, liveTest, smallPlan, waitFor, within } from './helpers.ts';

capabilityTest();

const fixture = fileURLToPath(new URL('./fixtures/cell-child.ts', import.meta.url));

interface ChildCell {
  pid: number;
  runId: string;
  runDir: string;
  netns: string;
  cgroupDirs: string[];
  pids: number[];
  state: string;
}

interface Child {
  readonly cell: ChildCell;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts the fixture and waits for its description (bounded). The child
 * is SIGKILLed and the machine cleaned in teardown, whatever happened. */
async function startChild(t: ExecutionContext, args: string[]): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await within(exited, 5_000, 'fixture exit');
    cleanupStale();
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const line = await within(
    Promise.race([
      waitFor(() => (stdout.includes('\n') ? stdout.split('\n')[0] : null), 30_000, 'fixture ready'),
      exited.then((exit) => Promise.reject(new Error(`fixture exited early (${JSON.stringify(exit)}): ${stderr}`))),
    ]),
    35_000,
    'fixture ready',
  );
  return { cell: JSON.parse(line) as ChildCell, exited, kill: (signal) => child.kill(signal) };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};
const netnsList = (): string => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

function assertNothingLeft(t: ExecutionContext, cell: ChildCell, target: string): void {
  t.false(netnsList().includes(cell.netns), 'network namespace removed');
  for (const dir of cell.cgroupDirs) t.false(existsSync(dir), `${dir} removed`);
  for (const dir of cell.cgroupDirs) t.false(existsSync(dir.replace(/\/[^/]+$/, '')), `run level of ${dir} removed`);
  for (const pid of cell.pids) t.false(alive(pid), `process ${pid} killed`);
  t.false(existsSync(cell.runDir), 'temp dir removed');
  t.false(existsSync(target), 'created bind target removed');
}

for (const freezer of ['v1', 'v2'] as const) {
  liveTest(`SIGKILLed with a frozen cell (${freezer} freezer): leftovers stay, cleanupStale() removes them and nothing of live runs`, async (t) => {
    const target = `/etc/ls-stale-test-${process.pid}-${freezer}.conf`;
    // A live run of this process, which cleanupStale() must not touch.
    const plan = smallPlan(`/etc/ls-stale-live-${process.pid}.conf`);
    const own = harness(t, plan);
    const mine = await own.cells.create(plan.hosts[1]!, { cpus: [1] });

    const child = await startChild(t, [freezer, 'yes', 'no', target]);
    t.is(child.cell.state, 'frozen');
    t.true(child.cell.pids.length >= 3);
    child.kill('SIGKILL');
    t.is((await within(child.exited, 5_000, 'child death')).signal, 'SIGKILL');

    // What a crash leaves: the namespace, the cgroups, the processes (frozen),
    // the temp dir and the bind target. The tap died with its fd.
    t.true(netnsList().includes(child.cell.netns));
    for (const dir of child.cell.cgroupDirs) t.true(existsSync(dir), dir);
    const survivors = child.cell.pids.filter(alive);
    t.true(survivors.length >= 2, `background processes survive their LiveStack (${survivors.join(',')})`);
    t.true(existsSync(child.cell.runDir));
    t.true(existsSync(target));
    t.notRegex(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }), new RegExp(`ls${child.cell.pid}-`));
    // A persistent leftover tap named after the dead pid (ours never persist,
    // but a crash between creation and move elsewhere could leave one).
    const leftoverTap = `ls${child.cell.pid}-99`;
    execFileSync('ip', ['tuntap', 'add', 'dev', leftoverTap, 'mode', 'tap']);

    const report = cleanupStale();
    t.deepEqual(report.problems, []);
    t.true(report.netns.includes(child.cell.netns));
    t.deepEqual(report.taps, [leftoverTap]);
    t.true(survivors.every((pid) => report.processes.includes(pid)), `killed ${report.processes.join(',')}`);
    t.true(report.files.includes(target));
    t.true(report.files.includes(child.cell.runDir));
    assertNothingLeft(t, child.cell, target);
    t.false(existsSync(`/sys/class/net/${leftoverTap}`));

    // The live run is intact.
    t.true(netnsList().includes(mine.netns));
    for (const dir of mine.cgroups.dirs) t.true(existsSync(dir), dir);
    t.true(existsSync(own.cells.runDir));
    t.deepEqual(cleanupStale(), { processes: [], cgroups: [], netns: [], taps: [], resctrlGroups: [], files: [], problems: [] }, 'a second cleanup finds nothing');
  });
}

liveTest('SIGTERM: the Cells handler tears every cell down and the process dies of SIGTERM', async (t) => {
  const target = `/etc/ls-sigterm-test-${process.pid}.conf`;
  const child = await startChild(t, ['v1', 'yes', 'no', target]);
  t.true(existsSync(target));
  child.kill('SIGTERM');
  const exit = await within(child.exited, 15_000, 'child exit');
  t.deepEqual(exit, { code: null, signal: 'SIGTERM' });
  assertNothingLeft(t, child.cell, target);
});

liveTest("SIGINT to a program with its own SIGINT policy: left to it; its process.exit() tears down", async (t) => {
  const target = `/etc/ls-sigint-test-${process.pid}.conf`;
  const child = await startChild(t, ['v2', 'yes', 'yes', target]);
  child.kill('SIGINT');
  const exit = await within(child.exited, 15_000, 'child exit');
  t.deepEqual(exit, { code: 3, signal: null });
  assertNothingLeft(t, child.cell, target);
});
