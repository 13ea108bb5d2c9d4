// The cgroups of a cell: one directory livestack/<runId>/<host> in every
// hierarchy the cell uses, cpuset pinning, a memory limit, a freezer, and a
// teardown that kills every process and removes every directory.
//
// Per controller, cgroup v1 is used where that controller is mounted as v1
// (hybrid machines such as this one bind them all to v1), else cgroup v2 if
// its root offers the controller (it is then enabled in subtree_control on
// the way down). The cgroup2 hierarchy, where there is one, is always joined
// too: it costs nothing, offers cgroup.freeze and cgroup.kill, and is where
// a pure-v2 machine keeps everything.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, realpathSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_CGROUP_ROOT, probeCgroups } from '../../ffi/cgroup.ts';
import { setFrozenV1, setFrozenV2 } from '../../ffi/cell.ts';
import { CellError, codeOf, messageOf, sleepSync } from './errors.ts';
import { cgroupCellPath, cgroupRunPath } from './names.ts';

export const CGROUP_ROLES = ['cpuset', 'cpu', 'cpuacct', 'memory', 'pids', 'freezer'] as const;
export type CgroupRole = (typeof CGROUP_ROLES)[number];

/** The v2 controller that plays a role (cpuacct: cpu.stat is always there). */
const V2_CONTROLLER: Partial<Record<CgroupRole, string>> = { cpuset: 'cpuset', cpu: 'cpu', memory: 'memory', pids: 'pids' };

export type FreezerPreference = 'auto' | 'v1' | 'v2';

/** A freeze that takes longer is stuck (a task in uninterruptible sleep):
 * far above the ~0.1 ms usual and the 5–32 ms preemption tail. */
export const FREEZE_TIMEOUT_NS = 1_000_000_000;
/** Killing every process of a cell: SIGKILL is acted on within ms; a
 * process stuck in D state for longer is reported, not waited for forever. */
export const KILL_TIMEOUT_MS = 5_000;
/** Removing an emptied cgroup can fail with EBUSY for a moment while the
 * last tasks finish exiting. */
const RMDIR_RETRY_MS = 2_000;

export interface CgroupLayout {
  readonly root: string;
  /** v1 mount directory per role, for the roles mounted as v1 (roles that
   * share a mount, e.g. cpu,cpuacct, share the directory). */
  readonly v1: ReadonlyMap<CgroupRole, string>;
  /** The cgroup2 hierarchy, null if there is none. */
  readonly v2: string | null;
  /** Roles served by cgroup v2 controllers (not mounted as v1). */
  readonly v2Roles: ReadonlySet<CgroupRole>;
  readonly freezer: 'v1' | 'v2' | null;
}

const layouts = new Map<string, CgroupLayout>();
/** cpuacct.usage or cpu.stat, read in place (cpuUsageNs) */
const USAGE_BUFFER = Buffer.alloc(4096);

/** Which hierarchy serves which role under root (probed once per process). */
export function detectCgroupLayout(root: string = DEFAULT_CGROUP_ROOT, preference: FreezerPreference = 'auto'): CgroupLayout {
  const key = `${root}\0${preference}`;
  const known = layouts.get(key);
  if (known) return known;
  const probe = probeCgroups(root);
  if (probe.error && probe.v1.hierarchies === 0 && !probe.v2) {
    throw new CellError('', `cannot read cgroups under ${root}: ${probe.error.code}`, 'run livestack doctor');
  }
  const v1 = new Map<CgroupRole, string>();
  for (const role of CGROUP_ROLES) {
    if (!probe.v1.controllers[role]) continue;
    const dir = v1MountOf(root, role);
    if (dir) v1.set(role, dir);
  }
  const v2 = probe.v2?.path ?? null;
  const v2Roles = new Set<CgroupRole>();
  for (const role of CGROUP_ROLES) {
    const controller = V2_CONTROLLER[role];
    if (!v1.has(role) && controller && probe.v2?.controllers.includes(controller)) v2Roles.add(role);
  }
  if (!v1.has('cpuacct') && v2) v2Roles.add('cpuacct');
  let freezer: CgroupLayout['freezer'] = null;
  if (preference === 'v2' || (preference === 'auto' && probe.freezer.v2)) {
    if (!probe.freezer.v2 || !v2) throw new CellError('', `no cgroup v2 freezer (cgroup.freeze) under ${root}`, 'use the v1 freezer or a kernel >= 5.2');
    freezer = 'v2';
  } else if (preference === 'v1' || (preference === 'auto' && probe.freezer.v1)) {
    if (!v1.has('freezer')) throw new CellError('', `no v1 freezer hierarchy under ${root}`, `mount -t cgroup -o freezer freezer ${root}/freezer`);
    freezer = 'v1';
  }
  const layout: CgroupLayout = { root, v1, v2, v2Roles, freezer };
  layouts.set(key, layout);
  return layout;
}

