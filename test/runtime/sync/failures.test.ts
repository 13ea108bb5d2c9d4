// Failures of a distributed run, with agents as separate OS processes: a killed
// agent and a hung agent end the run within a bounded time, with an error naming
// the agent, its address and the virtual time, keeping partial results; an
// unreachable agent is named at once. Wrong tokens, garbage bytes, a 1 GiB length
// prefix, a wrong version and frames out of order are rejected with a logged
// reason, and the agent goes on serving the next run.
import test from 'ava';
import { connect, createServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { planOf } from '../model/helpers.ts';
import { simulateDistributed } from '../../../runtime/sync/coordinator.ts';
import { encodeFrame, FrameReader, FrameType, HEADER_BYTES, NONCE_BYTES, proof, WIRE_MAGIC, WIRE_VERSION, type Frame } from '../../../runtime/sync/wire.ts';
import { addressOf, killAll, startAgents, tokenFile, TOKEN, type AgentProcess } from './helpers.ts';

const token = Buffer.from(TOKEN);
let steady: AgentProcess;
let victim: AgentProcess;
let sleeper: AgentProcess;

test.before(async () => {
  [steady, victim, sleeper] = await startAgents(null, ['steady', 'victim', 'sleeper'], tokenFile());
});
test.after.always(() => {
  if (sleeper !== undefined && sleeper.child.pid !== undefined) sleeper.kill('SIGCONT');
  killAll([steady, victim, sleeper].filter((a) => a !== undefined));
});

const small = planOf(`scenario "small" { seed 5  duration 500ms
  host a { app request { to b  every 5ms  size 400B  reply 2000B } }
  host b { app echo { port 7 } }
  link a -- b { latency 2ms  bandwidth 50Mbit } }`);

/** A run that takes a while: traffic both ways over a 1 ms cut link. */
const long = planOf(`scenario "long" { seed 9  duration 1000s
  host a { app onoff { to b  rate 20Mbit  size 1000B  arrivals poisson }  app sink { port 9 } }
  host b { app onoff { to a  rate 20Mbit  size 1000B }  app sink { port 9 } }
  link a -- b { latency 1ms  bandwidth 100Mbit } }`);

/** The agent still serves runs: a small run on it alone completes. */
async function stillServes(t: import('ava').ExecutionContext, agent: AgentProcess): Promise<void> {
  t.is(agent.child.exitCode, null, `${agent.name} is still running`);
  const result = await simulateDistributed(small, { agents: [addressOf(agent)], token });
  t.is(result.failure, null);
  t.false(result.stoppedEarly);
}

/** A raw connection to an agent: collects the frames it sends and notices when it closes. */
async function raw(agent: AgentProcess): Promise<{ socket: Socket; frames: Frame[]; closed: Promise<void>; hello: Frame }> {
  const socket = connect({ host: '127.0.0.1', port: agent.port });
  const reader = new FrameReader(1 << 20);
  const frames: Frame[] = [];
  let gotHello: (f: Frame) => void = () => {};
  const hello = new Promise<Frame>((resolve) => (gotHello = resolve));
  socket.on('data', (chunk: Buffer) => {
    for (const f of reader.push(chunk)) {
      frames.push(f);
      if (f.type === FrameType.Hello) gotHello(f);
    }
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, frames, closed, hello: await hello };
}

function errorMessage(frames: readonly Frame[]): string {
  const error = frames.find((f) => f.type === FrameType.Error);
  return error === undefined ? '(no Error frame)' : (JSON.parse(error.payload.toString()) as { message: string }).message;
}

function header(version: number, type: number, length: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32BE(WIRE_MAGIC, 0);
  b.writeUInt16BE(version, 4);
  b.writeUInt16BE(type, 6);
  b.writeUInt32BE(length, 8);
  return b;
}

test.serial('a wrong token is refused with a reason on both sides; the agent serves the next run', async (t) => {
  const error = await t.throwsAsync(simulateDistributed(small, { agents: [addressOf(steady)], token: Buffer.from('another-token-0123456789') }));
  t.regex(error!.message, /agent "steady" \(127\.0\.0\.1:\d+\).*authentication failed.*--token-file/);
  await steady.waitForLog(/rejected connection from 127\.0\.0\.1:\d+: authentication failed/);
  await stillServes(t, steady);
});

test.serial('garbage bytes are rejected as not LiveStack frames; the agent survives', async (t) => {
  const c = await raw(steady);
  c.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(200)));
  await c.closed;
  t.regex(errorMessage(c.frames), /not a LiveStack wire frame \(bad magic/);
  await steady.waitForLog(/rejected connection from .*bad magic/);
  await stillServes(t, steady);
});

test.serial('a 1 GiB length prefix is refused before any allocation, before and after authentication', async (t) => {
  const before = await raw(steady);
  before.socket.write(header(WIRE_VERSION, FrameType.Auth, 1 << 30));
  await before.closed;
  t.regex(errorMessage(before.frames), /frame of 1073741824 bytes \(Auth\) exceeds the limit of 16384 bytes/);
  // authenticated first: the limit is then 64 MiB, still far below 1 GiB
  const after = await raw(steady);
  const agentNonce = after.hello.payload.subarray(0, NONCE_BYTES);
  const nonce = Buffer.alloc(NONCE_BYTES, 7);
  // the Auth frame and the 1 GiB header in one write: the limit changes between the two frames
  after.socket.write(Buffer.concat([encodeFrame(FrameType.Auth, Buffer.concat([nonce, proof(token, 'coordinator', agentNonce, nonce)])), header(WIRE_VERSION, FrameType.Plan, 1 << 30)]));
  await after.closed;
  t.true(after.frames.some((f) => f.type === FrameType.Welcome), 'authenticated');
  t.regex(errorMessage(after.frames), /frame of 1073741824 bytes \(Plan\) exceeds the limit of 67108864 bytes/);
  await steady.waitForLog(/exceeds the limit of 67108864 bytes/);
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${steady.child.pid}/status`, 'utf8'))![1]);
  t.true(rss < 512 * 1024, `agent RSS ${rss} kB`);
  await stillServes(t, steady);
});

test.serial('a wrong protocol version is refused with both versions named; the agent survives', async (t) => {
  const c = await raw(steady);
  c.socket.write(header(WIRE_VERSION + 1, FrameType.Auth, 64));
  c.socket.write(Buffer.alloc(64));
  await c.closed;
  t.regex(errorMessage(c.frames), new RegExp(`wire version mismatch: the peer speaks version ${WIRE_VERSION + 1}, this LiveStack speaks ${WIRE_VERSION}`));
  await steady.waitForLog(/rejected connection from .*wire version mismatch/);
  await stillServes(t, steady);
});

test.serial('frames before authentication and malformed auth frames are refused', async (t) => {
  const early = await raw(steady);
  early.socket.write(encodeFrame(FrameType.Plan, Buffer.from('{}')));
  await early.closed;
  t.regex(errorMessage(early.frames), /expected an Auth frame first/);
  const short = await raw(steady);
  short.socket.write(encodeFrame(FrameType.Auth, Buffer.alloc(10)));
  await short.closed;
  t.regex(errorMessage(short.frames), /Auth frame of 10 bytes/);
  await stillServes(t, steady);
});

test.serial('an agent killed mid-run (SIGKILL) ends the run at once, naming it and the virtual time; partial results are kept', async (t) => {
  t.timeout(60_000);
  let killedAt = 0;
  const result = await simulateDistributed(long, {
    agents: [addressOf(steady), addressOf(victim)], token,
    onProgress: (timeNs) => {
      if (killedAt === 0 && timeNs >= 300_000_000) {
        killedAt = performance.now();
        victim.kill('SIGKILL');
      }
    },
  });
  const reactionMs = performance.now() - killedAt;
  t.true(killedAt > 0);
  t.regex(result.failure ?? '', /agent "victim" \(127\.0\.0\.1:\d+\) failed at virtual time 0\.\d{9}s.*the agent process died, was killed or dropped the run/);
  t.true(result.stoppedEarly);
  t.true(result.reachedNs >= 300_000_000 && result.reachedNs < 1_000_000_000, `reached ${result.reachedNs}`);
  t.true(reactionMs < 5000, `ended ${reactionMs.toFixed(0)} ms after the kill`);
  // the survivor handed in its partial results: its host logged its closing lines
  const survivor = result.network.hosts[result.split.assignment[0] === 0 ? 0 : 1]!;
  t.true(survivor.log.length > 0);
  t.true(result.agents.find((a) => a.name === 'victim')!.failed);
  await steady.waitForLog(/run \w+ from .* finished/);
  await stillServes(t, steady);
});

test.serial('direct mode: an agent killed mid-run is named; the survivor stops and hands in its results', async (t) => {
  t.timeout(60_000);
  const [target] = await startAgents(t, ['target'], tokenFile());
  let killedAt = 0;
  const result = await simulateDistributed(long, {
    agents: [addressOf(steady), addressOf(target!)], token, direct: true,
    onProgress: (timeNs) => {
      if (killedAt === 0 && timeNs >= 300_000_000) {
        killedAt = performance.now();
        target!.kill('SIGKILL');
      }
    },
  });
  t.true(killedAt > 0);
  t.regex(result.failure ?? '', /agent "target" \(127\.0\.0\.1:\d+\) failed at virtual time 0\.\d{9}s.*the agent process died, was killed or dropped the run/);
  t.true(result.stoppedEarly);
  t.true(performance.now() - killedAt < 5000);
  t.true(result.network.hosts[result.split.assignment[0] === 0 ? 0 : 1]!.log.length > 0, 'the survivor handed in its results');
  await steady.waitForLog(/lost peer 2/);
  await stillServes(t, steady);
});

test.serial('a hung agent (SIGSTOP) ends the run after the heartbeat timeout; when it wakes it drops the run', async (t) => {
  t.timeout(60_000);
  let stoppedAt = 0;
  const result = await simulateDistributed(long, {
    agents: [addressOf(steady), addressOf(sleeper)], token, heartbeatMs: 100, timeoutMs: 1500,
    onProgress: (timeNs) => {
      if (stoppedAt === 0 && timeNs >= 200_000_000) {
        stoppedAt = performance.now();
        sleeper.kill('SIGSTOP');
      }
    },
  });
  const reactionMs = performance.now() - stoppedAt;
  t.regex(result.failure ?? '', /agent "sleeper" \(127\.0\.0\.1:\d+\) failed at virtual time 0\.\d{9}s.*heartbeat timeout 1\.5 s/);
  t.true(reactionMs < 6000, `ended ${reactionMs.toFixed(0)} ms after the stop`);
  sleeper.kill('SIGCONT');
  await sleeper.waitForLog(/abandoned at virtual 0\.\d+s.*partition dropped/);
  await stillServes(t, sleeper);
  await stillServes(t, steady);
});

test.serial('direct mode: a hung agent is named after the heartbeat timeout; the survivor is stopped and hands in its results', async (t) => {
  t.timeout(60_000);
  let stoppedAt = 0;
  const result = await simulateDistributed(long, {
    agents: [addressOf(steady), addressOf(sleeper)], token, direct: true, heartbeatMs: 100, timeoutMs: 1500,
    onProgress: (timeNs) => {
      if (stoppedAt === 0 && timeNs >= 200_000_000) {
        stoppedAt = performance.now();
        sleeper.kill('SIGSTOP');
      }
    },
  });
  t.regex(result.failure ?? '', /agent "sleeper" \(127\.0\.0\.1:\d+\) failed at virtual time 0\.\d{9}s.*heartbeat timeout 1\.5 s/);
  t.true(performance.now() - stoppedAt < 8000);
  t.true(result.network.hosts[result.split.assignment[0] === 0 ? 0 : 1]!.log.length > 0, 'the survivor handed in its results');
  sleeper.kill('SIGCONT');
  await sleeper.waitForLog(/(abandoned at virtual [^]*){2}/);
  await stillServes(t, sleeper);
  await stillServes(t, steady);
});

test.serial('an unreachable agent is named at once with what to do', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const p = (server.address() as { port: number }).port;
      server.close(() => resolve(p));
    });
  });
  const started = performance.now();
  const error = await t.throwsAsync(simulateDistributed(small, { agents: [addressOf(steady), { host: '127.0.0.1', port, name: null }], token }));
  t.regex(error!.message, new RegExp(`agent at 127\\.0\\.0\\.1:${port} refused the connection: start it with \`livestack agent --listen 127\\.0\\.0\\.1:${port}`));
  t.true(performance.now() - started < 5000);
  await t.throwsAsync(simulateDistributed(small, { agents: [addressOf(steady), addressOf(steady)], token }), { message: /agent 127\.0\.0\.1:\d+ is given twice/ });
  await stillServes(t, steady);
});

