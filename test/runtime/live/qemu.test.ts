// backend qemu vm hosts: Debian's cloud kernel with a busybox initramfs (both made at test time:
// runtime/live/qemu-guest.ts) booted by QEMU (TCG) inside a process cell, networked through the cell's eth0,
// its clocks on the cell's virtual clock. Real QEMU, namespaces, cgroups and the time shim.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import test from 'ava';
import { execa } from 'execa';
import { compileText } from '../../../dsl/compile.ts';
import type { Plan } from '../../../dsl/plan.ts';
import { cpioArchive, initScript, prepareGuest } from '../../../runtime/live/qemu-guest.ts';
import { findProgram, guestAppend, netmask, qemuProblems, QEMU_BINARY } from '../../../runtime/live/qemu.ts';
import { aggregate, collectMetrics } from '../../../runtime/report/metrics.ts';
import { hostLogs } from '../../../runtime/report/summary.ts';
import { simulate } from '../../../runtime/simulation.ts';
import { capabilityTest, liveTest, REQUIRE_LIVE } from './helpers.ts';

capabilityTest();

const qemuInstalled = findProgram(QEMU_BINARY) !== null;
const qemuTest = qemuInstalled || REQUIRE_LIVE ? liveTest : test.skip;

test('QEMU is installed for the backend qemu tests (LIVESTACK_REQUIRE_LIVE=1 makes its absence a failure)', (t) => {
  if (!qemuInstalled && REQUIRE_LIVE) t.fail(`${QEMU_BINARY} is missing: apt-get install -y qemu-system-x86`);
  else if (!qemuInstalled) t.log(`skipping backend qemu tests: ${QEMU_BINARY} is missing`);
  t.pass();
});

