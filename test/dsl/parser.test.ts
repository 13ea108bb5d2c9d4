import test from 'ava';
import type { ExecutionContext } from 'ava';
import type * as A from '../../dsl/ast.ts';
import { parse } from '../../dsl/build.ts';
import { describeDiagnostics, lines } from './helpers.ts';

/** The AST without spans: shape only. */
function strip<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (key, v: unknown) => (key === 'span' || key === 'keySpan' || key === 'nameSpan' ? undefined : v))) as T;
}

function parseClean(t: ExecutionContext, text: string): A.SourceFile {
  const { ast, diagnostics } = parse('t.scn', text);
  t.deepEqual(diagnostics, [], describeDiagnostics(diagnostics));
  return ast;
}

/** The items of the only scenario, spans stripped. */
function items(t: ExecutionContext, ...body: string[]): A.ScenarioItem[] {
  const ast = parseClean(t, lines('scenario "s" {', ...body, '}'));
  t.is(ast.scenarios.length, 1);
  return strip(ast.scenarios[0]!.items);
}

function item(t: ExecutionContext, ...body: string[]): A.ScenarioItem {
  const list = items(t, ...body);
  t.is(list.length, 1, JSON.stringify(list));
  return list[0]!;
}

const num = (value: number, unit = '', text = `${value}${unit}`) => ({ type: 'number', value, unit, text });
const str = (value: string) => ({ type: 'string', value });
const nm = (name: string) => ({ type: 'name', name });
const n = (name: string) => ({ name });
const setting = (key: string, value?: object, packets = false) => (value === undefined ? { key: n(key), packets } : { key: n(key), value, packets });

test('top level: import, let, template (with from) and scenario', (t) => {
  const ast = strip(parseClean(t, lines('import "lib/common.scn"', 'let wan = 10ms', 'template base { cpus 2 }', 'template big from base { memory 1GiB }', 'scenario "a b" { seed 1 }', 'scenario "c" { }')));
  t.deepEqual(ast.imports, [{ type: 'import', path: 'lib/common.scn' }]);
  t.deepEqual(ast.lets, [{ type: 'let', name: n('wan'), value: num(10, 'ms') }]);
  t.deepEqual(ast.templates, [
    { type: 'template', name: n('base'), items: [{ type: 'setting', key: 'cpus', value: num(2) }] },
    { type: 'template', name: n('big'), from: n('base'), items: [{ type: 'setting', key: 'memory', value: num(1, 'GiB') }] },
  ]);
  t.deepEqual(ast.scenarios.map((s) => [s.name, s.items.length]), [['a b', 1], ['c', 0]]);
  t.deepEqual(ast.unknown, []);
});

test('spans: a scenario name and an item point at their source', (t) => {
  const ast = parseClean(t, lines('scenario "s" {', '  host web { cpus 2 }', '}'));
  const scenario = ast.scenarios[0]!;
  t.like(scenario.nameSpan, { line: 1, col: 10, endCol: 13 });
  const host = scenario.items[0]!;
  t.like(host.span, { line: 2, col: 3, endLine: 2, endCol: 22 });
  t.is(host.type, 'host');
  if (host.type === 'host') t.like(host.name.span, { line: 2, col: 8, endCol: 11 });
});

test('scenario items: seed, duration, until exit, until HOST exits, sync, param, sweep, let', (t) => {
  t.deepEqual(items(t, 'seed 42', 'duration 1.5min', 'until exit', 'sync { window 100us }', 'param rate = 100Mbit', 'sweep lat in [1ms, 10ms, wan]', 'sweep none in []', 'let inner = 5ms'), [
    { type: 'seed', value: num(42) },
    { type: 'duration', value: num(1.5, 'min') },
    { type: 'until' },
    { type: 'sync', settings: [setting('window', num(100, 'us'))] },
    { type: 'param', name: n('rate'), value: num(100, 'Mbit') },
    { type: 'sweep', name: n('lat'), values: [num(1, 'ms'), num(10, 'ms'), nm('wan')] },
    { type: 'sweep', name: n('none'), values: [] },
    { type: 'let', name: n('inner'), value: num(5, 'ms') },
  ]);
  t.deepEqual(item(t, 'until client exits'), { type: 'until', host: { name: 'client' } });
  t.deepEqual(item(t, 'until web[1..2] exits'), { type: 'until', host: { name: 'web', range: { from: num(1), to: num(2) } } });
  // a host called `exit`
  t.deepEqual(item(t, 'until exit exits'), { type: 'until', host: { name: 'exit' } });
});

