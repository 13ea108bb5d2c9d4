// A process cell: the place where one live host of a plan runs its real
// programs. It owns
//   - a network namespace with eth0 (a tap whose fd LiveStack holds), the
//     host's MAC and address, and no default route (netdev.ts);
//   - /etc/hosts naming every host of the plan, and the plan's `file` items,
//     bind-mounted in each command's private mount namespace;
//   - cgroups livestack/<runId>/<host>: cpuset pinning, memory limit,
//     freezer (cgroups.ts), and a resctrl group where there is resctrl;
//   - the commands it started, whose output lines and exits it reports,
//     stamped with the owner's clock (virtual time).
// destroy() removes all of it; Cells (cells.ts) makes sure it happens.
//
// Commands start through ffi/build/ls-launch (ffi/c/launch/launch.c), which
// joins the cgroups before anything else, then enters the namespace.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, appendFileSync, closeSync, constants as fsConstants, mkdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { PlanHost } from '../../dsl/plan.ts';
import { closeRing, launcherPath } from '../../ffi/cell.ts';
import { hostMac } from '../model/packet.ts';
import { CellCgroups, detectCgroupLayout } from './cgroups.ts';
import type { FreezerPreference } from './cgroups.ts';
import { CellError, codeOf, messageOf } from './errors.ts';
import { assertSafeHostName, netnsName } from './names.ts';
import { createCellNetwork, deleteNetnsSync, macText } from './netdev.ts';
import type { CellNetwork } from './netdev.ts';
import { DEFAULT_RESCTRL_ROOT, ResctrlGroup } from './resctrl.ts';

/** A line longer than this (UTF-16 units) is delivered in pieces: a program
 * printing megabytes without a newline must not grow a buffer without bound. */
export const MAX_LINE_CHARS = 64 * 1024;
/** After a command exits, its exit is reported once its output pipes close,
 * or after this long if a background child of it keeps them open. */
const EXIT_REPORT_GRACE_MS = 200;
/** destroy() waits this long for the exit reports of killed commands. */
const DESTROY_EXIT_WAIT_MS = 2_000;
/** The plan's address prefix (198.18.0.0/15). */
export const DEFAULT_PREFIX_LENGTH = 15;
/** Searched for programs inside cells in addition to LiveStack's own PATH
 * (sbin holds ip, tc, sysctl). */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type CellHost = Pick<PlanHost, 'name' | 'index' | 'address' | 'memoryBytes' | 'cacheWays' | 'memBandwidthPercent' | 'env' | 'files'>;

export interface CellLine {
  readonly host: string;
  /** The command's name (PlanCommand.name). */
  readonly command: string;
  readonly stream: 'stdout' | 'stderr';
  /** Without its newline. */
  readonly line: string;
  /** now() when LiveStack read it. */
  readonly atNs: number;
}

export interface CellExit {
  readonly host: string;
  readonly command: string;
  readonly pid: number;
  /** Exit status; null if killed by a signal. 127: the command (or the
   * launcher: its message is the last stderr line) could not run. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** now() when LiveStack saw the exit. */
  readonly atNs: number;
}

export interface CellOptions {
  /** Run id (names.ts newRunId): carries the LiveStack pid. */
  readonly runId: string;
  /** The run's temp dir; the cell keeps its files in <runDir>/<host>/. */
  readonly runDir: string;
  readonly host: CellHost;
  /** Every host of the plan, for /etc/hosts. */
  readonly hosts: ReadonlyArray<Pick<PlanHost, 'name' | 'address'>>;
  /** Cores dedicated to this cell (cpuset.cpus). */
  readonly cpus: readonly number[];
  /** Memory nodes (cpuset.mems); default "0". */
  readonly mems?: string;
  readonly prefixLength?: number;
  readonly cgroupRoot?: string;
  readonly resctrlRoot?: string;
  /** First L3 way of this cell's cache_ways mask; default 0. */
  readonly cacheWayOffset?: number;
  /** Which freezer: 'auto' prefers cgroup v2's cgroup.freeze (faster). */
  readonly freezer?: FreezerPreference;
  /** The owner's clock for stamping lines and exits, ns; default: wall
   * time since the cell was created. */
  readonly now?: () => number;
  readonly onLine?: (line: CellLine) => void;
  readonly onExit?: (exit: CellExit) => void;
  /** One-line notices (a setting skipped on this machine, …). */
  readonly onNotice?: (message: string) => void;
  /** Path of ls-launch; default ffi/build/ls-launch (or $LIVESTACK_LAUNCH). */
  readonly launcher?: string;
}

