// KVM capability probe (ffi/c/kvm.c).
import koffi from 'koffi';
import { errnoError, lazyFunction } from './lib.ts';
import type { ErrnoError } from './lib.ts';

/** KVM_GET_API_VERSION has been 12 since Linux 2.6.22; nothing else is usable. */
export const KVM_API_VERSION = 12;

const KvmProbeStruct = koffi.struct('ls_kvm_probe', {
  api_version: 'int',
  can_create_vm: 'int',
  cap_user_memory: 'int',
  cap_immediate_exit: 'int',
  cap_tsc_control: 'int',
  cap_adjust_clock: 'int',
  vm_create_ns: 'long long',
  error: 'int',
});

interface KvmProbeC {
  api_version: number;
  can_create_vm: number;
  cap_user_memory: number;
  cap_immediate_exit: number;
  cap_tsc_control: number;
  cap_adjust_clock: number;
  vm_create_ns: number;
  error: number;
}

const kvmProbe = lazyFunction('ls_kvm__probe', 'int', [koffi.out(koffi.pointer(KvmProbeStruct))], [KvmProbeStruct]);

export interface KvmProbe {
  /** /dev/kvm opened and speaks API version 12. */
  readonly usable: boolean;
  /** 0 when /dev/kvm could not be opened. */
  readonly apiVersion: number;
  /** A VM with one vCPU was created (and destroyed again). */
  readonly canCreateVm: boolean;
  /** KVM_CHECK_EXTENSION values: 0 = absent, > 0 = present (some carry flags). */
  readonly caps: {
    readonly userMemory: number;
    readonly immediateExit: number;
    readonly tscControl: number;
    readonly adjustClock: number;
  };
  /** Wall time of KVM_CREATE_VM + KVM_CREATE_VCPU, null if not created. */
  readonly vmCreateNs: number | null;
  /** The first failure (opening /dev/kvm, or creating the VM), null if none. */
  readonly error: ErrnoError | null;
}

/** Never throws for a missing or unusable /dev/kvm; throws LibraryError only
 * if liblivestack.so cannot be loaded. */
export function probeKvm(): KvmProbe {
  const out = {} as KvmProbeC;
  kvmProbe()(out);
  return {
    usable: out.api_version === KVM_API_VERSION,
    apiVersion: out.api_version,
    canCreateVm: out.can_create_vm !== 0,
    caps: {
      userMemory: out.cap_user_memory,
      immediateExit: out.cap_immediate_exit,
      tscControl: out.cap_tsc_control,
      adjustClock: out.cap_adjust_clock,
    },
    vmCreateNs: out.vm_create_ns >= 0 ? out.vm_create_ns : null,
    error: errnoError(out.error),
  };
}
