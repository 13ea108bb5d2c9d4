// The front-end benchmark's smoke mode (bench/dsl.ts --smoke): the generated
// 1,000-host scenario compiles to one plan with every host, switch, link and
// timed action the generator wrote. No timing is asserted.
import test from 'ava';
import { dslScenario, formatReport, goalLine, measure, runSmoke, SMOKE } from '../../bench/dsl.ts';

test('smoke: 1,000 hosts compile with every host, switch and link', (t) => {
  const report = runSmoke();
  t.deepEqual(report.problems, []);
  t.is(report.hosts, SMOKE.hosts);
  t.is(report.counts.rangedHosts + report.counts.singleHosts, SMOKE.hosts);
  t.is(report.switches, report.counts.switches);
  t.is(report.links, report.counts.links);
  t.is(report.links, SMOKE.hosts + report.counts.switches - 1, 'one link per host, one per rack switch to the core');
});

test('the scenario mixes ranges and single hosts, and scales to odd sizes', (t) => {
  const { text, counts } = dslScenario({ hosts: 1_234 });
  t.true(counts.rangedHosts > 0 && counts.singleHosts > 0);
  t.regex(text, /^ {2}host rack1-h\[1\.\.50\] from worker/m);
  t.regex(text, /^ {2}host node1 \{/m);
  t.regex(text, /^ {2}at 1s \{ link node\d+ -- tor\d+ down/m);
  t.deepEqual(runSmoke({ hosts: 1_234 }).problems, []);
  t.deepEqual(runSmoke({ hosts: 10 }).problems, []);
  t.throws(() => dslScenario({ hosts: 3 }), { message: /hosts must be/ });
});

test('the measuring path runs and prints a table with the baselines and the goal', (t) => {
  const report = measure({ hosts: 100 }, 1);
  t.deepEqual(report.problems, []);
  const table = formatReport(report);
  t.regex(table, /compile end to end \(compileText\)/);
  t.regex(table, /baseline: JSON\.parse of the plan/);
  t.regex(table, /heap used/);
  t.regex(goalLine(report), /^goal: compile 10,000 hosts in < 2000 ms: (PASS|FAIL)/);
});
