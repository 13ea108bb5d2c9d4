// Expansion: ranges, templates, imports, lets, params, sweeps, until, sync
// window, timeline order and units, as they come out in the Plan.
import test from 'ava';
import { unitNames } from '../../dsl/units.ts';
import { compile, describeDiagnostics, lines, memoryFiles, planOf, plansOf, scn } from './helpers.ts';

test('web[1..4] makes web1..web4 with addresses in declaration order', (t) => {
  const plan = planOf(t, scn('  host first', '  host web[1..4]', '  host last'));
  t.deepEqual(plan.hosts.map((h) => [h.name, h.index, h.address]), [
    ['first', 0, '198.18.0.1'],
    ['web1', 1, '198.18.0.2'],
    ['web2', 2, '198.18.0.3'],
    ['web3', 3, '198.18.0.4'],
    ['web4', 4, '198.18.0.5'],
    ['last', 5, '198.18.0.6'],
  ]);
  const only = planOf(t, scn('  host web[1..4]'));
  t.deepEqual(only.hosts.map((h) => [h.name, h.address]), [
    ['web1', '198.18.0.1'], ['web2', '198.18.0.2'], ['web3', '198.18.0.3'], ['web4', '198.18.0.4'],
  ]);
});

test('a range may start anywhere and a one-element range is allowed', (t) => {
  const plan = planOf(t, scn('  host n[0..2]', '  host m[7..7]'));
  t.deepEqual(plan.hosts.map((h) => h.name), ['n0', 'n1', 'n2', 'm7']);
});

test('switches are not hosts: no address, own index', (t) => {
  const plan = planOf(t, scn('  host a', '  switch sw[1..2] { latency 2us bandwidth 10Gbit queue 100 packets }', '  host b'));
  t.deepEqual(plan.hosts.map((h) => [h.name, h.address]), [['a', '198.18.0.1'], ['b', '198.18.0.2']]);
  t.deepEqual(plan.switches.map((s) => [s.name, s.index, s.latencyNs, s.bandwidthBitsPerSec, s.queue]), [
    ['sw1', 0, 2000, 1e10, { packets: 100 }],
    ['sw2', 1, 2000, 1e10, { packets: 100 }],
  ]);
});

test('web[1..4] -- sw0 makes 4 links', (t) => {
  const plan = planOf(t, scn('  host web[1..4]', '  switch sw0', '  link web[1..4] -- sw0 { latency 1ms }'));
  t.deepEqual(plan.links.map((l) => [l.name, l.index, l.a, l.b, l.latencyNs]), [
    ['web1--sw0', 0, 'web1', 'sw0', 1e6],
    ['web2--sw0', 1, 'web2', 'sw0', 1e6],
    ['web3--sw0', 2, 'web3', 'sw0', 1e6],
    ['web4--sw0', 3, 'web4', 'sw0', 1e6],
  ]);
});

test('leaf[1..4] -- spine[1..2] links every pair: 8 links', (t) => {
  const plan = planOf(t, scn('  switch leaf[1..4]', '  switch spine[1..2]', '  link leaf[1..4] -- spine[1..2] { latency 1us }'));
  t.deepEqual(plan.links.map((l) => l.name), [
    'leaf1--spine1', 'leaf1--spine2', 'leaf2--spine1', 'leaf2--spine2',
    'leaf3--spine1', 'leaf3--spine2', 'leaf4--spine1', 'leaf4--spine2',
  ]);
});

test('a single index selects one member of a range', (t) => {
  const plan = planOf(t, scn('  host web[1..4]', '  switch sw0', '  link web[3] -- sw0 { latency 1ms }'));
  t.deepEqual(plan.links.map((l) => l.name), ['web3--sw0']);
});

test('link settings and their defaults', (t) => {
  const plan = planOf(t, scn(
    '  host a', '  host b', '  host c',
    '  link a -- b { latency 2ms bandwidth 100Mbit loss 0.5% jitter 1ms queue 64KiB mtu 9000 capture }',
    '  link b -- c { latency 3ms queue 100 packets }',
  ));
  t.deepEqual(plan.links.map(({ name, latencyNs, bandwidthBitsPerSec, lossRate, jitterNs, queue, mtuBytes, capture }) => ({ name, latencyNs, bandwidthBitsPerSec, lossRate, jitterNs, queue, mtuBytes, capture })), [
    { name: 'a--b', latencyNs: 2e6, bandwidthBitsPerSec: 1e8, lossRate: 0.005, jitterNs: 1e6, queue: { bytes: 65536 }, mtuBytes: 9000, capture: true },
    { name: 'b--c', latencyNs: 3e6, bandwidthBitsPerSec: null, lossRate: 0, jitterNs: 0, queue: { packets: 100 }, mtuBytes: 1500, capture: false },
  ]);
});

