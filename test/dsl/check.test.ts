// Every diagnostic code that a .scn input can trigger, each pinned by code,
// span (line and column) and message; plus the "did you mean" hints.
import test from 'ava';
import { Codes, type Severity } from '../../dsl/diagnostics.ts';
import type { CompileOptions } from '../../dsl/compile.ts';
import { MAX_IMPORT_DEPTH } from '../../dsl/limits.ts';
import { compile, describeDiagnostics, lines, memoryFiles, scn } from './helpers.ts';

interface Case {
  /** what the row shows */
  title: string;
  code: string;
  src: string;
  options?: CompileOptions;
  file?: string;
  line: number;
  col: number;
  message: string | RegExp;
  hint?: string | RegExp;
  severity?: Severity;
  /** when true, the scenario must still compile (warnings only) */
  compiles?: boolean;
}

const two = ['  host a { run "x" }', '  host b { run "y" }'];
const hundredOne = Array.from({ length: 101 }, (_, i) => `${i + 1}ms`).join(', ');
/** import chain longer than the limit: c0 imports c1 imports c2 … */
const deepChain = Object.fromEntries(Array.from({ length: MAX_IMPORT_DEPTH + 2 }, (_, i) => [`c${i}.scn`, `import "c${i + 1}.scn"`]));

