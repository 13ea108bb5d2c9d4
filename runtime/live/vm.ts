// VM cells: `kind vm` hosts on the KVM backend. A guest program (built with
// the guest SDK, runtime/live/guest.ts) runs on one vCPU driven by the C
// micro-VMM (ffi/c/vmm/) in the same virtual-time windows as process cells:
// its clock advances by the CPU time its vCPU ran (x cpu_scale), it jumps while
// the guest waits, and its frames enter the simulated network through the same
// host node (runtime/live/host.ts) as a process cell's.
import type { Plan, PlanHost } from '../../dsl/plan.ts';
import { probeKvm } from '../../ffi/kvm.ts';
import { Vm, VmState, type VmWindowResult } from '../../ffi/vm.ts';
import type { Partition } from '../core/partition.ts';
import { CellError, messageOf } from './errors.ts';
import { guestImage, scenarioPath } from './guest.ts';
import { frameBytes, type LiveHostNode } from './host.ts';
import { isKvmHost } from './kinds.ts';

/** Guest memory when the host has no `memory`. */
export const VM_DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
const MEMORY_MIN_BYTES = 4 * 1024 * 1024;
const MEMORY_MAX_BYTES = 1024 * 1024 * 1024;
const PAGE_2MIB = 2 * 1024 * 1024;

export interface VmCellOptions {
  /** where relative `image` paths are resolved from (the scenario's directory) */
  baseDir: string;
  /** the vCPU threads' cores (vCPU k on cores[k % length]); empty: not pinned */
  cores: readonly number[];
  prefixLength: number;
  /** the guest image's bytes, instead of building it from the host's `image` path */
  image?: Uint8Array | undefined;
}

/** What keeps this plan's kvm guests from running here (exit 3 with what to do); empty if nothing. */
export function kvmProblems(plan: Pick<Plan, 'hosts'>, kvm: () => { canCreateVm: boolean; error: { code: string } | null } = probeKvm): string[] {
  const hosts = plan.hosts.filter(isKvmHost);
  if (hosts.length === 0) return [];
  const probe = kvm();
  if (probe.canCreateVm) return [];
  const names = hosts.slice(0, 3).map((h) => h.name).join(', ') + (hosts.length > 3 ? ', …' : '');
  return [`${hosts.length} host(s) are kvm vm hosts (${names}), but /dev/kvm cannot create a VM here (${probe.error?.code ?? 'unknown'}): run livestack doctor; on a machine without KVM use backend qemu`];
}

export class VmCell {
  /** the guest's command name, for exit codes and logs (`run … as NAME`, else cmd1, else guest) */
  readonly command: string;
  readonly startNs: number;
  state: number = VmState.Running;
  clockNs: number;
  waitUntilNs: number | null = null;
  wakeOnFrame = false;
  exitCode: number | null = null;
  paused = false;
  private running = false;

  private constructor(
    readonly host: PlanHost,
    readonly node: LiveHostNode,
    private vm: Vm | null,
  ) {
    const first = host.commands[0];
    this.command = first?.name ?? 'guest';
    this.startNs = first?.atNs ?? 0;
    this.clockNs = this.startNs;
  }