export interface CellCommand {
  readonly name: string;
  /** The launcher's pid, which becomes /bin/sh and then the command's. */
  readonly pid: number;
  /** Resolves when the exit is reported (also after destroy()). */
  readonly exited: Promise<CellExit>;
}

export type CellState = 'running' | 'frozen' | 'destroyed';

// Bind targets that did not exist and were created (empty) so that a `file`
// item could be mounted over them, with how many live cells of this process
// use each: the last one removes it again.
const createdTargets = new Map<string, number>();
/** In the run's temp dir: one created target per line, for cleanupStale()
 * when the run dies before it could remove them. */
export const CREATED_TARGETS_FILE = 'created-targets';

export class Cell {
  readonly host: string;
  readonly index: number;
  readonly address: string;
  readonly mac: string;
  /** Network namespace name (ip netns list). */
  readonly netns: string;
  readonly netnsPath: string;
  /** The tap's fd; frames written here arrive at the cell's eth0. */
  readonly tapFd: number;
  /** The ring of frames the cell sends, stamped when they leave (ffi/cell.ts openRing). */
  readonly ring: unknown;
  readonly cgroups: CellCgroups;
  readonly resctrl: ResctrlGroup | null;
  /** The cell's files: hosts, and file contents to bind. */
  readonly dir: string;
  readonly hostsFile: string;
  readonly notices: readonly string[];

  private stateValue: CellState = 'running';
  private destroying: Promise<void> | null = null;
  private removed = false;
  private readonly binds: ReadonlyArray<{ source: string; target: string }>;
  private readonly ownTargets: readonly string[];
  private readonly children = new Map<number, { name: string; child: ChildProcess; exited: Promise<CellExit> }>();
  private readonly now: () => number;
  private readonly launcher: string;

  private constructor(
    private readonly options: CellOptions,
    parts: {
      network: CellNetwork;
      cgroups: CellCgroups;
      resctrl: ResctrlGroup | null;
      dir: string;
      hostsFile: string;
      binds: Array<{ source: string; target: string }>;
      ownTargets: string[];
      notices: string[];
      now: () => number;
      launcher: string;
    },
  ) {
    const host = options.host;
    this.host = host.name;
    this.index = host.index;
    this.address = host.address;
    this.mac = macText(hostMac(host.index));
    this.netns = parts.network.netns;
    this.netnsPath = parts.network.netnsPath;
    this.tapFd = parts.network.tapFd;
    this.ring = parts.network.ring;
    this.cgroups = parts.cgroups;
    this.resctrl = parts.resctrl;
    this.dir = parts.dir;
    this.hostsFile = parts.hostsFile;
    this.binds = parts.binds;
    this.ownTargets = parts.ownTargets;
    this.notices = parts.notices;
    this.now = parts.now;
    this.launcher = parts.launcher;
  }

