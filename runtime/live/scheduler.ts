// Simulation-oriented scheduling of process cells (the LiveStack paper's first
// subsystem). The run advances in conservative windows; before the modeled
// network handles a window [T, H), the cells run through it: each is thawed
// only on its own cores and only while its virtual clock may advance (its clock
// runs exactly while it is thawed), frames it sends are stamped with its
// virtual time, and frames for it are written into its tap when its clock
// reaches their arrival time (ffi/c/live.c). With more cells than cores, cells
// take turns (gang scheduling): wall time grows, virtual results do not. A cell
// whose every thread sits in a timed wait jumps to its earliest deadline.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Plan, PlanAction, PlanHost } from '../../dsl/plan.ts';
import { dropSentFrames } from '../../ffi/cell.ts';
import { ClockPage } from '../../ffi/clock.ts';
import { keepCoresAwake, liveHostNow, paceUntil, runWindow, setThreadAffinity, threadAffinity, type LiveCellInput, type LiveWindowStats } from '../../ffi/live.ts';
import type { Partition } from '../core/partition.ts';
import type { Cell, CellExit, CellLine } from './cell.ts';
import { Cells } from './cells.ts';
import { frameBytes, LiveHostNode } from './host.ts';
import { cleanupStale } from './stale.ts';
import { isKvmHost } from './kinds.ts';
import { VmCell } from './vm.ts';
import { isQemuHost, prepareQemuCell, qemuCellHost } from './qemu.ts';

/** x86-64 system calls that, without a timeout, wait only for another process or thread of the cell: a
 *  thread blocked in one is idle as far as time goes (whatever wakes it is running, hence the cell busy).
 *  Not reads, accepts or receives: a pipe or socket may hold data already while the cell is frozen (a
 *  shell reading its child's output was taken for idle, and the run jumped to its end). */
const SYS_WAIT4 = 61;
const SYS_RT_SIGTIMEDWAIT = 128;
const SYS_FUTEX = 202;
const SYS_WAITID = 247;
const FUTEX_CMD_MASK = 0x7f;
const FUTEX_WAIT = 0;
const FUTEX_WAIT_BITSET = 9;

/** Whether /proc/PID/task/TID/syscall shows a wait with no timeout (see above). A timed futex wait is
 *  not one: unless the shim published it (pthread_cond_timedwait …), its timeout runs on real time. */
export function untimedWait(syscall: string): boolean {
  const fields = syscall.trim().split(' ');
  const number = Number(fields[0]);
  const arg = (i: number): bigint => {
    try {
      return BigInt(fields[i + 1] ?? '-1');
    } catch {
      return -1n;
    }
  };
  switch (number) {
    case SYS_WAIT4:
    case SYS_WAITID:
      return true;
    case SYS_RT_SIGTIMEDWAIT:
      return arg(2) === 0n;
    case SYS_FUTEX: {
      const command = Number(arg(1) & BigInt(FUTEX_CMD_MASK));
      return (command === FUTEX_WAIT || command === FUTEX_WAIT_BITSET) && arg(3) === 0n;
    }
    default:
      return false;
  }
}

/** Two windows in a row with every thread waiting: a cell is idle (CELLS-FACTS pitfall 8: idle detection is racy). */
const IDLE_WINDOWS = 2;
/** Leave idle cells frozen (CELLS-FACTS pitfall 9). Off unless LIVESTACK_SKIP_IDLE=1: a wrong idle
 *  verdict then keeps a cell frozen until its next deadline (the OLTP smoke once stalled 50 s of virtual
 *  time with it), where a thawed cell corrects itself in the next window. */
const SKIP_IDLE = process.env['LIVESTACK_SKIP_IDLE'] === '1';
/** …and in each of them the cell used at most this share of the window's CPU time. */
const IDLE_CPU_FRACTION = 0.1;
/** Quiescent cells' clocks jump to their next event (ffi/c/live.c, "Yielding"); LIVESTACK_YIELD=0: they do not. */
const YIELD = process.env['LIVESTACK_YIELD'] !== '0';
/** How long a window waits for new launchers to join their cgroups (they take ms; a stuck one is not waited for). */
const JOIN_WAIT_MS = 2_000;
const PAUSE = new Int32Array(new SharedArrayBuffer(4));
/** LIVESTACK_HANDOFF=0: the controller writes every delivery itself, instead of the spinner on the cell's core. */
const HANDOFF = process.env['LIVESTACK_HANDOFF'] !== '0';
/** LIVESTACK_SCHED_DEBUG=1: one stderr line per cell and window (CPU used, freeze/thaw cost, CPU used while frozen). */
const DEBUG = process.env['LIVESTACK_SCHED_DEBUG'] === '1';