/** The v1 mount holding a controller: a directory named after it, or one
 * whose comma-separated name lists it ("cpu,cpuacct"). */
function v1MountOf(root: string, role: CgroupRole): string | null {
  const candidates = [role, ...readdirSync(root).filter((name) => name.split(',').includes(role))];
  for (const name of candidates) {
    const dir = join(root, name);
    if (existsSync(join(dir, 'cgroup.procs'))) return realpathSync(dir);
  }
  return null;
}

/** Every distinct hierarchy a cell may have a directory in. */
export function hierarchies(layout: CgroupLayout): string[] {
  const dirs = new Set(layout.v1.values());
  if (layout.v2) dirs.add(layout.v2);
  return [...dirs];
}

export interface CgroupSettings {
  /** Cores the cell is pinned to (cpuset.cpus). */
  readonly cpus: readonly number[];
  /** Memory nodes (cpuset.mems), e.g. "0". */
  readonly mems: string;
  /** memory.limit_in_bytes (v1) / memory.max (v2); null = no limit. */
  readonly memoryBytes: number | null;
}

const readText = (path: string): string => readFileSync(path, 'utf8').trim();
/** Control files are written in place, never created ('r+'): a wrong path
 * fails instead of leaving a stray file. */
/** The largest CPU weights the kernel takes (sched/core.c MAX_SHARES; cgroup v2 CGROUP_WEIGHT_MAX). */
const CPU_SHARES_MAX = 262144;
const CPU_WEIGHT_MAX = 10000;
const levelsOf = (host: string, runId: string): string[] => cgroupCellPath(runId, host).split('/');

const writeControl = (path: string, text: string): void => writeFileSync(path, text, { flag: 'r+' });

/** Parses a cpu list such as "0-3,6". */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [first, last] = part.split('-').map(Number);
    for (let cpu = first!; cpu <= (last ?? first!); cpu++) cpus.push(cpu);
  }
  return cpus;
}

function readPids(procsFile: string): number[] {
  try {
    return readText(procsFile).split('\n').filter(Boolean).map(Number);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return [];
    throw error;
  }
}

/** mkdir that tolerates an existing directory and retries when a parent was
 * removed meanwhile by a concurrent teardown of another run. */
function ensureDirs(base: string, levels: readonly string[], prepare: (dir: string, parent: string) => void): string {
  for (let attempt = 0; ; attempt++) {
    try {
      let parent = base;
      for (const level of levels) {
        const dir = join(parent, level);
        try {
          mkdirSync(dir);
        } catch (error) {
          if (codeOf(error) !== 'EEXIST') throw error;
        }
        prepare(dir, parent);
        parent = dir;
      }
      return parent;
    } catch (error) {
      if (codeOf(error) !== 'ENOENT' || attempt >= 3) throw error;
    }
  }
}

/** Removes a cgroup directory; absent is fine, EBUSY is retried briefly. */
function removeCgroupDir(dir: string, retryMs: number): void {
  const deadline = Date.now() + retryMs;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) throw error;
      sleepSync(1);
    }
  }
}

/** Removes dir if nothing is left in it; shared levels (livestack/, a run
 * with other live cells) simply stay. */
function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (error) {
    const code = codeOf(error);
    if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw error;
  }
}

/**
 * Kills every process in the given cgroup directories: freeze (no more
 * forks), SIGKILL all, write cgroup.kill where there is one, thaw (a task
 * frozen by the v1 freezer cannot die), until every cgroup.procs is empty.
 * Works on any cgroup directory, also of a dead run (cleanupStale).
 * Returns the pids it signalled; throws if processes outlive timeoutMs.
 */