  static create(host: PlanHost, node: LiveHostNode, options: VmCellOptions): VmCell {
    const vm = host.vm;
    if (vm === null || vm.image === null) {
      const what = vm?.kernel !== null && vm?.kernel !== undefined
        ? 'kernel "…" under KVM needs a machine where KVM runs a stock kernel (bare metal); here (nested, PVM: see livestack doctor) use backend qemu'
        : 'add image "…" (a guest program, see scenarios/vm/guests/)';
      throw new CellError(host.name, `${host.source}: a backend kvm vm host needs an image`, what);
    }
    if (host.cpus > 16) {
      throw new CellError(host.name, `${host.source}: a kvm guest has at most 16 vCPUs; it asks for cpus ${host.cpus}`, 'set cpus 16 or fewer');
    }
    if (host.commands.length > 1) {
      throw new CellError(host.name, `${host.source}: a kvm vm host runs one guest program; it has ${host.commands.length} run commands`, 'keep one run "ARGS" (its text is the guest\'s argument, ls_arg) or split the host');
    }
    const memory = Math.ceil((host.memoryBytes ?? VM_DEFAULT_MEMORY_BYTES) / PAGE_2MIB) * PAGE_2MIB;
    if (memory < MEMORY_MIN_BYTES || memory > MEMORY_MAX_BYTES) {
      throw new CellError(host.name, `${host.source}: memory ${host.memoryBytes} B is outside what a guest can have (4 MiB to 1 GiB)`, 'set memory between 4MiB and 1GiB');
    }
    // every vCPU has a 256 KiB stack below the top of guest memory, and the image needs room under them
    const needed = host.cpus * 256 * 1024 + PAGE_2MIB;
    if (memory < needed) {
      throw new CellError(host.name, `${host.source}: memory ${memory >> 20} MiB is too little for ${host.cpus} vCPUs`, `set memory ${Math.ceil(needed / PAGE_2MIB) * 2}MiB or more`);
    }
    const image = options.image ?? guestImage(host.name, scenarioPath(vm.image, host.source, options.baseDir), host.source);
    const first = host.commands[0];
    let handle: Vm;
    try {
      handle = Vm.create({
        memoryBytes: memory, scale: host.cpuScale, cores: options.cores, vcpus: host.cpus, hostIndex: host.index, address: host.address,
        prefixLength: options.prefixLength, startNs: first?.atNs ?? 0,
      }, image, first?.command ?? '');
    } catch (error) {
      const code = (error as { errno?: number }).errno;
      throw new CellError(host.name, `${host.source}: cannot start the guest ${vm.image}: ${messageOf(error)}`,
        code === 8 ? 'the image is not a guest program: build it with the guest SDK (ffi/guest/guest.ld), or give the .c file'
          : 'check /dev/kvm (livestack doctor)', { cause: error });
    }
    return new VmCell(host, node, handle);
  }

  get done(): boolean {
    return this.state === VmState.Exited || this.state === VmState.Crashed;
  }

  /** The earliest virtual time (>= after) at which this guest must run. */
  nextTime(after: number): number {
    if (this.done || this.paused) return Infinity;
    if (this.state === VmState.Running) return Math.max(after, this.startNs);
    let next = this.waitUntilNs ?? Infinity;
    if (this.wakeOnFrame) for (const d of this.node.inbox) next = Math.min(next, d.timeNs);
    return Math.max(after, next);
  }

  /** Whether the window [startNs, endNs) has anything for this guest to do. */
  wants(endNs: number): boolean {
    return !this.done && !this.paused && this.nextTime(0) < endNs;
  }

  begin(startNs: number, endNs: number): void {
    const inbox = this.node.inbox;
    inbox.sort((a, b) => a.timeNs - b.timeNs);
    let n = 0;
    while (n < inbox.length && inbox[n]!.timeNs < endNs) n++;
    const deliveries = inbox.splice(0, n).map((d) => ({ timeNs: d.timeNs, frame: frameBytes(d.packet.bytes, d.packet.wireBytes) }));
    this.vm!.begin(startNs, endNs, deliveries);
    this.running = true;
  }

  end(partition: Partition): VmWindowResult {
    const r = this.vm!.end();
    this.running = false;
    this.clockNs = r.clockNs;
    this.waitUntilNs = r.waitUntilNs;
    this.wakeOnFrame = r.wakeOnFrame;
    // lines of several vCPUs come in the order they were written, each stamped by its vCPU's clock
    for (const line of r.console.sort((a, b) => a.timeNs - b.timeNs)) this.node.log.push({ timeNs: line.timeNs, line: line.line });
    for (const f of r.frames) {
      this.node.liveSend(f.timeNs, { bytes: f.frame, wireBytes: Math.max(60, f.frame.length) }, partition);
    }
    if (!this.done && (r.state === VmState.Exited || r.state === VmState.Crashed)) {
      if (r.state === VmState.Exited) {
        this.exitCode = r.exitCode;
        this.node.log.push({ timeNs: r.clockNs, line: `[livestack] ${this.command} exited ${r.exitCode}` });
      } else {
        this.node.log.push({ timeNs: r.clockNs, line: `[livestack] ${this.command} crashed: ${r.error}` });
      }
    }
    this.state = r.state;
    return r;
  }

  /** `kill HOST`: the guest stops for good. */
  kill(atNs: number): void {
    if (this.done) return;
    this.state = VmState.Exited;
    this.node.log.push({ timeNs: atNs, line: `[livestack] ${this.command} exited on SIGKILL` });
  }

  destroy(): void {
    if (this.vm === null) return;
    if (this.running) {
      try {
        this.vm.end();
      } catch {
        // destroyed anyway
      }
    }
    this.vm.destroy();
    this.vm = null;
  }
}