const cases: Case[] = [
  // ---- lexical and syntax
  { title: 'unexpected character', code: 'LS0001', src: scn('  host b @ { }'), line: 3, col: 10, message: 'unexpected character "@"' },
  { title: 'syntax error: a missing value', code: 'LS0002', src: scn('  host a { cpus }'), line: 3, col: 17, message: 'expected a value (number, "string" or name) but found \'}\'' },
  { title: 'syntax error: link without --', code: 'LS0002', src: scn('  link a b { latency 1ms }'), line: 3, col: 10, message: "expected '--' but found 'b'" },
  { title: 'unterminated string', code: 'LS0003', src: lines('scenario "s" {', '  duration 10s', '  host a { run "abc }', '  }', '}'), line: 3, col: 16, message: 'unterminated string' },
  { title: 'unterminated block comment', code: 'LS0003', src: lines('scenario "s" { duration 1s }', '  /* never closed'), line: 2, col: 3, message: 'unterminated block comment', hint: 'close it with */' },
  { title: 'unknown scenario item', code: 'LS0004', src: scn('  foo 3'), line: 3, col: 3, message: "unknown scenario item 'foo'" },
  { title: 'unknown scenario item, close to a known one', code: 'LS0004', src: scn('  metrik 3'), line: 3, col: 3, message: "unknown scenario item 'metrik'", hint: "did you mean 'metric'?" },
  { title: 'unknown host item latncy: hint says it is a link setting', code: 'LS0004', src: scn('  host c { latncy 10ms }'), line: 3, col: 12, message: "unknown host item 'latncy'", hint: "'latency' is a link setting: link c -- OTHER { latency … }" },
  { title: 'unknown host item close to a host item', code: 'LS0004', src: scn('  host c { cpu 2 }'), line: 3, col: 12, message: "unknown host item 'cpu'", hint: "did you mean 'cpus'?" },
  { title: 'unknown top-level item', code: 'LS0004', src: lines('lett 3', 'scenario "s" { duration 1s }'), line: 1, col: 1, message: "unknown top-level item 'lett'", hint: "did you mean 'let'?" },
  { title: 'unknown action', code: 'LS0004', src: scn(...two, '  at 1s { kil 3 }'), line: 5, col: 11, message: "unknown action 'kil'", hint: "did you mean 'kill'?" },
  { title: 'unknown link setting', code: 'LS0004', src: scn('  host a', '  host b', '  link a -- b { latency 1ms bandwith 1Mbit }'), line: 5, col: 29, message: "unknown link setting 'bandwith'", hint: "did you mean 'bandwidth'?" },
  { title: 'bad escape', code: 'LS0005', src: scn('  host a { run "a\\qb" }'), line: 3, col: 18, message: "unknown escape '\\q' in string" },
  { title: 'input too large (33 MiB)', code: 'LS0006', src: '"' + 'a'.repeat(33 * 1024 * 1024) + '"', line: 1, col: 1, message: /^file is 34603010 bytes; the limit is 33554432$/ },

  // ---- names and structure
  { title: 'unknown host in link: sever → server', code: 'LS1001', src: scn('  host a {}', '  host server {}', '  link a -- sever { latency 1ms }'), line: 5, col: 13, message: "unknown host or switch 'sever' in link", hint: "did you mean 'server'?" },
  { title: 'unknown host in an action', code: 'LS1001', src: scn(...two, '  at 1s { kill c }'), line: 5, col: 16, message: "unknown host 'c' in kill" },
  { title: 'a switch where a host is needed', code: 'LS1001', src: scn('  switch sw0 { latency 1us }', '  metric m from sw0 match "(x)"'), line: 4, col: 17, message: "unknown host 'sw0' in metric m", hint: "'sw0' is a switch" },
  { title: 'a range host used without its range', code: 'LS1001', src: scn('  host web[1..4]', '  switch sw0', '  link web -- sw0 { latency 1ms }'), line: 5, col: 8, message: "unknown host or switch 'web' in link", hint: "did you mean 'web[1..4]'?" },
  { title: 'app to an unknown host', code: 'LS1001', src: scn('  host m { app request { to nobody every 1s } }'), line: 3, col: 29, message: "unknown host 'nobody' in app request" },
  { title: 'duplicate host', code: 'LS1002', src: scn('  host a {}', '  host a {}'), line: 4, col: 8, message: "'a' is already declared as a host at line 3", hint: 'names of hosts and switches must be unique' },
  { title: 'duplicate scenario', code: 'LS1002', src: lines('scenario "s" { duration 1s }', 'scenario "s" { duration 1s }'), line: 2, col: 10, message: 'scenario "s" is already defined at line 1' },
  { title: 'duplicate let in a scenario', code: 'LS1002', src: scn('  let x = 1ms', '  param x = 2ms'), line: 4, col: 9, message: "param 'x' is already defined at line 3" },
  { title: 'duplicate metric', code: 'LS1002', src: scn(...two, '  metric m from a match "(x)"', '  metric m from b match "(y)"'), line: 6, col: 10, message: "metric 'm' is already defined at line 5" },
  { title: 'duplicate command name', code: 'LS1002', src: scn('  host a { run "x" as w run "y" as w }'), line: 3, col: 36, message: "command name 'w' is used twice on host 'a'" },
  { title: 'empty range', code: 'LS1003', src: scn('  host web[4..1]'), line: 3, col: 11, message: 'range [4..1] is empty', hint: 'write [1..4]' },
  { title: 'overlapping ranges', code: 'LS1004', src: scn('  host w[1..4]', '  host w[3..6]'), line: 4, col: 9, message: "range w[3..6] overlaps w[1..4] (line 3) at 'w3'" },
  { title: 'unknown template', code: 'LS1005', src: scn('  host t from nope {}'), line: 3, col: 15, message: "unknown template 'nope'" },
  { title: 'unknown template, close to a known one', code: 'LS1005', src: scn('  template base { cpus 2 }', '  host t from bse {}'), line: 4, col: 15, message: "unknown template 'bse'", hint: "did you mean 'base'?" },
  { title: 'unknown name', code: 'LS1006', src: scn('  host a', '  host b', '  link a -- b { latency wan }'), line: 5, col: 25, message: "unknown name 'wan' for link latency", hint: 'define it with let or param' },
  { title: 'unknown name, close to a let', code: 'LS1006', src: scn('  let wan = 1ms', '  host a', '  host b', '  link a -- b { latency wam }'), line: 6, col: 25, message: "unknown name 'wam' for link latency", hint: "did you mean 'wan'?" },
  { title: 'let cycle', code: 'LS1007', src: lines('let x = y', 'let y = x', 'scenario "s" {', '  duration x', '}'), line: 2, col: 9, message: "'x' is defined in terms of itself" },
  { title: 'template cycle', code: 'LS1007', src: scn('  template ta from tb {}', '  template tb from ta {}'), line: 4, col: 20, message: 'template cycle: ta → tb → ta' },
  { title: 'import of a missing file', code: 'LS1008', src: lines('import "missing.scn"', 'scenario "s" { duration 1s }'), options: { readFile: memoryFiles({}) }, line: 1, col: 1, message: 'cannot import "missing.scn": no such file' },
  { title: 'imports nested too deep', code: 'LS1008', src: lines('import "c0.scn"', 'scenario "s" { duration 1s }'), options: { readFile: memoryFiles(deepChain) }, file: `c${MAX_IMPORT_DEPTH - 1}.scn`, line: 1, col: 1, message: `imports nest deeper than ${MAX_IMPORT_DEPTH} files` },
  { title: 'import cycle through another file', code: 'LS1009', src: lines('import "lib.scn"', 'scenario "s" { duration 1s }'), options: { readFile: memoryFiles({ 'lib.scn': 'let q = 1ms\nimport "t.scn"' }) }, file: 'lib.scn', line: 2, col: 1, message: 'import cycle: t.scn → lib.scn → t.scn' },
  { title: 'a file importing itself', code: 'LS1009', src: lines('import "t.scn"', 'scenario "s" { duration 1s }'), options: { readFile: memoryFiles({}) }, line: 1, col: 1, message: 'import cycle: t.scn → t.scn' },
  { title: 'unknown metric: rt_ms → rtt_ms', code: 'LS1010', src: scn(...two, '  metric rtt_ms from a match "time=([0-9.]+)"', '  expect mean(rt_ms) < 5'), line: 6, col: 15, message: "metric 'rt_ms' is never defined", hint: "did you mean 'rtt_ms'?" },
  { title: 'place glob matching nothing', code: 'LS1011', src: scn(...two, '  place "zz*" on "m1"'), line: 5, col: 9, message: 'place pattern "zz*" matches no host' },
  { title: 'place name matching nothing', code: 'LS1011', src: scn(...two, '  place c on "m1"'), line: 5, col: 9, message: "unknown host 'c' in place" },
  { title: 'range too large', code: 'LS1012', src: scn('  host q[1..200000]'), line: 3, col: 9, message: 'range [1..200000] makes 200000 names; the limit is 130048' },
  { title: 'duplicate link (either direction)', code: 'LS1013', src: scn('  host a', '  host b', '  link a -- b { latency 1ms }', '  link b -- a { latency 2ms }'), line: 6, col: 3, message: 'link b -- a is already declared at line 5' },
  { title: 'self link', code: 'LS1014', src: scn('  host a', '  link a -- a { latency 1ms }'), line: 4, col: 3, message: "link from 'a' to itself" },
  { title: 'action on a link that does not exist', code: 'LS1015', src: scn('  host a', '  host c', '  at 1s { link a -- c down }'), line: 5, col: 16, message: "there is no link between 'a' and 'c'" },
  { title: 'no scenario (requireScenario)', code: 'LS1016', src: 'let a = 1ms', options: { requireScenario: true }, line: 1, col: 1, message: 't.scn has no scenario' },
  { title: 'unknown --set name: wam → wan', code: 'LS1017', src: scn('  param wan = 10ms'), options: { set: { wam: '20ms' } }, file: '<command line>', line: 1, col: 1, message: `--set wam: scenario "s" has no param or sweep 'wam'`, hint: "did you mean 'wan'?" },
  { title: 'seed given twice', code: 'LS1018', src: scn('  seed 1', '  seed 2'), line: 4, col: 3, message: "'seed' is given twice in this scenario (first at line 3)" },
  { title: 'link setting given twice', code: 'LS1018', src: scn('  host a', '  host b', '  link a -- b { latency 1ms latency 2ms }'), line: 5, col: 29, message: "'latency' is given twice in this link" },
  { title: 'host setting given twice', code: 'LS1018', src: scn('  host a { cpus 1 cpus 2 }'), line: 3, col: 19, message: "'cpus' is given twice in this host (first at line 3)" },
  { title: 'host placed on two agents', code: 'LS1018', src: scn(...two, '  place a on "m1"', '  place a on "m2"'), line: 6, col: 3, message: `host 'a' is already placed on "m1" at line 5` },
  { title: 'unknown scenario (--scenario)', code: 'LS1019', src: 'scenario "alpha" { duration 1s }', options: { scenario: 'alpah' }, file: '<command line>', line: 1, col: 1, message: 'no scenario "alpah" in t.scn', hint: "did you mean 'alpha'?" },

  // ---- values and units
  { title: 'missing unit (latency 10)', code: 'LS2001', src: scn('  host a', '  host b', '  link a -- b { latency 10 }'), line: 5, col: 25, message: 'link latency needs a duration unit, e.g. 10ms' },
  { title: 'queue without unit or packets', code: 'LS2001', src: scn('  host a', '  host b', '  link a -- b { latency 1ms queue 100 }'), line: 5, col: 35, message: "link queue needs a size unit or 'packets', e.g. 64KiB or 100 packets" },
  { title: 'wrong unit kind (latency 10Mbps)', code: 'LS2002', src: scn('  host a', '  host b', '  link a -- b { latency 10Mbps }'), line: 5, col: 25, message: 'link latency needs a duration, e.g. 10ms, but 10Mbps is a rate' },
  { title: 'unknown unit 10mbps → Mbps', code: 'LS2003', src: scn('  host a', '  host b', '  link a -- b { latency 1ms bandwidth 10mbps }'), line: 5, col: 39, message: "unknown unit 'mbps' in 10mbps", hint: "did you mean 'Mbps'?" },
  { title: 'latency 0', code: 'LS2004', src: scn('  host a', '  host b', '  link a -- b { latency 0ms }'), line: 5, col: 25, message: 'link latency must be greater than 0, not 0ms' },
  { title: 'negative latency', code: 'LS2004', src: scn('  host a', '  host b', '  link a -- b { latency -1ms }'), line: 5, col: 25, message: 'link latency must be greater than 0, not -1ms' },
  { title: 'loss over 100%', code: 'LS2004', src: scn('  host a', '  host b', '  link a -- b { latency 1ms loss 150% }'), line: 5, col: 34, message: 'link loss must be at least 0 and at most 100, not 150%' },
  { title: 'relative file path', code: 'LS2004', src: scn('  host a { run "x" file "etc/x" = "y" }'), line: 3, col: 25, message: 'file path must be absolute inside the host, not "etc/x"', hint: 'write "/etc/x"' },
  { title: 'a number where a string is needed', code: 'LS2005', src: scn('  host a { run 5 }'), line: 3, col: 16, message: 'run needs a "string", not 5' },
  { title: 'a bare word where a string is needed', code: 'LS2005', src: scn('  host a { run ls }'), line: 3, col: 16, message: `run needs a "string", not the name 'ls'`, hint: 'write "ls" in quotes, or define it with let' },
  { title: 'kind procss → process', code: 'LS2006', src: scn('  host c { kind procss }'), line: 3, col: 17, message: "kind must be one of model, process, vm, not 'procss'", hint: "did you mean 'process'?" },
  { title: 'not an integer', code: 'LS2007', src: scn('  host a { cpus 1.5 }'), line: 3, col: 17, message: 'cpus must be a whole number, not 1.5' },

  // ---- semantics
  { title: 'link without latency', code: 'LS3001', src: scn('  host a', '  host b', '  link a -- b { bandwidth 1Mbit }'), line: 5, col: 3, message: 'link a -- b has no latency' },
  { title: 'link without body', code: 'LS3001', src: scn('  host a', '  host b', '  link a -- b'), line: 5, col: 3, message: 'link a -- b has no latency' },
  { title: 'sync window over the smallest latency', code: 'LS3002', src: scn('  sync { window 5ms }', '  host a', '  host b', '  link a -- b { latency 1ms }'), line: 3, col: 10, message: 'sync window 5ms is larger than the smallest link latency 1ms (link a--b)' },
  { title: 'link set below the sync window', code: 'LS3002', src: scn(...two, '  link a -- b { latency 1ms }', '  at 1s { link a -- b set { latency 500us } }'), line: 6, col: 11, message: 'latency 500us is below the sync window 1ms' },
  { title: 'at after duration', code: 'LS3003', src: scn('  at 20s { log "late" }'), line: 3, col: 6, message: 'at 20s is after the end of the scenario (duration 10s)' },
  { title: 'app on a process host', code: 'LS3004', src: scn('  host p { kind process app echo { } }'), line: 3, col: 25, message: "app is for model hosts; 'p' is a process host" },
  { title: 'run on a model host', code: 'LS3005', src: scn('  host q { kind model run "x" }'), line: 3, col: 23, message: "host 'q' is a model host; it cannot run commands" },
  { title: 'regex that does not compile', code: 'LS3006', src: scn(...two, '  metric m from a match "(unclosed"'), line: 5, col: 25, message: 'the regex does not compile: Unterminated group' },
  { title: 'regex without group', code: 'LS3007', src: scn(...two, '  metric m from a match "nogroup"'), line: 5, col: 25, message: 'the regex has no (group) to capture the number' },
  { title: 'metric compared with a unit', code: 'LS3008', src: scn(...two, '  metric m from a match "([0-9]+)"', '  expect mean(m) < 5ms'), line: 6, col: 20, message: 'a metric is a plain number; it cannot be compared with 5ms', hint: 'write the number in the unit the program prints, e.g. 5' },
  { title: 'cpus over a placed machine (warning)', code: 'LS3009', src: scn('  host a { cpus 4 run "x" }', '  host b { cpus 4 run "y" }', '  place a on "m1"', '  place b on "m1"'), options: { agentCpus: { m1: 6 } }, line: 6, col: 3, message: 'hosts placed on "m1" ask for 8 cpus; it has 6', severity: 'warning', compiles: true },
  { title: 'unknown app', code: 'LS3010', src: scn('  host r { app foo }'), line: 3, col: 16, message: "unknown app 'foo'", hint: 'apps: onoff, echo, request, sink' },
  { title: 'app without to', code: 'LS3010', src: scn('  host r { app onoff { rate 1Mbps } }'), line: 3, col: 12, message: "app onoff needs 'to HOST'" },
  { title: 'app to itself', code: 'LS3010', src: scn('  host r { app request { to r every 1s } }'), line: 3, col: 29, message: "app request on 'r' sends to itself" },
  { title: 'app missing a required setting', code: 'LS3010', src: scn('  host a', '  host r { app onoff { to a } }'), line: 4, col: 12, message: "app onoff needs 'rate'" },
  { title: 'a link setting on a switch', code: 'LS3011', src: scn('  switch sw { loss 1% }'), line: 3, col: 15, message: "'loss' is not a switch setting" },
  { title: 'vm item on a process host', code: 'LS3012', src: scn('  host t { kind process run "x" image "x" }'), line: 3, col: 33, message: "image is for vm hosts; 't' is a process host", hint: 'add kind vm' },
  { title: 'until HOST exits, HOST runs nothing', code: 'LS3013', src: scn('  until h exits', '  host h { }'), line: 3, col: 9, message: "until h exits, but 'h' runs no command" },
  { title: 'until exit, nothing runs', code: 'LS3013', src: lines('scenario "s" {', '  until exit', '  host h { }', '}'), line: 2, col: 3, message: 'until exit, but no host runs a command' },
  { title: 'expect exit of a host that runs nothing', code: 'LS3014', src: scn('  host m', '  expect m exit 0'), line: 4, col: 10, message: "expect m exit 0, but 'm' runs no command" },
  { title: 'no duration, no until', code: 'LS3015', src: lines('scenario "s" {', '  host a', '}'), line: 1, col: 10, message: 'scenario "s" has no duration and no until: it would never end' },
  { title: 'empty sweep', code: 'LS3016', src: scn('  sweep e in []'), line: 3, col: 3, message: "sweep 'e' has no values" },
  { title: 'too many hosts', code: 'LS3017', src: scn('  host a[1..100000]', '  host b[1..100000]'), line: 1, col: 10, message: '200000 hosts do not fit in 198.18.0.0/15 (limit 130048)' },
  { title: 'unknown aggregate avg → mean', code: 'LS3018', src: scn(...two, '  metric m from a match "([0-9]+)"', '  expect avg(m) < 5'), line: 6, col: 10, message: "unknown aggregate 'avg'", hint: "did you mean 'mean'?" },
  { title: 'unknown aggregate, typo', code: 'LS3018', src: scn(...two, '  metric m from a match "([0-9]+)"', '  expect p95(m) < 5'), line: 6, col: 10, message: "unknown aggregate 'p95'", hint: "did you mean 'p90'?" },
  { title: 'kill a model host', code: 'LS3019', src: scn('  host m', '  at 1s { kill m }'), line: 4, col: 16, message: "kill needs a live host; 'm' is a model host" },
  { title: 'cache_ways on a model host (warning)', code: 'LS3020', src: scn('  host s2 { kind model cache_ways 4 }'), line: 3, col: 24, message: "cache_ways has no effect on model host 's2'", severity: 'warning', compiles: true },
  { title: 'too many sweep points', code: 'LS3021', src: scn(`  sweep x in [${hundredOne}]`, `  sweep y in [${hundredOne}]`), line: 1, col: 10, message: 'the sweeps make 10201 points; the limit is 10000' },
  { title: 'vm without image or kernel', code: 'LS3022', src: scn('  host v { kind vm }'), line: 3, col: 12, message: "vm host 'v' needs an image \"…\" (kvm) or a kernel \"…\" (qemu)" },
  { title: 'too many links', code: 'LS3023', src: scn('  host a[1..1001]', '  host b[1..1000]', '  link a[1..1001] -- b[1..1000] { latency 1ms }'), line: 5, col: 3, message: 'this declaration makes 1001000 links; the limit is 1000000 in all' },
];

