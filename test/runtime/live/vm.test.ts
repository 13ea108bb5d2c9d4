// kind vm hosts on the KVM backend inside whole runs: idle jumps, exact
// delivery times between guests and between a guest and a process cell, and
// virtual CPU time that a host CPU hog does not change.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { compileText } from '../../../dsl/compile.ts';
import type { Plan } from '../../../dsl/plan.ts';
import { probeKvm } from '../../../ffi/kvm.ts';
import { aggregate, collectMetrics } from '../../../runtime/report/metrics.ts';
import { hostLogs } from '../../../runtime/report/summary.ts';
import { simulate } from '../../../runtime/simulation.ts';
import { cpuHogs, liveProblems, REQUIRE_LIVE } from './helpers.ts';

const kvm = existsSync('/dev/kvm') && probeKvm().canCreateVm;
const cells = liveProblems().length === 0;
const vmTest = (kvm && cells) || REQUIRE_LIVE ? test.serial : test.skip;
const guests = fileURLToPath(new URL('../../../scenarios/vm/guests/', import.meta.url));

function plan(source: string): Plan {
  const result = compileText('vm.scn', source);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`).join('\n'));
  return result.plans[0]!;
}

function lines(result: Awaited<ReturnType<typeof simulate>>, host: string): Array<{ timeNs: number; line: string }> {
  return result.network.hosts.find((h) => h.name === host)!.log;
}

test('vm runs are possible here (LIVESTACK_REQUIRE_LIVE=1 makes their absence a failure)', (t) => {
  if (REQUIRE_LIVE && !(kvm && cells)) t.fail(`vm runs need /dev/kvm and cells: kvm ${kvm}, cells ${liveProblems().join('; ') || 'ok'}`);
  t.pass();
});

vmTest('a guest sleeping until 5 s wakes at 5 s virtual in far less wall time (idle jump)', async (t) => {
  const p = plan(`scenario "sleep" {
  duration 10s
  until exit
  host g { kind vm  image "${guests}sleep.c"  run "5000000000" }
}`);
  const started = performance.now();
  const result = await simulate(p);
  const wallMs = performance.now() - started;
  const line = lines(result, 'g').find((l) => l.line.startsWith('slept'))!.line;
  const [, from, to] = /slept from (\d+) to (\d+) ns/.exec(line)!.map(Number);
  t.log(`${line}; run ended at ${result.reachedNs} ns virtual, ${wallMs.toFixed(0)} ms wall, ${result.windows} windows`);
  t.deepEqual(result.live?.exitCodes.get('g'), [0]);
  t.true(from! < 5_000_000, 'it went to sleep early');
  t.true(to! >= 5_000_000_000 && to! < 5_000_000_000 + 1_000_000, `woke at ${to}`);
  t.true(wallMs < 2000, `${wallMs} ms of wall time for 5 s of sleep`);
  t.true(result.windows < 20, `${result.windows} windows: the idle time was not jumped`);
});

vmTest('guest to guest over a 10 ms link: every datagram arrives exactly 10 ms after it was sent', async (t) => {
  const p = plan(`scenario "udp" {
  duration 5s
  until client exits
  host server { kind vm  image "${guests}udp-echo.c"  run "7" }
  host client { kind vm  image "${guests}udp-probe.c"  run "198.18.0.1 7 20 50" }
  link client -- server { latency 10ms }
}`);
  const result = await simulate(p);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  const received = lines(result, 'server').map((l) => /recv seq=(\d+) sent=(\d+) at=(\d+)/.exec(l.line)).filter((m) => m !== null);
  t.is(received.length, 20);
  for (const m of received) t.is(Number(m![3]) - Number(m![2]), 10_000_000, `seq ${m![1]}`);
  const rtts = lines(result, 'client').map((l) => /rtt seq=\d+ ns=(\d+)/.exec(l.line)).filter((m) => m !== null).map((m) => Number(m![1]));
  t.is(rtts.length, 20);
  rtts.sort((a, b) => a - b);
  t.log(`one way: 10.000000 ms for all 20; round trip p50 ${rtts[10]! / 1e6} ms, max ${rtts[19]! / 1e6} ms`);
  // the reply leaves when the server read the request (its clock: the arrival plus the time it ran)
  t.true(rtts[10]! >= 20_000_000 && rtts[10]! < 20_400_000, `p50 ${rtts[10]}`);
});

/** pcap records (time, direction, ICMP type, seq) of a capture. */
function icmpRecords(result: Awaited<ReturnType<typeof simulate>>, link: string) {
  return (result.network.captures.get(link) ?? []).map((r) => {
    const b = r.packet.bytes;
    const ip = 14;
    const icmp = ip + (b[ip]! & 15) * 4;
    return { timeNs: r.timeNs, direction: r.direction, type: b[icmp]!, seq: (b[icmp + 6]! << 8) | b[icmp + 7]! };
  });
}

vmTest('guest and process cell over 10 ms links: arrivals at send + 10 ms both ways, ping RTT 20 ms', async (t) => {
  const p = plan(`scenario "mixed" {
  duration 3s
  host client { kind process  run "ping -c 5 -i 0.2 responder" }
  host responder { kind vm  image "${guests}ping.c" }
  host prober { kind vm  image "${guests}pinger.c"  run "198.18.0.1 5 200" at 100ms }
  link client -- responder { latency 10ms  capture }
  link prober -- client { latency 10ms  capture }
  metric rtt_ms from client match "time=([0-9.]+) ms"
  metric guest_rtt_ms from prober match "reply seq=[0-9]+ time=([0-9.]+) ms"
}`);
  const result = await simulate(p);
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);
  t.deepEqual(result.live?.exitCodes.get('prober'), [0]);
  // process cell -> guest: the guest's receive ring gives each request the time the network delivered it
  const requests = icmpRecords(result, 'client--responder').filter((r) => r.type === 8);
  const echoes = lines(result, 'responder').map((l) => /echo seq=(\d+) from=198\.18\.0\.1 at=(\d+)/.exec(l.line)).filter((m) => m !== null);
  t.is(echoes.length, 5);
  for (const m of echoes) {
    const sent = requests.find((r) => r.seq === Number(m![1]))!;
    t.is(Number(m![2]) - sent.timeNs, 10_000_000, `request ${m![1]}`);
  }
  // guest -> process cell -> guest: the cell's kernel answers within 1 ms of the arrival. One answer of
  // the 5 may take up to 3 ms: this nested host stalls a vCPU for 1-27 ms at times, and a frame handed
  // to the spinner on the cell's core during one is late (seen once in CI: 1.13 ms)
  const probe = icmpRecords(result, 'prober--client');
  const delays = probe.filter((r) => r.type === 8).map((request) => probe.find((r) => r.type === 0 && r.seq === request.seq)!.timeNs - request.timeNs - 10_000_000);
  t.is(delays.length, 5);
  t.true(delays.every((d) => d >= 0 && d < 3_000_000), `the cell answered ${delays.join(', ')} ns after the arrivals`);
  t.true(delays.filter((d) => d >= 1_000_000).length <= 1, `the cell answered ${delays.join(', ')} ns after the arrivals`);
  const metrics = collectMetrics(p, hostLogs(result));
  const cell = aggregate('p50', metrics.get('rtt_ms')!)!;
  const guest = aggregate('p50', metrics.get('guest_rtt_ms')!)!;
  t.log(`ping from the cell to the guest: p50 ${cell} ms; from the guest to the cell: p50 ${guest} ms`);
  t.true(Math.abs(cell - 20) <= 0.4, `cell -> guest p50 ${cell}`);
  t.true(Math.abs(guest - 20) <= 0.4, `guest -> cell p50 ${guest}`);
});

vmTest('a CPU-bound guest measures the same virtual time alone and next to a host CPU hog', async (t) => {
  // 8 loops of ~30 ms per run (10 ms windows: no link bounds them); runs alone and next to stress-ng
  // alternate. The claim: the guest's clock counts the CPU its vCPU used, so a hog changes neither the
  // virtual time per unit of that CPU nor (beyond this VM's own drift) the loops' virtual times.
  // The loops' CPU time itself moves with this machine's speed (a plain C loop: 243-252 ms for the same
  // work, run to run; in one CI run the loops next to the hog took 30.5-34.7 ms of CPU, alone 33.5-34.3),
  // so the tight check is virtual time per vCPU CPU time, which that drift cannot move.
  const p = plan(`scenario "spin" {
  duration 60s
  until exit
  host g { kind vm  image "${guests}spin.c"  run "15000000 8" }
}`);
  const loops = async () => {
    const result = await simulate(p);
    const elapsed = lines(result, 'g').flatMap((l) => {
      const m = /elapsed_ns=(\d+)/.exec(l.line);
      return m === null ? [] : [Number(m[1])];
    });
    return { elapsed, perCpu: elapsed.reduce((a, b) => a + b, 0) / result.live!.stats.guestCpuNs };
  };
  const alone: number[] = [];
  const loaded: number[] = [];
  const alonePerCpu: number[] = [];
  const loadedPerCpu: number[] = [];
  for (let round = 0; round < 3; round++) {
    const a = await loops();
    alone.push(...a.elapsed);
    alonePerCpu.push(a.perCpu);
    const hog = cpuHogs(t);
    if (hog === null) return;
    await new Promise((resolve) => setTimeout(resolve, 200)); // the hog's workers are up
    const l = await loops();
    process.kill(-hog.pid!, 'SIGKILL');
    loaded.push(...l.elapsed);
    loadedPerCpu.push(l.perCpu);
  }
  const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * xs.length)]!;
  t.is(alone.length, 24);
  t.is(loaded.length, 24);
  const ms = (ns: number) => (ns / 1e6).toFixed(2);
  const fractions = (xs: number[]) => xs.map((x) => x.toFixed(4)).join(' ');
  t.log(`alone: median ${ms(quantile(alone, 0.5))} ms (${ms(Math.min(...alone))}-${ms(Math.max(...alone))}), loops' virtual time / vCPU CPU time ${fractions(alonePerCpu)}; ` +
    `next to stress-ng: median ${ms(quantile(loaded, 0.5))} ms (${ms(Math.min(...loaded))}-${ms(Math.max(...loaded))}), ${fractions(loadedPerCpu)}`);
  // the loops are nearly all of the guest's CPU; the rest is start-up, the prints and the exits' and kicks'
  // cost, which the clock leaves out (a median measured per VM: 1-3% of a 10 ms quantum here)
  for (const f of [...alonePerCpu, ...loadedPerCpu]) t.true(f > 0.9 && f <= 1.005, `virtual / CPU ${f}`);
  // measured 0.972-0.982 on either side; the kick cost's median is re-measured per VM, so 2%
  const [ma, ml] = [quantile(alonePerCpu, 0.5), quantile(loadedPerCpu, 0.5)];
  t.true(Math.abs(ml / ma - 1) <= 0.02, `virtual / CPU next to the hog ${ml} vs alone ${ma}`);
  // and the loops' virtual times themselves: the medians within this VM's drift (a fresh-clone CI run read
  // 33.64 against 31.36 ms, +7.3%, with virtual / CPU 0.960-0.972 on both sides: the loops' CPU time moved,
  // not the clock's account of it, which the 2% check above holds)
  t.true(Math.abs(quantile(loaded, 0.5) / quantile(alone, 0.5) - 1) <= 0.1, `median ${quantile(loaded, 0.5)} vs ${quantile(alone, 0.5)}`);
});

