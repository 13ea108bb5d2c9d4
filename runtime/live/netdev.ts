// A cell's network: its own network namespace with lo up and one tap device,
// renamed eth0 inside, that carries the host's MAC and 198.18.x.y/15 address
// and nothing else: no default route, so nothing inside can reach the real
// network. LiveStack keeps the tap's fd: the frames the cell sends are read
// from it, the frames the simulated network delivers are written to it.
//
// The tap is created in the root namespace (where LiveStack runs) and then
// moved; the open fd stays attached across the move, and the device dies
// with the fd, so a crashed LiveStack leaves no tap (only the namespace,
// which cleanupStale() removes).
import { spawnSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { execa } from 'execa';
import { closeRing, openRing, openTap } from '../../ffi/cell.ts';
import { intToIp, ipToInt } from '../model/packet.ts';
import { CellError, messageOf } from './errors.ts';
import { nextTapName } from './names.ts';

/** `ip` is quick (~2 ms); a hung one must not hang LiveStack. */
const IP_TIMEOUT_MS = 10_000;

/**
 * The TCP congestion control of a cell's connections over the simulated network (a route metric,
 * so it holds for connections made and accepted, whatever the machine's default). A cell's kernel
 * runs on real time (CELLS-FACTS pitfall 5), so a congestion control that paces (bbr, this
 * machine's default) spaces segments by real time: with the run at ~2.2x wall/virtual, a 12.6 KB
 * database answer over a 1 ms link left in two bursts ~450 us of virtual time apart (its pacing
 * rate came from the real-time RTT, 4.4 ms for a 2 ms one), and the OLTP artifact's transactions
 * carried three such gaps each; at 0.5 ms none. cubic (the kernel's default choice) sends by its
 * window and ACKs, which arrive in virtual time. Natively (artifacts/native.ts) bbr and cubic
 * gave the same OLTP figures. LIVESTACK_CELL_TCP_CONGESTION=NAME picks another ('' keeps the
 * machine's default); a program may still pick its own per socket (TCP_CONGESTION, iperf3 -C).
 */
export const CELL_TCP_CONGESTION = process.env['LIVESTACK_CELL_TCP_CONGESTION'] ?? 'cubic';

/** The network address of `address`/`prefixLength`, as a route prefix (198.18.0.0/15). */
export function prefixOf(address: string, prefixLength: number): string {
  const block = 2 ** (32 - prefixLength);
  return `${intToIp(Math.floor(ipToInt(address) / block) * block)}/${prefixLength}`;
}

export interface CellNetworkSpec {
  readonly host: string;
  /** Network namespace name (/run/netns/<netns>). */
  readonly netns: string;
  /** aa:bb:cc:dd:ee:ff */
  readonly mac: string;
  readonly address: string;
  readonly prefixLength: number;
}

export interface CellNetwork {
  readonly netns: string;
  /** /run/netns/<netns>, for setns(). */
  readonly netnsPath: string;
  /** The tap's fd, held by LiveStack (non-blocking, close-on-exec). */
  readonly tapFd: number;
  /** The tap's name in the root namespace before it became eth0. */
  readonly tapName: string;
  /** The ring of frames eth0 sends, stamped by the kernel when they leave (ffi/c/ring.c); close with closeRing. */
  readonly ring: unknown;
}

export const macText = (bytes: Uint8Array): string => [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join(':');

/** Runs ip; `input` is fed to `ip -batch -`. Throws with ip's own message. */
async function ip(args: readonly string[], input?: string): Promise<void> {
  const result = await execa('ip', [...args], { input, timeout: IP_TIMEOUT_MS, reject: false, stdin: input === undefined ? 'ignore' : 'pipe' });
  if (result.failed) {
    const why = result.stderr.trim() || result.shortMessage;
    throw new Error(`ip ${args.join(' ')}${input ? ` <<${JSON.stringify(input)}` : ''}: ${why}`);
  }
}

/** Creates the namespace, the tap, moves and configures it. On failure
 * undoes what it did and throws CellError. */
export async function createCellNetwork(spec: CellNetworkSpec): Promise<CellNetwork> {
  const tapName = nextTapName();
  let tapFd = -1;
  let netnsMade = false;
  try {
    await ip(['netns', 'add', spec.netns]);
    netnsMade = true;
    tapFd = openTap(tapName);
    await ip(['link', 'set', 'dev', tapName, 'netns', spec.netns]);
    // addrgenmode none: no IPv6 link-local address, hence no DAD, router or
    // multicast-listener chatter on the tap that nobody asked for.
    const commands = [
      'link set dev lo up',
      `link set dev ${tapName} name eth0`,
      `link set dev eth0 address ${spec.mac}`,
      'link set dev eth0 addrgenmode none',
      // no ARP, so no first packet waits for a resolution: the cell sends to its own MAC and
      // ffi/c/live.c addresses each frame to the MAC of the host with the destination IP
      'link set dev eth0 arp off',
      `addr add ${spec.address}/${spec.prefixLength} dev eth0`,
      'link set dev eth0 up',
      // the simulated network's route, with a congestion control that does not pace (see CELL_TCP_CONGESTION)
      ...(CELL_TCP_CONGESTION === '' ? [] : [`route replace ${prefixOf(spec.address, spec.prefixLength)} dev eth0 proto kernel scope link src ${spec.address} congctl ${CELL_TCP_CONGESTION}`]),
    ];
    await ip(['-n', spec.netns, '-batch', '-'], commands.join('\n') + '\n');
    const netnsPath = `/run/netns/${spec.netns}`;
    const ring = openRing(netnsPath, 'eth0');
    return { netns: spec.netns, netnsPath, tapFd, tapName, ring };
  } catch (error) {
    if (tapFd >= 0) closeSync(tapFd);
    if (netnsMade) deleteNetnsSync(spec.netns);
    throw new CellError(spec.host, `cannot set up network namespace ${spec.netns}: ${messageOf(error)}`, 'run livestack doctor (netns, tap, ip)', { cause: error });
  }
}

/** `ip netns delete`, synchronous (it also runs from exit handlers). An
 * absent namespace is fine; returns ip's complaint otherwise, or null. */
export function deleteNetnsSync(netns: string): string | null {
  const result = spawnSync('ip', ['netns', 'delete', netns], { encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status === 0) return null;
  const why = result.error?.message ?? result.stderr.trim();
  if (/No such file or directory/.test(why)) return null;
  return `ip netns delete ${netns}: ${why || `exit status ${result.status}`}`;
}

/** `ip link delete` of a leftover device in the root namespace. */
export function deleteLinkSync(name: string): string | null {
  const result = spawnSync('ip', ['link', 'delete', 'dev', name], { encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status === 0) return null;
  return `ip link delete ${name}: ${result.error?.message ?? result.stderr.trim()}`;
}