for (const c of cases) {
  test(`${c.code} ${c.title}`, (t) => {
    const result = compile(c.src, c.options);
    const all = describeDiagnostics(result.diagnostics);
    const file = c.file ?? 't.scn';
    const d = result.diagnostics.find((x) => x.code === c.code && x.span.file === file && x.span.line === c.line && x.span.col === c.col);
    if (d === undefined) {
      t.fail(`no ${c.code} at ${file}:${c.line}:${c.col}; got:\n${all}`);
      return;
    }
    if (typeof c.message === 'string') t.true(d.message.includes(c.message), `message: ${d.message}`);
    else t.regex(d.message, c.message);
    if (c.hint !== undefined) {
      if (typeof c.hint === 'string') t.is(d.hint, c.hint);
      else t.regex(d.hint ?? '', c.hint);
    }
    t.is(d.severity, c.severity ?? 'error');
    t.true(d.span.endLine > d.span.line || d.span.endCol >= d.span.col, 'the span does not end before it starts');
    t.is(result.ok, c.compiles === true, all);
    if (c.compiles !== true) t.deepEqual(result.plans, [], 'no plan when there are errors');
  });
}

/**
 * Codes no .scn text can trigger, with the reason. Empty: every code in the
 * catalogue is reachable from text and options (LS0006 with a 33 MiB string,
 * LS1016/LS1017/LS1019/LS3009 through compile options). A code added to
 * Codes without a row above makes the next test fail.
 */