test('host kind defaults: process with run, model without, vm with image', (t) => {
  const plan = planOf(t, scn('  host p { run "x" }', '  host m', '  host v { image "/i.img" }', '  host k { kind vm kernel "/k" initrd "/r" append "quiet" backend qemu }'));
  t.deepEqual(plan.hosts.map((h) => [h.name, h.kind]), [['p', 'process'], ['m', 'model'], ['v', 'vm'], ['k', 'vm']]);
  t.deepEqual(plan.hosts[2]!.vm, { backend: 'kvm', image: '/i.img', kernel: null, initrd: null, append: null });
  t.deepEqual(plan.hosts[3]!.vm, { backend: 'qemu', image: null, kernel: '/k', initrd: '/r', append: 'quiet' });
  t.is(plan.hosts[0]!.vm, null);
});

test('host items: cpus, cpu_scale, memory, resctrl, run at/as, env sorted, files', (t) => {
  const plan = planOf(t, scn('  host h { cpus 2 cpu_scale 0.5 memory 64MiB cache_ways 4 mem_bandwidth 50% run "a" run "b" at 2s as second env Z = "z" env A = 1 file "/etc/x" = "y" }'));
  const h = plan.hosts[0]!;
  t.like(h, { kind: 'process', cpus: 2, cpuScale: 0.5, memoryBytes: 64 * 1024 * 1024, cacheWays: 4, memBandwidthPercent: 50 });
  t.deepEqual(h.commands, [{ name: 'cmd1', command: 'a', atNs: 0 }, { name: 'second', command: 'b', atNs: 2e9 }]);
  t.deepEqual(h.env, [{ name: 'A', value: '1' }, { name: 'Z', value: 'z' }]);
  t.deepEqual(h.files, [{ path: '/etc/x', content: 'y' }]);
});

test('apps on model hosts, with defaults', (t) => {
  const plan = planOf(t, scn(
    '  host b',
    '  host m { app onoff { to b rate 10Mbps size 1500B on 1s off 2s } app echo { port 7 } app request { to b every 10ms size 200B reply 2KB } app sink }',
  ));
  t.deepEqual(plan.hosts[1]!.apps, [
    { kind: 'onoff', to: 'b', port: 9, rateBitsPerSec: 1e7, sizeBytes: 1500, onNs: 1e9, offNs: 2e9, arrivals: 'constant' },
    { kind: 'echo', port: 7 },
    { kind: 'request', to: 'b', port: 7, everyNs: 1e7, sizeBytes: 200, replyBytes: 2000 },
    { kind: 'sink', port: 9 },
  ]);
});

test('templates: a host inherits items, its own items override, from chains', (t) => {
  const plan = planOf(t, lines(
    'template base { cpus 2 memory 1GiB env A = "base" env B = "base" }',
    'template mid from base { cpus 3 env B = "mid" run "from-mid" }',
    'scenario "s" {',
    '  duration 1s',
    '  template top from mid { cpu_scale 2 }',
    '  host plain from base',
    '  host own from mid { cpus 8 env A = "own" }',
    '  host deep from top',
    '}',
  ));
  const byName = Object.fromEntries(plan.hosts.map((h) => [h.name, h]));
  t.like(byName['plain'], { kind: 'model', cpus: 2, memoryBytes: 1024 ** 3, commands: [] });
  t.deepEqual(byName['plain']!.env, [{ name: 'A', value: 'base' }, { name: 'B', value: 'base' }]);
  t.like(byName['own'], { kind: 'process', cpus: 8, memoryBytes: 1024 ** 3 });
  t.deepEqual(byName['own']!.env, [{ name: 'A', value: 'own' }, { name: 'B', value: 'mid' }]);
  t.deepEqual(byName['own']!.commands.map((c) => c.command), ['from-mid']);
  t.like(byName['deep'], { kind: 'process', cpus: 3, cpuScale: 2, memoryBytes: 1024 ** 3 });
});

