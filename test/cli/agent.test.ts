// `livestack agent` and `livestack run --agents` end to end (agents through the bin):
// help and usage errors, a distributed run writing the run directory of a local
// run (same summary, logs, metrics, pcap; only wall time and partition count
// differ), and an agent killed mid-run: exit 1, an error naming the agent and the
// virtual time, partial results marked INCOMPLETE.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../cli/main.ts';
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

/** The CLI in this process (the agents stay separate processes): exit code, stdout, stderr. */
async function cli(...argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const exitCode = await main(argv, { out: (text) => void (stdout += text), err: (text) => void (stderr += text), color: false });
  return { exitCode, stdout, stderr };
}

const list = () => agents.map((a) => `127.0.0.1:${a.port}`).join(',');

test.serial('agent --help and run --help document the flags; missing flags are usage errors', async (t) => {
  const { file } = scratch('scenario "s" { duration 1s  host a  host b  link a -- b { latency 1ms } }\n');
  const help = await cli('agent', '--help');
  const runHelp = await cli('run', '--help');
  const noListen = await cli('agent', '--token-file', token);
  const noToken = await cli('run', file, '--agents', list(), '--partitions', '2');
  for (const flag of ['--listen', '--token-file', '--name', '--heartbeat-timeout']) t.true(help!.stdout.includes(flag), flag);
  for (const flag of ['--agents', '--agents-file', '--token-file', '--agent-timeout', '--direct']) t.true(runHelp!.stdout.includes(flag), flag);
  t.is(noListen!.exitCode, 2);
  t.regex(noListen!.stderr, /--listen ADDR:PORT is required/);
  t.is(noToken!.exitCode, 2);
  t.regex(noToken!.stderr, /--agents needs --token-file FILE/);
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
  const local = await cli('run', file, '-o', join(dir, 'local'), '--quiet');
  const remote = await cli('run', file, '-o', join(dir, 'remote'), '--agents-file', agentsFile, '--token-file', token, '--quiet');
  const direct = await cli('run', file, '-o', join(dir, 'direct'), '--agents', list(), '--token-file', token, '--direct', '--quiet');
  t.is(direct.exitCode, 0, direct.stderr);
  t.is(local.exitCode, 0, local.stderr);
  t.is(remote.exitCode, 0, remote.stderr);
  const files = (d: string): string[] => readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(d.length + 1)).sort();
  t.deepEqual(files(join(dir, 'remote')), files(join(dir, 'local')));
  t.deepEqual(files(join(dir, 'direct')), files(join(dir, 'local')));
  for (const name of files(join(dir, 'local'))) {
    if (name === 'environment.json') continue; // probe timings differ from run to run
    const read = (side: string) => readFileSync(join(dir, side, name), name.endsWith('.pcap') ? 'base64' : 'utf8')
      .replace(/"wallMs": \d+|"eventsPerSecond": \d+|"windows": \d+|"windowNs": \d+|"partitions": \d+/g, '')
      .replace(/^wall .*$/m, '');
    t.is(read('remote'), read('local'), name);
    t.is(read('direct'), read('local'), `${name} (--direct)`);
  }
  const environment = JSON.parse(readFileSync(join(dir, 'remote', 'environment.json'), 'utf8')) as { agents: Array<{ name: string; partition: number; capabilities: { cores: number; doctor: { summary: string } } }> };
  t.deepEqual(environment.agents.map((a) => [a.name, a.partition]), [['east', 0], ['west', 1]]);
  t.true(environment.agents.every((a) => a.capabilities.cores >= 1 && typeof a.capabilities.doctor.summary === 'string'), 'each agent reported its cores and doctor report');
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
  const running = cli('run', file, '-o', out, '--agents', `127.0.0.1:${agents[0]!.port},127.0.0.1:${victim!.port}`, '--token-file', token, '--quiet');
  await victim!.waitForLog(/run \w+ from .* partition 2\/2/, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  victim!.kill('SIGKILL');
  const r = await running;
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

test.serial('a coordinator killed mid-run: the agents drop the run and serve the next one', async (t) => {
  const { file, dir } = scratch(`scenario "long" {
  duration 100000s
  host a { app onoff { to b  rate 10Mbit  size 1000B }  app sink { port 9 } }
  host b { app onoff { to a  rate 10Mbit  size 1000B }  app sink { port 9 } }
  link a -- b { latency 1ms  bandwidth 100Mbit }
}
`);
  const before = agents.map((a) => (a.log().match(/partition dropped/g) ?? []).length);
  const child = execa('node', [bin, 'run', file, '-o', join(dir, 'out'), '--agents', list(), '--token-file', token], { env, reject: false });
  await Promise.all(agents.map((a) => a.waitForLog(new RegExp(`(run \\w+ from [^\\n]* partition [12]/2[^]*){${runsSoFar(a) + 1}}`), 30_000)));
  child.kill('SIGKILL');
  await child;
  for (const [i, agent] of agents.entries()) {
    await agent.waitForLog(new RegExp(`(partition dropped[^]*){${before[i]! + 1}}`));
    t.regex(agent.log(), /abandoned at virtual \d+\.\d{9}s: the connection was closed by the peer( \(ECONNRESET\))?; partition dropped/);
  }
  const { file: small } = scratch('scenario "s" { duration 100ms  host a { app request { to b  every 10ms  size 100B  reply 100B } }  host b { app echo { port 7 } }  link a -- b { latency 1ms } }\n');
  const again = await cli('run', small, '-o', join(dir, 'again'), '--agents', list(), '--token-file', token, '--quiet');
  t.is(again.exitCode, 0, again.stderr);
});

/** How many runs an agent has started so far (its "partition i/n" lines). */
function runsSoFar(agent: AgentProcess): number {
  return (agent.log().match(/: partition \d+\/\d+, /g) ?? []).length;
}