  /** Builds the cell; on any failure undoes every step and throws CellError. */
  static async create(options: CellOptions): Promise<Cell> {
    const startNs = process.hrtime.bigint();
    const now = options.now ?? (() => Number(process.hrtime.bigint() - startNs));
    const host = options.host;
    assertSafeHostName(host.name);
    const launcher = options.launcher ?? launcherPath();
    try {
      accessSync(launcher, fsConstants.X_OK);
    } catch {
      throw new CellError(host.name, `the cell launcher ${launcher} is missing`, 'run npm run build:ffi');
    }
    const notices: string[] = [];
    const notice = (message: string): void => {
      notices.push(message);
      options.onNotice?.(message);
    };
    const undo: Array<() => void> = [];
    try {
      const dir = join(options.runDir, host.name);
      mkdirSync(dir, { recursive: true });
      undo.push(() => rmSync(dir, { recursive: true, force: true }));
      const hostsFile = join(dir, 'hosts');
      writeFileSync(hostsFile, hostsFileText(host.name, options.runId, options.hosts));
      const { binds, ownTargets } = prepareFiles(options, dir);
      undo.push(() => releaseTargets(ownTargets));
      // A machine without /etc/hosts gets an empty one to bind over, like
      // any missing `file` target (removed again with the last cell).
      if (!statSync('/etc/hosts', { throwIfNoEntry: false }) && claimTarget('/etc/hosts', options.runDir)) ownTargets.push('/etc/hosts');

      const layout = detectCgroupLayout(options.cgroupRoot, options.freezer);
      const cgroups = CellCgroups.create(layout, options.runId, host.name, {
        cpus: options.cpus,
        mems: options.mems ?? '0',
        memoryBytes: host.memoryBytes,
      });
      undo.push(() => {
        cgroups.killAll();
        cgroups.remove();
      });

      const resctrlSetup = ResctrlGroup.create(options.resctrlRoot ?? DEFAULT_RESCTRL_ROOT, options.runId, host.name, {
        cacheWays: host.cacheWays,
        memBandwidthPercent: host.memBandwidthPercent,
        cacheWayOffset: options.cacheWayOffset ?? 0,
      });
      resctrlSetup.notices.forEach(notice);
      const resctrl = resctrlSetup.group;
      if (resctrl) undo.push(() => resctrl.remove());

      const network = await createCellNetwork({
        host: host.name,
        netns: netnsName(options.runId, host.name),
        mac: macText(hostMac(host.index)),
        address: host.address,
        prefixLength: options.prefixLength ?? DEFAULT_PREFIX_LENGTH,
      });
      return new Cell(options, { network, cgroups, resctrl, dir, hostsFile, binds, ownTargets, notices, now, launcher });
    } catch (error) {
      for (const step of undo.reverse()) {
        try {
          step();
        } catch {
          // the original failure is what to report; cleanupStale finds the rest
        }
      }
      if (error instanceof CellError) throw error;
      throw new CellError(host.name, `cannot create the cell: ${messageOf(error)}`, 'run livestack doctor', { cause: error });
    }
  }

  get state(): CellState {
    return this.stateValue;
  }

  /**
   * Starts `/bin/sh -c command.command` inside the cell. env adds to (and
   * overrides) the host's env items; it is set by the launcher just before
   * exec, so LD_PRELOAD and the like apply to the command only. The
   * command's environment is otherwise minimal: PATH, HOME, LANG,
   * LIVESTACK_HOST / LIVESTACK_ADDRESS and LIVESTACK_DIR (the cell's own
   * scratch directory), not LiveStack's own.
   */
  start(command: { readonly name: string; readonly command: string }, env: Readonly<Record<string, string>> = {}): CellCommand {
    this.assertAlive('start a command');
    const args: string[] = [];
    for (const file of this.cgroups.procsFiles) args.push('--cgroup-procs', file);
    if (this.resctrl) args.push('--resctrl-tasks', this.resctrl.tasksFile);
    args.push('--netns', this.netnsPath, '--hosts', this.hostsFile, '--hostname', this.host, '--remount-sys', '--die-with-parent');
    for (const bind of this.binds) args.push('--bind', `${bind.source}:${bind.target}`);
    const extra = new Map<string, string>();
    for (const item of this.options.host.env) extra.set(item.name, item.value);
    for (const [name, value] of Object.entries(env)) extra.set(name, value);
    for (const [name, value] of extra) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new CellError(this.host, `environment variable name ${JSON.stringify(name)} is not valid`, 'use letters, digits and _');
      args.push('--env', `${name}=${value}`);
    }
    args.push('--', '/bin/sh', '-c', command.command);

