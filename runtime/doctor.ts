// `livestack doctor`: what this machine can do, and what to do about what it
// cannot. The report is also stored with every run (the environment a result
// came from), so it is plain data that survives JSON.stringify.
//
// The doctor never throws: each capability is checked on its own, and when
// liblivestack.so cannot be loaded it says so and falls back to what plain
// file checks can tell.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CGROUP_ROOT, V1_CONTROLLERS, probeCgroups } from '../ffi/cgroup.ts';
import type { CgroupProbe } from '../ffi/cgroup.ts';
import { probeKvm } from '../ffi/kvm.ts';
import type { KvmProbe } from '../ffi/kvm.ts';
import { vmExitCostNs, vmKickCostNs } from '../ffi/vm.ts';
import { LibraryError, libraryPath, loadLibrary } from '../ffi/lib.ts';
import type { ErrnoError, Library } from '../ffi/lib.ts';
import { DEFAULT_RESCTRL_ROOT, probeResctrl } from '../ffi/resctrl.ts';
import type { ResctrlProbe } from '../ffi/resctrl.ts';
import { probeTap } from '../ffi/tap.ts';
import { DEFAULT_GUEST_CACHE } from './live/qemu-guest.ts';
// PATH, then the sbin directories (ip lives there and a non-root PATH often lacks them)
import { findProgram } from './live/qemu.ts';
import type { TapProbe } from '../ffi/tap.ts';

export type CapabilityStatus = 'ok' | 'partial' | 'missing';

export const CAPABILITY_KEYS = [
  'library',
  'kvm',
  'kvmGuests',
  'guestKernel',
  'cgroupV1',
  'cgroupV2',
  'freezer',
  'resctrl',
  'netns',
  'tap',
  'cpus',
  'qemu',
  'ip',
  'ping',
  'iperf3',
  'tshark',
  'stressNg',
] as const;
export type CapabilityKey = (typeof CAPABILITY_KEYS)[number];

/** Process cells cannot run without these; everything else narrows what a
 * scenario may use (vm hosts, cache_ways, a given workload). */
const ESSENTIAL: ReadonlySet<CapabilityKey> = new Set(['library', 'freezer', 'netns', 'tap']);

export interface Capability {
  readonly key: CapabilityKey;
  readonly status: CapabilityStatus;
  /** What was found, one line. */
  readonly detail: string;
  /** What to do (or what it means) when not ok; null when ok. */
  readonly hint: string | null;
  readonly essential: boolean;
}

export interface DoctorReport {
  /** Every essential capability is at least partial: process cells can run. */
  readonly ok: boolean;
  readonly summary: string;
  readonly counts: Readonly<Record<CapabilityStatus, number>>;
  readonly capabilities: Readonly<Record<CapabilityKey, Capability>>;
  /** Raw probe results (null where the probe could not run), for tools and run records. */
  readonly probes: {
    readonly kvm: KvmProbe | null;
    readonly cgroups: CgroupProbe | null;
    readonly resctrl: ResctrlProbe | null;
    readonly tap: TapProbe | null;
  };
  /** Wall time each probe took, ns. */
  readonly timingsNs: Readonly<Record<string, number>>;
  readonly host: {
    readonly kernel: string;
    readonly node: string;
    /** /proc/cpuinfo has the hypervisor flag: this machine is itself a VM. */
    readonly hypervisor: boolean;
  };
}

export interface DoctorOptions {
  readonly cgroupRoot?: string;
  readonly resctrlRoot?: string;
}

type Finding = Omit<Capability, 'key' | 'essential'>;

const ok = (detail: string): Finding => ({ status: 'ok', detail, hint: null });
const partial = (detail: string, hint: string): Finding => ({ status: 'partial', detail, hint });
const missing = (detail: string, hint: string): Finding => ({ status: 'missing', detail, hint });
const errorText = (error: ErrnoError | null): string => (error ? error.code : 'unknown error');
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const KVM_HINT = 'load kvm_intel/kvm_amd or run on a machine with /dev/kvm; vm hosts need it';
const QEMU_BACKEND_HINT = 'full-system guests need `backend qemu` (apt-get install -y qemu-system-x86)';
const LIBRARY_FALLBACK = 'not probed: liblivestack.so not loaded';
/** Where scenarios/vm/prepare.ts puts its guest. */
const GUEST_CACHE = DEFAULT_GUEST_CACHE;

/** Without the library only existence can be checked: partial at best. */
const byExistence = (path: string, notProbed: string, absent: string, hint: string): Finding =>
  existsSync(path) ? partial(`${path} exists; ${notProbed}`, hint) : missing(absent, hint);