test.serial('something else listening, or an agent with another name, is refused by the coordinator', async (t) => {
  const server = createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const error = await t.throwsAsync(simulateDistributed(small, { agents: [{ host: '127.0.0.1', port, name: null }], token }));
  t.regex(error!.message, new RegExp(`\\(127\\.0\\.0\\.1:${port}\\) ended the session before the run started: not a LiveStack wire frame \\(bad magic`));
  const named = await t.throwsAsync(simulateDistributed(small, { agents: [{ ...addressOf(steady), name: 'other' }], token }));
  t.regex(named!.message, /the agent at 127\.0\.0\.1:\d+ is called "steady", the agents file says "other"/);
  await stillServes(t, steady);
});

test.serial('a long window is no hang: the agent keeps its heartbeats going while it simulates', async (t) => {
  t.timeout(120_000);
  // one agent, no cut link: windows of 1 s virtual, each of them far more work than the 500 ms timeout
  // (~1.5 s of wall time here). The timeout is not tighter because this machine's vCPU stalls and a
  // scavenge in either process take tens of ms now and then; heartbeats go out every 100 ms.
  const busy = planOf(`scenario "busy" { seed 2  duration 3s
    host a[1..4] { app onoff { to b  rate 1Gbit  size 1000B  arrivals poisson } }
    host b { app sink { port 9 } }
    switch s { }
    link a[1..4] -- s { latency 10us  bandwidth 10Gbit }
    link s -- b { latency 10us  bandwidth 40Gbit } }`);
  const timeoutMs = 500;
  const started = performance.now();
  const result = await simulateDistributed(busy, { agents: [addressOf(steady)], token, heartbeatMs: 100, timeoutMs });
  const wallMs = performance.now() - started;
  t.is(result.failure, null);
  t.is(result.windowNs, 1_000_000_000);
  t.is(result.windows, 3);
  t.log(`${result.windows} windows of ${(wallMs / result.windows).toFixed(0)} ms wall each (${result.events} events) under a ${timeoutMs} ms timeout`);
  // the point of the test: a window took longer than the timeout, and no timeout ended the run
  t.true(wallMs / result.windows > timeoutMs, `windows of ${(wallMs / result.windows).toFixed(0)} ms wall do not outlast the ${timeoutMs} ms timeout`);
});
