// The live bench in smoke mode: every case runs and produces sane figures (no timing asserted).
import test from 'ava';
import { runLiveBench } from '../../bench/live.ts';
import { liveTest } from '../runtime/live/helpers.ts';

liveTest('bench/live.ts --smoke: every case runs', async (t) => {
  const rows = await runLiveBench(true);
  t.log(rows.map((r) => `${r.name}: ratio ${r.ratio.toFixed(2)} (${r.goal}) ${r.detail}`).join('\n'));
  // cpu 1 cell, cpu N cells, idle, bridge (UDP), TCP through the bridge, TCP bending (1 pair in smoke), freeze/thaw
  t.is(rows.length, 7);
  for (const row of rows.slice(0, 6)) t.true(row.virtualS > 0 && row.wallS > 0, row.name);
  // the sleeping program is jumped over, not waited for
  t.true(rows[2]!.virtualS >= 2 && rows[2]!.virtualS < 3);
  // every UDP frame the cell sent reached the modeled sink or was counted as lost in its ring (a full
  // ring: the controller stopped for ~8 ms, as a preempted vCPU of this VM can); nothing is lost
  // silently in C, JS or the model
  const [, arrived, sent, ringLost] = /^(\d+) of (\d+) frames arrived \((\d+) lost in the ring\)/.exec(rows[3]!.detail) ?? [];
  t.is(Number(arrived) + Number(ringLost), Number(sent), rows[3]!.detail);
  // losses are a host stall's, not the design's: a CI run lost 4328 of 20000 frames (22%) to one stall
  // with a 2048-slot ring (now 8192). Most frames must arrive: a ring that is never drained while
  // the sender runs would lose all but its slots.
  t.true(Number(ringLost) <= Number(sent) / 4, rows[3]!.detail);
  t.true(rows[4]!.detail.includes('frames'));
  t.true(rows[5]!.ratio > 50, `one iperf3 pair: ${rows[5]!.detail}`);
});

test('bench/live.ts exports its runner', (t) => {
  t.is(typeof runLiveBench, 'function');
});