export function killCgroupProcesses(dirs: readonly string[], timeoutMs: number = KILL_TIMEOUT_MS): number[] {
  const signalled = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = new Set(dirs.flatMap((dir) => readPids(join(dir, 'cgroup.procs'))));
    if (pids.size === 0) return [...signalled];
    if (Date.now() > deadline) {
      throw new CellError('', `processes ${[...pids].join(', ')} survived SIGKILL for ${timeoutMs} ms in ${dirs.join(', ')}`, 'they are probably in uninterruptible sleep (D state); see /proc/PID/stack');
    }
    for (const dir of dirs) setFreezerQuietly(dir, true);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        signalled.add(pid);
      } catch (error) {
        if (codeOf(error) !== 'ESRCH') throw error;
      }
    }
    for (const dir of dirs) {
      if (existsSync(join(dir, 'cgroup.kill'))) {
        try {
          writeControl(join(dir, 'cgroup.kill'), '1');
        } catch {
          // best effort: the SIGKILLs above are what counts
        }
      }
      setFreezerQuietly(dir, false);
    }
    sleepSync(1);
  }
}

/** Writes a freezer state without waiting for it; failures are ignored
 * (this is the teardown path, which must go on). */
function setFreezerQuietly(dir: string, frozen: boolean): void {
  try {
    if (existsSync(join(dir, 'freezer.state'))) writeControl(join(dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
    else if (existsSync(join(dir, 'cgroup.freeze'))) writeControl(join(dir, 'cgroup.freeze'), frozen ? '1' : '0');
  } catch {
    // a freezer that cannot be written: SIGKILL still reaches running tasks
  }
}

/** Removes dir's subdirectories (depth first) and then dir. */
export function removeCgroupTree(dir: string, retryMs: number = RMDIR_RETRY_MS): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return;
    throw error;
  }
  for (const name of entries) {
    const child = join(dir, name);
    if (statSync(child, { throwIfNoEntry: false })?.isDirectory()) removeCgroupTree(child, retryMs);
  }
  removeCgroupDir(dir, retryMs);
}

export interface FreezerFds {
  readonly kind: 'v1' | 'v2';
  /** freezer.state (v1) or cgroup.freeze (v2), read-write. */
  readonly controlFd: number;
  /** cgroup.events (v2); -1 for v1. */
  readonly eventsFd: number;
}

/** The cgroup directories of one cell. */
export class CellCgroups {
  /** The cell's directory in every hierarchy it joined. */
  readonly dirs: readonly string[];
  /** The files the launcher writes its pid into (one per hierarchy). */
  readonly procsFiles: readonly string[];
  private readonly roleDirs: ReadonlyMap<CgroupRole, string>;
  private freezerFds: FreezerFds | null = null;
  private frozenState = false;

  private constructor(
    readonly layout: CgroupLayout,
    readonly host: string,
    readonly runId: string,
    roleDirs: Map<CgroupRole, string>,
    dirs: string[],
  ) {
    this.roleDirs = roleDirs;
    this.dirs = dirs;
    this.procsFiles = dirs.map((dir) => join(dir, 'cgroup.procs'));
  }

