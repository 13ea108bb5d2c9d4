import test from 'ava';
import { probeResctrl } from '../../ffi/resctrl.ts';
import { fakeTree } from './helpers.ts';

// Shaped like an Intel Xeon with CAT and MBA (Documentation/arch/x86/resctrl.rst).
const fullTree = {
  schemata: 'L3:0=7ff\nMB:0=100\n',
  'info/L3/cbm_mask': '7ff\n',
  'info/L3/num_closids': '16\n',
  'info/L3/min_cbm_bits': '1\n',
  'info/MB/bandwidth_gran': '10\n',
  'info/MB/min_bandwidth': '10\n',
  'info/MB/num_closids': '8\n',
};

test('fake tree with L3 and MB: ways counted from cbm_mask', (t) => {
  const root = fakeTree(t, fullTree);
  const probe = probeResctrl(root);
  t.is(probe.error, null);
  t.true(probe.rootExists);
  t.true(probe.present);
  t.true(probe.byStructure);
  t.deepEqual(probe.l3, { ways: 11, cbmMaskHex: '7ff', numClosids: 16 });
  t.deepEqual(probe.mb, { bandwidthGranPercent: 10, minBandwidthPercent: 10, numClosids: 8 });
});

test('fake tree with L3 only (a CPU without MBA)', (t) => {
  const root = fakeTree(t, { schemata: 'L3:0=fffff\n', 'info/L3/cbm_mask': 'fffff\n', 'info/L3/num_closids': '4\n' });
  const probe = probeResctrl(root);
  t.is(probe.error, null);
  t.is(probe.l3?.ways, 20);
  t.is(probe.mb, null);
});

test('a malformed cbm_mask is an EINVAL finding, not a crash', (t) => {
  const root = fakeTree(t, { ...fullTree, 'info/L3/cbm_mask': 'zz\n' });
  const probe = probeResctrl(root);
  t.true(probe.present);
  t.is(probe.error?.code, 'EINVAL');
  t.is(probe.l3?.ways, 0);
});

test('an empty mount point is "exists but not mounted"', (t) => {
  const root = fakeTree(t, {});
  const probe = probeResctrl(root);
  t.true(probe.rootExists);
  t.false(probe.present);
  t.is(probe.error, null);
});

test('a nonexistent root is absent, without an error', (t) => {
  const probe = probeResctrl('/nonexistent/livestack/resctrl');
  t.deepEqual(
    { rootExists: probe.rootExists, present: probe.present, l3: probe.l3, mb: probe.mb, error: probe.error },
    { rootExists: false, present: false, l3: null, mb: null, error: null },
  );
});
