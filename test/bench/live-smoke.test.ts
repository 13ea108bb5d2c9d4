// The live bench in smoke mode: every case runs and produces sane figures (no timing asserted).
import test from 'ava';
import { runLiveBench } from '../../bench/live.ts';
import { liveTest } from '../runtime/live/helpers.ts';

liveTest('bench/live.ts --smoke: every case runs', async (t) => {
  const rows = await runLiveBench(true);
  t.log(rows.map((r) => `${r.name}: ratio ${r.ratio.toFixed(2)} (${r.goal}) ${r.detail}`).join('\n'));
  t.is(rows.length, 5);
  for (const row of rows.slice(0, 4)) t.true(row.virtualS > 0 && row.wallS > 0, row.name);
  // the sleeping program is jumped over, not waited for
  t.true(rows[2]!.virtualS >= 2 && rows[2]!.virtualS < 3);
  t.true(rows[3]!.detail.includes('frames'));
});

test('bench/live.ts exports its runner', (t) => {
  t.is(typeof runLiveBench, 'function');
});
