import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, version } from '../../cli/main.ts';

function capture() {
  const io = { out: '', err: '', color: false };
  return {
    io: { out: (t: string) => void (io.out += t), err: (t: string) => void (io.err += t), color: false },
    text: io,
  };
}

async function cli(...argv: string[]) {
  const { io, text } = capture();
  const code = await main(argv, io);
  return { code, out: text.out, err: text.err };
}

function scratch(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-cli-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const good = `scenario "s" {
  duration 10s
  param wan = 10ms
  host a { run "true" }
  host b { }
  link a -- b { latency wan }
  expect a exit 0
}
`;

test('check: a good file prints ok and exits 0', async (t) => {
  const r = await cli('check', scratch('good.scn', good));
  t.is(r.code, 0);
  t.regex(r.out, /^ok .*good\.scn: 1 scenario, 1 plan, 2 hosts, 0 switches, 1 link\n$/);
  t.is(r.err, '');
});

test('check: every error is reported with file:line:col, code, caret and hint; exit 1', async (t) => {
  const path = scratch('bad.scn', 'scenario "s" {\n  duration 10s\n  host a { kind procss }\n  link a -- sever { latency 10 }\n}\n');
  const r = await cli('check', path);
  t.is(r.code, 1);
  t.regex(r.err, /bad\.scn:3:17: error LS2006: kind must be one of model, process, vm, not 'procss'/);
  t.regex(r.err, /did you mean 'process'\?/);
  t.regex(r.err, /bad\.scn:4:13: error LS1001: unknown host or switch 'sever' in link/);
  t.regex(r.err, /bad\.scn:4:29: error LS2001: link latency needs a duration unit, e.g\. 10ms/);
  t.regex(r.err, /\n {2}4 \| {3}link a -- sever \{ latency 10 \}\n {4}\| {13}\^{5}\n/);
  t.regex(r.err, /bad\.scn: 3 errors\n$/);
});

test('check: several files, one bad, exits 1 and still checks the others', async (t) => {
  const r = await cli('check', scratch('bad.scn', 'scenario "x" { host }'), scratch('good.scn', good));
  t.is(r.code, 1);
  t.regex(r.out, /ok .*good\.scn/);
  t.regex(r.err, /LS0002/);
});

test('check: a missing file is a diagnostic, not a crash', async (t) => {
  const r = await cli('check', '/nonexistent/x.scn');
  t.is(r.code, 1);
  t.regex(r.err, /LS1008: cannot read \/nonexistent\/x\.scn: no such file/);
});

test('plan: prints canonical JSON with planHash; --set changes it; --hash prints the hash', async (t) => {
  const path = scratch('good.scn', good);
  const first = await cli('plan', path);
  const again = await cli('plan', path);
  t.is(first.code, 0);
  t.is(first.out, again.out);
  const plan = JSON.parse(first.out) as { links: Array<{ latencyNs: number }>; planHash: string };
  t.is(plan.links[0]!.latencyNs, 10_000_000);
  t.regex(plan.planHash, /^[0-9a-f]{64}$/);
  const set = await cli('plan', path, '--set', 'wan=20ms');
  t.is((JSON.parse(set.out) as typeof plan).links[0]!.latencyNs, 20_000_000);
  const hash = await cli('plan', path, '--hash');
  t.is(hash.out, plan.planHash + '\n');
});

test('plan: sweeps print an array, --point picks one', async (t) => {
  const path = scratch('sweep.scn', good.replace('param wan = 10ms', 'sweep wan in [1ms, 2ms, 3ms]'));
  const all = JSON.parse((await cli('plan', path)).out) as Array<{ sweep: { index: number; count: number } }>;
  t.is(all.length, 3);
  t.deepEqual(all.map((p) => p.sweep.index), [0, 1, 2]);
  const one = JSON.parse((await cli('plan', path, '--point', '2')).out) as { links: Array<{ latencyNs: number }> };
  t.is(one.links[0]!.latencyNs, 3_000_000);
  t.is((await cli('plan', path, '--point', '3')).code, 2);
});

test('plan: an unknown --set name is an error with a suggestion', async (t) => {
  const r = await cli('plan', scratch('good.scn', good), '--set', 'wann=3ms');
  t.is(r.code, 1);
  t.regex(r.err, /LS1017: --set wann: scenario "s" has no param or sweep 'wann'/);
  t.regex(r.err, /did you mean 'wan'\?/);
});

test('usage errors exit 2 and show usage', async (t) => {
  for (const argv of [['check'], ['check', '--bogus', 'x'], ['plan', 'a', 'b'], ['plan', 'x', '--set', 'novalue'], ['frobnicate']]) {
    const r = await cli(...argv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.err, /Usage|unknown command/, argv.join(' '));
  }
});

test('--help for every command, --version', async (t) => {
  for (const command of ['check', 'plan', 'doctor', 'run', 'agent', 'report']) {
    const r = await cli(command, '--help');
    t.is(r.code, 0, command);
    t.regex(r.out, new RegExp(`^Usage: livestack ${command}`), command);
  }
  const top = await cli('--help');
  t.regex(top.out, /Commands:\n {2}check/);
  t.is((await cli('--version')).out, `livestack ${version()}\n`);
});

test('run: a vm host whose image is missing fails with the scenario line, the host and what to do', async (t) => {
  const vm = 'scenario "v" {\n  duration 1s\n  host a { kind vm  image "x.img" }\n}\n';
  const r = await cli('run', scratch('vm.scn', vm), '-o', join(mkdtempSync(join(tmpdir(), 'livestack-run-')), 'out'));
  t.is(r.code, 1);
  t.regex(r.err, /livestack run: host a: vm\.scn:3: image .*x\.img does not exist \(give image "…" a guest program/);
});

test('run: a model scenario writes its run directory and exits 0; a failed expectation exits 1', async (t) => {
  const model = `scenario "m" {
  duration 1s
  host a { app request { to b  every 100ms  size 100B  reply 100B } }
  host b { app echo { port 7 } }
  link a -- b { latency 5ms }
  metric rtt from a match "rtt_ms=([0-9.]+)"
  expect count(rtt) == 10
  expect mean(rtt) within 10 +- 0.01
}
`;
  const out = join(mkdtempSync(join(tmpdir(), 'livestack-run-')), 'out');
  const r = await cli('run', scratch('m.scn', model), '-o', out, '--quiet');
  t.is(r.code, 0, r.out + r.err);
  t.regex(r.out, /PASS m\.scn:7: expect count\(rtt\) == 10/);
  t.regex(r.out, /run directory: /);
  const failing = await cli('run', scratch('m.scn', model.replace('within 10 +- 0.01', '< 5')), '-o', out + '2', '--quiet');
  t.is(failing.code, 1);
  t.regex(failing.out, /FAIL m\.scn:8: expect mean\(rtt\) < 5\n {5}expected mean\(rtt\) < 5, measured 10\n/);
});

test('report says it is not yet available, exit 3', async (t) => {
  for (const command of ['report']) {
    const r = await cli(command, 'x');
    t.is(r.code, 3);
    t.regex(r.err, /not yet available/);
  }
});

test('doctor: text and --json list every capability', async (t) => {
  const text = await cli('doctor');
  t.is(text.code, 0);
  for (const key of ['library', 'kvm', 'cgroupV1', 'cgroupV2', 'freezer', 'resctrl', 'netns', 'tap', 'cpus', 'qemu']) t.regex(text.out, new RegExp(`\\b${key}\\b`));
  const json = JSON.parse((await cli('doctor', '--json')).out) as { capabilities: Record<string, { status: string }> };
  t.is(json.capabilities['library']!.status, 'ok');
  t.true(['ok', 'missing', 'partial'].includes(json.capabilities['kvm']!.status));
});

test('the installed bin runs: npx livestack check on the quick start', async (t) => {
  const r = await execa('node', ['bin/livestack.js', 'check', 'scenarios/quickstart.scn'], { reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^ok scenarios\/quickstart\.scn/);
});