interface LiveCellState {
  host: PlanHost;
  node: LiveHostNode;
  cell: Cell;
  clock: ClockPage;
  pending: Array<{ name: string; command: string; atNs: number }>;
  running: number;
  exits: Array<number | null>;
  idleWindows: number;
  paused: boolean;
  /** (pid, tid) pairs seen by the last idle check: the next window reads their states before freezing */
  threads: number[];
  /** LIVESTACK_SCHED_DEBUG: the cell's CPU usage when it was last frozen */
  lastFrozenCpuNs?: number;
  /** its first core (its deliveries are written there, ffi/live.ts) */
  core: number;
}

export interface LiveSchedulerOptions {
  /** cores the cells may use; default: every core but the first (the controller's) */
  cores?: number[];
  onNotice?: (message: string) => void;
  /** the scenario's directory: relative vm `image` paths are resolved from it (default: the working directory) */
  baseDir?: string;
  /** kvm guests' images by host name, instead of building them from their `image` path (agents: the coordinator built them) */
  images?: ReadonlyMap<string, Uint8Array>;
  /** deliveries written by the spinner on the cell's core (default: unless LIVESTACK_HANDOFF=0) */
  handoff?: boolean;
}

export interface LiveStats {
  windows: number;
  jumps: number;
  lateDeliveries: number;
  lateNsMax: number;
  /** times a cell's clock was held at a delivery the controller had not written yet (its vCPU stalled) */
  holds: number;
  /** virtual ns the held clocks would have run on meanwhile (a busy cell got that CPU time free) */
  heldNs: number;
  framesIn: number;
  framesOut: number;
  arpReplies: number;
  freezeNsMax: number;
  thawNsMax: number;
  writeErrors: number;
  /** frames a cell sent that were lost before the network: its packet ring was full (kernel drops) or a window's output was */
  framesDropped: number;
  /** cell-windows an idle cell was left frozen */
  skips: number;
  /** times a quiescent cell's clock jumped to its next event (ffi/c/live.c, "Yielding"), and the virtual ns skipped */
  yields: number;
  yieldedNs: number;
  /** windows the controller waited out so that a window took at least its own length in host time */
  paced: number;
  /** CPU time the kvm guests' vCPU threads spent in KVM_RUN (what their clocks are charged from) */
  guestCpuNs: number;
}

export function newLiveStats(): LiveStats {
  return { windows: 0, jumps: 0, lateDeliveries: 0, lateNsMax: 0, holds: 0, heldNs: 0, framesIn: 0, framesOut: 0, arpReplies: 0, freezeNsMax: 0, thawNsMax: 0, writeErrors: 0, framesDropped: 0, skips: 0, yields: 0, yieldedNs: 0, paced: 0, guestCpuNs: 0 };
}

export class LiveScheduler {
  private readonly cells = new Map<string, LiveCellState>();
  /** `kind vm` hosts on the KVM backend (runtime/live/vm.ts) */
  private readonly vms = new Map<string, VmCell>();
  private readonly baseDir: string;
  private readonly images: ReadonlyMap<string, Uint8Array>;
  private readonly handoff: boolean;
  private readonly actions: PlanAction[];
  private nextAction = 0;
  private registry: Cells | undefined;
  readonly stats: LiveStats = newLiveStats();
  finishedAtNs: number | null = null;
  private readonly cores: number[];
  private path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

  constructor(
    private readonly plan: Plan,
    private readonly nodes: ReadonlyMap<string, LiveHostNode>,
    options: LiveSchedulerOptions = {},
  ) {
    const count = availableParallelism();
    this.cores = options.cores ?? (count > 1 ? Array.from({ length: count - 1 }, (_, i) => i + 1) : [0]);
    this.actions = plan.timeline.filter((a) => a.type === 'kill' || a.type === 'pause' || a.type === 'resume' || a.type === 'run');
    this.onNotice = options.onNotice ?? ((message) => process.stderr.write(`livestack: ${message}\n`));
    this.baseDir = options.baseDir ?? process.cwd();
    this.images = options.images ?? new Map();
    this.handoff = options.handoff ?? HANDOFF;
  }

