// resctrl groups for cache_ways / mem_bandwidth, against fake resctrl trees
// (this machine kind has none), and the cell that joins one.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { probeResctrl } from '../../../ffi/resctrl.ts';
import { CellError } from '../../../runtime/live/errors.ts';
import { ResctrlGroup, resctrlSchemata, schemataDomains } from '../../../runtime/live/resctrl.ts';
import { fakeTree } from '../../ffi/helpers.ts';
import { capabilityTest, harness, liveTest, runIn, smallPlan } from './helpers.ts';

capabilityTest();

/** A resctrl root as the kernel shows it on a CPU with 20 L3 ways and MBA. */
function fakeResctrl(t: Parameters<typeof fakeTree>[0], options: { domains?: number; mb?: boolean } = {}): string {
  const ids = Array.from({ length: options.domains ?? 1 }, (_, id) => id);
  const files: Record<string, string | null> = {
    'info/L3/cbm_mask': 'fffff\n',
    'info/L3/num_closids': '16\n',
    'info/L3/min_cbm_bits': '1\n',
    schemata: `L3:${ids.map((id) => `${id}=fffff`).join(';')}\n${options.mb === false ? '' : `MB:${ids.map((id) => `${id}=100`).join(';')}\n`}`,
    tasks: '',
  };
  if (options.mb !== false) {
    files['info/MB/bandwidth_gran'] = '10\n';
    files['info/MB/min_bandwidth'] = '10\n';
    files['info/MB/num_closids'] = '8\n';
  }
  return fakeTree(t, files);
}

test('schemata: N ways as a mask from an offset, bandwidth percent, every domain', (t) => {
  const root = fakeResctrl(t, { domains: 2 });
  const probe = probeResctrl(root);
  t.true(probe.present);
  t.deepEqual([...schemataDomains('L3:0=fffff;1=fffff\nMB:0=100;1=100\n')], [['L3', ['0', '1']], ['MB', ['0', '1']]]);
  const rootSchemata = readFileSync(join(root, 'schemata'), 'utf8');
  t.deepEqual(resctrlSchemata(probe, rootSchemata, { cacheWays: 2, memBandwidthPercent: 50 }, 'h'), { text: 'L3:0=3;1=3\nMB:0=50;1=50\n', notices: [] });
  t.is(resctrlSchemata(probe, rootSchemata, { cacheWays: 4, memBandwidthPercent: null, cacheWayOffset: 8 }, 'h').text, 'L3:0=f00;1=f00\n');
  t.is(resctrlSchemata(probe, rootSchemata, { cacheWays: 20, memBandwidthPercent: null }, 'h').text, 'L3:0=fffff;1=fffff\n');
  t.is(resctrlSchemata(probe, '', { cacheWays: 1, memBandwidthPercent: null }, 'h').text, 'L3:0=1\n', 'domain 0 when the root lists none');
  const raised = resctrlSchemata(probe, rootSchemata, { cacheWays: null, memBandwidthPercent: 5 }, 'h');
  t.is(raised.text, 'MB:0=10;1=10\n');
  t.deepEqual(raised.notices, ['host h: mem_bandwidth 5% raised to the minimum 10% of this CPU']);
  t.throws(() => resctrlSchemata(probe, rootSchemata, { cacheWays: 21, memBandwidthPercent: null }, 'h'), { instanceOf: CellError, message: /cache_ways 21 .* 20 L3 ways/ });
  t.throws(() => resctrlSchemata(probe, rootSchemata, { cacheWays: 4, memBandwidthPercent: null, cacheWayOffset: 17 }, 'h'), { instanceOf: CellError });
  t.throws(() => resctrlSchemata(probe, rootSchemata, { cacheWays: 0, memBandwidthPercent: null }, 'h'), { instanceOf: CellError });
  t.throws(() => resctrlSchemata(probe, rootSchemata, { cacheWays: null, memBandwidthPercent: 101 }, 'h'), { instanceOf: CellError });
});

test('a CPU without memory bandwidth allocation: cache ways set, mem_bandwidth skipped with a notice', (t) => {
  const root = fakeResctrl(t, { mb: false });
  const { group, notices } = ResctrlGroup.create(root, '1-abcdef', 'h', { cacheWays: 3, memBandwidthPercent: 40 });
  t.truthy(group);
  t.is(readFileSync(join(root, 'ls-1-abcdef-h', 'schemata'), 'utf8'), 'L3:0=7\n');
  t.deepEqual(notices, [`host h: mem_bandwidth ignored: ${root} offers no memory bandwidth allocation`]);
  group!.addTask(4242);
  t.is(readFileSync(group!.tasksFile, 'utf8'), '4242\n');
  group!.remove();
  t.false(existsSync(join(root, 'ls-1-abcdef-h')));
});

test('no resctrl: skipped with one clear line, nothing created', (t) => {
  const missing = join(fakeTree(t, {}), 'resctrl');
  const result = ResctrlGroup.create(missing, '1-abcdef', 'h', { cacheWays: 2, memBandwidthPercent: 50 });
  t.is(result.group, null);
  t.deepEqual(result.notices, [`host h: cache_ways/mem_bandwidth ignored: ${missing} does not exist (no resctrl on this machine)`]);
  const unmounted = fakeTree(t, { 'resctrl/': null });
  t.deepEqual(ResctrlGroup.create(join(unmounted, 'resctrl'), '1-abcdef', 'h', { cacheWays: 2, memBandwidthPercent: null }).notices, [
    `host h: cache_ways/mem_bandwidth ignored: ${join(unmounted, 'resctrl')} is not mounted`,
  ]);
  t.deepEqual(ResctrlGroup.create(missing, '1-abcdef', 'h', { cacheWays: null, memBandwidthPercent: null }), { group: null, notices: [] }, 'nothing asked, nothing said');
});

liveTest('a cell with cache_ways and mem_bandwidth joins its resctrl group (fake tree); destroy removes it', async (t) => {
  const root = fakeResctrl(t);
  const plan = smallPlan(`/etc/ls-resctrl-test-${process.pid}.conf`);
  const h = harness(t, plan, { resctrlRoot: root });
  const b = await h.cells.create(plan.hosts[1]!, { cpus: [0] });
  const groupDir = join(root, `ls-${h.cells.runId}-b`);
  t.is(b.resctrl?.dir, groupDir);
  t.is(readFileSync(join(groupDir, 'schemata'), 'utf8'), 'L3:0=3\nMB:0=50\n');
  t.deepEqual(h.notices, []);
  const shell = await runIn(h, b, 'echo $$');
  t.is(shell.exit.code, 0, shell.stderr.join('\n'));
  t.is(readFileSync(join(groupDir, 'tasks'), 'utf8').trim(), shell.stdout[0], 'the launcher (which became the shell) joined the group');
  const a = await h.cells.create(plan.hosts[0]!, { cpus: [1] });
  t.is(a.resctrl, null, 'a sets neither: no group');
  await h.cells.destroyAll();
  t.deepEqual(readdirSync(root).filter((name) => name.startsWith('ls-')), []);
});