test('a template can set kind and a host can override it', (t) => {
  const plan = planOf(t, scn('  template live { kind process cpus 2 }', '  host a from live { run "x" }', '  host b from live { kind model }'));
  t.deepEqual(plan.hosts.map((h) => [h.name, h.kind, h.cpus]), [['a', 'process', 2], ['b', 'model', 2]]);
});

test('imports bring lets and templates; the importer shadows an imported let', (t) => {
  const readFile = memoryFiles({
    'lib/net.scn': lines('let wan = 10ms', 'let lan = 100us', 'template srv { cpus 4 }', 'import "more.scn"'),
    'lib/more.scn': 'let far = 200ms',
  });
  const plan = planOf(t, lines(
    'import "lib/net.scn"',
    'let lan = 50us',
    'scenario "s" {',
    '  duration 1s',
    '  host a from srv',
    '  host b',
    '  host c',
    '  link a -- b { latency wan }',
    '  link b -- c { latency lan }',
    '  link a -- c { latency far }',
    '}',
  ), { readFile });
  t.is(plan.hosts[0]!.cpus, 4);
  t.deepEqual(plan.links.map((l) => [l.name, l.latencyNs]), [['a--b', 10e6], ['b--c', 50e3], ['a--c', 200e6]]);
});

test('the loader keys files by display path relative to the main file', (t) => {
  const readFile = memoryFiles({ 'lib/net.scn': 'import "../common.scn"', 'common.scn': 'let x = 1ms' });
  const result = compile(lines('import "lib/net.scn"', 'scenario "s" { duration x }'), { readFile });
  t.deepEqual(result.diagnostics, [], describeDiagnostics(result.diagnostics));
  t.deepEqual([...result.program.files.keys()].sort(), ['common.scn', 'lib/net.scn', 't.scn']);
  t.is(result.plans[0]!.durationNs, 1e6);
});

test('lets: chains, scenario lets over top-level lets', (t) => {
  const plan = planOf(t, lines(
    'let base = 5ms',
    'let wan = base',
    'let top = 1ms',
    'scenario "s" {',
    '  let top = 7ms',
    '  let twice = wan',
    '  duration 1s',
    '  host a', '  host b', '  host c',
    '  link a -- b { latency twice }',
    '  link b -- c { latency top }',
    '}',
  ));
  t.deepEqual(plan.links.map((l) => l.latencyNs), [5e6, 7e6]);
  t.deepEqual(plan.params, {}, 'lets are not params');
});

test('params: the default, and --set overriding (wan=20ms → 20000000 ns)', (t) => {
  const src = scn('  param wan = 10ms', '  param name = "x"', '  host a { run name }', '  host b', '  link a -- b { latency wan }');
  const byDefault = planOf(t, src);
  t.is(byDefault.links[0]!.latencyNs, 10_000_000);
  t.deepEqual(byDefault.params, { wan: '10ms', name: 'x' });
  const set = planOf(t, src, { set: { wan: '20ms', name: 'hello world' } });
  t.is(set.links[0]!.latencyNs, 20_000_000);
  t.is(set.syncWindowNs, 20_000_000);
  t.is(set.hosts[0]!.commands[0]!.command, 'hello world');
  t.deepEqual(set.params, { wan: '20ms', name: 'hello world' });
});

test('--set with a value of the wrong kind is checked like the source', (t) => {
  const result = compile(scn('  param wan = 10ms', '  host a', '  host b', '  link a -- b { latency wan }'), { set: { wan: '10Mbit' } });
  t.false(result.ok);
  t.deepEqual(result.diagnostics.map((d) => d.code), ['LS2002']);
  t.regex(result.diagnostics[0]!.message, /wan \(= 10Mbit\) is a rate/);
});

test('a sweep gives one plan per value', (t) => {
  const plans = plansOf(t, scn('  sweep lat in [1ms, 10ms, 100ms]', '  host a', '  host b', '  link a -- b { latency lat }'));
  t.is(plans.length, 3);
  t.deepEqual(plans.map((p) => p.links[0]!.latencyNs), [1e6, 1e7, 1e8]);
  t.deepEqual(plans.map((p) => p.sweep), [
    { index: 0, count: 3, values: { lat: '1ms' } },
    { index: 1, count: 3, values: { lat: '10ms' } },
    { index: 2, count: 3, values: { lat: '100ms' } },
  ]);
  t.deepEqual(plans.map((p) => p.params), [{ lat: '1ms' }, { lat: '10ms' }, { lat: '100ms' }]);
  t.deepEqual(plans.map((p) => p.syncWindowNs), [1e6, 1e7, 1e8]);
});