  /** Creates the directories and applies the settings; on failure removes
   * what it made and throws CellError. */
  static create(layout: CgroupLayout, runId: string, host: string, settings: CgroupSettings): CellCgroups {
    const made: string[] = [];
    const roleDirs = new Map<CgroupRole, string>();
    const levels = cgroupCellPath(runId, host).split('/');
    try {
      const byMount = new Map<string, string>();
      for (const [role, mount] of layout.v1) {
        let dir = byMount.get(mount);
        if (!dir) {
          dir = ensureDirs(mount, levels, inheritCpuset);
          byMount.set(mount, dir);
          made.push(dir);
        }
        roleDirs.set(role, dir);
      }
      if (layout.v2) {
        const controllers = [...layout.v2Roles].map((role) => V2_CONTROLLER[role]).filter((name): name is string => !!name);
        // Controllers must be enabled in every parent's subtree_control
        // (v2 root, livestack/, livestack/<runId>/) to reach the host level.
        const enable = (_dir: string, parent: string): void => {
          if (controllers.length) writeControl(join(parent, 'cgroup.subtree_control'), controllers.map((name) => `+${name}`).join(' '));
        };
        const dir = ensureDirs(layout.v2, levels, enable);
        made.push(dir);
        for (const role of layout.v2Roles) roleDirs.set(role, dir);
        if (layout.freezer === 'v2') roleDirs.set('freezer', dir);
      }
      const cells = new CellCgroups(layout, host, runId, roleDirs, made);
      cells.apply(settings);
      cells.openFreezer();
      cells.openUsage();
      return cells;
    } catch (error) {
      for (const dir of made) {
        try {
          removeCgroupDir(dir, RMDIR_RETRY_MS);
        } catch {
          // the original failure is what to report; cleanupStale finds the rest
        }
      }
      for (const hierarchy of hierarchies(layout)) {
        try {
          removeIfEmpty(join(hierarchy, cgroupRunPath(runId)));
        } catch {
          // as above
        }
      }
      if (error instanceof CellError) throw error;
      throw new CellError(host, `cannot set up cgroups (${levels.join('/')}) under ${layout.root}: ${messageOf(error)}`, 'run livestack doctor; cells need root', { cause: error });
    }
  }

  /** The cell's directory for a role, null if no hierarchy serves it. */
  dirFor(role: CgroupRole): string | null {
    return this.roleDirs.get(role) ?? null;
  }

  private v1(role: CgroupRole): boolean {
    return this.layout.v1.has(role);
  }

  private apply(settings: CgroupSettings): void {
    const cpusetDir = this.dirFor('cpuset');
    if (cpusetDir && settings.cpus.length > 0) {
      const available = new Set(parseCpuList(readText(join(cpusetDir, '..', this.v1('cpuset') ? 'cpuset.cpus' : 'cpuset.cpus.effective'))));
      const missing = settings.cpus.filter((cpu) => !available.has(cpu));
      if (missing.length) {
        throw new CellError(this.host, `cpus ${missing.join(',')} are not available to cells (cpuset ${[...available].join(',') || 'empty'})`, 'give each cell cores of this machine');
      }
      writeControl(join(cpusetDir, 'cpuset.cpus'), settings.cpus.join(','));
      writeControl(join(cpusetDir, 'cpuset.mems'), settings.mems);
    }
    this.preferOverHost(levelsOf(this.host, this.runId).length);
    const memoryDir = this.dirFor('memory');
    if (settings.memoryBytes !== null) {
      if (!memoryDir) throw new CellError(this.host, 'memory is set but no cgroup hierarchy has the memory controller', 'mount the memory controller (v1) or enable it in cgroup v2');
      writeControl(join(memoryDir, this.v1('memory') ? 'memory.limit_in_bytes' : 'memory.max'), String(settings.memoryBytes));
    }
  }

  /** A cell's clock runs while it is thawed, so time the host's other tasks take from its cores would
   *  count as the cell's own (measured: a busy loop next to a host hog read 0.87 s virtual for 0.55 s of
   *  CPU). Give the cell and its parents (livestack/, livestack/RUN/) the largest CPU weight, so that a
   *  contended core goes to the cell: v1 cpu.shares 262144 vs 1024 for a host task, v2 cpu.weight
   *  10000 vs 100. */
  private preferOverHost(levels: number): void {
    const cpuDir = this.dirFor('cpu');
    if (!cpuDir) return;
    const [file, value] = this.v1('cpu') ? ['cpu.shares', String(CPU_SHARES_MAX)] : ['cpu.weight', String(CPU_WEIGHT_MAX)];
    let dir = cpuDir;
    for (let i = 0; i < levels; i++, dir = dirname(dir)) {
      if (existsSync(join(dir, file))) writeControl(join(dir, file), value);
    }
  }

  private usageFd: { fd: number; kind: 'ns' | 'cpu.stat' } | null = null;
  private tasksFd = -1;

  /** The open file with the cell's CPU time, for C code that reads it at every freeze (ffi/live.ts). */
  usageHandle(): { fd: number; kind: 'ns' | 'cpu.stat' } | null {
    return this.usageFd;
  }