function compile(source: string, file = 'qemu.scn'): Plan {
  const result = compileText(file, source);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`).join('\n'));
  return result.plans[0]!;
}

// ---- no QEMU needed ---------------------------------------------------------------------------------

test('the kernel command line gets ip=, the console, clocksource=hpet and panic=-1 unless the append has them', (t) => {
  const host = { name: 'g', address: '198.18.0.3', vm: { backend: 'qemu' as const, image: null, kernel: '/k', initrd: null, append: 'console=ttyS0 quiet' } };
  t.is(guestAppend(host, 15), 'console=ttyS0 quiet ip=198.18.0.3::0.0.0.0:255.254.0.0:g:eth0:off clocksource=hpet panic=-1');
  t.is(guestAppend({ ...host, vm: { ...host.vm, append: 'quiet clocksource=tsc ip=10.0.0.1:::255.0.0.0::eth0:off' } }, 15), 'quiet clocksource=tsc ip=10.0.0.1:::255.0.0.0::eth0:off console=ttyS0 panic=-1');
  t.is(netmask(15), '255.254.0.0');
  t.is(netmask(24), '255.255.255.0');
  t.is(netmask(32), '255.255.255.255');
});

test('a missing kernel or initrd names the scenario line, the host and how to get one; a missing QEMU what to install', (t) => {
  const plan = compile(`scenario "q" {
  duration 1s
  host g { kind vm  backend qemu  kernel "/nonexistent/vmlinuz"  initrd "/nonexistent/initrd.gz" }
  host c { kind process  run "true" }
  link c -- g { latency 1ms }
}`);
  const problems = qemuProblems(plan, { qemu: null }).map((p) => p.message);
  t.is(problems.length, 3, problems.join('\n'));
  t.regex(problems[0]!, /but qemu-system-x86_64 is not installed: apt-get install -y qemu-system-x86/);
  t.regex(problems[1]!, /^qemu\.scn:3: host g: kernel "\/nonexistent\/vmlinuz" does not exist \(npx tsx scenarios\/vm\/prepare\.ts fetches Debian's cloud kernel/);
  t.regex(problems[2]!, /^qemu\.scn:3: host g: initrd "\/nonexistent\/initrd\.gz" does not exist/);
  t.deepEqual(qemuProblems(compile('scenario "m" { duration 1s  host a { kind process  run "true" } }'), { qemu: null }), []);
});

test('livestack run with a missing guest kernel exits 3 and says where and what to do', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-qemu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'g.scn');
  writeFileSync(file, `scenario "g" {
  duration 1s
  host g { kind vm  backend qemu  kernel "missing-vmlinuz" }
}
`);
  const r = await execa('node', ['bin/livestack.js', 'run', file, '-o', join(dir, 'out')], { reject: false, env: { ...process.env, CI: 'true' } });
  t.is(r.exitCode, 3, r.stderr);
  // a relative kernel path is relative to the scenario file
  t.true(r.stderr.includes(`g.scn:3: host g: kernel ${JSON.stringify(join(dir, 'missing-vmlinuz'))} does not exist`), r.stderr);
  t.regex(r.stderr, /scenarios\/vm\/prepare\.ts/);
});

test('cpio archives are newc with 4-byte alignment and a trailer; the init script reads ip=', (t) => {
  const archive = cpioArchive([
    { path: 'etc', type: 'dir' },
    { path: 'etc/hosts', type: 'file', data: '198.18.0.1\tg\n' },
    { path: 'bin/sh', type: 'symlink', target: 'busybox' },
  ]);
  t.is(archive.length % 4, 0);
  const names: string[] = [];
  for (let at = 0; at < archive.length;) {
    t.is(archive.toString('ascii', at, at + 6), '070701');
    const field = (i: number): number => parseInt(archive.toString('ascii', at + 6 + 8 * i, at + 14 + 8 * i), 16);
    const nameBytes = field(11);
    const name = archive.toString('ascii', at + 110, at + 110 + nameBytes - 1);
    names.push(name);
    const dataAt = Math.ceil((at + 110 + nameBytes) / 4) * 4;
    at = Math.ceil((dataAt + field(6)) / 4) * 4;
    if (name === 'TRAILER!!!') break;
  }
  t.deepEqual(names, ['etc', 'etc/hosts', 'bin/sh', 'TRAILER!!!']);
  const init = initScript('echo hi');
  t.regex(init, /^#!\/bin\/busybox sh\n/);
  t.regex(init, /ip=\*\) spec=\$\{word#ip=\}/);
  t.regex(init, /\necho hi\n/);
});

// ---- QEMU in a cell ---------------------------------------------------------------------------------

/** Guest uptime lines ("tick SECONDS") with the virtual time the host logged them at. */
function ticks(lines: ReadonlyArray<{ timeNs: number; line: string }>): Array<{ virtualS: number; guestS: number }> {
  return lines.flatMap((l) => {
    const m = /^tick ([0-9.]+)$/.exec(l.line);
    return m ? [{ virtualS: l.timeNs / 1e9, guestS: Number(m[1]) }] : [];
  });
}

/** QEMU processes whose command line mentions marker (the run's temp dir, holding the guest's initrd). */
function qemuProcesses(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.startsWith(QEMU_BINARY) || cmdline.includes(`/${QEMU_BINARY}\0`)) if (cmdline.includes(marker)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A client waits for the guest to answer (its boot takes 3.4-5.3 s of virtual time here, longer on a
 *  loaded machine), so that every one of its pings counts; the probe's own output is discarded. */
const WAIT_FOR_G = 'while ! ping -c 1 -W 1 g >/dev/null; do sleep 0.5; done;';

function ourNetns(pid: number): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`ls-${pid}-`));
}

qemuTest('a backend qemu host boots Debian\'s kernel, answers ping over a 10 ms link (RTT 20 ms + guest), its clock is the cell\'s virtual clock, and nothing stays behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-qemu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // the guest pings the client (its own clock measures the RTT), then prints its uptime once a second
  // (guest time against the virtual time LiveStack logs each line at), then powers off: QEMU exits 0
  const program = [
    'sleep 5',
    'ping -c 5 -i 0.5 198.18.0.2',
    'i=0; while [ $i -lt 10 ]; do echo "tick $(cut -d" " -f1 /proc/uptime)"; sleep 1; i=$((i + 1)); done',
    'poweroff -f',
  ].join('\n');
  const guest = prepareGuest({ initrdPath: join(dir, 'initrd.cpio.gz'), program });
  t.log(`guest: ${guest.kernelVersion}, initrd ${readFileSync(guest.initrd).length} bytes (${gunzipSync(readFileSync(guest.initrd)).length} unpacked)`);
  const plan = compile(`scenario "qemu-ping" {
  duration 60s
  until g exits
  host g { kind vm  backend qemu  kernel "${guest.kernel}"  initrd "${guest.initrd}"  append "console=ttyS0 quiet"  cpus 1  memory 256MiB }
  host client { kind process  cpus 1  run "${WAIT_FOR_G} ping -c 20 -i 0.2 g" at 2s }
  link client -- g { latency 10ms }
  metric rtt_ms from client match "time=([0-9.]+) ms"
  metric guest_rtt_ms from g match "time=([0-9.]+) ms"
}`);
  t.is(plan.hosts[1]!.address, '198.18.0.2');
  const started = performance.now();
  const result = await simulate(plan);
  const wallS = (performance.now() - started) / 1000;
  const logs = hostLogs(result);
  const guestLog = logs.get('g') ?? [];
  const metrics = collectMetrics(plan, logs);
  const rtts = (metrics.get('rtt_ms') ?? []).map((s) => s.value);
  const guestRtts = (metrics.get('guest_rtt_ms') ?? []).map((s) => s.value);
  const up = guestLog.find((l) => l.line.startsWith('livestack-guest:'));
  t.log(`guest up at virtual ${((up?.timeNs ?? NaN) / 1e9).toFixed(3)} s: ${up?.line}`);
  t.log(`run: virtual ${(result.reachedNs / 1e9).toFixed(3)} s in ${wallS.toFixed(1)} s wall; live ${JSON.stringify(result.live?.stats)}`);
  t.log(`client rtt ms: ${rtts.join(' ')}`);
  t.log(`guest rtt ms: ${guestRtts.join(' ')}`);
  if (up === undefined) t.log(guestLog.map((l) => l.line).join('\n'));

  // boots: Debian's kernel, our init, eth0 with the plan's address, time from the HPET
  t.truthy(up, 'the guest init reported its network up');
  t.regex(up?.line ?? '', /g up, 198\.18\.0\.1\/15 on eth0, .* clocksource hpet/);
  // ~3.5 s of virtual time here (TCG); 10 s means something is badly wrong
  t.true((up?.timeNs ?? Infinity) < 10e9, `${up?.timeNs}`);

  // ping from a process cell: 20 ms of links plus the guest's turnaround under TCG (0.4-1 ms measured);
  // the first echo may still run guest code TCG has not translated yet (+13-20 ms measured without the
  // probe), hence p50 and a bound on the others. ±1.5 ms around 21 ms: the links' 20 ms are exact, the rest is the guest's own CPU time
  // (QEMU's, on a core shared with the client cell and whatever else this 2-core machine runs)
  t.is(rtts.length, 20);
  const p50 = aggregate('p50', (metrics.get('rtt_ms') ?? []))!;
  t.true(p50 >= 20 && p50 <= 22.5, `client p50 ${p50}`);
  t.true(Math.min(...rtts) >= 20, `min ${Math.min(...rtts)}`);
  // outliers: the guest's turnaround under TCG now and then takes a timer tick or a retranslation (a full
  // CI run: one of 19 at 30.3 ms, with 21 ms freezes of QEMU's many threads in that run): at most 2 of
  // them over 30 ms, none over 60
  t.true(rtts.slice(1).filter((r) => r >= 30).length <= 2 && rtts.slice(1).every((r) => r < 60), rtts.join(' '));
  t.deepEqual(result.live?.exitCodes.get('client'), [0]);

  // the guest's own clock measures the same RTT: guest time runs with the cell's virtual time
  t.is(guestRtts.length, 5);
  const guestP50 = aggregate('p50', metrics.get('guest_rtt_ms') ?? [])!;
  t.true(guestP50 >= 20 && guestP50 <= 22.5, `guest p50 ${guestP50}`);

  // guest uptime advances with virtual time (the shim's clock under QEMU): within 1% over ~9 s
  const tick = ticks(guestLog);
  t.is(tick.length, 10);
  const first = tick[0]!;
  const last = tick[tick.length - 1]!;
  const ratio = (last.guestS - first.guestS) / (last.virtualS - first.virtualS);
  t.log(`guest/virtual over ${(last.virtualS - first.virtualS).toFixed(3)} s: ${ratio.toFixed(5)}; guest sleep 1 lasted ${tick.slice(1).map((x, i) => (x.virtualS - tick[i]!.virtualS).toFixed(3)).join(' ')} s virtual`);
  t.true(Math.abs(ratio - 1) < 0.01, `ratio ${ratio}`);

  // the guest powered off: QEMU exited 0 and the run ended there
  t.deepEqual(result.live?.exitCodes.get('g'), [0]);
  t.false(result.stoppedEarly);
  t.true(result.reachedNs < 40e9, `${result.reachedNs}`);

  // nothing left: no QEMU, no namespace (with it the bridge and QEMU's tap), no cgroup of this run
  t.deepEqual(qemuProcesses(`/livestack-${process.pid}-`), []);
  t.deepEqual(ourNetns(process.pid), []);
});

qemuTest('two qemu guests ping each other through a switch (2 × 5 ms links: RTT 20 ms + both guests)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-qemu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pinger = prepareGuest({ initrdPath: join(dir, 'g1.gz'), program: 'until ping -c 1 -W 1 198.18.0.2 >/dev/null; do sleep 0.5; done\nping -c 6 -i 0.3 198.18.0.2\npoweroff -f' });
  const target = prepareGuest({ initrdPath: join(dir, 'g2.gz') });
  const plan = compile(`scenario "two" {
  duration 40s
  until g1 exits
  host g1 { kind vm  backend qemu  kernel "${pinger.kernel}"  initrd "${pinger.initrd}"  append "console=ttyS0 quiet" }
  host g2 { kind vm  backend qemu  kernel "${target.kernel}"  initrd "${target.initrd}"  append "console=ttyS0 quiet" }
  switch sw { latency 1us }
  link g1 -- sw { latency 5ms }
  link g2 -- sw { latency 5ms }
  metric rtt_ms from g1 match "time=([0-9.]+) ms"
}`);
  const result = await simulate(plan);
  const samples = collectMetrics(plan, hostLogs(result)).get('rtt_ms') ?? [];
  const rtts = samples.map((s) => s.value);
  t.log(`g1 -> g2 rtt ms (g1's clock): ${rtts.join(' ')}; virtual ${(result.reachedNs / 1e9).toFixed(3)} s`);
  t.is(rtts.length, 6);
  // 20 ms of links and 2 us of switch, plus two guests' turnaround under TCG (2.2-3 ms measured); the first
  // also pays for TCG translating both guests' cold paths
  const p50 = aggregate('p50', samples)!;
  t.true(p50 >= 20 && p50 <= 25, `p50 ${p50}`);
  t.true(Math.min(...rtts) >= 20, rtts.join(' '));
  t.deepEqual(result.live?.exitCodes.get('g1'), [0]);
  t.deepEqual(ourNetns(process.pid), []);
});

