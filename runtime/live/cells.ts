// The cells of one run, and the guarantee that they are torn down: on
// destroyAll(), on SIGINT/SIGTERM/SIGHUP, and on process exit. What even
// this cannot catch (SIGKILL, a crash in native code) cleanupStale()
// (stale.ts) removes before the next run.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PlanHost } from '../../dsl/plan.ts';
import { Cell } from './cell.ts';
import type { CellExit, CellHost, CellLine, CellOptions } from './cell.ts';
import { FreezerSentinel, detectCgroupLayout, removeRunCgroups } from './cgroups.ts';
import type { CgroupLayout, FreezerPreference } from './cgroups.ts';
import { CellError, messageOf } from './errors.ts';
import { DEFAULT_SHM_ROOT, newRunId, runTempDirName } from './names.ts';

export interface CellsOptions {
  /** Every host of the plan (for /etc/hosts in each cell). */
  readonly hosts: ReadonlyArray<Pick<PlanHost, 'name' | 'address'>>;
  /** Plan.network.prefixLength; default 15. */
  readonly prefixLength?: number;
  /** Default: a new one carrying this process's pid. */
  readonly runId?: string;
  /** Where the run's temp dir livestack-<runId> goes; default /dev/shm. */
  readonly shmRoot?: string;
  readonly cgroupRoot?: string;
  readonly resctrlRoot?: string;
  readonly freezer?: FreezerPreference;
  readonly launcher?: string;
  readonly now?: () => number;
  readonly onLine?: (line: CellLine) => void;
  readonly onExit?: (exit: CellExit) => void;
  /** Default: each distinct notice once on stderr. */
  readonly onNotice?: (message: string) => void;
  /** Install the SIGINT/SIGTERM/SIGHUP/exit handlers while cells exist
   * (default true). */
  readonly handleSignals?: boolean;
  /** With the v1 freezer, hold an empty cgroup frozen for the run so that
   * freezing takes the kernel's fast path (default true; FreezerSentinel). */
  readonly freezerSentinel?: boolean;
}

/** Where each cell runs. */
export interface CellPlacement {
  /** Cores dedicated to the cell. */
  readonly cpus: readonly number[];
  readonly mems?: string;
  readonly cacheWayOffset?: number;
}

export class Cells {
  readonly runId: string;
  /** The run's temp dir (hosts files, file contents, created-targets). */
  readonly runDir: string;
  private readonly cells = new Map<string, Cell>();
  private readonly creating = new Set<string>();
  private readonly noticed = new Set<string>();
  private guarded = false;
  private layout: CgroupLayout | null = null;
  private sentinel: FreezerSentinel | null = null;

  constructor(private readonly options: CellsOptions) {
    this.runId = options.runId ?? newRunId();
    this.runDir = join(options.shmRoot ?? DEFAULT_SHM_ROOT, runTempDirName(this.runId));
  }

  /** Creates the cell of a host. */
  async create(host: CellHost, placement: CellPlacement): Promise<Cell> {
    if (this.cells.has(host.name) || this.creating.has(host.name)) {
      throw new CellError(host.name, 'a cell for this host exists already in this run', 'this is a LiveStack bug');
    }
    this.creating.add(host.name);
    this.guard();
    try {
      // others may traverse it, not list it: a cell's commands may run as another user (PostgreSQL
      // refuses root), and they reach their clock page and scratch directory through it
      mkdirSync(this.runDir, { recursive: true, mode: 0o711 });
      chmodSync(this.runDir, 0o711);
      if (!this.layout) {
        this.layout = detectCgroupLayout(this.options.cgroupRoot, this.options.freezer);
        if (this.options.freezerSentinel !== false) this.sentinel = FreezerSentinel.hold(this.layout, this.runId);
      }
      const options: CellOptions = {
        runId: this.runId,
        runDir: this.runDir,
        host,
        hosts: this.options.hosts,
        cpus: placement.cpus,
        ...(placement.mems === undefined ? {} : { mems: placement.mems }),
        ...(placement.cacheWayOffset === undefined ? {} : { cacheWayOffset: placement.cacheWayOffset }),
        ...pick(this.options, ['prefixLength', 'cgroupRoot', 'resctrlRoot', 'freezer', 'launcher', 'now', 'onLine', 'onExit']),
        onNotice: (message) => this.notice(message),
      };
      const cell = await Cell.create(options);
      this.cells.set(host.name, cell);
      return cell;
    } finally {
      this.creating.delete(host.name);
      if (this.cells.size === 0 && this.creating.size === 0) {
        // The first cell failed: nothing of the run may stay behind.
        this.finish([]);
      }
    }
  }