test('template inside a scenario, with from', (t) => {
  t.deepEqual(item(t, 'template t2 from big { cpu_scale 0.5 }'), {
    type: 'template', name: n('t2'), from: n('big'), items: [{ type: 'setting', key: 'cpu_scale', value: num(0.5) }],
  });
});

test('host: plain, without body, with range and from', (t) => {
  t.deepEqual(items(t, 'host a { }', 'host b', 'host web[1..4] from base { cpus 1 }', 'host one[7]'), [
    { type: 'host', name: n('a'), items: [] },
    { type: 'host', name: n('b'), items: [] },
    { type: 'host', name: n('web'), range: { from: num(1), to: num(4) }, from: n('base'), items: [{ type: 'setting', key: 'cpus', value: num(1) }] },
    { type: 'host', name: n('one'), range: { from: num(7) }, items: [] },
  ]);
});

test('every host setting', (t) => {
  const host = item(t, 'host h { kind process cpus 2 cpu_scale 0.5 memory 64MiB cache_ways 4 mem_bandwidth 50% image "/i.img" kernel "/k" initrd "/r" append "console=ttyS0" backend qemu }');
  t.is(host.type, 'host');
  if (host.type !== 'host') return;
  t.deepEqual(host.items, [
    { type: 'setting', key: 'kind', value: nm('process') },
    { type: 'setting', key: 'cpus', value: num(2) },
    { type: 'setting', key: 'cpu_scale', value: num(0.5) },
    { type: 'setting', key: 'memory', value: num(64, 'MiB') },
    { type: 'setting', key: 'cache_ways', value: num(4) },
    { type: 'setting', key: 'mem_bandwidth', value: num(50, '%') },
    { type: 'setting', key: 'image', value: str('/i.img') },
    { type: 'setting', key: 'kernel', value: str('/k') },
    { type: 'setting', key: 'initrd', value: str('/r') },
    { type: 'setting', key: 'append', value: str('console=ttyS0') },
    { type: 'setting', key: 'backend', value: nm('qemu') },
  ] as A.HostItem[]);
});

test('run (plain, at, as, at + as), env, file', (t) => {
  const host = item(t, 'host h { run "a" run "b" at 2s run "c" as srv run "x" at 2s as name env PATH = "/bin" env N = 3 file "/etc/x" = "line\\n" }');
  if (host.type !== 'host') return t.fail();
  t.deepEqual(host.items, [
    { type: 'run', command: str('a') },
    { type: 'run', command: str('b'), at: num(2, 's') },
    { type: 'run', command: str('c'), as: n('srv') },
    { type: 'run', command: str('x'), at: num(2, 's'), as: n('name') },
    { type: 'env', name: n('PATH'), value: str('/bin') },
    { type: 'env', name: n('N'), value: num(3) },
    { type: 'file', path: str('/etc/x'), content: str('line\n') },
  ] as A.HostItem[]);
});

test('app with settings, and without', (t) => {
  const host = item(t, 'host m { app onoff { to b rate 10Mbps size 1500B on 1s off 1s } app echo { port 7 } app request { to b every 10ms size 200B reply 2KB } app sink }');
  if (host.type !== 'host') return t.fail();
  t.deepEqual(host.items, [
    { type: 'app', kind: n('onoff'), settings: [setting('to', nm('b')), setting('rate', num(10, 'Mbps')), setting('size', num(1500, 'B')), setting('on', num(1, 's')), setting('off', num(1, 's'))] },
    { type: 'app', kind: n('echo'), settings: [setting('port', num(7))] },
    { type: 'app', kind: n('request'), settings: [setting('to', nm('b')), setting('every', num(10, 'ms')), setting('size', num(200, 'B')), setting('reply', num(2, 'KB'))] },
    { type: 'app', kind: n('sink'), settings: [] },
  ] as A.HostItem[]);
});