// Program name, Debian package, and why LiveStack wants it.
const TOOLS: ReadonlyArray<readonly [CapabilityKey, string, string, string]> = [
  ['ip', 'ip', 'iproute2', 'namespaces, veth and tap setup'],
  ['ping', 'ping', 'iputils-ping', 'latency workloads and checks'],
  ['iperf3', 'iperf3', 'iperf3', 'throughput workloads'],
  ['tshark', 'tshark', 'tshark', 'reading pcap output'],
  ['stressNg', 'stress-ng', 'stress-ng', 'CPU and memory interference workloads'],
];

/** Runs every check; never throws. */
export function runDoctor(options: DoctorOptions = {}): DoctorReport {
  const cgroupRoot = options.cgroupRoot ?? DEFAULT_CGROUP_ROOT;
  const resctrlRoot = options.resctrlRoot ?? DEFAULT_RESCTRL_ROOT;
  const timingsNs: Record<string, number> = {};
  const timed = <T>(name: string, probe: () => T): T => {
    const start = process.hrtime.bigint();
    try {
      return probe();
    } finally {
      timingsNs[name] = Number(process.hrtime.bigint() - start);
    }
  };

  let library: Library | null = null;
  let libraryProblem = missing(`cannot load ${libraryPath()}`, 'run npm install (it builds ffi/build/liblivestack.so)');
  try {
    library = timed('library', loadLibrary);
  } catch (error) {
    if (error instanceof LibraryError) libraryProblem = missing(error.reason, error.remedy);
    else libraryProblem = missing(`cannot load ${libraryPath()}: ${messageOf(error)}`, libraryProblem.hint!);
  }
  // A probe that throws after the library loaded (ABI mismatch) is reported
  // on its capability, not allowed to end the doctor.
  const probeErrors: Partial<Record<string, string>> = {};
  const probe = <T>(name: string, run: () => T): T | null => {
    if (!library) return null;
    try {
      return timed(name, run);
    } catch (error) {
      probeErrors[name] = messageOf(error);
      return null;
    }
  };
  const kvm = probe('kvm', probeKvm);
  const cgroups = probe('cgroups', () => probeCgroups(cgroupRoot));
  const resctrl = probe('resctrl', () => probeResctrl(resctrlRoot));
  const tap = probe('tap', probeTap);
  const hypervisor = timed('cpuinfo', hasHypervisorFlag);
  const notProbed = (name: string): string => (library ? `probe failed: ${probeErrors[name]}` : LIBRARY_FALLBACK);

  const checks: Record<CapabilityKey, () => Finding> = {
    library: () =>
      library
        ? ok(`liblivestack ${library.version} (ABI ${library.abiVersion}) at ${library.path}`)
        : libraryProblem,
    kvm: () => checkKvm(kvm, notProbed('kvm')),
    kvmGuests: () => timed('kvmGuests', () => checkKvmGuests(kvm)),
    guestKernel: () => checkGuestKernel(kvm, hypervisor),
    cgroupV1: () => checkCgroupV1(cgroups, cgroupRoot, notProbed('cgroups')),
    cgroupV2: () => checkCgroupV2(cgroups, cgroupRoot, notProbed('cgroups')),
    freezer: () => checkFreezer(cgroups, cgroupRoot, notProbed('cgroups')),
    resctrl: () => checkResctrl(resctrl, resctrlRoot, notProbed('resctrl')),
    netns: () => checkNetns(tap, notProbed('tap')),
    tap: () => checkTap(tap, notProbed('tap')),
    cpus: () => {
      const cpus = availableParallelism();
      return cpus >= 2
        ? ok(`${cpus} CPUs available`)
        : partial(`${cpus} CPU available`, 'cells and the controller share one CPU: window ends will be late');
    },
    qemu: () => timed('qemu', checkQemu),
    ip: () => checkTool('ip'),
    ping: () => checkTool('ping'),
    iperf3: () => checkTool('iperf3'),
    tshark: () => checkTool('tshark'),
    stressNg: () => checkTool('stressNg'),
  };

  const capabilities = {} as Record<CapabilityKey, Capability>;
  for (const key of CAPABILITY_KEYS) {
    let finding: Finding;
    try {
      finding = checks[key]();
    } catch (error) {
      finding = missing(`check failed: ${messageOf(error)}`, 'report this as a LiveStack bug');
    }
    capabilities[key] = { key, ...finding, essential: ESSENTIAL.has(key) };
  }

  const counts = { ok: 0, partial: 0, missing: 0 };
  for (const capability of Object.values(capabilities)) counts[capability.status]++;
  const essentialMissing = CAPABILITY_KEYS.filter((key) => ESSENTIAL.has(key) && capabilities[key].status === 'missing');
  const verdict = essentialMissing.length
    ? `process cells cannot run (missing: ${essentialMissing.join(', ')})`
    : 'process cells can run';
  return {
    ok: essentialMissing.length === 0,
    summary: `${counts.ok} ok, ${counts.partial} partial, ${counts.missing} missing; ${verdict}`,
    counts,
    capabilities,
    probes: { kvm, cgroups, resctrl, tap },
    timingsNs,
    host: { kernel: release(), node: process.version, hypervisor },
  };
}

