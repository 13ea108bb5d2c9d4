// Leftovers of runs whose LiveStack process died without tearing its cells
// down (SIGKILL, a native crash, a power cut of the machine aside). Every
// name carries the owner's pid (names.ts): what belongs to a pid that is
// no longer alive is removed; what belongs to a live process, this one
// included, is never touched. The runtime calls cleanupStale() before every
// run.
//
// A recycled pid makes a dead run look alive: its leftovers then wait for
// a later cleanup, they are never removed from under a live run.
import { readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CREATED_TARGETS_FILE, removeIfEmptyFile } from './cell.ts';
import { detectCgroupLayout, hierarchies, killCgroupProcesses, removeCgroupTree } from './cgroups.ts';
import { codeOf, messageOf } from './errors.ts';
import { CGROUP_TOP, DEFAULT_NETNS_DIR, DEFAULT_SHM_ROOT, stalePid } from './names.ts';
import { deleteLinkSync, deleteNetnsSync } from './netdev.ts';
import { DEFAULT_RESCTRL_ROOT, removeResctrlGroup } from './resctrl.ts';

export interface StaleOptions {
  readonly cgroupRoot?: string;
  readonly resctrlRoot?: string;
  readonly shmRoot?: string;
  readonly netnsDir?: string;
  /** Whether a pid is alive; default: kill(pid, 0). */
  readonly isAlive?: (pid: number) => boolean;
}

export interface StaleReport {
  /** Processes killed (in stale cgroups or namespaces). */
  readonly processes: number[];
  readonly cgroups: string[];
  readonly netns: string[];
  readonly taps: string[];
  readonly resctrlGroups: string[];
  /** Temp dirs and the bind targets their runs had created. */
  readonly files: string[];
  /** What could not be removed, with why. */
  readonly problems: string[];
}

export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return codeOf(error) !== 'ESRCH';
  }
}

const listDir = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch (error) {
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return [];
    throw error;
  }
};

/** Removes every leftover of dead runs. Synchronous (ip runs a few ms per
 * namespace); collects problems instead of stopping at the first. */
export function cleanupStale(options: StaleOptions = {}): StaleReport {
  const isAlive = options.isAlive ?? pidAlive;
  const dead = (pid: number | null): pid is number => pid !== null && pid !== process.pid && !isAlive(pid);
  const report = { processes: [] as number[], cgroups: [] as string[], netns: [] as string[], taps: [] as string[], resctrlGroups: [] as string[], files: [] as string[], problems: [] as string[] };
  const attempt = (what: string, step: () => void): void => {
    try {
      step();
    } catch (error) {
      report.problems.push(`${what}: ${messageOf(error)}`);
    }
  };

  // 1. Processes and cgroups: kill through every hierarchy at once (a task
  // frozen by v1 dies only when thawed), then remove the directories.
  attempt('cgroups', () => {
    const layout = detectCgroupLayout(options.cgroupRoot);
    const staleRuns = new Map<string, string[]>();
    for (const hierarchy of hierarchies(layout)) {
      for (const run of listDir(join(hierarchy, CGROUP_TOP))) {
        if (!dead(stalePid.cgroupRun(run))) continue;
        const dir = join(hierarchy, CGROUP_TOP, run);
        if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
        staleRuns.set(run, [...(staleRuns.get(run) ?? []), dir]);
      }
    }
    for (const [run, runDirs] of staleRuns) {
      const cellDirs = runDirs.flatMap((dir) => [dir, ...listDir(dir).map((name) => join(dir, name)).filter((path) => statSync(path, { throwIfNoEntry: false })?.isDirectory())]);
      attempt(`run ${run}`, () => report.processes.push(...killCgroupProcesses(cellDirs)));
      for (const dir of runDirs) {
        attempt(dir, () => {
          removeCgroupTree(dir);
          report.cgroups.push(dir);
        });
      }
    }
    // the top (livestack/) stays, empty or not: removing it raced with other runs' set-up (names.ts)
  });

  // 2. Network namespaces: kill what still lives in one (moved out of the
  // cgroups, or started before joining them), then delete it.
  const netnsDir = options.netnsDir ?? DEFAULT_NETNS_DIR;
  const staleNetns = listDir(netnsDir).filter((name) => dead(stalePid.netns(name)));
  if (staleNetns.length) {
    attempt('namespace members', () => {
      const inodes = new Map<number, string>();
      for (const name of staleNetns) {
        const stat = statSync(join(netnsDir, name), { throwIfNoEntry: false });
        if (stat) inodes.set(stat.ino, name);
      }
      for (const pid of processesInNetns(new Set(inodes.keys()))) {
        try {
          process.kill(pid, 'SIGKILL');
          report.processes.push(pid);
        } catch (error) {
          if (codeOf(error) !== 'ESRCH') throw error;
        }
      }
    });
    for (const name of staleNetns) {
      attempt(`netns ${name}`, () => {
        const problem = deleteNetnsSync(name);
        if (problem) throw new Error(problem);
        report.netns.push(name);
      });
    }
  }

  // 3. Taps in the root namespace (only if made persistent by something
  // else: ours vanish with their fd).
  for (const name of listDir('/sys/class/net').filter((link) => dead(stalePid.tap(link)))) {
    attempt(`tap ${name}`, () => {
      const problem = deleteLinkSync(name);
      if (problem) throw new Error(problem);
      report.taps.push(name);
    });
  }

  // 4. resctrl groups.
  const resctrlRoot = options.resctrlRoot ?? DEFAULT_RESCTRL_ROOT;
  for (const name of listDir(resctrlRoot).filter((group) => dead(stalePid.resctrl(group)))) {
    attempt(`resctrl ${name}`, () => {
      removeResctrlGroup(join(resctrlRoot, name));
      report.resctrlGroups.push(join(resctrlRoot, name));
    });
  }

  // 5. Temp dirs, and the empty files their runs created as bind targets.
  const shmRoot = options.shmRoot ?? DEFAULT_SHM_ROOT;
  for (const name of listDir(shmRoot).filter((entry) => dead(stalePid.tempDir(entry)))) {
    const dir = join(shmRoot, name);
    attempt(dir, () => {
      for (const target of readCreatedTargets(join(dir, CREATED_TARGETS_FILE))) {
        if (removeIfEmptyFile(target)) report.files.push(target);
      }
      rmSync(dir, { recursive: true, force: true });
      report.files.push(dir);
    });
  }
  return report;
}

function readCreatedTargets(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((line) => line.startsWith('/'));
  } catch (error) {
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return [];
    throw error;
  }
}

/** Pids whose network namespace is one of the given (nsfs inode numbers). */
function processesInNetns(inodes: ReadonlySet<number>): number[] {
  const pids: number[] = [];
  for (const entry of listDir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const link = readlinkSync(`/proc/${pid}/ns/net`);
      const inode = /^net:\[(\d+)\]$/.exec(link);
      if (inode && inodes.has(Number(inode[1]))) pids.push(pid);
    } catch {
      // exited meanwhile, or a kernel thread without a readable link
    }
  }
  return pids;
}