test('two sweeps give the cartesian product, the first sweep changing slowest', (t) => {
  const plans = plansOf(t, scn('  sweep a in [1ms, 2ms]', '  sweep b in [10ms, 20ms, 30ms]', '  host x', '  host y', '  link x -- y { latency a jitter b }'));
  t.deepEqual(plans.map((p) => [p.links[0]!.latencyNs / 1e6, p.links[0]!.jitterNs / 1e6]), [
    [1, 10], [1, 20], [1, 30], [2, 10], [2, 20], [2, 30],
  ]);
  t.deepEqual(plans.map((p) => p.sweep!.index), [0, 1, 2, 3, 4, 5]);
  t.true(plans.every((p) => p.sweep!.count === 6));
  t.deepEqual(plans[4]!.sweep!.values, { a: '2ms', b: '20ms' });
});

test('a sweep without sweeps: sweep is null', (t) => {
  t.is(planOf(t, scn('  host a')).sweep, null);
});

test('--set pins a sweep to one point', (t) => {
  const src = scn('  sweep a in [1ms, 2ms]', '  sweep b in [10ms, 20ms, 30ms]', '  host x', '  host y', '  link x -- y { latency a jitter b }');
  const plans = plansOf(t, src, { set: { b: '7ms' } });
  t.deepEqual(plans.map((p) => [p.links[0]!.latencyNs, p.links[0]!.jitterNs]), [[1e6, 7e6], [2e6, 7e6]]);
  t.deepEqual(plans.map((p) => p.sweep), [
    { index: 0, count: 2, values: { a: '1ms', b: '7ms' } },
    { index: 1, count: 2, values: { a: '2ms', b: '7ms' } },
  ]);
  const both = plansOf(t, src, { set: { a: '5ms', b: '20ms' } });
  t.is(both.length, 1);
  t.deepEqual(both[0]!.sweep, { index: 0, count: 1, values: { a: '5ms', b: '20ms' } });
});

test('sweep values may be let names', (t) => {
  const plans = plansOf(t, lines('let fast = 1ms', 'let slow = 50ms', scn('  sweep lat in [fast, slow]', '  host a', '  host b', '  link a -- b { latency lat }')));
  t.deepEqual(plans.map((p) => p.links[0]!.latencyNs), [1e6, 5e7]);
  t.deepEqual(plans.map((p) => p.sweep!.values), [{ lat: '1ms' }, { lat: '50ms' }]);
});

test('until exit: all-exit, duration may be left out', (t) => {
  const plan = planOf(t, lines('scenario "s" {', '  until exit', '  host a { run "x" }', '  host b', '  link a -- b { latency 3ms }', '}'));
  t.deepEqual(plan.until, { kind: 'all-exit' });
  t.is(plan.durationNs, null);
  t.is(plan.syncWindowNs, 3e6);
});

test('until HOST exits: hosts-exit with the host list', (t) => {
  const plan = planOf(t, scn('  until w[1..2] exits', '  host w[1..2] { run "x" }', '  host server { run "serve" }'));
  t.deepEqual(plan.until, { kind: 'hosts-exit', hosts: ['w1', 'w2'] });
  t.is(plan.durationNs, 10e9);
  const byAction = planOf(t, scn('  until c exits', '  host c { kind process }', '  at 1s { run c "late" }'));
  t.deepEqual(byAction.until, { kind: 'hosts-exit', hosts: ['c'] });
});

test('no until: the run ends on duration', (t) => {
  const plan = planOf(t, scn('  host a'));
  t.deepEqual(plan.until, { kind: 'duration' });
  t.is(plan.durationNs, 10e9);
  t.is(plan.seed, 1, 'seed defaults to 1');
});