test('an unknown host item is kept for the checker', (t) => {
  const host = item(t, 'host h { latncy 10ms cpus 1 }');
  if (host.type !== 'host') return t.fail();
  t.deepEqual(host.items, [{ type: 'unknown', keyword: n('latncy') }, { type: 'setting', key: 'cpus', value: num(1) }] as A.HostItem[]);
});

test('switch: settings, queue N packets, range, no body', (t) => {
  t.deepEqual(items(t, 'switch sw0 { latency 1us bandwidth 10Gbit/s queue 100 packets }', 'switch sp[1..2] { queue 64KiB }', 'switch bare'), [
    { type: 'switch', name: n('sw0'), settings: [setting('latency', num(1, 'us')), setting('bandwidth', num(10, 'Gbit/s')), setting('queue', num(100), true)] },
    { type: 'switch', name: n('sp'), range: { from: num(1), to: num(2) }, settings: [setting('queue', num(64, 'KiB'))] },
    { type: 'switch', name: n('bare'), settings: [] },
  ]);
});

test('link: every link item, ranges on both sides, no body', (t) => {
  t.deepEqual(
    item(t, 'link web[1..4] -- sw0 { latency wan bandwidth 100Mbit loss 0.5% jitter 1ms queue 100 packets mtu 9000 capture }'),
    {
      type: 'link',
      a: { name: 'web', range: { from: num(1), to: num(4) } },
      b: { name: 'sw0' },
      settings: [
        setting('latency', nm('wan')), setting('bandwidth', num(100, 'Mbit')), setting('loss', num(0.5, '%')), setting('jitter', num(1, 'ms')),
        setting('queue', num(100), true), setting('mtu', num(9000)), setting('capture'),
      ],
      hasBody: true,
    },
  );
  t.deepEqual(item(t, 'link leaf[1..4]--spine[1..2]'), {
    type: 'link', a: { name: 'leaf', range: { from: num(1), to: num(4) } }, b: { name: 'spine', range: { from: num(1), to: num(2) } }, settings: [], hasBody: false,
  });
  // capture first, then a valued setting
  t.deepEqual(item(t, 'link a -- b { capture latency 1ms queue 64KiB }'), {
    type: 'link', a: { name: 'a' }, b: { name: 'b' }, settings: [setting('capture'), setting('latency', num(1, 'ms')), setting('queue', num(64, 'KiB'))], hasBody: true,
  });
});

test('keywords as names: hosts called link, set, exit', (t) => {
  t.deepEqual(items(t, 'host link { }', 'host set', 'link link -- set { latency 1ms }', 'at 1s { link link -- set set { latency 2ms } kill set }'), [
    { type: 'host', name: n('link'), items: [] },
    { type: 'host', name: n('set'), items: [] },
    { type: 'link', a: { name: 'link' }, b: { name: 'set' }, settings: [setting('latency', num(1, 'ms'))], hasBody: true },
    {
      type: 'at', time: num(1, 's'), actions: [
        { type: 'link', a: { name: 'link' }, b: { name: 'set' }, op: 'set', settings: [setting('latency', num(2, 'ms'))] },
        { type: 'kill', host: { name: 'set' } },
      ],
    },
  ]);
});

