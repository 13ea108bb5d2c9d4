// Real services across simulated links: iperf3 over a 100 Mbit/s link (and with
// loss), redis-benchmark against redis-server. Programs from Debian packages
// (.ci/run installs them); missing ones fail under LIVESTACK_REQUIRE_LIVE=1.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { compileFile, compileText } from '../../../dsl/compile.ts';
import type { Plan } from '../../../dsl/plan.ts';
import { aggregate, collectMetrics } from '../../../runtime/report/metrics.ts';
import { hostLogs } from '../../../runtime/report/summary.ts';
import { simulate } from '../../../runtime/simulation.ts';
import { liveTest, REQUIRE_LIVE } from './helpers.ts';
import { describe as describeOltp, runOltpBench } from '../../../bench/oltp.ts';

function has(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function plan(source: string): Plan {
  const result = compileText('workload.scn', source);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`).join('\n'));
  return result.plans[0]!;
}

const iperf = (link: string, options = '') => `scenario "iperf" {
  duration 60s
  until client exits
  host server { kind process  run "iperf3 -s -1" }
  host client { kind process  run "iperf3 -c server -t 3 -f m ${options}" at 500ms }
  link client -- server { ${link} }
  metric sender from client match "([0-9.]+) Mbits/sec.*sender"
  metric receiver from client match "([0-9.]+) Mbits/sec.*receiver"
}`;

async function iperfRun(source: string) {
  const p = plan(source);
  const result = await simulate(p);
  const metrics = collectMetrics(p, hostLogs(result));
  return { result, sender: aggregate('last', metrics.get('sender')!), receiver: aggregate('last', metrics.get('receiver')!) };
}

function requireTools(t: { fail: (m: string) => void; pass: (m?: string) => void }, ...tools: string[]): boolean {
  const missing = tools.filter((tool) => !has(tool));
  if (missing.length === 0) return true;
  if (REQUIRE_LIVE) t.fail(`missing: ${missing.join(', ')} (apt-get install -y iperf3 redis-server mariadb-server postgresql-15 sysbench)`);
  else t.pass(`missing here: ${missing.join(', ')}`);
  return false;
}

liveTest('iperf3 over a 100 Mbit/s, 5 ms link measures within 5% of the link rate', async (t) => {
  if (!requireTools(t, 'iperf3')) return;
  const { result, sender, receiver } = await iperfRun(iperf('latency 5ms  bandwidth 100Mbit'));
  t.log(`sender ${sender} Mbit/s, receiver ${receiver} Mbit/s; virtual ${result.reachedNs / 1e9} s`);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  t.true(Math.abs(sender! - 100) <= 5, `sender ${sender}`);
  // goodput: 1448 payload bytes per 1514-byte frame is 95.6 Mbit/s at most. Measured 61-94 here: the
  // receiving iperf3 sometimes counts fewer bytes than the link delivered to its cell (open: see the
  // issue notes), so this bound only guards the data path itself
  t.true(receiver! >= 40 && receiver! <= 95.7, `receiver ${receiver}`);
});

liveTest('with 1% loss, TCP (cubic) falls well below the link rate', async (t) => {
  if (!requireTools(t, 'iperf3')) return;
  const { sender, receiver } = await iperfRun(iperf('latency 5ms  bandwidth 100Mbit  loss 1%', '-C cubic'));
  t.log(`with 1% loss: sender ${sender} Mbit/s, receiver ${receiver} Mbit/s`);
  // Mathis et al.: MSS/RTT × 1.22/√p ≈ 1448·8/10 ms × 12.2 ≈ 14 Mbit/s for Reno-like TCP; cubic does somewhat better
  t.true(receiver! < 60, `receiver ${receiver}`);
  t.true(receiver! > 1, `receiver ${receiver}`);
});

liveTest('a 12.6 KB answer over a 1 ms link takes one round trip: cells do not pace TCP on real time', async (t) => {
  // The OLTP artifact's range-query answers (12,624 bytes) left in two bursts ~450 us of virtual time
  // apart while cells used this machine's bbr, which paces by the real-time RTT (runtime/live/netdev.ts
  // CELL_TCP_CONGESTION). Measured here: p50 2.08 ms with cubic, 3.00 ms with bbr.
  const p = plan(`scenario "answers" {
    duration 60s
    until client exits
    host server { kind process  run "python3 -c \\"import socket\\ns = socket.socket(); s.bind(('0.0.0.0', 7000)); s.listen(); c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\\nwhile c.recv(1): c.sendall(bytes(12624))\\"" }
    host client { kind process  run "python3 -c \\"import socket, time\\nc = socket.create_connection(('server', 7000)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); xs = []\\nfor i in range(200):\\n  t = time.monotonic(); c.send(b'q'); n = 0\\n  while n < 12624: n += len(c.recv(65536))\\n  xs.append(time.monotonic() - t)\\nxs = sorted(xs[20:]); print('answer us p50 %.0f' % (xs[len(xs) // 2] * 1e6))\\"" at 500ms }
    link client -- server { latency 1ms  bandwidth 10Gbit }
    metric p50_us from client match "answer us p50 ([0-9]+)"
  }`);
  const result = await simulate(p);
  const p50 = aggregate('last', collectMetrics(p, hostLogs(result)).get('p50_us') ?? []);
  t.log(`answer p50 ${p50} us`);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  // one round trip (2 ms) plus the programs' own time; a pacing gap adds ~1 ms
  t.true(p50 !== null && p50 >= 2000 && p50 < 2400, `p50 ${p50} us`);
});

liveTest('redis-benchmark against redis-server across a 1 ms link completes, with its latency in the metrics', async (t) => {
  if (!requireTools(t, 'redis-server', 'redis-benchmark')) return;
  const p = plan(`scenario "redis" {
    duration 60s
    until client exits
    host server { kind process  run "redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save '' --appendonly no" }
    host client { kind process  run "redis-benchmark -h server -p 6379 -n 2000 -c 5 -t set,get -q" at 500ms }
    link client -- server { latency 1ms  bandwidth 1Gbit }
    metric rps from client match "([0-9.]+) requests per second"
    metric p50_ms from client match "requests per second, p50=([0-9.]+) msec"
  }`);
  const result = await simulate(p);
  const metrics = collectMetrics(p, hostLogs(result));
  const p50 = metrics.get('p50_ms')!.map((s) => s.value);
  t.log(`rps ${metrics.get('rps')!.map((s) => s.value).join(', ')}; p50 ${p50.join(', ')} ms`);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  t.is(metrics.get('rps')!.length, 2);
  // every request waits at least one round trip (2 ms) in virtual time
  for (const value of p50) t.true(value >= 2 && value < 6, `${value}`);
});

/** Runs a smoke scenario of scenarios/paper/oltp.scn; its client's tps and p95 (logged with the live stats). */
async function oltpSmoke(t: ExecutionContext, scenario: string): Promise<{ tps: number | null; p95: number | null; reachedNs: number }> {
  const compiled = compileFile(fileURLToPath(new URL('../../../scenarios/paper/oltp.scn', import.meta.url)), { scenario });
  if (!compiled.ok) throw new Error(compiled.diagnostics.map((d) => d.message).join('\n'));
  const p = compiled.plans[0]!;
  const started = performance.now();
  const result = await simulate(p);
  const metrics = collectMetrics(p, hostLogs(result));
  const tps = aggregate('last', metrics.get('tps') ?? []);
  const p95 = aggregate('last', metrics.get('p95_ms') ?? []);
  t.log(`tps ${tps}, p95 ${p95} ms; ${(result.reachedNs / 1e9).toFixed(1)} s virtual in ${((performance.now() - started) / 1000).toFixed(1)} s wall; live ${JSON.stringify(result.live?.stats)}`);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  return { tps, p95, reachedNs: result.reachedNs };
}

liveTest('sysbench oltp_read_write against MariaDB across a 1 ms link (the paper artifact, CI smoke; bench/oltp.ts --smoke)', async (t) => {
  if (!requireTools(t, 'mariadbd', 'mariadb-install-db', 'sysbench')) return;
  // the bench's smoke mode is this run: its wall time and slowdown are reported, never asserted
  const r = await runOltpBench(true);
  t.log(`${describeOltp(r)}\n  live ${JSON.stringify(r.stats)}`);
  t.is(r.exitCode, 0);
  const { tps, p95Ms: p95 } = r;
  // Each oltp_read_write transaction makes 20 round trips (18 queries, BEGIN, COMMIT) of 2 ms: a thread
  // cannot do more than 25 per virtual second, 4 threads not more than 100 — a clock that runs slow
  // (or packets that arrive early) would show more. The database's own work adds a few ms per
  // transaction (5 ms in the reference run at this latency: 89 tps); 2 tables of 1,000 rows add lock
  // waits. Below 50 tps, something costs the cells virtual time that a real machine would not (a lost
  // wake-up in the shim's condition waits made it 6.65: InnoDB lock waits slept out 50 s timeouts).
  t.true(tps !== null && tps > 50 && tps < 100, `tps ${tps}`);
  t.true(p95 !== null && p95 >= 40, `p95 ${p95} ms: 20 round trips of 2 ms at least`);
  // the bench's figures are there: install, prepare and a 5 s run are ~6 s of virtual time
  t.true(r.virtualS > 5 && r.virtualS < 60 && r.wallS > 0 && Number.isFinite(r.slowdown), describeOltp(r));
});

liveTest('sysbench oltp_read_write against PostgreSQL 15 across a 1 ms link (run as the postgres user; CI smoke)', async (t) => {
  if (!requireTools(t, '/usr/lib/postgresql/15/bin/postgres', 'runuser', 'psql', 'sysbench')) return;
  const { tps, p95, reachedNs } = await oltpSmoke(t, 'oltp-pgsql-smoke');
  // the same bounds as MariaDB's (20 round trips of 2 ms per transaction, 4 threads), for a server
  // whose processes run as another user and map their clock page themselves
  t.true(tps !== null && tps > 50 && tps < 100, `tps ${tps}`);
  t.true(p95 !== null && p95 >= 40, `p95 ${p95} ms: 20 round trips of 2 ms at least`);
  // initdb, start, prepare and a 5 s run take ~7 s of virtual time: a timeout slept out in full (a
  // wait the shim does not see, or a lost wake-up) shows here
  t.true(reachedNs < 60e9, `${reachedNs / 1e9} s of virtual time`);
});
