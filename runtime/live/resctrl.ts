// resctrl (Intel RDT / AMD PQoS, Documentation/arch/x86/resctrl.rst): a
// cell with cache_ways or mem_bandwidth gets its own control group
// <root>/ls-<runId>-<host> whose schemata gives it N ways of L3 and a share
// of memory bandwidth; the launcher adds the cell's first process to its
// tasks file (children inherit the group).
//
// Where there is no resctrl (this machine kind) the settings are skipped
// with one notice. Everything takes the root as a parameter so a fake tree
// can stand in for /sys/fs/resctrl in tests.
import { appendFileSync, mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_RESCTRL_ROOT, probeResctrl } from '../../ffi/resctrl.ts';
import type { ResctrlProbe } from '../../ffi/resctrl.ts';
import { CellError, codeOf, messageOf } from './errors.ts';
import { resctrlGroupName } from './names.ts';

export { DEFAULT_RESCTRL_ROOT };

export interface ResctrlRequest {
  /** L3 ways for the cell, null = not set. */
  readonly cacheWays: number | null;
  /** Memory bandwidth, percent, null = not set. */
  readonly memBandwidthPercent: number | null;
  /** First way of the cell's mask (cells that must not share ways get
   * disjoint offsets from the caller); default 0. */
  readonly cacheWayOffset?: number;
}

/** Domain ids per resource in a schemata text ("L3:0=fffff;1=fffff"). */
export function schemataDomains(text: string): Map<string, string[]> {
  const domains = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Z0-9]+):(.*)$/.exec(line);
    if (!match) continue;
    const ids = match[2]!.split(';').map((part) => part.split('=')[0]!.trim()).filter(Boolean);
    domains.set(match[1]!, ids);
  }
  return domains;
}

/**
 * The schemata lines for a request: `L3:<id>=<mask of N ways>` and
 * `MB:<id>=<percent>` for every cache domain of the root schemata (domain 0
 * if it lists none). Requests the hardware cannot honour are refused with a
 * CellError; parts it lacks entirely are skipped with a notice.
 */
export function resctrlSchemata(
  probe: ResctrlProbe,
  rootSchemata: string,
  request: ResctrlRequest,
  host: string,
): { text: string; notices: string[] } {
  const lines: string[] = [];
  const notices: string[] = [];
  const domains = schemataDomains(rootSchemata);
  if (request.cacheWays !== null) {
    if (!probe.l3) {
      notices.push(`host ${host}: cache_ways ignored: ${probe.root} offers no L3 allocation`);
    } else {
      const offset = request.cacheWayOffset ?? 0;
      const ways = request.cacheWays;
      if (!Number.isInteger(ways) || ways < 1 || !Number.isInteger(offset) || offset < 0 || offset + ways > probe.l3.ways) {
        throw new CellError(host, `cache_ways ${ways} (from way ${offset}) does not fit the ${probe.l3.ways} L3 ways of this CPU`, `use at most ${probe.l3.ways} ways in total`);
      }
      const mask = (((1n << BigInt(ways)) - 1n) << BigInt(offset)).toString(16);
      lines.push(`L3:${(domains.get('L3') ?? ['0']).map((id) => `${id}=${mask}`).join(';')}`);
    }
  }
  if (request.memBandwidthPercent !== null) {
    if (!probe.mb) {
      notices.push(`host ${host}: mem_bandwidth ignored: ${probe.root} offers no memory bandwidth allocation`);
    } else {
      let percent = request.memBandwidthPercent;
      if (!Number.isInteger(percent) || percent < 1 || percent > 100) {
        throw new CellError(host, `mem_bandwidth ${percent}% is not a whole percentage in 1..100`, 'fix the scenario');
      }
      if (percent < probe.mb.minBandwidthPercent) {
        notices.push(`host ${host}: mem_bandwidth ${percent}% raised to the minimum ${probe.mb.minBandwidthPercent}% of this CPU`);
        percent = probe.mb.minBandwidthPercent;
      }
      lines.push(`MB:${(domains.get('MB') ?? ['0']).map((id) => `${id}=${percent}`).join(';')}`);
    }
  }
  return { text: lines.length ? lines.join('\n') + '\n' : '', notices };
}

/** A cell's resctrl control group. */
export class ResctrlGroup {
  private constructor(
    readonly dir: string,
    readonly schemata: string,
    /** A tree recognised by its files only (a test's fake): removal must
     * delete the files, where the kernel's resctrl needs a plain rmdir. */
    private readonly fake: boolean,
  ) {}

  get tasksFile(): string {
    return join(this.dir, 'tasks');
  }

  /**
   * Creates <root>/ls-<runId>-<host> with the request's schemata. Returns
   * null group and a one-line notice when resctrl is absent or the request
   * is empty of anything this CPU offers.
   */
  static create(root: string, runId: string, host: string, request: ResctrlRequest): { group: ResctrlGroup | null; notices: string[] } {
    if (request.cacheWays === null && request.memBandwidthPercent === null) return { group: null, notices: [] };
    const probe = probeResctrl(root);
    if (!probe.present) {
      const why = probe.rootExists ? `${root} is not mounted` : `${root} does not exist (no resctrl on this machine)`;
      return { group: null, notices: [`host ${host}: cache_ways/mem_bandwidth ignored: ${why}`] };
    }
    let rootSchemata = '';
    try {
      rootSchemata = readFileSync(join(root, 'schemata'), 'utf8');
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error;
    }
    const { text, notices } = resctrlSchemata(probe, rootSchemata, request, host);
    if (!text) return { group: null, notices };
    const dir = join(root, resctrlGroupName(runId, host));
    try {
      mkdirSync(dir);
    } catch (error) {
      throw new CellError(host, `cannot create resctrl group ${dir}: ${messageOf(error)}`, 'too many groups for the CLOSIDs of this CPU, or a leftover (run again: stale groups are removed first)', { cause: error });
    }
    const group = new ResctrlGroup(dir, text, probe.byStructure);
    try {
      // One write with every line: the kernel parses them together.
      writeFileSync(join(dir, 'schemata'), text);
    } catch (error) {
      group.remove();
      throw new CellError(host, `resctrl refused schemata ${JSON.stringify(text.trim())} in ${dir}: ${messageOf(error)}`, `see ${join(root, 'info', 'last_cmd_status')}`, { cause: error });
    }
    return { group, notices };
  }

  /** Moves a process (and the threads it creates later) into the group. */
  addTask(pid: number): void {
    appendFileSync(this.tasksFile, `${pid}\n`);
  }

  /** Removes the group; its tasks fall back to the default group. */
  remove(): void {
    if (this.fake) {
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    removeResctrlGroup(this.dir);
  }
}

/** rmdir of a real resctrl group; absent is fine. */
export function removeResctrlGroup(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (error) {
    if (codeOf(error) !== 'ENOENT') throw error;
  }
}