    // detached: a session of its own, so a Ctrl-C at LiveStack's terminal
    // reaches LiveStack (which tears the cells down), not the commands.
    const child = spawn(this.launcher, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: this.baseEnv(),
    });
    const pid = child.pid;
    if (pid === undefined) {
      // spawn reports the reason asynchronously; the launcher was checked
      // at create(), so this is fork failing (EAGAIN, ENOMEM).
      throw new CellError(this.host, `cannot spawn ${this.launcher} for command ${command.name}`, 'the machine is out of processes or memory');
    }
    const exited = this.watch(child, pid, command.name);
    this.children.set(pid, { name: command.name, child, exited });
    return { name: command.name, pid, exited };
  }

  private baseEnv(): Record<string, string> {
    const path = [...(process.env.PATH ?? '').split(':'), ...SYSTEM_PATH.split(':')].filter((dir, i, all) => dir && all.indexOf(dir) === i);
    return {
      PATH: path.join(':'),
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
      LIVESTACK_HOST: this.host,
      LIVESTACK_ADDRESS: this.address,
      // a scratch directory of the cell's own (a database's datadir, say), removed with the cell
      LIVESTACK_DIR: this.dir,
    };
  }

  private watch(child: ChildProcess, pid: number, name: string): Promise<CellExit> {
    const onLine = this.options.onLine;
    for (const stream of ['stdout', 'stderr'] as const) {
      const splitter = new LineSplitter((line) => onLine?.({ host: this.host, command: name, stream, line, atNs: this.now() }));
      const readable = child[stream]!;
      readable.on('data', (chunk: Buffer) => splitter.push(chunk));
      readable.on('end', () => splitter.end());
      readable.on('error', () => splitter.end());
    }
    return new Promise<CellExit>((resolve) => {
      let report: CellExit | null = null;
      let done = false;
      const deliver = (): void => {
        if (done || !report) return;
        done = true;
        this.children.delete(pid);
        this.options.onExit?.(report);
        resolve(report);
      };
      child.on('error', (error) => {
        // Only spawn failures land here; give them the shape of an exit.
        onLine?.({ host: this.host, command: name, stream: 'stderr', line: `livestack: ${messageOf(error)}`, atNs: this.now() });
        report ??= { host: this.host, command: name, pid, code: 127, signal: null, atNs: this.now() };
        deliver();
      });
      child.on('exit', (code, signal) => {
        report = { host: this.host, command: name, pid, code, signal, atNs: this.now() };
        setTimeout(deliver, EXIT_REPORT_GRACE_MS).unref();
      });
      child.on('close', deliver);
    });
  }

  /** Freezes every process of the cell; returns the ns until the kernel
   * said it was done. */
  freeze(): number {
    this.assertAlive('freeze');
    const elapsedNs = this.cgroups.setFrozen(true);
    this.stateValue = 'frozen';
    return elapsedNs;
  }

  thaw(): number {
    this.assertAlive('thaw');
    const elapsedNs = this.cgroups.setFrozen(false);
    this.stateValue = 'running';
    return elapsedNs;
  }

  /** Sends signal to every process of the cell (and to launchers that have
   * not joined its cgroups yet); a frozen cell is thawed so that they act
   * on it. Returns the pids signalled. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): number[] {
    this.assertAlive('kill');
    const sent = new Set(this.cgroups.signal(signal));
    this.stateValue = 'running';
    for (const pid of this.children.keys()) {
      if (sent.has(pid)) continue;
      try {
        process.kill(pid, signal);
        sent.add(pid);
      } catch (error) {
        if (codeOf(error) !== 'ESRCH') throw error;
      }
    }
    return [...sent];
  }

  /** Every process in the cell's cgroups. */
  pids(): number[] {
    return this.cgroups.pids();
  }

  /** Commands started and not yet reported as exited. */
  running(): CellCommand[] {
    return [...this.children].map(([pid, { name, exited }]) => ({ name, pid, exited }));
  }

  /**
   * Kills every process, waits (bounded) for their exit reports, and
   * removes everything the cell made. Never leaves anything behind unless
   * the kernel refuses (then throws CellError saying what is left; the
   * next cleanupStale() removes it).
   */
  destroy(): Promise<void> {
    if (this.stateValue === 'destroyed') return Promise.resolve();
    this.destroying ??= this.destroyOnce();
    return this.destroying;
  }

  private async destroyOnce(): Promise<void> {
    const exits = [...this.children.values()].map((entry) => entry.exited);
    let failure: unknown = null;
    try {
      this.killEverything();
    } catch (error) {
      failure = error;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise((resolve) => (timer = setTimeout(resolve, DESTROY_EXIT_WAIT_MS)))]);
    clearTimeout(timer);
    this.removeEverything(failure);
  }

  /** destroy() for exit and signal handlers: the same teardown, without
   * waiting for exit reports. */
  destroySync(): void {
    if (this.removed) return;
    let failure: unknown = null;
    try {
      this.killEverything();
    } catch (error) {
      failure = error;
    }
    this.removeEverything(failure);
  }

  private killEverything(): void {
    // Launchers not yet in the cgroups first, so none joins after the sweep.
    // They are unreaped children of this process: their pids are not reused.
    for (const pid of this.children.keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (error) {
        if (codeOf(error) !== 'ESRCH') throw error;
      }
    }
    this.cgroups.killAll();
  }

  /** Runs once, also when destroySync() (an exit handler) comes in while
   * destroy() waits for exit reports: fds are never closed twice (a second
   * close could hit an fd number reused by someone else). */
  private removeEverything(earlier: unknown): void {
    if (this.removed) return;
    this.removed = true;
    this.stateValue = 'destroyed';
    const failures: string[] = earlier ? [messageOf(earlier)] : [];
    const attempt = (step: () => void): void => {
      try {
        step();
      } catch (error) {
        failures.push(messageOf(error));
      }
    };
    attempt(() => this.resctrl?.remove());
    attempt(() => this.cgroups.remove());
    attempt(() => {
      const problem = deleteNetnsSync(this.netns);
      if (problem) throw new Error(problem);
    });
    attempt(() => closeRing(this.ring));
    attempt(() => closeSync(this.tapFd));
    attempt(() => releaseTargets(this.ownTargets));
    attempt(() => rmSync(this.dir, { recursive: true, force: true }));
    if (failures.length) throw new CellError(this.host, `teardown incomplete: ${failures.join('; ')}`, 'livestack removes leftovers before the next run');
  }

  private assertAlive(what: string): void {
    if (this.stateValue === 'destroyed' || this.destroying) throw new CellError(this.host, `cannot ${what}: the cell was destroyed`, 'this is a LiveStack bug');
  }
}