test('sync window: default is the smallest link latency; a smaller cap wins', (t) => {
  const links = ['  host a', '  host b', '  host c', '  link a -- b { latency 3ms }', '  link b -- c { latency 2ms }'];
  t.is(planOf(t, scn(...links)).syncWindowNs, 2e6);
  t.is(planOf(t, scn('  sync { window 500us }', ...links)).syncWindowNs, 5e5);
  t.is(planOf(t, scn('  sync { window 2ms }', ...links)).syncWindowNs, 2e6, 'a cap equal to the smallest latency is fine');
  // no links: bounded by the duration
  t.is(planOf(t, scn('  host a')).syncWindowNs, 10e9);
});

test('timeline: sorted by time, ties in declaration order', (t) => {
  const plan = planOf(t, scn(
    '  host a { run "x" }', '  host b { run "y" }', '  link a -- b { latency 1ms }',
    '  at 3s { log "c" log "d" }',
    '  at 1s { log "a" kill a }',
    '  at 3s { log "e" }',
    '  at 2s { link a -- b down }',
    '  at 1s { log "b" }',
    '  at 2500ms { link a -- b set { latency 5ms loss 1% } }',
  ));
  t.deepEqual(plan.timeline.map((a) => [a.atNs, a.type, 'text' in a ? a.text : 'host' in a ? a.host : a.link]), [
    [1e9, 'log', 'a'], [1e9, 'kill', 'a'], [1e9, 'log', 'b'], [2e9, 'link-down', 'a--b'],
    [2.5e9, 'link-set', 'a--b'], [3e9, 'log', 'c'], [3e9, 'log', 'd'], [3e9, 'log', 'e'],
  ]);
  const set = plan.timeline[4]!;
  t.is(set.type, 'link-set');
  if (set.type === 'link-set') t.deepEqual(set.changes, { latencyNs: 5e6, lossRate: 0.01 });
  t.is(plan.timeline[0]!.source, 't.scn:7');
});

test('actions on ranges expand to one action per host', (t) => {
  const plan = planOf(t, scn('  host w[1..3] { run "x" }', '  switch sw', '  link w[1..3] -- sw { latency 1ms }', '  at 1s { pause w[1..2] link w[2..3] -- sw down }'));
  t.deepEqual(plan.timeline.map((a) => [a.type, 'host' in a ? a.host : 'link' in a ? a.link : '']), [
    ['pause', 'w1'], ['pause', 'w2'], ['link-down', 'w2--sw'], ['link-down', 'w3--sw'],
  ]);
});

test('metrics and expectations', (t) => {
  const plan = planOf(t, scn(
    '  host c { run "ping" }',
    '  metric rtt_ms from c match "time=([0-9.]+) ms"',
    '  expect c exit 0',
    '  expect mean(rtt_ms) within 20 +- 0.4',
    '  expect p99(rtt_ms) < 30',
    '  expect finished within 5s',
  ));
  t.deepEqual(plan.metrics, [{ name: 'rtt_ms', hosts: ['c'], regex: 'time=([0-9.]+) ms', source: 't.scn:4' }]);
  t.deepEqual(plan.expectations, [
    { type: 'exit', hosts: ['c'], code: 0, source: 't.scn:5', text: 'expect c exit 0' },
    { type: 'within', aggregate: 'mean', metric: 'rtt_ms', value: 20, tolerance: 0.4, source: 't.scn:6', text: 'expect mean(rtt_ms) within 20 +- 0.4' },
    { type: 'compare', aggregate: 'p99', metric: 'rtt_ms', op: '<', value: 30, source: 't.scn:7', text: 'expect p99(rtt_ms) < 30' },
    { type: 'finished', withinNs: 5e9, source: 't.scn:8', text: 'expect finished within 5s' },
  ]);
});

test('place: ranges and globs set agents; agents are listed sorted', (t) => {
  const plan = planOf(t, scn('  host web[1..4] { run "x" }', '  host db { run "y" }', '  host other', '  place web[1..2] on "m2"', '  place web[3..4] on "m1"', '  place "d?" on "m1"'));
  t.deepEqual(plan.hosts.map((h) => [h.name, h.agent]), [
    ['web1', 'm2'], ['web2', 'm2'], ['web3', 'm1'], ['web4', 'm1'], ['db', 'm1'], ['other', null],
  ]);
  t.deepEqual(plan.agents, ['m1', 'm2']);
  const glob = planOf(t, scn('  host web[1..3]', '  host db', '  place "web*" on "m1"'));
  t.deepEqual(glob.hosts.map((h) => h.agent), ['m1', 'm1', 'm1', null]);
});