  get(host: string): Cell | undefined {
    return this.cells.get(host);
  }

  get all(): Cell[] {
    return [...this.cells.values()];
  }

  /** Destroys every cell (concurrently) and the run's temp dir. Throws one
   * CellError naming what could not be removed, after trying everything. */
  async destroyAll(): Promise<void> {
    const cells = this.all;
    const results = await Promise.allSettled(cells.map((cell) => cell.destroy()));
    this.finish(results.flatMap((result) => (result.status === 'rejected' ? [messageOf(result.reason)] : [])));
  }

  /** destroyAll() for exit and signal handlers. */
  destroyAllSync(): void {
    const failures: string[] = [];
    for (const cell of this.all) {
      try {
        cell.destroySync();
      } catch (error) {
        failures.push(messageOf(error));
      }
    }
    this.finish(failures);
  }

  /** Removes the run-level parts (sentinel, livestack/<runId>, temp dir,
   * handlers) once no cell is left or being made. */
  private finish(failures: string[]): void {
    this.cells.clear();
    if (this.creating.size === 0) {
      const attempt = (what: string, step: () => void): void => {
        try {
          step();
        } catch (error) {
          failures.push(`${what}: ${messageOf(error)}`);
        }
      };
      const sentinel = this.sentinel;
      this.sentinel = null;
      if (sentinel) attempt(sentinel.dir, () => sentinel.release());
      const layout = this.layout;
      this.layout = null;
      if (layout) attempt('cgroups', () => removeRunCgroups(layout, this.runId));
      attempt(this.runDir, () => rmSync(this.runDir, { recursive: true, force: true }));
      this.unguard();
    }
    // Each failure carries its own remedy already.
    if (failures.length) throw new CellError('', `run ${this.runId}: ${failures.join('; ')}`, '');
  }

  private notice(message: string): void {
    if (this.options.onNotice) {
      this.options.onNotice(message);
      return;
    }
    if (this.noticed.has(message)) return;
    this.noticed.add(message);
    process.stderr.write(`livestack: ${message}\n`);
  }

  private guard(): void {
    if (this.guarded || this.options.handleSignals === false) return;
    this.guarded = true;
    guardedRuns.add(this);
    installHandlers();
  }

  private unguard(): void {
    if (!this.guarded) return;
    this.guarded = false;
    guardedRuns.delete(this);
    if (guardedRuns.size === 0) removeHandlers();
  }
}

function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}

// ---- process-wide teardown --------------------------------------------------

const guardedRuns = new Set<Cells>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let handlersInstalled = false;

function destroyEverySync(): void {
  for (const run of [...guardedRuns]) {
    try {
      run.destroyAllSync();
    } catch (error) {
      process.stderr.write(`livestack: ${messageOf(error)}\n`);
    }
  }
}

/**
 * A signal: if nobody else listens for it, tear every cell down and die of
 * the signal as if there had been no handler (exit status 128+n). If the
 * program has its own handler (the CLI stops a run gracefully on the first
 * Ctrl-C), the policy is its own: the run's normal teardown or the exit
 * handler below destroys the cells.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  destroyEverySync();
  removeHandlers();
  process.kill(process.pid, signal);
}

function onExit(): void {
  destroyEverySync();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.on('exit', onExit);
}

function removeHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  process.off('exit', onExit);
}

/** Runs whose cells are guarded by the handlers (for tests and tools). */
export function guardedRunIds(): string[] {
  return [...guardedRuns].map((run) => run.runId);
}