const notTriggerableFromText: Record<string, string> = {};

test('the table covers every code in Codes except the explicit allow-list', (t) => {
  const covered = new Set(cases.map((c) => c.code));
  const missing = Object.values(Codes).filter((code) => !covered.has(code) && !(code in notTriggerableFromText));
  t.deepEqual(missing, []);
  // the allow-list holds only real codes that really are not covered
  for (const code of Object.keys(notTriggerableFromText)) {
    t.true((Object.values(Codes) as string[]).includes(code), code);
    t.false(covered.has(code), code);
  }
  // and codes are unique
  t.is(new Set(Object.values(Codes)).size, Object.values(Codes).length);
});

test('every error is reported, not only the first', (t) => {
  const result = compile(scn(
    '  host a { kind procss }',
    '  host b { cpus 1.5 }',
    '  link a -- sever { latency 1ms }',
    '  link a -- b { latency 10 }',
    '  foo 3',
  ));
  t.deepEqual(result.diagnostics.map((d) => [d.code, d.span.line]), [
    ['LS2006', 3], ['LS2007', 4], ['LS1001', 5], ['LS2001', 6], ['LS0004', 7],
  ]);
});

test('diagnostics are sorted by position and one problem at several sweep points is reported once', (t) => {
  const result = compile(scn('  sweep x in [1ms, 2ms, 3ms]', '  host a { kind procss }'));
  t.deepEqual(result.diagnostics.map((d) => d.code), ['LS2006']);
});

