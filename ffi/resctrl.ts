// resctrl (cache ways, memory bandwidth) probe (ffi/c/resctrl.c).
import koffi from 'koffi';
import { errnoError, lazyFunction } from './lib.ts';
import type { ErrnoError } from './lib.ts';

export const DEFAULT_RESCTRL_ROOT = '/sys/fs/resctrl';

const ResctrlProbeStruct = koffi.struct('ls_resctrl_probe', {
  root_exists: 'int',
  present: 'int',
  by_structure: 'int',
  l3: 'int',
  l3_ways: 'int',
  l3_cbm_mask: 'unsigned long long',
  l3_num_closids: 'int',
  mb: 'int',
  mb_bandwidth_gran: 'int',
  mb_min_bandwidth: 'int',
  mb_num_closids: 'int',
  error: 'int',
});

interface ResctrlProbeC {
  root_exists: number;
  present: number;
  by_structure: number;
  l3: number;
  l3_ways: number;
  l3_cbm_mask: number | bigint;
  l3_num_closids: number;
  mb: number;
  mb_bandwidth_gran: number;
  mb_min_bandwidth: number;
  mb_num_closids: number;
  error: number;
}

const resctrlProbe = lazyFunction(
  'ls_resctrl__probe',
  'int',
  ['const char *', koffi.out(koffi.pointer(ResctrlProbeStruct))],
  [ResctrlProbeStruct],
);

export interface ResctrlProbe {
  readonly root: string;
  /** The directory exists: the kernel has resctrl, even if it is not mounted. */
  readonly rootExists: boolean;
  /** resctrl is mounted at root (or a tree shaped like it). */
  readonly present: boolean;
  /** Recognised by file layout only, not by filesystem magic (fake trees). */
  readonly byStructure: boolean;
  /** L3 cache allocation, null if the CPU has none. */
  readonly l3: { readonly ways: number; readonly cbmMaskHex: string; readonly numClosids: number } | null;
  /** Memory bandwidth allocation, null if the CPU has none. */
  readonly mb: {
    readonly bandwidthGranPercent: number;
    readonly minBandwidthPercent: number;
    readonly numClosids: number;
  } | null;
  readonly error: ErrnoError | null;
}

/** An absent root is a normal answer (present: false), not an error. */
export function probeResctrl(root: string = DEFAULT_RESCTRL_ROOT): ResctrlProbe {
  const out = {} as ResctrlProbeC;
  const result = resctrlProbe()(root, out) as number;
  return {
    root,
    rootExists: out.root_exists !== 0,
    present: out.present !== 0,
    byStructure: out.by_structure !== 0,
    l3: out.l3
      ? { ways: out.l3_ways, cbmMaskHex: BigInt(out.l3_cbm_mask).toString(16), numClosids: out.l3_num_closids }
      : null,
    mb: out.mb
      ? {
          bandwidthGranPercent: out.mb_bandwidth_gran,
          minBandwidthPercent: out.mb_min_bandwidth,
          numClosids: out.mb_num_closids,
        }
      : null,
    error: errnoError(out.error || result),
  };
}
