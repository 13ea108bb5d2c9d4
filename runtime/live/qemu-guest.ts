// Guest kernels and initramfs images for `backend qemu` vm hosts, made from
// what Debian ships, at test or run time (nothing binary is committed):
//   - fetchDebianKernel(): Debian's cloud kernel (linux-image-cloud-amd64,
//     resolved to its versioned package) through apt-get download + dpkg -x,
//     kept in a cache directory with the few modules a guest needs;
//   - buildInitramfs(): a gzip'd newc cpio with static busybox (busybox-static),
//     the virtio-net driver and an init script that brings eth0 up with the
//     address the kernel command line's ip= gives (runtime/live/qemu.ts puts it
//     there), then runs an optional program and keeps PID 1 alive;
//   - cpioArchive(): the newc writer both use (and qemu.ts for /etc/hosts).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Where prepared guests are kept between runs (root-owned, like apt's cache). */
export const DEFAULT_GUEST_CACHE = '/var/cache/livestack/guest';
/** The Debian metapackage whose dependency is the kernel to fetch. */
export const DEFAULT_KERNEL_PACKAGE = 'linux-image-cloud-amd64';
/** Modules a guest loads, in order (dependencies first): virtio over PCI and its network driver. Debian's
 *  cloud kernel has them as modules (CONFIG_VIRTIO_PCI=m, CONFIG_VIRTIO_NET=m) and no e1000. */
export const GUEST_MODULES = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net'] as const;
/** A fetch (two packages, ~27 MB) or a dpkg step that takes longer is stuck. */
const APT_TIMEOUT_MS = 300_000;

export class GuestError extends Error {
  override readonly name = 'GuestError';
  constructor(reason: string, readonly remedy: string) {
    super(`${reason} (${remedy})`);
  }
}

export interface GuestKernel {
  /** the bzImage */
  readonly kernel: string;
  /** e.g. 6.1.0-57-cloud-amd64 */
  readonly version: string;
  /** directory holding GUEST_MODULES as NAME.ko */
  readonly modulesDir: string;
}