  private readonly onNotice: (message: string) => void;

  private notice(message: string): void {
    this.onNotice(message);
  }

  get liveHosts(): number {
    return this.nodes.size;
  }

  /** The controller thread's CPUs before the run (restored by teardown). */
  private savedAffinity: number[] | null = null;
  private controllerCores: number[] = [];
  private awake = false;

  /** Creates a cell, a clock page and a command list per process host. */
  async setup(): Promise<void> {
    cleanupStale();
    // the controller (this thread, real-time during windows) keeps to the cores no cell has
    const controllerCores = [...Array(availableParallelism()).keys()].filter((c) => !this.cores.includes(c));
    this.controllerCores = controllerCores;
    if (controllerCores.length > 0) {
      this.savedAffinity = threadAffinity();
      setThreadAffinity(controllerCores);
      // an idle vCPU halts, and waking it costs a cell ~100 µs of its running clock per packet
      if (process.env['LIVESTACK_KEEP_AWAKE'] !== '0') {
        keepCoresAwake([...new Set([...this.cores, ...(process.env['LIVESTACK_KEEP_CONTROLLER_AWAKE'] === '0' ? [] : controllerCores)])]);
        this.awake = true;
      }
    }
    this.registry = new Cells({
      hosts: this.plan.hosts.map((h) => ({ name: h.name, address: h.address })),
      prefixLength: this.plan.network.prefixLength,
      onLine: (line) => this.onLine(line),
      onExit: (exit) => this.onExit(exit),
    });
    const epochNs = BigInt(Date.now()) * 1_000_000n;
    const bin = join(this.registry.runDir, 'bin');
    mkdirSync(bin, { recursive: true });
    capabilityFreeCopies(bin);
    this.path = `${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
    let core = 0;
    for (const host of this.plan.hosts) {
      const node = this.nodes.get(host.name);
      if (node === undefined) continue;
      if (isKvmHost(host)) {
        // a guest with a vCPU per cpu, their threads pinned to cores of their own (shared in turns like a cell's)
        const vmCores = this.controllerCores.length > 0 ? [...new Set(Array.from({ length: Math.min(host.cpus, this.cores.length) }, () => this.cores[core++ % this.cores.length]!))] : [];
        this.vms.set(host.name, VmCell.create(host, node, { baseDir: this.baseDir, cores: vmCores, prefixLength: this.plan.network.prefixLength, image: this.images.get(host.name) }));
        continue;
      }
      const cpus = Array.from({ length: Math.min(host.cpus, this.cores.length) }, () => this.cores[core++ % this.cores.length]!);
      const qemu = isQemuHost(host);
      const cell = await this.registry.create(qemu ? qemuCellHost(host) : { ...host, files: [...host.files] }, { cpus: [...new Set(cpus)] });
      // a backend qemu host: QEMU is the cell's one command, its network a bridge to the guest (qemu.ts)
      const commands = qemu ? [await prepareQemuCell(cell, host, this.plan, this.baseDir)] : host.commands;
      // frozen from the start: a cell runs only inside its windows (a command started before its
      // first window must not run for free, nor share the core with the cell whose window it is)
      cell.freeze();
      // its frames are read from its ring: the tap need not queue them too (where the kernel refuses the
      // filter, the window loop empties the tap's queue at each window end, as before)
      try {
        dropSentFrames(cell.tapFd);
      } catch (error) {
        this.notice(`${host.name}: frames it sends are also queued at its tap (${error instanceof Error ? error.message : String(error)}); slower, not wrong`);
      }
      const clockPath = join(this.registry.runDir, `${host.name}.clock`);
      const clock = ClockPage.create(clockPath, { realtimeEpochNs: epochNs });
      // writable by a command that runs as another user (the shim publishes its waits in the page)
      chmodSync(clockPath, 0o666);
      this.cells.set(host.name, {
        host, node, cell, clock,
        pending: commands.map((c) => ({ ...c })),
        running: 0, exits: [], idleWindows: 0, paused: false, threads: [], core: this.handoff ? cpus[0] ?? -1 : -1,
      });
    }
  }

  private onLine(line: CellLine): void {
    const state = this.cells.get(line.host);
    if (state === undefined) return;
    state.node.log.push({ timeNs: state.clock.now(), line: line.line });
  }

  private onExit(exit: CellExit): void {
    const state = this.cells.get(exit.host);
    if (state === undefined) return;
    state.running--;
    state.exits.push(exit.code);
    state.node.log.push({ timeNs: state.clock.now(), line: `[livestack] ${exit.command} exited ${exit.code === null ? `on ${exit.signal}` : exit.code}` });
    if (this.allCommandsDone()) this.finishedAtNs ??= Math.max(...[...this.cells.values()].map((c) => c.clock.now()));
  }

  /** Launchers started since the last window, not yet seen in all their cgroups. */
  private joining: Array<{ state: LiveCellState; pid: number }> = [];

  private start(state: LiveCellState, name: string, command: string): void {
    state.running++;
    // a child inherits this thread's affinity (the controller's core, with the kernel remembering it as
    // the user's wish): spawn the launcher with the machine's whole set, it joins the cell's cpuset itself
    const pinned = this.savedAffinity !== null;
    if (pinned) setThreadAffinity(this.savedAffinity!);
    try {
      const started = state.cell.start({ name, command }, { ...state.clock.environment(), LIVESTACK_HOST: state.host.name, PATH: this.path });
      this.joining.push({ state, pid: started.pid });
    } finally {
      if (pinned) setThreadAffinity(this.controllerCores);
    }
  }

  allCommandsDone(): boolean {
    for (const vm of this.vms.values()) if (!vm.done) return false;
    for (const state of this.cells.values()) if (state.running > 0 || state.pending.length > 0) return false;
    return this.nextAction >= this.actions.length || !this.actions.slice(this.nextAction).some((a) => a.type === 'run');
  }

  hostsDone(hosts: readonly string[]): boolean {
    return hosts.every((h) => {
      const vm = this.vms.get(h);
      if (vm !== undefined) return vm.done;
      const s = this.cells.get(h);
      return s === undefined || (s.running === 0 && s.pending.length === 0);
    });
  }

  exitCodes(): Map<string, Array<number | null>> {
    const codes = new Map([...this.cells].map(([name, s]) => [name, [...s.exits, ...Array.from({ length: s.running + s.pending.length }, () => null)]]));
    for (const [name, vm] of this.vms) codes.set(name, [vm.exitCode]);
    return codes;
  }

  /** The earliest virtual time at which a cell needs to run (≥ after). */
  nextTime(after: number): number {
    let next = Infinity;
    for (const state of this.cells.values()) {
      for (const p of state.pending) next = Math.min(next, Math.max(after, p.atNs));
      for (const d of state.node.inbox) next = Math.min(next, Math.max(after, d.timeNs));
      if (state.running > 0 && !state.paused) {
        // a command whose processes are gone but whose exit Node has not reported yet: keep stepping
        if (state.idleWindows < IDLE_WINDOWS || state.cell.pids().length === 0) return after;
        const wait = state.clock.earliestWait();
        if (wait.deadlineNs !== null) next = Math.min(next, Math.max(after, wait.deadlineNs));
      }
    }
    for (const vm of this.vms.values()) next = Math.min(next, vm.nextTime(after));
    // a live host's egress: a frame's transmission ends (the next queued one starts), a port's action
    for (const node of this.nodes.values()) next = Math.min(next, Math.max(after, node.egressNext()));
    const action = this.actions[this.nextAction];
    if (action !== undefined) next = Math.min(next, Math.max(after, action.atNs));
    return next;
  }

  private applyActions(before: number): void {
    while (this.nextAction < this.actions.length && this.actions[this.nextAction]!.atNs < before) {
      const action = this.actions[this.nextAction++]!;
      if (action.type !== 'kill' && action.type !== 'pause' && action.type !== 'resume' && action.type !== 'run') continue;
      const vm = this.vms.get(action.host);
      if (vm !== undefined) {
        if (action.type === 'kill') vm.kill(action.atNs);
        else if (action.type === 'pause') vm.paused = true;
        else if (action.type === 'resume') vm.paused = false;
        else this.notice(`${action.source}: run on ${action.host} is ignored: a kvm guest runs one program (its image)`);
        continue;
      }
      const state = this.cells.get(action.host);
      if (state === undefined) continue;
      if (action.type === 'kill') {
        state.pending = [];
        state.cell.kill('SIGKILL');
      } else if (action.type === 'pause') {
        state.paused = true;
      } else if (action.type === 'resume') {
        state.paused = false;
      } else if (action.type === 'run') {
        this.start(state, `at${action.atNs}`, action.command);
      }
    }
  }

  /** Runs the cells through [startNs, endNs), then hands their frames to the partition. */
  private lastEndNs = 0;

  beforeWindow(startNs: number, endNs: number, partition: Partition): void {
    this.runCells(startNs, endNs, partition);
    // every frame the cells sent before endNs is in: their hosts' own side of their links catches up
    // (runtime/live/host.ts); what it transmits reaches the far ends from endNs + a link latency on
    for (const node of this.nodes.values()) node.runEgress(endNs, partition);
  }

  private runCells(startNs: number, endNs: number, partition: Partition): void {
    if (startNs > this.lastEndNs) this.stats.jumps++;
    this.lastEndNs = endNs;
    this.applyActions(endNs);
    const active: LiveCellState[] = [];
    for (const state of this.cells.values()) {
      const due = state.pending.filter((p) => p.atNs < endNs);
      if (due.length > 0) {
        state.pending = state.pending.filter((p) => p.atNs >= endNs);
        for (const p of due) this.start(state, p.name, p.command);
        state.idleWindows = 0;
      }
      const hasDelivery = state.node.inbox.some((d) => d.timeNs < endNs);
      if (state.paused && !hasDelivery) continue;
      // an idle cell (every thread waiting) with no packet and no deadline in this window is not thawed:
      // its core goes to the others, and its clock catches up when it next runs (CELLS-FACTS pitfall 9)
      if (SKIP_IDLE && !hasDelivery && state.running > 0 && state.idleWindows >= IDLE_WINDOWS && state.cell.pids().length > 0) {
        // only with a deadline to come back at: a wrong idle verdict then costs time, never progress
        const deadline = state.clock.earliestWait().deadlineNs;
        if (deadline !== null && deadline >= endNs) {
          this.stats.skips++;
          continue;
        }
      }
      if (state.running > 0 || hasDelivery) active.push(state);
    }
    const guests: VmCell[] = [];
    for (const vm of this.vms.values()) {
      if (vm.done) vm.node.inbox.length = 0; // nobody receives them
      else if (vm.wants(endNs)) guests.push(vm);
    }
    this.awaitJoins();
    if (active.length === 0 && guests.length === 0) return;
    // gang scheduling: as many cells and guests at once as there are cores for them
    const perGroup = Math.max(1, this.cores.length);
    const units: Array<LiveCellState | VmCell> = [...active, ...guests];
    // A window takes at least its own length in host time, as it did before cells jumped (ffi/c/live.c,
    // "Yielding"): the cells' kernel timers (TCP's delayed ACKs and retransmissions) run on host time and
    // must not fire later in virtual time than they would without jumps.
    const paceTo = YIELD && active.length > 0 ? liveHostNow() + (endNs - startNs) / Math.min(...active.map((s) => (s.paused ? 1 : s.host.cpuScale))) : 0;
    for (let i = 0; i < units.length; i += perGroup) {
      const group = units.slice(i, i + perGroup);
      const groupGuests = group.filter((u): u is VmCell => u instanceof VmCell);
      const groupCells = group.filter((u): u is LiveCellState => !(u instanceof VmCell));
      for (const vm of groupGuests) vm.begin(startNs, endNs);
      try {
        if (groupCells.length > 0) this.runGroup(groupCells, startNs, endNs, partition);
      } finally {
        for (const vm of groupGuests) this.stats.guestCpuNs += vm.end(partition).ranNs;
      }
    }
    if (paceTo > 0 && paceUntil(paceTo)) this.stats.paced++;
    if (guests.some((vm) => vm.done) && this.allCommandsDone()) {
      this.finishedAtNs ??= Math.max(...[...this.cells.values()].map((c) => c.clock.now()), ...[...this.vms.values()].map((vm) => vm.clockNs));
    }
    this.stats.windows++;
  }

  /** The KVM guests, by host name (tests, benches, results). */
  get guests(): ReadonlyMap<string, VmCell> {
    return this.vms;
  }

  /**
   * Waits until the launchers started for this window have joined their cells' cgroups. Each join
   * takes the kernel's global cgroup_mutex and waits for an RCU grace period (ms); a cell's freeze at
   * the end of its window waits for the same mutex, so launchers joining meanwhile held one freeze up
   * for 350 ms (the cell's CPU time then goes to its clock, see ffi/c/live.c, but the wall time is lost).
   * A launcher joins its cell's frozen freezer cgroup last and stops there until the cell's window.
   */
  private awaitJoins(): void {
    const deadline = performance.now() + JOIN_WAIT_MS;
    while (this.joining.length > 0 && performance.now() < deadline) {
      this.joining = this.joining.filter(({ state, pid }) => existsSync(`/proc/${pid}`) && !state.cell.cgroups.joinedAll(pid));
      if (this.joining.length > 0) Atomics.wait(PAUSE, 0, 0, 0.2);
    }
    this.joining = [];
  }

  private runGroup(group: LiveCellState[], startNs: number, endNs: number, partition: Partition): void {
    const inputs: LiveCellInput[] = group.map((state) => {
      state.node.inbox.sort((a, b) => a.timeNs - b.timeNs);
      let n = 0;
      while (n < state.node.inbox.length && state.node.inbox[n]!.timeNs < endNs) n++;
      const deliveries = state.node.inbox.splice(0, n).map((d) => ({ timeNs: d.timeNs, frame: frameBytes(d.packet.bytes, d.packet.wireBytes) }));
      const freezer = state.cell.cgroups.freezerHandle();
      return {
        clockHandle: state.clock.handle(),
        ringHandle: state.cell.ring,
        hostIndex: state.host.index,
        tapFd: state.cell.tapFd,
        freezer: freezer === null ? { mode: 'none' } : freezer.kind === 'v1' ? { mode: 'v1', stateFd: freezer.controlFd } : { mode: 'v2', freezeFd: freezer.controlFd, eventsFd: freezer.eventsFd },
        scale: state.paused ? 1 : state.host.cpuScale,
        usage: state.cell.cgroups.usageHandle(),
        // a cell that looked idle once: the window reads its threads' states while it still runs
        threads: state.idleWindows >= 1 && state.threads.length > 0 ? state.threads : null,
        deliveries,
        core: state.core,
        tasksFd: state.cell.cgroups.tasksHandle(),
      };
    });
    const cpuBefore = group.map((state) => state.cell.cgroups.cpuUsageNs());
    if (DEBUG) group.forEach((state, i) => {
      const leak = state.lastFrozenCpuNs === undefined ? 0 : cpuBefore[i]! - state.lastFrozenCpuNs;
      if (leak > 100_000) process.stderr.write(`[sched] ${state.host.name} used ${(leak / 1e6).toFixed(3)} ms of CPU while frozen, before window ${startNs} (pids ${state.cell.pids().join(',')})\n`);
    });
    // a deadline due in this window wakes a thread, whose work may wake others just before the freeze
    const timerDue = group.map((state) => {
      const deadline = state.clock.earliestWait().deadlineNs;
      return deadline !== null && deadline < endNs;
    });
    const { frames, runnable, stats } = runWindow(inputs, startNs, endNs, this.plan.hosts.length);
    this.account(stats, inputs.reduce((n, i) => n + i.deliveries.length, 0));
    const sent = new Set<number>();
    for (const f of frames) {
      const state = group[f.cell]!;
      sent.add(f.cell);
      state.node.liveSend(f.timeNs, { bytes: f.frame, wireBytes: Math.max(60, f.frame.length) }, partition);
    }
    group.forEach((state, i) => {
      // every thread in a wait when the cell froze is not enough: a thread woken just before the freeze
      // still shows the wait it is leaving. A cell that also used (almost) no CPU in the window had
      // nothing runnable in it (the shim's slices cost a few µs per thread and ms).
      const before = cpuBefore[i];
      const after = before === null || before === undefined ? null : state.cell.cgroups.cpuUsageNs();
      const ranNs = before === null || before === undefined || after === null ? 0 : after - before;
      const quiet = ranNs <= IDLE_CPU_FRACTION * ((endNs - startNs) / state.host.cpuScale);
      const busy = sent.has(i) || inputs[i]!.deliveries.length > 0 || timerDue[i]! || !quiet || runnable[i]! > 0 || !this.allThreadsWaiting(state);
      state.idleWindows = busy ? 0 : state.idleWindows + 1;
      if (DEBUG) {
        state.lastFrozenCpuNs = after ?? undefined;
        process.stderr.write(`[sched] ${state.host.name} [${startNs}, ${endNs}) ran ${(ranNs / 1e6).toFixed(3)} ms freeze ${(stats.freezeNsMax / 1e3).toFixed(0)} us thaw ${(stats.thawNsMax / 1e3).toFixed(0)} us out ${stats.framesOut} dropped ${stats.framesDropped}\n`);
      }
    });
  }

  private account(stats: LiveWindowStats, deliveries: number): void {
    this.stats.framesIn += deliveries;
    this.stats.framesOut += stats.framesOut;
    this.stats.lateDeliveries += stats.lateDeliveries;
    this.stats.holds += stats.holds;
    this.stats.heldNs += stats.heldNs;
    this.stats.lateNsMax = Math.max(this.stats.lateNsMax, stats.lateNsMax);
    this.stats.arpReplies += stats.arpReplies;
    this.stats.freezeNsMax = Math.max(this.stats.freezeNsMax, stats.freezeNsMax);
    this.stats.thawNsMax = Math.max(this.stats.thawNsMax, stats.thawNsMax);
    this.stats.writeErrors += stats.writeErrors;
    this.stats.framesDropped += stats.framesDropped;
    this.stats.yields += stats.yields;
    this.stats.yieldedNs += stats.yieldedNs;
  }

  /** Every thread of every process of the cell sits in a wait the shim published, or in a wait with no
   *  timeout for a child, a lock, a signal or a packet (untimedWait; read from /proc/PID/task/TID/syscall). */
  private allThreadsWaiting(state: LiveCellState): boolean {
    let threads = 0;
    state.threads = [];
    for (const pid of state.cell.pids()) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue; // exited meanwhile
      }
      for (const tid of tids) {
        state.threads.push(pid, Number(tid));
        let syscall = '';
        try {
          syscall = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8');
        } catch {
          continue;
        }
        if (syscall.startsWith('running')) return false;
        if (untimedWait(syscall)) continue;
        threads++;
      }
    }
    if (threads === 0) return true;
    return state.clock.earliestWait().waiters >= threads;
  }

  async teardown(): Promise<void> {
    if (this.awake) {
      try {
        keepCoresAwake([]);
      } catch {
        // the spinners end with the process
      }
      this.awake = false;
    }
    if (this.savedAffinity !== null) {
      try {
        setThreadAffinity(this.savedAffinity);
      } catch {
        // the thread keeps running on the controller's cores: slower, not wrong
      }
      this.savedAffinity = null;
    }
    for (const vm of this.vms.values()) {
      try {
        vm.destroy();
      } catch (error) {
        this.notice(`${vm.host.name}: destroying its VM failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    // cells first: their commands' exit reports still read the clocks
    try {
      await this.registry?.destroyAll();
    } finally {
      for (const state of this.cells.values()) {
        try {
          state.clock.close();
        } catch {
          // closing a clock cannot fail in a way that matters here
        }
      }
    }
  }
}


/** ping carries file capabilities, so the loader ignores LD_PRELOAD for it (CELLS-FACTS pitfall 2): a plain
 *  copy has none, and cells find it first on their PATH (cells run as root, which needs no capability). */
export function capabilityFreeCopies(bin: string): string[] {
  const copied: string[] = [];
  for (const name of ['ping']) {
    const source = ['/usr/bin/' + name, '/bin/' + name].find((p) => existsSync(p));
    if (source === undefined) continue;
    copyFileSync(source, join(bin, name));
    chmodSync(join(bin, name), 0o755);
    copied.push(name);
  }
  return copied;
}