/** Plain text, one line per capability: status, name, detail, and what to do. */
export function formatDoctor(report: DoctorReport): string {
  const keyWidth = Math.max(...CAPABILITY_KEYS.map((key) => key.length));
  const lines = [`livestack doctor: ${report.summary}`];
  for (const key of CAPABILITY_KEYS) {
    const { status, detail, hint } = report.capabilities[key];
    const advice = hint ? ` -> ${hint}` : '';
    lines.push(`  ${status.padEnd(7)} ${key.padEnd(keyWidth)}  ${detail}${advice}`);
  }
  return lines.join('\n') + '\n';
}

function checkKvm(kvm: KvmProbe | null, notProbed: string): Finding {
  if (!kvm) return byExistence('/dev/kvm', notProbed, '/dev/kvm does not exist', KVM_HINT);
  if (!kvm.usable) {
    const why: Record<string, string> = {
      ENOENT: '/dev/kvm does not exist (ENOENT)',
      EACCES: 'no permission to open /dev/kvm (EACCES): run as root or join the kvm group',
      ENXIO: '/dev/kvm exists but no KVM module is loaded (ENXIO)',
      ENODEV: '/dev/kvm exists but no KVM module is loaded (ENODEV)',
      EPROTO: `KVM API version ${kvm.apiVersion}, expected 12`,
    };
    const code = errorText(kvm.error);
    return missing(why[code] ?? `cannot use /dev/kvm: ${code}`, KVM_HINT);
  }
  const caps = Object.entries(kvm.caps)
    .map(([name, value]) => (value > 0 ? name : `no ${name}`))
    .join(', ');
  if (!kvm.canCreateVm) {
    return partial(`API ${kvm.apiVersion}, but creating a VM failed: ${errorText(kvm.error)}; caps: ${caps}`, KVM_HINT);
  }
  const createMs = ((kvm.vmCreateNs ?? 0) / 1e6).toFixed(2);
  return ok(`API ${kvm.apiVersion}, VM + vCPU created in ${createMs} ms; caps: ${caps}`);
}

// kind vm hosts on the KVM backend: a ring-3 guest really runs (the VMM's
// exit-cost calibration boots one and makes it write a port 48 times).
function checkKvmGuests(kvm: KvmProbe | null): Finding {
  if (!kvm?.canCreateVm) return missing('kvm guests: KVM cannot create a VM here', `kind vm hosts need /dev/kvm; ${QEMU_BACKEND_HINT}`);
  const exitNs = vmExitCostNs();
  if (exitNs <= 0) return missing('kvm guests: a ring-3 guest did not run (its port write never reached the VMM)', 'report this with the output of livestack doctor --json');
  return ok(`kvm guests (ring 3, guest SDK) run: an exit costs ${(exitNs / 1000).toFixed(0)} us of host CPU, a quantum kick ${(vmKickCostNs() / 1000).toFixed(0)} us (not counted in guest time)`);
}

// Whether a stock kernel boots under KVM cannot be told without booting one.
// What we know (KVM-FACTS.md): under nested virtualisation such as PVM,
// guest ring 0 is emulated, and Debian's kernel does not boot.
function checkGuestKernel(kvm: KvmProbe | null, hypervisor: boolean): Finding {
  if (!kvm?.canCreateVm) {
    const nested = hypervisor ? '; this host is itself a VM' : '';
    return missing(`guest kernels: not under KVM (KVM is not usable here${nested})`, QEMU_BACKEND_HINT);
  }
  if (hypervisor) {
    return partial(
      'guest kernels: likely not: this host is itself a VM (cpuinfo hypervisor flag); under nested ' +
        'virtualisation such as PVM guest ring 0 is emulated and stock kernels may not boot under KVM',
      `ring-3 vm cells still work; ${QEMU_BACKEND_HINT}`,
    );
  }
  return ok('guest kernels: likely (no hypervisor flag: bare metal), not boot-tested');
}