test('no diagnostics and one plan for a clean scenario', (t) => {
  const result = compile(scn(...two, '  link a -- b { latency 1ms }'));
  t.deepEqual(result.diagnostics, []);
  t.true(result.ok);
  t.is(result.plans.length, 1);
});

test('the cpus warning does not count a host twice when two place items put it on the same agent', (t) => {
  // 4 hosts × 1 cpu on "m1", which has 6 cpus: no warning is due, however many
  // place items name the same host for the same agent.
  const result = compile(scn('  host web[1..4] { run "x" }', '  place web[1..4] on "m1"', '  place "web*" on "m1"'), { agentCpus: { m1: 6 } });
  t.deepEqual(result.diagnostics.filter((d) => d.code === Codes.cpusOverPlaced), [], describeDiagnostics(result.diagnostics));
  t.true(result.ok);
  t.is(result.plans[0]?.hosts.filter((h) => h.agent === 'm1').length, 4);
});

test('the checker never throws on mangled versions of a full scenario', (t) => {
  const base = lines(
    'let wan = 10ms',
    'template base { cpus 2 }',
    'scenario "all" {',
    '  duration 30s  until exit  sync { window 1ms }  param rate = 100Mbit  sweep lat in [1ms, 10ms]',
    '  host web[1..4] from base { kind process run "x" at 2s as srv env A = "b" file "/etc/x" = "y" }',
    '  host m { app onoff { to web1 rate 10Mbps size 1500B on 1s off 1s } app request { to web2 every 10ms } }',
    '  switch sw0 { latency 1us queue 100 packets }',
    '  link web[1..4] -- sw0 { latency wan bandwidth rate loss 0.5% queue 64KiB capture }',
    '  link m -- sw0 { latency lat }',
    '  at 5s { link web1 -- sw0 set { latency 20ms } kill web2 run web4 "ls" log "hello" }',
    '  metric rtt from web1 match "time=([0-9.]+)"',
    '  expect web1 exit 0  expect mean(rtt) within 20 +- 0.4  expect finished within 10s',
    '  place web[1..4] on "m1"',
    '}',
  );
  t.true(compile(base).ok, describeDiagnostics(compile(base).diagnostics));
  const words = base.split(/(\s+)/);
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 400; i++) {
    let text: string;
    if (i % 3 === 0) text = base.slice(0, random(base.length));
    else if (i % 3 === 1) {
      const copy = [...words];
      copy.splice(random(copy.length), 1 + random(3));
      text = copy.join('');
    } else {
      const at = random(base.length);
      text = base.slice(0, at) + '{}[]()"-.,=*'[random(12)] + base.slice(at);
    }
    t.notThrows(() => compile(text, { set: { lat: '3ms' } }), JSON.stringify(text));
  }
});