/** /etc/hosts of a cell: localhost, then every host of the plan. */
export function hostsFileText(host: string, runId: string, hosts: ReadonlyArray<Pick<PlanHost, 'name' | 'address'>>): string {
  const lines = [
    `# /etc/hosts of LiveStack cell ${host} (run ${runId})`,
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...hosts.map((other) => `${other.address}\t${other.name}`),
  ];
  return lines.join('\n') + '\n';
}

/**
 * Writes each `file "PATH" = "CONTENT"` item of the host to the cell's dir
 * and plans a bind mount of it over PATH. PATH must be absolute. If PATH is
 * missing but its parent directory exists, an empty file is created there
 * (recorded in the run's created-targets list, removed again by the last
 * cell of this process that uses it, or by cleanupStale() after a crash);
 * a missing parent is an error: LiveStack creates no directories on the
 * machine. A directory at PATH is an error too (a file cannot cover it).
 * Binds come after /etc/hosts, so a `file "/etc/hosts"` item wins.
 */
function prepareFiles(options: CellOptions, dir: string): { binds: Array<{ source: string; target: string }>; ownTargets: string[] } {
  const host = options.host.name;
  const binds: Array<{ source: string; target: string }> = [];
  const ownTargets: string[] = [];
  if (options.host.files.length === 0) return { binds, ownTargets };
  const filesDir = join(dir, 'files');
  mkdirSync(filesDir, { recursive: true });
  try {
    options.host.files.forEach((file, i) => {
      const target = file.path;
      if (!isAbsolute(target)) throw new CellError(host, `file ${JSON.stringify(target)} is not an absolute path`, 'write the full path, e.g. "/etc/app.conf"');
      const source = join(filesDir, String(i));
      writeFileSync(source, file.content);
      const existing = statSync(target, { throwIfNoEntry: false });
      if (existing?.isDirectory()) throw new CellError(host, `file ${target}: a directory is there`, 'choose the path of a file');
      if (!existing) {
        const parent = statSync(dirname(target), { throwIfNoEntry: false });
        if (!parent?.isDirectory()) {
          throw new CellError(host, `file ${target}: its directory ${dirname(target)} does not exist on this machine`, 'create it, or choose a path in an existing directory');
        }
        if (claimTarget(target, options.runDir)) ownTargets.push(target);
      } else if (createdTargets.has(target) && claimTarget(target, options.runDir)) {
        ownTargets.push(target);
      }
      binds.push({ source, target });
    });
  } catch (error) {
    releaseTargets(ownTargets);
    throw error;
  }
  return { binds, ownTargets };
}