// Every unit of units.ts, through a setting that takes its kind. A unit added
// to units.ts without a row here fails the coverage assertion.
const unitCases: Record<string, number> = {
  ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, min: 60e9, h: 3600e9,
  bps: 1, Kbps: 1e3, Mbps: 1e6, Gbps: 1e9, Tbps: 1e12,
  bit: 1, Kbit: 1e3, Mbit: 1e6, Gbit: 1e9, Tbit: 1e12,
  B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12,
  KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
  '%': 1,
};

test('units: the table covers every unit of units.ts', (t) => {
  t.deepEqual(Object.keys(unitCases).sort(), [...unitNames].sort());
});

const durations = ['ns', 'us', 'µs', 'ms', 's', 'min', 'h'];
const rates = ['bps', 'Kbps', 'Mbps', 'Gbps', 'Tbps', 'bit', 'Kbit', 'Mbit', 'Gbit', 'Tbit'];
const sizes = ['B', 'KB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB'];

test('units: durations convert to integer ns', (t) => {
  for (const unit of durations) {
    const plan = planOf(t, lines('scenario "s" {', '  duration 200h', '  host a', '  host b', `  link a -- b { latency 2${unit} }`, '}'));
    t.is(plan.links[0]!.latencyNs, 2 * unitCases[unit]!, unit);
    t.true(Number.isInteger(plan.links[0]!.latencyNs), unit);
  }
  const fractional = planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1.5ms jitter 0.3ms }'));
  t.is(fractional.links[0]!.latencyNs, 1_500_000);
  t.is(fractional.links[0]!.jitterNs, 300_000, '0.3ms is exactly 300000 ns, not 300000.00000000006');
  t.is(planOf(t, lines('scenario "s" { duration 1.5min }')).durationNs, 90e9);
});

test('units: rates convert to bits per second, with and without /s', (t) => {
  for (const unit of rates) {
    for (const suffix of ['', '/s']) {
      const plan = planOf(t, scn('  host a', '  host b', `  link a -- b { latency 1ms bandwidth 3${unit}${suffix} }`));
      t.is(plan.links[0]!.bandwidthBitsPerSec, 3 * unitCases[unit]!, unit + suffix);
    }
  }
  t.is(planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1ms bandwidth 10Gbit/s }')).links[0]!.bandwidthBitsPerSec, 1e10);
  t.is(planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1ms bandwidth 1.5Gbit/s }')).links[0]!.bandwidthBitsPerSec, 1.5e9);
});

test('units: /s only follows a rate', (t) => {
  const result = compile(scn('  host a', '  host b', '  link a -- b { latency 1ms/s }'));
  t.deepEqual(result.diagnostics.map((d) => d.code), ['LS2003']);
});

test('units: sizes convert to bytes, decimal ×1000 and binary ×1024', (t) => {
  for (const unit of sizes) {
    const plan = planOf(t, scn(`  host a { memory 2${unit} }`));
    t.is(plan.hosts[0]!.memoryBytes, 2 * unitCases[unit]!, unit);
  }
  t.is(planOf(t, scn('  host a { memory 1KiB }')).hosts[0]!.memoryBytes, 1024);
  t.is(planOf(t, scn('  host a { memory 1KB }')).hosts[0]!.memoryBytes, 1000);
  t.is(planOf(t, scn('  host a { memory 1.5KiB }')).hosts[0]!.memoryBytes, 1536);
});

test('units: percentages', (t) => {
  const plan = planOf(t, scn('  host a { run "x" mem_bandwidth 12.5% }', '  host b', '  link a -- b { latency 1ms loss 0.5% }'));
  t.is(plan.links[0]!.lossRate, 0.005);
  t.is(plan.hosts[0]!.memBandwidthPercent, 12.5);
  t.is(planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1ms loss 100% }')).links[0]!.lossRate, 1);
});

test('mtu takes a plain number or a size', (t) => {
  t.is(planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1ms mtu 9KB }')).links[0]!.mtuBytes, 9000);
  t.is(planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1ms mtu 68 }')).links[0]!.mtuBytes, 68);
  t.deepEqual(compile(scn('  host a', '  host b', '  link a -- b { latency 1ms mtu 67 }')).diagnostics.map((d) => d.code), ['LS2004']);
});
