// The core benchmark's smoke mode (bench/core.ts --smoke): a 50-host tree for
// 0.2 s delivers packets, and 1 vs 2 partitions give the same trace hash.
// ns-3 runs too when it is installed; its absence is not a failure. No timing is asserted.
import test from 'ava';
import { compileTree, runSmoke, SMOKE, treeScenario } from '../../bench/core.ts';

test('the generated tree has every host, switch and link, each host sending to another leaf', (t) => {
  const plan = compileTree(SMOKE);
  t.is(plan.hosts.length, SMOKE.hosts);
  t.is(plan.switches.length, SMOKE.leaves + 1);
  t.is(plan.links.length, SMOKE.hosts + SMOKE.leaves);
  t.is(plan.durationNs, SMOKE.durationNs);
  const perLeaf = SMOKE.hosts / SMOKE.leaves;
  for (const [i, host] of plan.hosts.entries()) {
    const onoff = host.apps.find((a) => a.kind === 'onoff');
    t.truthy(onoff, host.name);
    if (onoff?.kind !== 'onoff') continue;
    const peer = Number(onoff.to.slice(1)) - 1;
    t.not(Math.floor(peer / perLeaf), Math.floor(i / perLeaf), `${host.name} → ${onoff.to} stays in its leaf`);
  }
});

test('the scenario text rejects a shape that does not split into leaves', (t) => {
  t.throws(() => treeScenario({ hosts: 10, leaves: 3, durationNs: 1e9 }), { message: /multiple of leaves/ });
});

test('smoke: packets are delivered and 1 vs 2 partitions give the same trace hash', async (t) => {
  const report = await runSmoke({ log: (line) => t.log(line) });
  t.deepEqual(report.problems, []);
  t.true(report.single.packetsDelivered > 0);
  t.is(report.single.packetsDelivered, report.single.packetsSent, 'an idle tree loses nothing');
  t.is(report.split.traceHash, report.single.traceHash);
  t.is(report.split.events, report.single.events);
  t.true(report.split.messages! > 0, 'the 2-partition run crossed partitions');
  if ('skipped' in report.ns3) {
    // CI installs ns-3 (.ci/run): there, a missing ns-3 is a failure, never a silent skip
    if (process.env['LIVESTACK_REQUIRE_LIVE'] === '1') t.fail(`ns-3 missing: ${report.ns3.skipped}`);
    else t.log(`ns-3 skipped: ${report.ns3.skipped}`);
  }
  else for (const run of report.ns3) t.true(run.packetsDelivered > 0, run.simulator);
});
