// Every name a cell leaves on the machine, in one place. Each carries the
// pid of the LiveStack process that made it, so that cleanupStale() can tell
// the leftovers of a dead run from those of a live one:
//
//   run id          <pid>-<6 hex>                       e.g. 4711-a1b2c3
//   netns           ls-<runId>-<host>                   /run/netns/ls-4711-a1b2c3-web
//   cgroup          <hierarchy>/livestack/<runId>/<host>
//   temp dir        /dev/shm/livestack-<runId>/         hosts files, file contents
//                   (cleanupStale removes every /dev/shm/livestack-<pid>-* of a dead pid)
//   resctrl group   <resctrl root>/ls-<runId>-<host>
//   tap (briefly)   ls<pid>-<seq>  in the root namespace, until moved and renamed eth0
import { randomBytes } from 'node:crypto';

/** The top cgroup of every run, in every hierarchy. It is created when needed and never removed: a
 *  run tearing down removed it when it was empty, while another run (a second agent on the machine,
 *  or the same agent's next run) had just passed its mkdir -p, whose cgroups then vanished under it
 *  (ENOENT on cpuset.cpus, ENODEV on cgroup.freeze: fresh-clone CI runs, two agents on one machine). */
export const CGROUP_TOP = 'livestack';
export const DEFAULT_SHM_ROOT = '/dev/shm';
export const DEFAULT_NETNS_DIR = '/run/netns';
/** Linux IFNAMSIZ - 1. */
const IFNAME_MAX = 15;
/** Tap sequence numbers wrap here: 'ls' + 7-digit pid + '-' + 5 digits = 15. */
const TAP_SEQUENCE_LIMIT = 100_000;

export function newRunId(pid: number = process.pid): string {
  return `${pid}-${randomBytes(3).toString('hex')}`;
}

/** The pid in a run id, or null if it is not one. */
export function runIdPid(runId: string): number | null {
  const match = /^(\d+)-[0-9a-f]+$/.exec(runId);
  return match ? Number(match[1]) : null;
}

export const netnsName = (runId: string, host: string): string => `ls-${runId}-${host}`;
export const resctrlGroupName = (runId: string, host: string): string => `ls-${runId}-${host}`;
export const runTempDirName = (runId: string): string => `livestack-${runId}`;
export const cgroupRunPath = (runId: string): string => `${CGROUP_TOP}/${runId}`;
export const cgroupCellPath = (runId: string, host: string): string => `${CGROUP_TOP}/${runId}/${host}`;

let tapSequence = 0;
export function nextTapName(pid: number = process.pid): string {
  const name = `ls${pid}-${tapSequence}`;
  tapSequence = (tapSequence + 1) % TAP_SEQUENCE_LIMIT;
  if (name.length > IFNAME_MAX) throw new RangeError(`tap name ${name} is longer than ${IFNAME_MAX} bytes`);
  return name;
}

/** The owner pid of a leftover, by its name; null if the name is not ours. */
export const stalePid = {
  /** ls-<pid>-<hex>-<host> */
  netns: (name: string): number | null => numberOf(/^ls-(\d+)-[0-9a-f]+-./.exec(name)),
  /** <pid>-<hex> below livestack/ */
  cgroupRun: (name: string): number | null => runIdPid(name),
  /** livestack-<pid>-… in /dev/shm: a run's temp dir (livestack-<runId>),
   * and any other per-process file named that way (clock pages). */
  tempDir: (name: string): number | null => numberOf(/^livestack-(\d+)-./.exec(name)),
  /** ls<pid>-<seq> */
  tap: (name: string): number | null => numberOf(/^ls(\d+)-\d+$/.exec(name)),
  /** ls-<pid>-<hex>-<host> */
  resctrl: (name: string): number | null => numberOf(/^ls-(\d+)-[0-9a-f]+-./.exec(name)),
};

function numberOf(match: RegExpExecArray | null): number | null {
  return match ? Number(match[1]) : null;
}

/** Host names become path and device-name parts: plan names are identifiers
 * ([A-Za-z_][A-Za-z0-9_-]*), anything else is refused here. */
export function assertSafeHostName(host: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(host) || host.length > 200) {
    throw new RangeError(`host name ${JSON.stringify(host)} cannot name a cell (identifiers of up to 200 characters only)`);
  }
}