function checkCgroupV1(cgroups: CgroupProbe | null, root: string, notProbed: string): Finding {
  const hint = `mount the controllers (mount -t cgroup -o <name> cgroup ${root}/<name>) or use cgroup v2`;
  if (!cgroups) {
    const found = V1_CONTROLLERS.filter((name) => existsSync(join(root, name)));
    if (!found.length) return missing(`no v1 hierarchies under ${root}`, hint);
    return partial(`${found.join(' ')} under ${root}; ${notProbed}`, hint);
  }
  if (cgroups.v1.hierarchies === 0) {
    if (cgroups.error) return missing(`${root}: ${errorText(cgroups.error)}`, hint);
    return missing(`no v1 hierarchies under ${root}`, cgroups.v2 ? 'not needed while cgroup v2 holds the controllers' : hint);
  }
  const absent = V1_CONTROLLERS.filter((name) => !cgroups.v1.controllers[name]);
  const detail = `${cgroups.v1.hierarchies} hierarchies: ${cgroups.v1.names.join(' ')}${structural(cgroups.byStructure)}`;
  return absent.length ? partial(`${detail} (missing ${absent.join(', ')})`, hint) : ok(detail);
}

// The v2 controllers cells use; in hybrid setups they are often bound to v1.
const V2_WANTED = ['cpu', 'cpuset', 'memory', 'pids'];

function checkCgroupV2(cgroups: CgroupProbe | null, root: string, notProbed: string): Finding {
  // cgroup.threads there is what tells a quiescent cell (ffi/c/live.c, "Yielding"): without it cells sit out their turns
  const hint = `mount -t cgroup2 none ${root}/unified, or boot with systemd.unified_cgroup_hierarchy=1 (without it, cells that have nothing to do sit out their turns: slower runs)`;
  if (!cgroups) {
    const path = [root, join(root, 'unified')].find((dir) => existsSync(join(dir, 'cgroup.controllers')));
    return path ? partial(`cgroup2 at ${path}; ${notProbed}`, hint) : missing(`no cgroup2 at ${root} or ${root}/unified`, hint);
  }
  const v2 = cgroups.v2;
  if (!v2) return missing(`no cgroup2 at ${root} or below it`, hint);
  const controllers = v2.controllers.length ? v2.controllers.join(' ') : 'none';
  const detail = `${v2.path}${v2.atRoot ? ' (unified mode)' : ''}, controllers: ${controllers}${structural(cgroups.byStructure)}`;
  const absent = V2_WANTED.filter((name) => !v2.controllers.includes(name));
  if (!absent.length) return ok(detail);
  const boundToV1 = absent.filter((name) => cgroups.v1.names.includes(name));
  const where = boundToV1.length === absent.length ? ' (bound to v1 here)' : '';
  return partial(`${detail}; without ${absent.join(', ')}${where}`, 'cells use the v1 hierarchies for those controllers');
}

function checkFreezer(cgroups: CgroupProbe | null, root: string, notProbed: string): Finding {
  const hint =
    `mount -t cgroup -o freezer freezer ${root}/freezer, or use cgroup v2 on a kernel >= 5.2; ` +
    'cells are frozen between windows';
  if (!cgroups) return byExistence(join(root, 'freezer'), notProbed, `no freezer under ${root}`, hint);
  const kinds = [cgroups.freezer.v2 ? 'cgroup v2 cgroup.freeze' : '', cgroups.freezer.v1 ? 'v1 freezer' : ''].filter(Boolean);
  return kinds.length ? ok(kinds.join(' and ')) : missing(`no v1 freezer and no v2 cgroup.freeze under ${root}`, hint);
}

function checkResctrl(resctrl: ResctrlProbe | null, root: string, notProbed: string): Finding {
  const ignored = 'cache_ways/mem_bandwidth will be ignored';
  const hint = `${ignored}: the CPU/kernel has no resctrl (mount -t resctrl resctrl ${root} where supported)`;
  if (!resctrl) return byExistence(join(root, 'info'), notProbed, `${root} is not mounted`, hint);
  if (!resctrl.present) {
    return resctrl.rootExists
      ? missing(`${root} exists but resctrl is not mounted`, `${ignored} until you mount -t resctrl resctrl ${root}`)
      : missing(`${root} does not exist${resctrl.error ? ` (${errorText(resctrl.error)})` : ''}`, hint);
  }
  const l3 = resctrl.l3
    ? `L3 ${resctrl.l3.ways} ways (cbm_mask ${resctrl.l3.cbmMaskHex}), ${resctrl.l3.numClosids} CLOSIDs`
    : 'no L3 allocation';
  const mb = resctrl.mb
    ? `MB granularity ${resctrl.mb.bandwidthGranPercent}%, min ${resctrl.mb.minBandwidthPercent}%, ${resctrl.mb.numClosids} CLOSIDs`
    : 'no memory bandwidth allocation';
  const detail = `${root}: ${l3}; ${mb}${structural(resctrl.byStructure)}`;
  if (resctrl.l3 && resctrl.mb) return ok(detail);
  const lacking = resctrl.l3 ? 'mem_bandwidth' : resctrl.mb ? 'cache_ways' : 'cache_ways and mem_bandwidth';
  return partial(detail, `${lacking} will be ignored: this CPU does not offer it`);
}

