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
import { CellError, messageOf } from './errors.ts';
import { nextTapName } from './names.ts';

/** `ip` is quick (~2 ms); a hung one must not hang LiveStack. */
const IP_TIMEOUT_MS = 10_000;

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
