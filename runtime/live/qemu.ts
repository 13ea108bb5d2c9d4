// `kind vm` + `backend qemu` hosts: a full-system guest (a Linux kernel and an
// initramfs) run by QEMU with TCG inside a process cell (cell.ts), for machines
// where KVM cannot run a stock kernel (KVM-FACTS.md: nested under PVM).
//
// The cell is a process cell like any other: its namespace, cgroups, frozen
// between windows, the LD_PRELOAD time shim in QEMU (its clocks, ppoll
// timeouts and condition waits follow the cell's virtual clock). Only its
// network differs: inside the namespace a bridge joins eth0 (LiveStack's tap:
// frames it sends are taken from eth0's packet ring, deliveries written into
// it) and a tap that QEMU opens for the guest's virtio NIC. The guest carries
// the cell's MAC and the host's address (ip= on its command line), so to the
// data plane (ffi/c/live.c) the guest *is* the host: frames to it are
// addressed to that MAC, its ARP requests are answered in C like any cell's.
// eth0 gets another MAC: a bridge port's own MAC is delivered to the bridge
// itself, not forwarded.
//
// Guest time: QEMU's virtual clock (guest timers, HPET, RTC) is QEMU's host
// clock under the shim, i.e. the cell's virtual clock, and stops when the cell
// is frozen. The guest's TSC under TCG is the host's raw TSC (QEMU's
// cpu_get_host_ticks, no shim can reach it), so LiveStack boots the guest with
// clocksource=hpet unless the append says otherwise.
import { scenarioPath } from './guest.ts';
import { readFileSync, writeFileSync, accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import type { Plan, PlanCommand, PlanHost } from '../../dsl/plan.ts';
import type { Cell, CellHost } from './cell.ts';
import { CellError, messageOf } from './errors.ts';
import { cpioArchive, DEFAULT_GUEST_CACHE } from './qemu-guest.ts';
import { isProcessCell, isQemuHost } from './kinds.ts';

export { isProcessCell, isQemuHost };

export const QEMU_BINARY = 'qemu-system-x86_64';
export const QEMU_PACKAGE = 'qemu-system-x86';
/** Guest RAM when the host has no `memory`: Debian's cloud kernel with a busybox initramfs boots in 128 MiB,
 *  with room to spare in 256. */
export const DEFAULT_GUEST_MEMORY_BYTES = 256 * 1024 * 1024;
/** TCG's translation cache, MiB (QEMU 7.2's default for system emulation is 1 GiB: too much for a cell). */
export const QEMU_TB_SIZE_MIB = 64;
/** The cell's memory limit is the guest's RAM plus this: translation cache, QEMU itself, page tables. */
export const QEMU_OVERHEAD_BYTES = 256 * 1024 * 1024;
/** Names inside the cell's namespace. */
export const GUEST_TAP = 'qtap0';
export const GUEST_BRIDGE = 'br0';
/** The command name of QEMU in logs and exit reports. */
export const QEMU_COMMAND_NAME = 'qemu';
/** What the host log says where a scenario's kernel is missing. */
export const PREPARE_HINT = `npx tsx scenarios/vm/prepare.ts fetches Debian's cloud kernel and builds a busybox initramfs into ${DEFAULT_GUEST_CACHE}/`;
const IP_TIMEOUT_MS = 10_000;

/** Where a program is on PATH (sbin included), or null. */
export function findProgram(program: string, path = process.env['PATH'] ?? ''): string | null {
  for (const directory of [...path.split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!directory) continue;
    const candidate = join(directory, program);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** A vm file item (kernel, initrd) as a path: relative ones are relative to the file that declared the
 *  host (its source, relative to baseDir: the scenario's directory, which the CLI passes), as `image` is. */
export function vmPath(path: string, source: string, baseDir = process.cwd()): string {
  return scenarioPath(path, source, baseDir);
}

export interface QemuProblem {
  /** the host, or '' for the machine */
  readonly host: string;
  readonly message: string;
}

/**
 * What keeps this plan's qemu hosts from running here, each problem with where it is and what to do; empty if
 * nothing. `qemu` overrides the QEMU binary lookup (tests).
 */
export function qemuProblems(plan: Pick<Plan, 'hosts'>, options: { qemu?: string | null; baseDir?: string } = {}): QemuProblem[] {
  const hosts = plan.hosts.filter(isQemuHost);
  if (hosts.length === 0) return [];
  const problems: QemuProblem[] = [];
  const qemu = options.qemu === undefined ? findProgram(QEMU_BINARY) : options.qemu;
  if (qemu === null) {
    const names = hosts.slice(0, 3).map((h) => h.name).join(', ') + (hosts.length > 3 ? ', …' : '');
    problems.push({ host: '', message: `${hosts.length} host(s) are backend qemu vm hosts (${names}), but ${QEMU_BINARY} is not installed: apt-get install -y ${QEMU_PACKAGE}` });
  }
  for (const host of hosts) {
    const at = `${host.source}: host ${host.name}`;
    const vm = host.vm!;
    if (vm.kernel === null) {
      problems.push({ host: host.name, message: `${at}: backend qemu boots a kernel, and the host has none: add kernel "…" (a bzImage) and initrd "…" (${PREPARE_HINT})` });
      continue;
    }
    for (const [item, path] of [['kernel', vm.kernel], ['initrd', vm.initrd]] as const) {
      if (path === null) continue;
      const file = vmPath(path, host.source, options.baseDir);
      const stat = statSync(file, { throwIfNoEntry: false });
      if (!stat) problems.push({ host: host.name, message: `${at}: ${item} ${JSON.stringify(file)} does not exist (${PREPARE_HINT}, or point ${item} "…" at your own)` });
      else if (!stat.isFile()) problems.push({ host: host.name, message: `${at}: ${item} ${JSON.stringify(file)} is not a file` });
      else {
        try {
          accessSync(file, fsConstants.R_OK);
        } catch {
          problems.push({ host: host.name, message: `${at}: ${item} ${JSON.stringify(file)} is not readable by this user (Debian's vmlinuz is root-only: run as root, or copy it)` });
        }
      }
    }
    if (host.commands.length > 0) {
      problems.push({ host: host.name, message: `${at}: run "…" starts programs in process hosts; a backend qemu guest runs what its initramfs init starts (LiveStack does not reach inside the guest)` });
    }
    if (vm.image !== null) {
      problems.push({ host: host.name, message: `${at}: image "…" is for backend kvm; backend qemu boots kernel "…" with initrd "…"` });
    }
  }
  return problems;
}

/** The settings of the cell that runs a qemu host: memory is the guest's RAM plus QEMU's own. */
export function qemuCellHost(host: PlanHost): CellHost {
  return { ...host, memoryBytes: guestMemoryBytes(host) + QEMU_OVERHEAD_BYTES, files: [], env: [] };
}

export function guestMemoryBytes(host: Pick<PlanHost, 'memoryBytes'>): number {
  return host.memoryBytes ?? DEFAULT_GUEST_MEMORY_BYTES;
}

/** The cell's MAC with the locally administered bit pattern changed: eth0's MAC once it is a bridge port. */
function portMac(mac: string, firstByte: string): string {
  return [firstByte, ...mac.split(':').slice(1)].join(':');
}

/** Netmask of a prefix length (15 → 255.254.0.0). */
export function netmask(prefixLength: number): string {
  const bits = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return [bits >>> 24, (bits >>> 16) & 255, (bits >>> 8) & 255, bits & 255].join('.');
}

/** The kernel command line: the scenario's append, then what LiveStack needs unless the append set it. */
export function guestAppend(host: Pick<PlanHost, 'name' | 'address' | 'vm'>, prefixLength: number): string {
  const append = host.vm?.append ?? 'console=ttyS0';
  const has = (key: string): boolean => append.split(/\s+/).some((word) => word === key || word.startsWith(`${key}=`));
  const extra: string[] = [];
  if (!has('console')) extra.push('console=ttyS0');
  // nfsroot format; parsed by the init of qemu-guest.ts (Debian's kernel has no CONFIG_IP_PNP)
  if (!has('ip')) extra.push(`ip=${host.address}::0.0.0.0:${netmask(prefixLength)}:${host.name}:eth0:off`);
  // the guest's TSC is the host's (see above): time from the HPET, which QEMU runs on the cell's clock
  if (!has('clocksource')) extra.push('clocksource=hpet');
  // the guest powering off or panicking ends QEMU (-no-reboot) instead of looping
  if (!has('panic')) extra.push('panic=-1');
  return [append, ...extra].join(' ').trim();
}

const shellQuote = (word: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** QEMU's arguments for a host (without the program). */
export function qemuArgs(host: PlanHost, options: { kernel: string; initrd: string | null; mac: string; prefixLength: number }): string[] {
  const memoryMiB = Math.max(64, Math.floor(guestMemoryBytes(host) / (1024 * 1024)));
  return [
    '-accel', `tcg,tb-size=${QEMU_TB_SIZE_MIB}`,
    '-smp', String(Math.max(1, host.cpus)),
    '-m', `${memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    // the guest's console is QEMU's stdout: the host's log, stamped with virtual time
    '-serial', 'stdio',
    '-kernel', options.kernel,
    ...(options.initrd === null ? [] : ['-initrd', options.initrd]),
    '-append', guestAppend(host, options.prefixLength),
    '-netdev', `tap,id=net0,ifname=${GUEST_TAP},script=no,downscript=no`,
    // romfile=: no iPXE option ROM (the kernel is loaded directly; saves its load and the BIOS's scan)
    '-device', `virtio-net-pci,netdev=net0,mac=${options.mac},romfile=`,
    // troubleshooting and experiments (e.g. "-icount shift=auto,sleep=off"): added as they are
    ...(process.env['LIVESTACK_QEMU_ARGS'] ?? '').split(/\s+/).filter((word) => word !== ''),
  ];
}

async function ipBatch(netns: string, commands: readonly string[]): Promise<void> {
  const result = await execa('ip', ['-n', netns, '-batch', '-'], { input: commands.join('\n') + '\n', timeout: IP_TIMEOUT_MS, reject: false });
  if (result.failed) throw new Error(`ip -n ${netns} -batch: ${result.stderr.trim() || result.shortMessage}`);
}

/**
 * Turns a fresh cell into the home of a qemu host: the bridge and QEMU's tap in its namespace (removed with
 * the namespace), the guest's initrd (the scenario's, plus an archive with /etc/hosts naming every host),
 * and the command that runs QEMU. Returns that command, to start at virtual time 0.
 */
export async function prepareQemuCell(cell: Cell, host: PlanHost, plan: Pick<Plan, 'hosts' | 'network'>, baseDir?: string): Promise<PlanCommand> {
  const vm = host.vm;
  if (!isQemuHost(host) || vm === null || vm.kernel === null) throw new CellError(host.name, 'not a backend qemu host with a kernel', 'this is a LiveStack bug');
  const qemu = findProgram(QEMU_BINARY);
  if (qemu === null) throw new CellError(host.name, `${QEMU_BINARY} is not installed`, `apt-get install -y ${QEMU_PACKAGE}`);
  try {
    await ipBatch(cell.netns, [
      // eth0 keeps its fd, ring and drop filter; it only stops being an IP endpoint
      'addr flush dev eth0',
      `link set dev eth0 address ${portMac(cell.mac, '06')}`,
      `link add ${GUEST_BRIDGE} type bridge`,
      `link set dev ${GUEST_BRIDGE} address ${portMac(cell.mac, '0a')}`,
      `link set dev ${GUEST_BRIDGE} addrgenmode none`,
      `tuntap add dev ${GUEST_TAP} mode tap`,
      `link set dev ${GUEST_TAP} addrgenmode none`,
      `link set dev eth0 master ${GUEST_BRIDGE}`,
      `link set dev ${GUEST_TAP} master ${GUEST_BRIDGE}`,
      // a two-port wire: no learning, every frame to the other port. A guest without ARP (eth0 NOARP, like a
      // process cell's) sends to its own MAC, which a learning bridge would have sent back to the guest
      `link set dev eth0 type bridge_slave learning off flood on`,
      `link set dev ${GUEST_TAP} type bridge_slave learning off flood on`,
      `link set dev ${GUEST_TAP} up`,
      `link set dev ${GUEST_BRIDGE} up`,
    ]);
  } catch (error) {
    throw new CellError(host.name, `cannot bridge the guest's NIC in ${cell.netns}: ${messageOf(error)}`, 'run livestack doctor (tap, ip); the kernel needs bridge support', { cause: error });
  }
  const kernel = vmPath(vm.kernel, host.source, baseDir);
  let initrd: string | null = null;
  if (vm.initrd !== null) {
    // Linux unpacks concatenated archives in order (Documentation/driver-api/early-userspace/buffer-format.rst)
    const hosts = plan.hosts.map((h) => `${h.address}\t${h.name}`).join('\n');
    const extra = gzipSync(cpioArchive([
      { path: 'etc', type: 'dir' },
      { path: 'etc/hosts', type: 'file', data: `127.0.0.1\tlocalhost\n${hosts}\n` },
    ]));
    initrd = join(cell.dir, 'initrd');
    writeFileSync(initrd, Buffer.concat([readFileSync(vmPath(vm.initrd, host.source, baseDir)), extra]));
  }
  const args = qemuArgs(host, { kernel, initrd, mac: cell.mac, prefixLength: plan.network.prefixLength });
  // exec: QEMU is the launcher's pid, so its exit is the command's and a signal reaches it directly
  return { name: QEMU_COMMAND_NAME, command: ['exec', qemu, ...args].map(shellQuote).join(' '), atNs: 0 };
}
