// cgroup v1/v2 and freezer probe (ffi/c/cgroup.c).
import koffi from 'koffi';
import { errnoError, lazyFunction } from './lib.ts';
import type { ErrnoError } from './lib.ts';

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

/** The v1 controllers LiveStack uses, in the order of the LS_CG_* bits. */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'freezer', 'pids'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

const NAMES_MAX = 256; // LS_NAMES_MAX
const PATH_MAX = 256; // LS_PATH_MAX

const CgroupProbeStruct = koffi.struct('ls_cgroup_probe', {
  v1_hierarchies: 'int',
  v1_mask: 'unsigned int',
  v2: 'int',
  v2_at_root: 'int',
  freezer_v1: 'int',
  freezer_v2: 'int',
  by_structure: 'int',
  error: 'int',
  v1_names: koffi.array('char', NAMES_MAX, 'String'),
  v2_path: koffi.array('char', PATH_MAX, 'String'),
  v2_controllers: koffi.array('char', NAMES_MAX, 'String'),
});

interface CgroupProbeC {
  v1_hierarchies: number;
  v1_mask: number;
  v2: number;
  v2_at_root: number;
  freezer_v1: number;
  freezer_v2: number;
  by_structure: number;
  error: number;
  v1_names: string;
  v2_path: string;
  v2_controllers: string;
}

const cgroupProbe = lazyFunction(
  'ls_cgroup__probe',
  'int',
  ['const char *', koffi.out(koffi.pointer(CgroupProbeStruct))],
  [CgroupProbeStruct],
);

export interface CgroupProbe {
  readonly root: string;
  readonly v1: {
    /** Distinct v1 mounts (cpu -> cpu,cpuacct symlinks counted once). */
    readonly hierarchies: number;
    /** Every v1 hierarchy name, split at commas and sorted (includes named
     * hierarchies such as "systemd"). */
    readonly names: readonly string[];
    /** Which of the controllers LiveStack uses are mounted as v1. */
    readonly controllers: Readonly<Record<V1Controller, boolean>>;
  };
  /** The cgroup2 hierarchy, null if there is none. */
  readonly v2: {
    readonly path: string;
    /** Root itself is cgroup2 (unified mode), not a child such as "unified". */
    readonly atRoot: boolean;
    /** Contents of its cgroup.controllers. */
    readonly controllers: readonly string[];
  } | null;
  readonly freezer: { readonly v1: boolean; readonly v2: boolean };
  /** Recognised by file layout only, not by filesystem magic (fake trees). */
  readonly byStructure: boolean;
  /** The first unexpected failure (e.g. root unreadable), null if none. */
  readonly error: ErrnoError | null;
}

const words = (text: string): string[] => text.split(' ').filter((word) => word.length > 0);

/**
 * Probes the cgroup mounts under root. May create and remove one empty child
 * cgroup (livestack-probe-<pid>) in a real cgroup2 root to see whether
 * cgroup.freeze exists. Throws LibraryError only if the library is missing.
 */
export function probeCgroups(root: string = DEFAULT_CGROUP_ROOT): CgroupProbe {
  const out = {} as CgroupProbeC;
  const result = cgroupProbe()(root, out) as number;
  const controllers = Object.fromEntries(
    V1_CONTROLLERS.map((name, bit) => [name, (out.v1_mask & (1 << bit)) !== 0]),
  ) as Record<V1Controller, boolean>;
  return {
    root,
    v1: { hierarchies: out.v1_hierarchies, names: words(out.v1_names).sort(), controllers },
    v2: out.v2
      ? { path: out.v2_path, atRoot: out.v2_at_root !== 0, controllers: words(out.v2_controllers) }
      : null,
    freezer: { v1: out.freezer_v1 !== 0, v2: out.freezer_v2 !== 0 },
    byStructure: out.by_structure !== 0,
    error: errnoError(out.error || result),
  };
}
