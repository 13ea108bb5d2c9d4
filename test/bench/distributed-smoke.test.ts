// The distributed benchmark's smoke mode (bench/distributed.ts --smoke): 16 hosts
// on two sites for 0.2 s, 1 process vs 2 agent processes on loopback (through the
// coordinator and direct): the same trace hash, the WAN link cut (window = its
// 2 ms latency), figures printed.
// No timing is asserted (the machine is shared and noisy).
import test from 'ava';
import { compileSites, formatTable, printReport, runBench, SMOKE } from '../../bench/distributed.ts';
import { splitPlan } from '../../runtime/sync/split.ts';

test('the generated two-site network: the split cuts only the WAN link', (t) => {
  const plan = compileSites(SMOKE);
  t.is(plan.hosts.length, SMOKE.hosts);
  const split = splitPlan(plan, ['a', 'b']);
  t.is(split.cutLinks, 1);
  t.is(split.lookaheadNs, 2_000_000);
});

test('smoke: 2 agents give the trace hash of 1 process; figures are printed', async (t) => {
  const report = await runBench([SMOKE], { warm: false, protocolEvents: 20_000, roundTrips: 200 });
  t.deepEqual(report.problems, []);
  t.deepEqual(report.comparisons.map((x) => x.mode), ['star', 'direct']);
  t.true(report.comparisons.every((x) => x.hashesMatch), 'both modes give the trace hash of 1 process');
  const [c] = report.comparisons;
  t.true(c!.hashesMatch);
  t.true(c!.events > 0);
  t.true(c!.eventsCrossed > 0, 'traffic crossed the WAN, between the agents');
  t.is(c!.windowNs, 2_000_000);
  t.true(c!.advancesPerWindow > 0 && c!.advancesPerWindow <= 2);
  t.true(Number.isFinite(c!.ratio) && c!.ratio > 0);
  t.true(report.protocol.eventsPerSec > 0 && report.protocol.roundTripsPerSec > 0);
  t.regex(formatTable(report.comparisons), /hosts.*ratio.*null\/win/);
  printReport(report, (line) => t.log(line));
});
