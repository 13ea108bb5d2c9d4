// `livestack agent` and `livestack run --agents` end to end through the bin:
// help and usage errors, a distributed run writing the run directory of a local
// run (same summary, logs, metrics, pcap; only wall time and partition count
// differ), and an agent killed mid-run: exit 1, an error naming the agent and the
// virtual time, partial results marked INCOMPLETE.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, startAgents, tokenFile, type AgentProcess } from '../runtime/sync/helpers.ts';

const bin = 'bin/livestack.js';
const env = { ...process.env, CI: 'true' };
let agents: AgentProcess[] = [];
let token = '';

test.before(async () => {
  token = tokenFile();
  agents = await startAgents(null, ['east', 'west'], token);
});
test.after.always(() => killAll(agents));

function scratch(text: string): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-agent-'));
  const file = join(dir, 's.scn');
  writeFileSync(file, text);
  return { file, dir };
}

const list = () => agents.map((a) => `127.0.0.1:${a.port}`).join(',');

test.serial('agent --help and run --help document the flags; bad flags are usage errors', async (t) => {
  const short = join(mkdtempSync(join(tmpdir(), 'livestack-token-')), 'short');
  writeFileSync(short, 'abc\n');
  const { file } = scratch('scenario "s" { duration 1s  host a  host b  link a -- b { latency 1ms } }\n');
  // independent invocations, side by side: each pays the tsx start-up
  const [help, runHelp, noListen, weak, noToken, both] = await Promise.all([
    ['agent', '--help'],
    ['run', '--help'],
    ['agent', '--token-file', token],
    ['agent', '--listen', '127.0.0.1:0', '--token-file', short],
    ['run', file, '--agents', list()],
    ['run', file, '--agents', list(), '--token-file', token, '--partitions', '2'],
  ].map((argv) => execa('node', [bin, ...argv], { reject: false })));
  for (const flag of ['--listen', '--token-file', '--name', '--heartbeat-timeout']) t.true(help!.stdout.includes(flag), flag);
  for (const flag of ['--agents', '--agents-file', '--token-file', '--agent-timeout']) t.true(runHelp!.stdout.includes(flag), flag);
  t.is(noListen!.exitCode, 2);
  t.regex(noListen!.stderr, /--listen ADDR:PORT is required/);
  t.is(weak!.exitCode, 2);
  t.regex(weak!.stderr, /is 3 bytes; use at least 16/);
  t.is(noToken!.exitCode, 2);
  t.regex(noToken!.stderr, /--agents needs --token-file FILE/);
  t.is(both!.exitCode, 2);
  t.regex(both!.stderr, /--partitions and --agents exclude each other/);
});

test.serial('run --agents writes the run directory of a local run', async (t) => {
  const { file, dir } = scratch(`scenario "two-sites" {
  seed 4
  duration 2s
  host e[1..3] { app request { to w1  every 20ms  size 1500B  reply 4000B }  app sink { port 9 } }
  host w[1..3] { app echo { port 7 }  app onoff { to e1  rate 2Mbit  size 800B  arrivals poisson } }
  switch se { }
  switch sw { }
  link e[1..3] -- se { latency 100us  bandwidth 1Gbit }
  link w[1..3] -- sw { latency 100us  bandwidth 1Gbit }
  link se -- sw { latency 5ms  bandwidth 100Mbit  capture }
  at 1s { log "halfway" }
  metric rtt from e[1..3] match "rtt_ms=([0-9.]+)"
  expect count(rtt) > 100
}
`);
  const agentsFile = join(dir, 'agents');
  writeFileSync(agentsFile, `# the two sites\neast 127.0.0.1:${agents[0]!.port}\nwest 127.0.0.1:${agents[1]!.port}\n`);
  const [local, remote] = await Promise.all([
    execa('node', [bin, 'run', file, '-o', join(dir, 'local'), '--quiet'], { env, reject: false }),
    execa('node', [bin, 'run', file, '-o', join(dir, 'remote'), '--agents-file', agentsFile, '--token-file', token, '--quiet'], { env, reject: false }),
  ]);
  t.is(local.exitCode, 0, local.stderr);
  t.is(remote.exitCode, 0, remote.stderr);
  const files = (d: string): string[] => readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(d.length + 1)).sort();
  t.deepEqual(files(join(dir, 'remote')), files(join(dir, 'local')));
  for (const name of files(join(dir, 'local'))) {
    if (name === 'environment.json') continue; // probe timings differ from run to run
    const read = (side: string) => readFileSync(join(dir, side, name), name.endsWith('.pcap') ? 'base64' : 'utf8')
      .replace(/"wallMs": \d+|"eventsPerSecond": \d+|"windows": \d+|"partitions": \d+/g, '')
      .replace(/^wall .*$/m, '');
    t.is(read('remote'), read('local'), name);
  }
  const summary = JSON.parse(readFileSync(join(dir, 'remote', 'summary.json'), 'utf8')) as { partitions: number; complete: boolean };
  t.is(summary.partitions, 2);
  t.true(summary.complete);
  t.false(existsSync(join(dir, 'remote', 'INCOMPLETE')));
});

test.serial('an agent killed mid-run: exit 1, the agent and virtual time named, partial results INCOMPLETE', async (t) => {
  const [victim] = await startAgents(t, ['victim'], token);
  const { file, dir } = scratch(`scenario "long" {
  duration 100000s
  host a { app onoff { to b  rate 10Mbit  size 1000B  arrivals poisson }  app sink { port 9 } }
  host b { app onoff { to a  rate 10Mbit  size 1000B }  app sink { port 9 } }
  link a -- b { latency 1ms  bandwidth 100Mbit }
}
`);
  const out = join(dir, 'out');
  const child = execa('node', [bin, 'run', file, '-o', out, '--agents', `127.0.0.1:${agents[0]!.port},127.0.0.1:${victim!.port}`, '--token-file', token], { env, reject: false });
  await victim!.waitForLog(/run \w+ from .* partition 2\/2/, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  victim!.kill('SIGKILL');
  const r = await child;
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, /livestack run: agent "victim" \(127\.0\.0\.1:\d+\) failed at virtual time \d+\.\d{9}s.*died, was killed/);
  t.regex(r.stderr, /partial results: .* \(INCOMPLETE\)/);
  t.regex(readFileSync(join(out, 'INCOMPLETE'), 'utf8'), /^interrupted: agent "victim"/);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { complete: boolean; reachedNs: number };
  t.false(summary.complete);
  t.true(summary.reachedNs > 0);
  t.regex(readFileSync(join(out, 'logs', 'a.log'), 'utf8'), /onoff to=b sent=\d+/, 'the survivor handed in its hosts\' logs');
  await agents[0]!.waitForLog(/run \w+ from .* finished/);
});