  /** The open list of the cell's threads (its cgroup v2 cgroup.threads), -1 if none: C code reads it from
   *  the start each time (ffi/c/live.c, "Yielding"). */
  tasksHandle(): number {
    return this.tasksFd;
  }

  openUsage(): void {
    const dir = this.dirFor('cpuacct');
    if (!dir) return;
    this.usageFd = this.v1('cpuacct') ? { fd: openSync(join(dir, 'cpuacct.usage'), 'r'), kind: 'ns' } : { fd: openSync(join(dir, 'cpu.stat'), 'r'), kind: 'cpu.stat' };
    // only cgroup v2 lists the threads as they are at each read: a v1 tasks file read again within a
    // second gives the list of its first read (the kernel keeps it), missing every thread started since
    if (this.layout.v2) {
      try {
        this.tasksFd = openSync(join(this.layout.v2, cgroupCellPath(this.runId, this.host), 'cgroup.threads'), 'r');
      } catch {
        this.tasksFd = -1; // no jumps for this cell: slower, not wrong
      }
    }
  }

  /** The open freezer files, for C code that freezes and thaws in its own loop (ffi/live.ts). */
  freezerHandle(): FreezerFds | null {
    return this.freezerFds;
  }

  private openFreezer(): void {
    const dir = this.dirFor('freezer');
    if (!dir || !this.layout.freezer) return;
    if (this.layout.freezer === 'v1') {
      this.freezerFds = { kind: 'v1', controlFd: openSync(join(dir, 'freezer.state'), 'r+'), eventsFd: -1 };
    } else {
      const controlFd = openSync(join(dir, 'cgroup.freeze'), 'r+');
      this.freezerFds = { kind: 'v2', controlFd, eventsFd: openSync(join(dir, 'cgroup.events'), 'r') };
    }
  }

  get freezer(): 'v1' | 'v2' | null {
    return this.freezerFds?.kind ?? null;
  }

  get frozen(): boolean {
    return this.frozenState;
  }

  /** Freezes (true) or thaws the cell and waits until the kernel says it is
   * done; returns the ns that took. */
  setFrozen(frozen: boolean, timeoutNs: number = FREEZE_TIMEOUT_NS): number {
    const fds = this.freezerFds;
    if (!fds) throw new CellError(this.host, 'this cell has no freezer', 'run livestack doctor (freezer)');
    const subject = `${this.host}: ${this.dirFor('freezer')}`;
    const change = (to: boolean): number =>
      fds.kind === 'v1' ? setFrozenV1(fds.controlFd, to, timeoutNs, subject) : setFrozenV2(fds.controlFd, fds.eventsFd, to, timeoutNs, subject);
    try {
      const elapsedNs = change(frozen);
      this.frozenState = frozen;
      return elapsedNs;
    } catch (error) {
      // A freeze that did not complete leaves tasks half frozen (some
      // stopped, none able to die): thaw them again before reporting.
      if (frozen) {
        try {
          change(false);
        } catch {
          // reported through the original error
        }
      }
      this.frozenState = false;
      throw error;
    }
  }

  /** Whether pid has joined every cgroup of the cell: the launcher joins them in procsFiles order
   *  (the freezer's last), so being in the last one means it is done joining. */
  joinedAll(pid: number): boolean {
    const last = this.procsFiles[this.procsFiles.length - 1];
    return last === undefined || readPids(last).includes(pid);
  }

  /** Every process (tgid) in any of the cell's cgroups. */
  pids(): number[] {
    return [...new Set(this.procsFiles.flatMap(readPids))].sort((a, b) => a - b);
  }

  /** CPU time the cell's tasks used, ns (cpuacct.usage, or v2 cpu.stat). */
  cpuUsageNs(): number | null {
    const usage = this.usageFd;
    if (usage === null) return null;
    // through the file opened once (openUsage): the scheduler reads it twice per cell and window
    const n = readSync(usage.fd, USAGE_BUFFER, 0, USAGE_BUFFER.length, 0);
    const text = USAGE_BUFFER.toString('latin1', 0, n);
    if (usage.kind === 'ns') return Number(text.trim());
    const stat = /^usage_usec (\d+)$/m.exec(text);
    return stat ? Number(stat[1]) * 1000 : null;
  }

