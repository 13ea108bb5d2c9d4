// tap device and network namespace probe (ffi/c/tap.c).
import koffi from 'koffi';
import { errnoError, lazyFunction } from './lib.ts';
import type { ErrnoError } from './lib.ts';

const TapProbeStruct = koffi.struct('ls_tap_probe', {
  tun_dev: 'int',
  tap_error: 'int',
  netns_file: 'int',
  unshare_error: 'int',
});

interface TapProbeC {
  tun_dev: number;
  tap_error: number;
  netns_file: number;
  unshare_error: number;
}

const tapProbe = lazyFunction('ls_tap__probe', 'int', [koffi.out(koffi.pointer(TapProbeStruct))], [TapProbeStruct]);

export interface TapProbe {
  /** /dev/net/tun could be opened. */
  readonly tunDevice: boolean;
  /** A non-persistent tap (IFF_TAP|IFF_NO_PI) was created and closed. */
  readonly tapOk: boolean;
  readonly tapError: ErrnoError | null;
  /** /proc/self/ns/net exists (kernel has network namespaces). */
  readonly netnsFile: boolean;
  /** unshare(CLONE_NEWNET) worked in a forked child. */
  readonly unshareOk: boolean;
  readonly unshareError: ErrnoError | null;
}

/** Leaves nothing behind; throws LibraryError only if the library is missing. */
export function probeTap(): TapProbe {
  const out = {} as TapProbeC;
  tapProbe()(out);
  return {
    tunDevice: out.tun_dev !== 0,
    tapOk: out.tap_error === 0,
    tapError: errnoError(out.tap_error),
    netnsFile: out.netns_file !== 0,
    unshareOk: out.unshare_error === 0,
    unshareError: errnoError(out.unshare_error),
  };
}
