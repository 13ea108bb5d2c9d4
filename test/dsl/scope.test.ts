// Lets resolve where they are defined (lexical scope): an importer cannot
// silently change the meaning of a library's lets.
import test from 'ava';
import { resolve } from 'node:path';
import { compileText } from '../../dsl/compile.ts';

const files = new Map([[resolve('lib.scn'), 'let base = 1ms\nlet lat = base\n']]);
const readFile = (path: string) => {
  const text = files.get(path);
  if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  return text;
};

test('a library let keeps its own meaning when the importer defines the same name', (t) => {
  const src = 'import "lib.scn"\nlet base = 5ms\nscenario "s" { duration 1s host a host b link a -- b { latency lat } }\n';
  const result = compileText('main.scn', src, { readFile });
  t.deepEqual(result.diagnostics, []);
  t.is(result.plans[0]!.links[0]!.latencyNs, 1_000_000);
});

test('the importer still shadows the imported name itself', (t) => {
  const src = 'import "lib.scn"\nlet lat = 7ms\nscenario "s" { duration 1s host a host b link a -- b { latency lat } }\n';
  t.is(compileText('main.scn', src, { readFile }).plans[0]!.links[0]!.latencyNs, 7_000_000);
});

test('a fractional byte count is an error, float noise of unit factors is not', (t) => {
  const bad = compileText('t.scn', 'scenario "s" { duration 1s host a host b link a -- b { latency 1ms queue 1.5B } }');
  t.deepEqual(bad.diagnostics.map((d) => d.code), ['LS2007']);
  const good = compileText('t.scn', 'scenario "s" { duration 1s host a host b link a -- b { latency 1ms bandwidth 1.1Kbps } }');
  t.is(good.plans[0]!.links[0]!.bandwidthBitsPerSec, 1100);
});

test('sweep points × hosts is bounded', (t) => {
  const values = Array.from({ length: 300 }, (_, i) => `${i + 1}ms`).join(', ');
  const src = `scenario "s" { duration 1s sweep x in [${values}] host h[1..10000] { } }`;
  const result = compileText('t.scn', src);
  t.true(result.diagnostics.some((d) => d.code === 'LS3021' && /host-points/.test(d.message)));
});

test('a derived template (or the host) redefines a command of the same name; twice in one body is an error', (t) => {
  const src = `scenario "s" { duration 1s
  template base { run "echo base" as job  run "echo other" }
  template derived from base { run "echo derived" as job }
  host a from derived { }
  host b from derived { run "echo host" as job }
  host c { run "x" as dup  run "y" as dup } }`;
  const result = compileText('t.scn', src);
  t.deepEqual(result.diagnostics.map((d) => `${d.code} ${d.span.line}`), ['LS1002 6']);
  const ok = compileText('t.scn', src.replace('host c { run "x" as dup  run "y" as dup }', ''));
  const commands = (name: string) => ok.plans[0]!.hosts.find((h) => h.name === name)!.commands.map((c) => `${c.name}=${c.command}`);
  t.deepEqual(commands('a'), ['job=echo derived', 'cmd2=echo other']);
  t.deepEqual(commands('b'), ['job=echo host', 'cmd2=echo other']);
});

test('globs match with * and ? without regex backtracking', async (t) => {
  const { globMatch } = await import('../../dsl/check.ts');
  t.true(globMatch('web*', 'web12'));
  t.true(globMatch('w?b*2', 'web12'));
  t.true(globMatch('*', ''));
  t.false(globMatch('web?', 'web12'));
  t.false(globMatch('*x', 'a'.repeat(10_000)));
  t.true(globMatch('a*b*c', 'aXXbYYc'));
});