qemuTest('Ctrl-C during a run with a qemu guest leaves no QEMU, namespace, bridge, tap or cgroup behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-qemu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const guest = prepareGuest({ initrdPath: join(dir, 'initrd.cpio.gz') });
  const file = join(dir, 'busy.scn');
  writeFileSync(file, `scenario "busy" {
  duration 1000s
  host g { kind vm  backend qemu  kernel "${guest.kernel}"  initrd "${guest.initrd}" }
  host c { kind process  run "ping -i 0.2 g" }
  link c -- g { latency 1ms }
}
`);
  const out = join(dir, 'out');
  const child = execa('node', ['bin/livestack.js', 'run', file, '-o', out], { reject: false, env: { ...process.env, CI: 'true' } });
  const pid = child.pid!;
  // wait until QEMU runs, let the guest boot a little, then interrupt
  const marker = `/livestack-${pid}-`;
  for (let i = 0; i < 600 && qemuProcesses(marker).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const running = qemuProcesses(marker);
  t.is(running.length, 1, 'QEMU started');
  t.is(ourNetns(pid).length, 2);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 130, r.stderr);
  t.deepEqual(qemuProcesses(marker), []);
  t.false(running.some((p) => existsSync(`/proc/${p}`)));
  t.deepEqual(ourNetns(pid), []);
  for (const hierarchy of ['freezer', 'cpuset', 'memory', 'unified']) {
    const base = join('/sys/fs/cgroup', hierarchy, 'livestack');
    if (existsSync(base)) t.false(readdirSync(base).some((name) => name.startsWith(`${pid}-`)), hierarchy);
  }
  // the bridge and QEMU's tap live in the cell's namespace; none may surface in the machine's
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  t.false(/\bqtap0\b|\bbr0\b/.test(links), links);
});