test('at: every action', (t) => {
  t.deepEqual(
    item(t, 'at 5s { link a -- b down link a -- b up link a -- b set { latency 20ms loss 1% } kill web2 pause web[1..2] resume web3 run web4 "ls -l" log "hello" }'),
    {
      type: 'at',
      time: num(5, 's'),
      actions: [
        { type: 'link', a: { name: 'a' }, b: { name: 'b' }, op: 'down', settings: [] },
        { type: 'link', a: { name: 'a' }, b: { name: 'b' }, op: 'up', settings: [] },
        { type: 'link', a: { name: 'a' }, b: { name: 'b' }, op: 'set', settings: [setting('latency', num(20, 'ms')), setting('loss', num(1, '%'))] },
        { type: 'kill', host: { name: 'web2' } },
        { type: 'pause', host: { name: 'web', range: { from: num(1), to: num(2) } } },
        { type: 'resume', host: { name: 'web3' } },
        { type: 'run', host: { name: 'web4' }, command: str('ls -l') },
        { type: 'log', text: str('hello') },
      ],
    },
  );
});

test('metric and every expectation form', (t) => {
  const list = items(
    t,
    'metric rtt_ms from client match "time=([0-9.]+) ms"',
    'expect client exit 0',
    'expect web[1..2] exit 3',
    'expect mean(rtt_ms) < 5',
    'expect min(rtt_ms) <= 5',
    'expect max(rtt_ms) > 5',
    'expect p50(rtt_ms) >= -1',
    'expect p90(rtt_ms) == 0.5',
    'expect p99(rtt_ms) != 5',
    'expect mean(rtt_ms) within 20 +- 0.4',
    'expect count(rtt_ms) within 20 ± 1',
    'expect finished within 10s',
  );
  t.deepEqual(list[0], { type: 'metric', name: n('rtt_ms'), from: { name: 'client' }, regex: str('time=([0-9.]+) ms') });
  t.deepEqual(
    list.slice(1).map((i) => (i.type === 'expect' ? i.expectation : i)),
    [
      { type: 'exit', host: { name: 'client' }, code: num(0) },
      { type: 'exit', host: { name: 'web', range: { from: num(1), to: num(2) } }, code: num(3) },
      { type: 'compare', aggregate: n('mean'), metric: n('rtt_ms'), op: '<', value: num(5) },
      { type: 'compare', aggregate: n('min'), metric: n('rtt_ms'), op: '<=', value: num(5) },
      { type: 'compare', aggregate: n('max'), metric: n('rtt_ms'), op: '>', value: num(5) },
      { type: 'compare', aggregate: n('p50'), metric: n('rtt_ms'), op: '>=', value: num(-1, '', '-1') },
      { type: 'compare', aggregate: n('p90'), metric: n('rtt_ms'), op: '==', value: num(0.5) },
      { type: 'compare', aggregate: n('p99'), metric: n('rtt_ms'), op: '!=', value: num(5) },
      { type: 'within', aggregate: n('mean'), metric: n('rtt_ms'), value: num(20), tolerance: num(0.4) },
      { type: 'within', aggregate: n('count'), metric: n('rtt_ms'), value: num(20), tolerance: num(1) },
      { type: 'finished', within: num(10, 's') },
    ] as A.Expectation[],
  );
});

test('a host called finished still parses expect finished exit 0', (t) => {
  t.deepEqual(item(t, 'expect finished exit 0'), { type: 'expect', expectation: { type: 'exit', host: { name: 'finished' }, code: num(0) } });
});

test('place: a range, a quoted glob, a bare name with *', (t) => {
  t.deepEqual(items(t, 'place web[1..4] on "m1"', 'place "web*" on "m1"', 'place db* on "m2"', 'place client on "m3"'), [
    { type: 'place', pattern: { name: 'web', range: { from: num(1), to: num(4) } }, agent: str('m1') },
    { type: 'place', pattern: { glob: 'web*' }, agent: str('m1') },
    { type: 'place', pattern: { glob: 'db*' }, agent: str('m2') },
    { type: 'place', pattern: { name: 'client' }, agent: str('m3') },
  ]);
});

test('unknown words are kept: scenario items, actions, top level', (t) => {
  // an unknown word may take one number or string with it, so it is not also a syntax error
  const ast = parseClean(t, lines('lett 3', 'scenario "s" {', '  foo 3', '  at 1s { kil a }', '}'));
  t.deepEqual(strip(ast.unknown), [n('lett')]);
  t.deepEqual(strip(ast.scenarios[0]!.items), [
    { type: 'unknown', keyword: n('foo') },
    { type: 'at', time: num(1, 's'), actions: [{ type: 'unknown', keyword: n('kil') }, { type: 'unknown', keyword: n('a') }] as A.Action[] },
  ] as A.ScenarioItem[]);
});