  /** Sends signal to every process of the cell, then thaws it if frozen
   * (a frozen task acts on a signal only once thawed). Returns the pids. */
  signal(signal: NodeJS.Signals): number[] {
    const sent: number[] = [];
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
        sent.push(pid);
      } catch (error) {
        if (codeOf(error) !== 'ESRCH') throw error;
      }
    }
    if (this.frozenState) this.setFrozen(false);
    return sent;
  }

  /** Kills every process (see killCgroupProcesses); the cell ends thawed. */
  killAll(timeoutMs: number = KILL_TIMEOUT_MS): number[] {
    try {
      return killCgroupProcesses(this.dirs, timeoutMs);
    } finally {
      this.frozenState = false;
    }
  }

  /** Closes the freezer files and removes the directories (children
   * first), then the run and livestack/ levels if nothing else is in them.
   * Call after killAll. */
  remove(): void {
    if (this.freezerFds) {
      closeSync(this.freezerFds.controlFd);
      if (this.freezerFds.eventsFd >= 0) closeSync(this.freezerFds.eventsFd);
      this.freezerFds = null;
    }
    if (this.tasksFd >= 0) {
      closeSync(this.tasksFd);
      this.tasksFd = -1;
    }
    if (this.usageFd) {
      closeSync(this.usageFd.fd);
      this.usageFd = null;
    }
    const failures: string[] = [];
    for (const dir of this.dirs) {
      try {
        removeCgroupTree(dir);
      } catch (error) {
        failures.push(`${dir}: ${messageOf(error)}`);
      }
    }
    for (const hierarchy of hierarchies(this.layout)) {
      try {
        removeIfEmpty(join(hierarchy, cgroupRunPath(this.runId)));
      } catch (error) {
        failures.push(`${hierarchy}: ${messageOf(error)}`);
      }
    }
    if (failures.length) throw new CellError(this.host, `cannot remove cgroups: ${failures.join('; ')}`, 'livestack cleans them up before the next run');
  }
}

/** A new v1 cpuset has empty cpus and mems and accepts no task: every
 * level inherits its parent's until the cell's own are written. */
function inheritCpuset(dir: string, parent: string): void {
  if (!existsSync(join(dir, 'cpuset.cpus'))) return;
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (readText(join(dir, file)) === '') writeControl(join(dir, file), readText(join(parent, file)));
  }
}

/** Directory name of the sentinel: a dot, so no plan host (an identifier)
 * can have it. */
export const FREEZER_SENTINEL = 'frozen.sentinel';

/**
 * v1 freezer only: an empty cgroup held FROZEN for the whole run. The kernel
 * enables a static key when the count of freezing cgroups goes 0 → 1 and
 * disables it on 1 → 0; patching kernel text costs ms on this machine kind
 * (every freeze/thaw of a lone cell pays it: ~5–10 ms instead of tens of µs).
 * Held frozen, the key stays on and cells freeze on the fast path.
 */
export class FreezerSentinel {
  private constructor(readonly dir: string) {}

  /** null unless the layout uses the v1 freezer. */
  static hold(layout: CgroupLayout, runId: string): FreezerSentinel | null {
    const mount = layout.v1.get('freezer');
    if (layout.freezer !== 'v1' || !mount) return null;
    const dir = ensureDirs(mount, [...cgroupRunPath(runId).split('/'), FREEZER_SENTINEL], () => {});
    try {
      writeControl(join(dir, 'freezer.state'), 'FROZEN');
    } catch (error) {
      removeCgroupDir(dir, RMDIR_RETRY_MS);
      throw new CellError('', `cannot freeze the freezer sentinel ${dir}: ${messageOf(error)}`, 'run livestack doctor (freezer)', { cause: error });
    }
    return new FreezerSentinel(dir);
  }

  /** Removes it (an empty cgroup goes away frozen or not). */
  release(): void {
    removeCgroupDir(this.dir, RMDIR_RETRY_MS);
  }
}

/** Removes livestack/<runId> and livestack/ in every hierarchy where they
 * are empty (after the last cell of a run). */
export function removeRunCgroups(layout: CgroupLayout, runId: string): void {
  for (const hierarchy of hierarchies(layout)) {
    removeIfEmpty(join(hierarchy, cgroupRunPath(runId)));
  }
}
