import { existsSync } from 'node:fs';
import test from 'ava';
import { KVM_API_VERSION, probeKvm } from '../../ffi/kvm.ts';

// Errors /dev/kvm can legitimately give: absent, no permission, no module,
// or a VM that cannot be created (resources, nesting).
const CLEAN_ERRORS = ['ENOENT', 'EACCES', 'EPERM', 'ENXIO', 'ENODEV', 'ENOMEM', 'EINVAL', 'EBUSY', 'EINTR'];

test('the KVM probe answers a valid API version or a clean errno', (t) => {
  const probe = probeKvm();
  if (probe.usable) {
    t.is(probe.apiVersion, KVM_API_VERSION);
    t.true(probe.caps.userMemory > 0, 'KVM_CAP_USER_MEMORY is in every KVM since 2.6.29');
    if (probe.canCreateVm) {
      t.is(probe.error, null);
      t.true(probe.vmCreateNs! > 0 && probe.vmCreateNs! < 10e9);
    } else {
      t.true(CLEAN_ERRORS.includes(probe.error!.code), probe.error?.code);
      t.is(probe.vmCreateNs, null);
    }
  } else {
    t.is(probe.apiVersion, 0);
    t.false(probe.canCreateVm);
    t.is(probe.vmCreateNs, null);
    t.true(CLEAN_ERRORS.includes(probe.error!.code), probe.error?.code);
  }
});

test('the probe agrees with the filesystem about /dev/kvm', (t) => {
  const probe = probeKvm();
  if (!existsSync('/dev/kvm')) t.is(probe.error?.code, 'ENOENT');
  else t.not(probe.error?.code, 'ENOENT');
});

// LIVESTACK_REQUIRE_LIVE=1 turns "KVM may be absent" into "KVM must work":
// set on machines that are meant to run vm cells.
test('with LIVESTACK_REQUIRE_LIVE=1 and /dev/kvm present, a VM can be created', (t) => {
  const required = process.env.LIVESTACK_REQUIRE_LIVE === '1' && existsSync('/dev/kvm');
  const probe = probeKvm();
  if (required) {
    t.is(probe.apiVersion, KVM_API_VERSION);
    t.true(probe.canCreateVm, probe.error?.code);
  } else {
    t.is(probe.canCreateVm, probe.usable && probe.error === null);
  }
});