test('the example of LANGUAGE.md parses without diagnostics', (t) => {
  const ast = parseClean(t, lines(
    '// Two real hosts, a 10 ms link, a fault in the middle.',
    'scenario "ping-over-wan" {',
    '  seed 42',
    '  duration 30s',
    '',
    '  let wan = 10ms',
    '',
    '  host client { kind process  cpus 1  run "ping -c 20 -i 0.5 server" }',
    '  host server { kind process  cpus 1 }',
    '',
    '  link client -- server { latency wan  bandwidth 100Mbit  loss 0% }',
    '',
    '  at 5s  { link client -- server down }',
    '  at 7s  { link client -- server up }',
    '',
    '  metric rtt_ms from client match "time=([0-9.]+) ms"',
    '  expect client exit 0',
    '  expect mean(rtt_ms) within 20 +- 0.4',
    '}',
  ));
  t.deepEqual(ast.scenarios[0]!.items.map((i) => i.type), ['seed', 'duration', 'let', 'host', 'host', 'link', 'at', 'at', 'metric', 'expect', 'expect']);
});

test('error recovery: three syntax errors in three items, three LS0002, the other items survive', (t) => {
  const text = lines(
    'scenario "s" {',
    '  duration 10s',
    '  host a { cpus }',
    '  host b { kind process }',
    '  link a -- { latency 1ms }',
    '  host c { }',
    '  expect mean(m) 5',
    '  host d {}',
    '}',
  );
  const { ast, diagnostics } = parse('t.scn', text);
  const syntax = diagnostics.filter((d) => d.code === 'LS0002');
  t.true(syntax.length >= 3, describeDiagnostics(diagnostics));
  t.deepEqual(syntax.map((d) => d.span.line), [3, 5, 7]);
  t.deepEqual(syntax.map((d) => d.span.col), [17, 13, 18]);
  t.is(syntax[0]!.message, 'expected a value (number, "string" or name) but found \'}\'');
  t.is(syntax[1]!.message, "expected a name but found '{'");
  t.regex(syntax[2]!.message, /^expected .*'within' but found '5'$/);
  const hosts = ast.scenarios[0]!.items.flatMap((i) => (i.type === 'host' ? [i.name.name] : []));
  t.deepEqual(hosts, ['a', 'b', 'c', 'd']);
  t.true(ast.scenarios[0]!.items.some((i) => i.type === 'duration'));
});

test('error recovery across top-level items', (t) => {
  const { ast, diagnostics } = parse('t.scn', lines('let = 3', 'let ok = 1ms', 'template { }', 'template good { cpus 1 }', 'scenario s { }', 'scenario "fine" { seed 2 }'));
  t.true(diagnostics.filter((d) => d.code === 'LS0002').length >= 3, describeDiagnostics(diagnostics));
  t.true(ast.lets.some((l) => l.name.name === 'ok'));
  t.true(ast.templates.some((x) => x.name.name === 'good'));
  t.true(ast.scenarios.some((s) => s.name === 'fine'));
});

test('syntax error at end of file points at the last real token', (t) => {
  const { diagnostics } = parse('t.scn', lines('scenario "s" {', '  host a'));
  t.is(diagnostics.length, 1);
  t.is(diagnostics[0]!.code, 'LS0002');
  t.like(diagnostics[0]!.span, { line: 2, col: 8 });
  t.regex(diagnostics[0]!.message, /end of file/);
});

test('parsing never throws on garbage', (t) => {
  for (const text of ['{{{{', '}}}}', 'scenario', 'scenario "x" { host', '"', '/*', '-- -- --', 'link a -- b', '[[[[1..', '\u0000\uffff', 'at at at at']) {
    t.notThrows(() => parse('t.scn', text), JSON.stringify(text));
  }
});