function checkNetns(tap: TapProbe | null, notProbed: string): Finding {
  const hint = 'network namespaces need CONFIG_NET_NS and CAP_SYS_ADMIN (run as root); each host gets its own';
  if (!tap) return byExistence('/proc/self/ns/net', notProbed, '/proc/self/ns/net does not exist', hint);
  if (!tap.netnsFile) return missing('/proc/self/ns/net does not exist', hint);
  if (!tap.unshareOk) return missing(`unshare(CLONE_NEWNET) failed: ${errorText(tap.unshareError)}`, hint);
  return ok('unshare(CLONE_NEWNET) works');
}

function checkTap(tap: TapProbe | null, notProbed: string): Finding {
  const hint = 'modprobe tun, and run as root (CAP_NET_ADMIN); hosts attach to the simulated network through taps';
  if (!tap) return byExistence('/dev/net/tun', notProbed, '/dev/net/tun does not exist', hint);
  if (!tap.tunDevice) return missing(`cannot open /dev/net/tun: ${errorText(tap.tapError)}`, hint);
  if (!tap.tapOk) return missing(`TUNSETIFF(IFF_TAP) failed: ${errorText(tap.tapError)}`, hint);
  return ok('tap device created and removed via /dev/net/tun');
}

const structural = (byStructure: boolean): string => (byStructure ? ' [recognised by file layout, not a real mount]' : '');

function hasHypervisorFlag(): boolean {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m);
    return flags ? flags[1].split(/\s+/).includes('hypervisor') : false;
  } catch {
    return false; // no /proc/cpuinfo: not Linux x86, nothing to say
  }
}

// `backend qemu` vm hosts (runtime/live/qemu.ts): QEMU's x86-64 system emulator with TCG (no KVM needed),
// run inside a process cell. The guest a scenario boots is its own file; the one scenarios/vm/ uses is
// reported when it has been prepared.
function checkQemu(): Finding {
  const path = findProgram('qemu-system-x86_64');
  if (!path) return missing('qemu-system-x86_64 is not on PATH: backend qemu vm hosts cannot run', QEMU_BACKEND_HINT);
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 3000 });
  const version = result.stdout?.match(/version\s+(\S+)/)?.[1];
  if (result.error || result.status !== 0 || !version) {
    const why = result.error?.message ?? (result.signal ? `killed by ${result.signal}` : `exit status ${result.status}`);
    return partial(`${path} found, but --version failed (${why})`, 'reinstall qemu-system-x86');
  }
  const accels = spawnSync(path, ['-accel', 'help'], { encoding: 'utf8', timeout: 3000 }).stdout ?? '';
  if (!/^tcg$/m.test(accels)) return partial(`QEMU ${version} at ${path} has no TCG accelerator`, 'backend qemu runs guests with TCG: install Debian\'s qemu-system-x86');
  const kernel = join(GUEST_CACHE, 'kernel', 'vmlinuz');
  const guest = existsSync(kernel) && existsSync(join(GUEST_CACHE, 'initrd.cpio.gz'))
    ? `guest of scenarios/vm prepared in ${GUEST_CACHE}`
    : `no guest prepared for scenarios/vm (npx tsx scenarios/vm/prepare.ts: Debian's cloud kernel + a busybox initramfs, needs busybox-static)`;
  return ok(`QEMU ${version} at ${path} (TCG): backend qemu vm hosts can run; ${guest}`);
}

function checkTool(key: CapabilityKey): Finding {
  const [, program, debianPackage, purpose] = TOOLS.find(([toolKey]) => toolKey === key)!;
  const path = findProgram(program);
  if (!path) return missing(`${program} is not on PATH (${purpose})`, `apt-get install -y ${debianPackage}`);
  return ok(`${program} at ${path}`);
}