function run(program: string, args: readonly string[], cwd?: string): { ok: boolean; out: string } {
  const result = spawnSync(program, [...args], { cwd, encoding: 'utf8', timeout: APT_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? result.error.message : ''}`.trim();
  return { ok: result.status === 0, out };
}

/**
 * Debian's cloud kernel and its virtio-net modules in cacheDir (fetched once; later calls return the cached
 * one). Needs root, apt and the Debian archive: `apt-get download` of the metapackage, then of the versioned
 * image it depends on, `dpkg -x` into a temporary directory, and only vmlinuz and GUEST_MODULES kept (~12 MB).
 */
export function fetchDebianKernel(cacheDir = DEFAULT_GUEST_CACHE, packageName = DEFAULT_KERNEL_PACKAGE): GuestKernel {
  const cached = cachedKernel(cacheDir);
  if (cached !== null) return cached;
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, '.fetch-'));
  try {
    const download = (name: string): string => {
      const args = ['-q', '-o', 'APT::Sandbox::User=root', 'download', name];
      let result = run('apt-get', args, work);
      // a machine whose package lists were never fetched (a fresh container) does not know the package yet
      if (!result.ok && /Unable to locate|has no installation candidate|Can't select/i.test(result.out)) {
        run('apt-get', ['-qq', 'update']);
        result = run('apt-get', args, work);
      }
      if (!result.ok) throw new GuestError(`apt-get download ${name} failed: ${result.out.split('\n').slice(-2).join(' ')}`, 'the guest kernel comes from the Debian archive: run as root on Debian with apt sources reachable');
      const deb = readdirSync(work).find((file) => file.startsWith(`${name}_`) && file.endsWith('.deb'));
      if (deb === undefined) throw new GuestError(`apt-get download ${name} left no .deb in ${work}`, 'check apt-get download by hand');
      return join(work, deb);
    };
    const meta = download(packageName);
    const depends = run('dpkg-deb', ['-f', meta, 'Depends']);
    const image = depends.out.split(',').map((d) => d.trim().split(/\s/)[0]!).find((d) => d.startsWith('linux-image-'));
    // the metapackage itself may be the image (a versioned name was given)
    const imageDeb = image === undefined ? meta : download(image);
    const root = join(work, 'root');
    const extract = run('dpkg', ['-x', imageDeb, root]);
    if (!extract.ok) throw new GuestError(`dpkg -x ${basename(imageDeb)} failed: ${extract.out}`, 'check the package by hand');
    const vmlinuz = readdirSync(join(root, 'boot')).find((file) => file.startsWith('vmlinuz-'));
    if (vmlinuz === undefined) throw new GuestError(`${basename(imageDeb)} holds no /boot/vmlinuz-*`, `use a kernel image package (${DEFAULT_KERNEL_PACKAGE})`);
    const version = vmlinuz.slice('vmlinuz-'.length);
    const staged = join(work, 'kernel');
    mkdirSync(join(staged, 'modules'), { recursive: true });
    copyFileSync(join(root, 'boot', vmlinuz), join(staged, 'vmlinuz'));
    const found = findModules(join(root, 'lib', 'modules', version));
    for (const name of GUEST_MODULES) {
      const path = found.get(name);
      if (path === undefined) continue; // built in (=y) in this kernel: nothing to load
      copyFileSync(path, join(staged, 'modules', `${name}.ko`));
    }
    writeFileSync(join(staged, 'version'), `${version}\n`);
    // atomic: a concurrent fetch or a crash never leaves a half-made kernel directory behind
    const target = join(cacheDir, 'kernel');
    rmSync(target, { recursive: true, force: true });
    renameSync(staged, target);
    return cachedKernel(cacheDir)!;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function cachedKernel(cacheDir: string): GuestKernel | null {
  const dir = join(cacheDir, 'kernel');
  if (!existsSync(join(dir, 'vmlinuz')) || !existsSync(join(dir, 'version'))) return null;
  return { kernel: join(dir, 'vmlinuz'), version: readFileSync(join(dir, 'version'), 'utf8').trim(), modulesDir: join(dir, 'modules') };
}

function findModules(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ko')) found.set(entry.name.slice(0, -3), path);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

// ---- cpio (newc), the format Linux unpacks into its initramfs --------------------------------------

export type CpioEntry =
  | { readonly path: string; readonly type: 'dir'; readonly mode?: number }
  | { readonly path: string; readonly type: 'file'; readonly data: Uint8Array | string; readonly mode?: number }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string }
  | { readonly path: string; readonly type: 'char'; readonly major: number; readonly minor: number; readonly mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/** An uncompressed newc archive (man 5 cpio; the kernel's Documentation/driver-api/early-userspace). */
export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (buffer: Buffer): void => {
    parts.push(buffer);
    offset += buffer.length;
  };
  const pad = (): void => {
    if (offset % 4 !== 0) push(Buffer.alloc(4 - (offset % 4)));
  };
  const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
  const record = (ino: number, path: string, mode: number, data: Buffer, rdev: [number, number]): void => {
    const name = Buffer.from(`${path.replace(/^\/+/, '')}\0`);
    const fields = [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length, 0];
    push(Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii'));
    push(name);
    pad();
    push(data);
    pad();
  };
  entries.forEach((entry, i) => {
    const ino = i + 1;
    if (entry.type === 'dir') record(ino, entry.path, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0), [0, 0]);
    else if (entry.type === 'file') record(ino, entry.path, S_IFREG | (entry.mode ?? 0o644), Buffer.from(entry.data), [0, 0]);
    else if (entry.type === 'symlink') record(ino, entry.path, S_IFLNK | 0o777, Buffer.from(entry.target), [0, 0]);
    else record(ino, entry.path, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), [entry.major, entry.minor]);
  });
  record(0, 'TRAILER!!!', 0, Buffer.alloc(0), [0, 0]);
  return Buffer.concat(parts);
}

// ---- the busybox initramfs ------------------------------------------------------------------------

/** Static busybox from busybox-static (a dynamically linked one cannot run in an initramfs without libc). */
export const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'];

export interface InitramfsOptions {
  readonly modulesDir: string;
  /** shell lines run after the network is up (the guest's "program"); its output goes to the console */
  readonly program?: string;
  /** default: the first static busybox of BUSYBOX_PATHS */
  readonly busybox?: string;
}

/** The init script. The kernel command line carries `ip=ADDR::GATEWAY:NETMASK:HOSTNAME:DEVICE:off`
 *  (the nfsroot format; qemu.ts adds it): this kernel has no IP autoconfiguration (CONFIG_IP_PNP is off in
 *  Debian's), so init parses it. Console lines starting "livestack-guest:" are for the host log. */
export function initScript(program = ''): string {
  return `#!/bin/busybox sh
# LiveStack guest init (runtime/live/qemu-guest.ts): busybox, the virtio-net driver, eth0 from ip=.
/bin/busybox mkdir -p /proc /sys /dev /tmp /etc /root
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $(cat /lib/modules/load); do insmod /lib/modules/$m.ko || echo "livestack-guest: insmod $m failed"; done
spec=
for word in $(cat /proc/cmdline); do case "$word" in ip=*) spec=\${word#ip=};; esac; done
field() { echo "$spec" | cut -d: -f$1; }
addr=$(field 1); gw=$(field 3); mask=$(field 4); name=$(field 5); dev=$(field 6)
dev=\${dev:-eth0}
[ -n "$name" ] && hostname "$name"
[ -w /proc/sys/net/ipv6/conf/all/disable_ipv6 ] && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
ip link set lo up
n=0
while [ ! -e /sys/class/net/$dev ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
if [ -n "$addr" ]; then
  eval $(ipcalc -p "$addr" "\${mask:-255.255.255.0}")
  ip addr add "$addr/$PREFIX" dev "$dev"
  # no ARP, like a process cell's eth0: frames leave addressed to the guest's own MAC and the data plane
  # (ffi/c/live.c) readdresses them to the MAC of the destination's host; no first packet waits for a resolution
  ip link set "$dev" arp off
  ip link set "$dev" up
  [ -n "$gw" ] && [ "$gw" != 0.0.0.0 ] && ip route add default via "$gw"
fi
echo "livestack-guest: $(hostname) up, $addr/$PREFIX on $dev, uptime $(cut -d' ' -f1 /proc/uptime) s, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
${program}
while :; do sleep 3600; done
`;
}

/** A gzip'd newc initramfs: busybox, GUEST_MODULES found in modulesDir, /init (initScript). */
export function buildInitramfs(options: InitramfsOptions): Buffer {
  const busybox = options.busybox ?? BUSYBOX_PATHS.find((path) => existsSync(path));
  if (busybox === undefined) throw new GuestError('busybox is not installed', 'apt-get install -y busybox-static');
  const busyboxBytes = readFileSync(busybox);
  if (busyboxBytes.includes('/lib64/ld-linux')) throw new GuestError(`${busybox} is dynamically linked: it cannot run in an initramfs`, 'apt-get install -y busybox-static');
  const modules = GUEST_MODULES.filter((name) => existsSync(join(options.modulesDir, `${name}.ko`)));
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'root', 'sys', 'tmp'].map((path): CpioEntry => ({ path, type: 'dir' })),
    { path: 'dev/console', type: 'char', major: 5, minor: 1 },
    { path: 'bin/busybox', type: 'file', data: busyboxBytes, mode: 0o755 },
    { path: 'bin/sh', type: 'symlink', target: 'busybox' },
    ...modules.map((name): CpioEntry => ({ path: `lib/modules/${name}.ko`, type: 'file', data: readFileSync(join(options.modulesDir, `${name}.ko`)) })),
    { path: 'lib/modules/load', type: 'file', data: modules.join('\n') + '\n' },
    { path: 'init', type: 'file', data: initScript(options.program), mode: 0o755 },
  ];
  return gzipSync(cpioArchive(entries), { level: 6 });
}

export interface PreparedGuest {
  readonly kernel: string;
  readonly initrd: string;
  readonly kernelVersion: string;
}

/** The kernel (fetched once into cacheDir) and an initramfs written to initrdPath (default
 *  cacheDir/initrd.cpio.gz), atomically. */
export function prepareGuest(options: { cacheDir?: string; initrdPath?: string; program?: string } = {}): PreparedGuest {
  const cacheDir = options.cacheDir ?? DEFAULT_GUEST_CACHE;
  const kernel = fetchDebianKernel(cacheDir);
  const initrd = options.initrdPath ?? join(cacheDir, 'initrd.cpio.gz');
  mkdirSync(dirname(initrd), { recursive: true });
  const temporary = `${initrd}.${process.pid}.tmp`;
  writeFileSync(temporary, buildInitramfs({ modulesDir: kernel.modulesDir, ...(options.program === undefined ? {} : { program: options.program }) }));
  renameSync(temporary, initrd);
  return { kernel: kernel.kernel, initrd, kernelVersion: kernel.version };
}

/** Size of a file in bytes, or -1. */
export function fileBytes(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.size ?? -1;
}
