// The VMM bench in smoke mode: every row runs and gives a sane figure (no timing asserted).
import { existsSync } from 'node:fs';
import test from 'ava';
import { runVmBench } from '../../bench/vm.ts';
import { probeKvm } from '../../ffi/kvm.ts';

const kvm = existsSync('/dev/kvm') && probeKvm().canCreateVm;
const vmTest = kvm || process.env.LIVESTACK_REQUIRE_LIVE === '1' ? test.serial : test.skip;

vmTest('bench/vm.ts --smoke: every row runs', async (t) => {
  const rows = await runVmBench(true);
  t.log(rows.map((r) => `${r.name}: ${r.figure} | ${r.baseline} | ${r.ratio.toFixed(2)} (${r.goal})`).join('\n'));
  // FFI, exits, 3 kick quanta, create, 2 CPU rows, idle
  t.is(rows.length, 9);
  for (const row of rows) t.true(Number.isFinite(row.ratio) && row.ratio > 0, row.name);
  // the sleeping guest is jumped over, not waited for (real time would be a ratio of at most 1; the run's
  // set-up, VM creation and calibration included, took 0.03-0.4 s for the 2 s in slow phases of this machine)
  t.true(rows[8]!.ratio > 2, rows[8]!.figure);
});