/** Creates an empty bind target (or counts one more user of one this
 * process created). false: someone else created it meanwhile: theirs. */
function claimTarget(target: string, runDir: string): boolean {
  const users = createdTargets.get(target) ?? 0;
  if (users === 0) {
    try {
      writeFileSync(target, '', { flag: 'wx', mode: 0o644 });
    } catch (error) {
      if (codeOf(error) === 'EEXIST') return false;
      throw error;
    }
    appendFileSync(join(runDir, CREATED_TARGETS_FILE), `${target}\n`);
  }
  createdTargets.set(target, users + 1);
  return true;
}

function releaseTargets(targets: readonly string[]): void {
  for (const target of targets) {
    const users = createdTargets.get(target);
    if (users === undefined) continue;
    if (users > 1) {
      createdTargets.set(target, users - 1);
      continue;
    }
    createdTargets.delete(target);
    removeIfEmptyFile(target);
  }
}

/** Removes a file LiveStack created, unless someone wrote into it since. */
export function removeIfEmptyFile(path: string): boolean {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile() || stat.size !== 0) return false;
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Splits a byte stream into lines (UTF-8, \n or \r\n), at most
 * MAX_LINE_CHARS each; end() delivers an unterminated last line. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly deliver: (line: string) => void) {}

  push(chunk: Buffer): void {
    const parts = (this.pending + this.decoder.write(chunk)).split('\n');
    this.pending = parts.pop()!;
    for (const line of parts) this.emit(line);
    while (this.pending.length >= MAX_LINE_CHARS) {
      this.deliver(this.pending.slice(0, MAX_LINE_CHARS));
      this.pending = this.pending.slice(MAX_LINE_CHARS);
    }
  }

  end(): void {
    this.pending += this.decoder.end();
    if (this.pending.length > 0) this.emit(this.pending);
    this.pending = '';
  }

  private emit(line: string): void {
    this.deliver(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