vmTest('cpus 4: four vCPUs compute in parallel in virtual time, taking turns on fewer real cores', async (t) => {
  const p = plan(`scenario "smp" {
  duration 60s
  until exit
  host g { kind vm  image "${guests}smp.c"  cpus 4  run "30000000" }
}`);
  const started = performance.now();
  const result = await simulate(p);
  const wallMs = performance.now() - started;
  t.deepEqual(result.live?.exitCodes.get('g'), [0]);
  const loops = lines(result, 'g').flatMap((l) => {
    const m = /cpu=(\d+) rounds=\d+ elapsed_ns=(\d+)/.exec(l.line);
    return m === null ? [] : [{ cpu: Number(m[1]), ns: Number(m[2]) }];
  });
  t.deepEqual(loops.map((l) => l.cpu).sort(), [0, 1, 2, 3]);
  const mean = loops.reduce((n, l) => n + l.ns, 0) / loops.length;
  t.log(`each vCPU's loop: ${loops.map((l) => `${l.cpu}: ${(l.ns / 1e6).toFixed(1)} ms`).join(', ')}; the guest ended at ${(result.reachedNs / 1e6).toFixed(1)} ms virtual after ${wallMs.toFixed(0)} ms of wall time`);
  // every vCPU counts its own CPU: the same work reads about the same time on each (they run one after
  // another on this machine's one cell core, and its speed can drift by up to ~20% within seconds)
  for (const l of loops) t.true(Math.abs(l.ns / mean - 1) < 0.25, `vCPU ${l.cpu}: ${l.ns} vs mean ${mean}`);
  // in parallel: the guest took about one loop (+ the window the others waited to start), not four
  t.true(result.reachedNs < mean + 25_000_000, `ended at ${result.reachedNs}`);
});

vmTest('pause, resume and kill act on a guest: paused time passes by it, a killed guest stops', async (t) => {
  const p = plan(`scenario "actions" {
  duration 2s
  host paused { kind vm  image "${guests}spin.c"  run "30000000" }
  host killed { kind vm  image "${guests}spin.c"  run "2000000000" }
  at 20ms { pause paused }
  at 320ms { resume paused }
  at 100ms { kill killed }
}`);
  const result = await simulate(p);
  const elapsed = Number(/elapsed_ns=(\d+)/.exec(lines(result, 'paused').map((l) => l.line).join('\n'))![1]);
  t.log(`a ~60 ms loop paused for 300 ms read ${(elapsed / 1e6).toFixed(1)} ms`);
  t.deepEqual(result.live?.exitCodes.get('paused'), [0]);
  t.true(elapsed > 300_000_000 && elapsed < 450_000_000, `elapsed ${elapsed}`);
  t.deepEqual(result.live?.exitCodes.get('killed'), [null]);
  const last = lines(result, 'killed').at(-1)!;
  t.is(last.line, '[livestack] cmd1 exited on SIGKILL');
  t.is(last.timeNs, 100_000_000);
});

vmTest('a guest that cannot fit its vCPUs, or has no image, is refused with the line and what to do', async (t) => {
  const tooSmall = plan(`scenario "m" {
  duration 1s
  host g { kind vm  image "${guests}hello.c"  cpus 16  memory 4MiB }
}`);
  await t.throwsAsync(simulate(tooSmall), { message: /host g: vm\.scn:3: memory 4 MiB is too little for 16 vCPUs \(set memory 6MiB or more\)/ });
  const missing = plan(`scenario "m" {
  duration 1s
  host g { kind vm  image "${guests}nope.c" }
}`);
  await t.throwsAsync(simulate(missing), { message: /host g: vm\.scn:3: image .*nope\.c does not exist/ });
});

vmTest('the shipped vm scenarios run through the CLI and meet their expectations', async (t) => {
  const { execa } = await import('execa');
  const bin = fileURLToPath(new URL('../../../bin/livestack.js', import.meta.url));
  const scenarios = fileURLToPath(new URL('../../../scenarios/vm/', import.meta.url));
  for (const name of ['hello.scn', 'ping.scn']) {
    const out = await execa(process.execPath, [bin, 'run', `${scenarios}${name}`, '-o', `${mkdtempSync(join(tmpdir(), 'livestack-vm-'))}/run`], { reject: false });
    t.is(out.exitCode, 0, `${name}:\n${out.stdout}\n${out.stderr}`);
    t.regex(out.stdout, /expectations (\d+)\/\1 passed/, name);
  }
});
