// The LD_PRELOAD time shim (ffi/c/shim/) against the controller
// (ffi/c/clock.c through ffi/clock.ts): real programs (test/ffi/shim/*.c,
// compiled here), the real shim, a real clock page. Serial: several tests
// measure wall time on a 2-core machine.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { CLOCK_ENV, ClockError, ClockPage, shimPath } from '../../ffi/clock.ts';

const SEC = 1e9;
const MS = 1e6;
const BOOT_NS = 1000 * SEC;
const EPOCH_NS = 1_700_000_000n * 1_000_000_000n;
const sourceDir = fileURLToPath(new URL('./shim/', import.meta.url));
const PROGRAMS = ['clocks', 'wait', 'bench', 'stamp'] as const;
type Program = (typeof PROGRAMS)[number];

let binDir = '';
const bin = (program: Program): string => join(binDir, program);

test.before(() => {
  binDir = mkdtempSync(join(tmpdir(), 'livestack-shim-test-'));
  for (const program of PROGRAMS) {
    const source = join(sourceDir, `${program}.c`);
    if (!existsSync(source)) continue;
    const result = spawnSync('cc', ['-Wall', '-Wextra', '-Werror', '-O2', '-o', bin(program), source], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`cc ${source} failed:\n${result.stderr}`);
  }
  if (!existsSync(shimPath())) throw new Error(`${shimPath()} is missing: run node ffi/build.mjs`);
});

test.after.always(() => {
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

const pageDir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
let pageCount = 0;

/** A fresh page (frozen at virtual 0), closed and removed after the test. */
function makePage(t: ExecutionContext): ClockPage {
  const path = join(pageDir, `livestack-test-${process.pid}-${++pageCount}.clock`);
  const page = ClockPage.create(path, { realtimeEpochNs: EPOCH_NS, bootOffsetNs: BOOT_NS });
  t.teardown(() => {
    page.close();
    rmSync(path, { force: true });
  });
  return page;
}

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  /** The next stdout line (rejects if the program ends first). */
  line(): Promise<string>;
  /** Whether it still runs (has not exited). */
  alive(): boolean;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

function start(t: ExecutionContext, program: Program, args: string[], env: Record<string, string>): Running {
  const child = spawn(bin(program), args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let exitedFlag = false;
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitedFlag = true;
      resolve(code);
    }),
  );
  const lines: string[] = [];
  const waiters: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  let ended = false;
  createInterface({ input: child.stdout })
    .on('line', (line) => {
      const waiter = waiters.shift();
      if (waiter) waiter.resolve(line);
      else lines.push(line);
    })
    .on('close', () => {
      ended = true;
      for (const waiter of waiters.splice(0)) waiter.reject(new Error(`${program} ${args.join(' ')} ended; stderr: ${stderr}`));
    });
  t.teardown(() => {
    if (!exitedFlag) child.kill('SIGKILL');
  });
  return {
    child,
    line: () =>
      new Promise<string>((resolve, reject) => {
        const line = lines.shift();
        if (line !== undefined) resolve(line);
        else if (ended) reject(new Error(`${program} ended; stderr: ${stderr}`));
        else waiters.push({ resolve, reject });
      }),
    alive: () => !exitedFlag,
    exited,
    stderr: () => stderr,
  };
}

/** Runs a program to its end and returns "name value" lines as a map. */
async function runToEnd(t: ExecutionContext, program: Program, args: string[], env: Record<string, string>): Promise<Map<string, string>> {
  const running = start(t, program, args, env);
  const values = new Map<string, string>();
  for (;;) {
    let line: string;
    try {
      line = await running.line();
    } catch {
      break;
    }
    const space = line.indexOf(' ');
    values.set(line.slice(0, space), line.slice(space + 1));
  }
  t.is(await running.exited, 0, running.stderr());
  return values;
}

const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const realNowNs = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, like the programs' raw reads

/** "start V R" / "end V R RESULT ERRNO EXTRA..." of test/ffi/shim/wait.c. */
interface WaitEnd {
  virtualNs: number;
  realNs: bigint;
  result: number;
  errno: number;
  extra: string;
}
const parseStart = (line: string) => {
  const [word, virtualNs, realNs] = line.split(' ');
  if (word !== 'start') throw new Error(`expected start, got ${line}`);
  return { virtualNs: Number(virtualNs), realNs: BigInt(realNs!) };
};
const parseEnd = (line: string): WaitEnd => {
  const [word, virtualNs, realNs, result, errno, ...extra] = line.split(' ');
  if (word !== 'end') throw new Error(`expected end, got ${line}`);
  return { virtualNs: Number(virtualNs), realNs: BigInt(realNs!), result: Number(result), errno: Number(errno), extra: extra.join(' ') };
};

/** Polls the page until n waits are published (the program is blocked). */
async function waitersPublished(page: ClockPage, n = 1, timeoutMs = 5000) {
  const startMs = Date.now();
  for (;;) {
    const wait = page.earliestWait();
    if (wait.waiters >= n) return wait;
    if (Date.now() - startMs > timeoutMs) throw new Error(`no ${n} published waits after ${timeoutMs} ms: ${JSON.stringify(wait)}`);
    await sleepMs(2);
  }
}

// ---- clock reads -----------------------------------------------------------

test.serial('frozen page: every virtualised clock reads its offset + virtual time exactly', async (t) => {
  const page = makePage(t);
  page.freeze(5 * SEC);
  const values = await runToEnd(t, 'clocks', [], page.environment());
  const realtimeNs = EPOCH_NS + 5_000_000_000n;
  for (const name of ['REALTIME', 'REALTIME_COARSE', 'timespec_get']) t.is(values.get(name), String(realtimeNs), name);
  for (const name of ['MONOTONIC', 'MONOTONIC_COARSE', 'MONOTONIC_RAW', 'BOOTTIME']) t.is(values.get(name), String(BOOT_NS + 5 * SEC), name);
  t.is(values.get('gettimeofday_us'), String(realtimeNs / 1000n));
  t.is(values.get('time_s'), String(realtimeNs / 1_000_000_000n));
  t.is(values.get('ftime_ms'), String(realtimeNs / 1_000_000n));
  // CPU time stays real: small and not on the virtual scale.
  t.true(Number(values.get('PROCESS_CPUTIME')) < 1 * SEC);
  t.not(values.get('real_MONOTONIC'), String(BOOT_NS + 5 * SEC));
});

test.serial('without LIVESTACK_CLOCK the shim passes through: the real clock', async (t) => {
  const values = await runToEnd(t, 'clocks', [], { LD_PRELOAD: shimPath(), [CLOCK_ENV]: '' });
  const monotonicNs = Number(values.get('MONOTONIC'));
  const realMonotonicNs = Number(values.get('real_MONOTONIC'));
  t.true(monotonicNs <= realMonotonicNs && realMonotonicNs - monotonicNs < 100 * MS, `${monotonicNs} vs ${realMonotonicNs}`);
  const realtimeMs = Number(values.get('REALTIME')) / MS;
  t.true(Math.abs(realtimeMs - Date.now()) < 5000);
});

test.serial('an invalid page: one line on stderr, then the real clock', async (t) => {
  const path = join(pageDir, `livestack-test-${process.pid}-garbage.clock`);
  writeFileSync(path, Buffer.alloc(4096, 7));
  t.teardown(() => rmSync(path, { force: true }));
  const running = start(t, 'clocks', [], { LD_PRELOAD: shimPath(), [CLOCK_ENV]: path });
  t.is(await running.exited, 0);
  t.regex(running.stderr(), /livestack-shim: LIVESTACK_CLOCK=.*not a clock page.*the clock stays real/);
});

test.serial('running: virtual time follows real time at scale 1, twice as fast at scale 2 (±5%)', async (t) => {
  const page = makePage(t);
  for (const scale of [1, 2]) {
    page.run(-1, scale);
    const running = start(t, 'wait', ['realsleep', String(300 * MS)], page.environment());
    const begin = parseStart(await running.line());
    const end = parseEnd(await running.line());
    const ratio = (end.virtualNs - begin.virtualNs) / Number(end.realNs - begin.realNs);
    t.log(`scale ${scale}: virtual/real ${ratio.toFixed(4)}`);
    t.true(Math.abs(ratio - scale) < 0.05 * scale, `ratio ${ratio} at scale ${scale}`);
  }
  // The controller reads the same clock as the programs.
  const before = page.now();
  await sleepMs(50);
  t.true(page.now() - before >= 2 * 45 * MS);
});

test.serial('controller: freeze never goes backwards, run and set refuse the past', (t) => {
  const page = makePage(t);
  page.set(10 * SEC);
  t.is(page.now(), 10 * SEC);
  page.freeze(3 * SEC); // already past: stays at 10 s
  t.is(page.now(), 10 * SEC);
  t.throws(() => page.set(9 * SEC), { instanceOf: ClockError, message: /EINVAL/ });
  t.throws(() => page.run(9 * SEC), { instanceOf: ClockError, message: /EINVAL/ });
  t.throws(() => page.run(-1, 0), { instanceOf: RangeError });
  const state = page.state();
  t.like(state, { running: false, baseVirtualNs: 10 * SEC, scale: 1, realtimeEpochNs: EPOCH_NS, bootOffsetNs: BOOT_NS });
  page.run(20 * SEC, 0.5);
  t.like(page.state(), { running: true, scale: 0.5 });
  t.true(page.state().generation > state.generation);
});

test.serial('a held clock stops at its limit, a program reads the held time, and the held time does not count when it moves on', async (t) => {
  const page = makePage(t);
  page.run(1 * SEC);
  const hold = 1 * SEC + 20 * MS;
  t.false(page.limit(hold)); // not reached yet
  t.is(page.state().limitNs, hold);
  await sleepMs(60);
  t.is(page.now(), hold);
  // the shim applies the limit too: a program sleeping 30 ms of real time reads the held time throughout
  const running = start(t, 'wait', ['realsleep', String(30 * MS)], page.environment());
  const begin = parseStart(await running.line());
  const end = parseEnd(await running.line());
  t.is(begin.virtualNs, BOOT_NS + hold); // CLOCK_MONOTONIC: the boot offset + virtual time
  t.is(end.virtualNs, BOOT_NS + hold);
  // moving the limit on: it had been held, and runs on from the hold, not from the ~100 ms that passed
  t.true(page.limit(5 * SEC));
  const after = page.now();
  t.true(after >= hold && after < hold + 30 * MS, `${after - hold} ns after the hold`);
  await sleepMs(50);
  t.true(page.now() - after >= 45 * MS, 'it runs again');
  // a limit in the past is raised to now: the clock never goes back
  const now = page.now();
  t.false(page.limit(0));
  t.true(page.state().limitNs >= now);
  await sleepMs(20);
  t.is(page.now(), page.state().limitNs);
  // run clears the limit
  page.run();
  t.is(page.state().limitNs, Infinity);
});

// ---- timed waits -----------------------------------------------------------

const WAITS = [
  'nanosleep',
  'clock_nanosleep',
  'clock_nanosleep_abs',
  'clock_nanosleep_realtime_abs',
  'sleep',
  'usleep',
  'poll0',
  'poll',
  'ppoll',
  'select',
  'select0',
  'pselect',
  'epoll_wait',
  'epoll_pwait',
  'epoll_pwait2',
  'cond_timedwait',
  'cond_timedwait_mono',
  'cond_clockwait_mono',
  'cond_clockwait_realtime',
  'sem_timedwait',
  'sem_clockwait_mono',
] as const;

for (const kind of WAITS) {
  test.serial(`${kind}(5 s) on a frozen page: blocked until the idle jump to its published deadline`, async (t) => {
    const page = makePage(t);
    page.freeze(7 * SEC + 123_456);
    const running = start(t, 'wait', [kind, String(5 * SEC)], page.environment());
    const begin = parseStart(await running.line());
    const wait = await waitersPublished(page);
    const startVirtualNs = begin.virtualNs - BOOT_NS;
    t.is(wait.waiters, 1);
    t.is(wait.deadlineNs, startVirtualNs + 5 * SEC, 'the published deadline is start + 5 s');
    t.true(page.waits()[0]!.pid === running.child.pid);

    await sleepMs(300);
    t.true(running.alive(), 'still blocked after 300 ms of wall time while frozen');
    page.set(wait.deadlineNs! - 1000); // 1 µs short of the deadline
    await sleepMs(50);
    t.true(running.alive(), 'still blocked 1 µs before its deadline');

    const jumpNs = realNowNs();
    page.set(wait.deadlineNs!);
    const end = parseEnd(await running.line());
    t.is(end.result, 0);
    t.is(end.virtualNs - begin.virtualNs, 5 * SEC, 'exactly 5 s of virtual time');
    t.true(end.realNs - begin.realNs < 3_000_000_000n, 'in far less than 5 s of wall time');
    t.log(`${kind}: returned ${Number(end.realNs - jumpNs) / 1000} µs after the jump`);
    t.is(page.earliestWait().waiters, 0, 'the slot is free again');
    if (kind.startsWith('cond_')) t.is(end.extra, 'locked=1', 'the mutex is held again, as the real call leaves it');
  });
}

test.serial('a condition wait sees a predicate made true under its mutex without a signal (a signal between two slices finds no waiter)', async (t) => {
  t.timeout(20_000); // the bug this catches blocks the wait until a jump that never comes
  const page = makePage(t);
  page.freeze(3 * SEC);
  const running = start(t, 'wait', ['cond_predicate', String(5 * SEC)], page.environment());
  const begin = parseStart(await running.line());
  const end = parseEnd(await running.line());
  t.is(end.result, 0, 'not ETIMEDOUT: the clock is frozen, its deadline never came');
  t.is(end.extra, 'predicate=1');
  t.is(end.virtualNs, begin.virtualNs, 'no virtual time passed');
  t.true(end.realNs - begin.realNs < 1_000_000_000n, `returned ${Number(end.realNs - begin.realNs) / 1e6} ms after it began (the setter waits 100 ms)`);
});

test.serial('running at scale 2: nanosleep(400 ms) lasts ~200 ms of wall time and >= 400 ms virtual', async (t) => {
  const page = makePage(t);
  page.run(0, 2);
  const running = start(t, 'wait', ['nanosleep', String(400 * MS)], page.environment());
  const begin = parseStart(await running.line());
  const end = parseEnd(await running.line());
  const virtualNs = end.virtualNs - begin.virtualNs;
  const wallNs = Number(end.realNs - begin.realNs);
  t.log(`virtual ${virtualNs / MS} ms, wall ${wallNs / MS} ms`);
  t.true(virtualNs >= 400 * MS && virtualNs < 410 * MS);
  t.true(wallNs >= 199 * MS && wallNs < 260 * MS);
});

test.serial('a poll-family wait returns early, with the fd ready, when the fd becomes readable', async (t) => {
  for (const kind of ['poll_stdin', 'select_stdin', 'epoll_wait_stdin']) {
    const page = makePage(t);
    page.freeze(1 * SEC);
    const running = start(t, 'wait', [kind, String(5 * SEC)], page.environment());
    const begin = parseStart(await running.line());
    await waitersPublished(page);
    running.child.stdin.write('x');
    const end = parseEnd(await running.line());
    t.is(end.result, 1, kind);
    t.is(end.virtualNs, begin.virtualNs, `${kind}: no virtual time passed (frozen)`);
    if (kind === 'poll_stdin') t.is(end.extra, 'revents=1');
    if (kind === 'select_stdin') t.is(end.extra, 'isset=1 left_us=5000000');
    if (kind === 'epoll_wait_stdin') t.is(end.extra, 'fd=0 events=1');
  }
});

test.serial('a signal handler still interrupts a virtual sleep (EINTR), a frozen clock does not end it', async (t) => {
  const page = makePage(t);
  page.freeze(0);
  const running = start(t, 'wait', ['nanosleep', String(5 * SEC)], page.environment());
  await running.line();
  await waitersPublished(page);
  running.child.kill('SIGALRM'); // wait.c installs a SIGALRM handler
  const end = parseEnd(await running.line());
  t.is(end.result, -1);
  t.is(end.errno, 4 /* EINTR */);
});

test.serial('stop and continue (as a freezer does) make epoll_wait fail with EINTR; under the shim it waits on', async (t) => {
  // Baseline without the shim: the kernel does not restart epoll_wait.
  const bare = start(t, 'wait', ['epoll_wait', String(5 * SEC)], {});
  await bare.line();
  await sleepMs(100);
  bare.child.kill('SIGSTOP');
  await sleepMs(50);
  bare.child.kill('SIGCONT');
  const bareEnd = parseEnd(await bare.line());
  t.is(bareEnd.errno, 4, 'without the shim: EINTR');

  const page = makePage(t);
  page.freeze(0);
  const running = start(t, 'wait', ['epoll_wait', String(5 * SEC)], page.environment());
  await running.line();
  const wait = await waitersPublished(page);
  running.child.kill('SIGSTOP');
  await sleepMs(50);
  running.child.kill('SIGCONT');
  await sleepMs(100);
  t.true(running.alive(), 'no EINTR under the shim');
  page.set(wait.deadlineNs!);
  const end = parseEnd(await running.line());
  t.is(end.result, 0);
});

// ---- unmodified programs of the machine -----------------------------------

// Debian's python3, not pyenv's (a bash wrapper that forks).
const PYTHON = '/usr/bin/python3';

test.serial('date(1) prints the virtual time', async (t) => {
  const page = makePage(t);
  page.freeze(5 * SEC);
  const result = spawnSync('date', ['-u', '+%s.%N'], { env: { ...process.env, ...page.environment() }, encoding: 'utf8' });
  t.is(result.stdout.trim(), '1700000005.000000000');
});

(existsSync(PYTHON) ? test.serial : test.skip)('python3 time.sleep(5) on a frozen page: 5 s virtual after an idle jump, in a fraction of the wall time', async (t) => {
  const page = makePage(t);
  page.freeze(0);
  const script = 'import time; t = time.monotonic(); time.sleep(5); print(repr(time.monotonic() - t), repr(time.time()))';
  const child = spawn(PYTHON, ['-c', script], { env: { ...process.env, ...page.environment() } });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (data: Buffer) => (output += data.toString()));
  const wallStartMs = Date.now();
  const wait = await waitersPublished(page);
  page.set(wait.deadlineNs!);
  await new Promise((resolve) => child.on('exit', resolve));
  const [elapsed, now] = output.trim().split(' ');
  t.is(Number(elapsed), 5);
  t.is(Number(now), 1_700_000_005);
  t.true(Date.now() - wallStartMs < 3000);
});

// ---- emulated timers ------------------------------------------------------

const TIMERS = [
  { kind: 'timerfd', result: 8, extra: /^expirations=1 armed_ns=5000000000$/ },
  { kind: 'timerfd_abs', result: 8, extra: /^expirations=1$/ },
  { kind: 'alarm', result: -1, extra: /^alarms=1$/ },
  { kind: 'setitimer', result: -1, extra: /^alarms=1 armed_us=5000000$/ },
] as const;

for (const { kind, result, extra } of TIMERS) {
  test.serial(`${kind}(5 s) on a frozen page: fires only at the jump to its published deadline`, async (t) => {
    const page = makePage(t);
    page.freeze(3 * SEC);
    const running = start(t, 'wait', [kind, String(5 * SEC)], page.environment());
    const begin = parseStart(await running.line());
    // The timer thread publishes the timer's deadline (the program's own
    // thread blocks in read() or pause(), which the shim does not see).
    const startVirtualNs = begin.virtualNs - BOOT_NS;
    let wait = await waitersPublished(page);
    for (let i = 0; i < 100 && wait.deadlineNs === null; i++) {
      await sleepMs(2);
      wait = page.earliestWait();
    }
    t.is(wait.deadlineNs, startVirtualNs + 5 * SEC);
    t.is(page.waits().find((entry) => entry.kind === 'timer')?.pid, running.child.pid);
    await sleepMs(300);
    t.true(running.alive(), 'not fired after 300 ms of wall time while frozen');
    page.set(wait.deadlineNs! - 1000);
    await sleepMs(50);
    t.true(running.alive(), 'not fired 1 µs before its deadline');
    page.set(wait.deadlineNs!);
    const end = parseEnd(await running.line());
    t.is(end.result, result);
    t.regex(end.extra, extra);
    t.is(end.virtualNs - begin.virtualNs, 5 * SEC);
  });
}

test.serial('an interval timerfd read through epoll, running at scale 2: 4 expirations in ~1/2 the virtual time', async (t) => {
  const page = makePage(t);
  page.run(0, 2);
  const running = start(t, 'wait', ['timerfd_interval', String(400 * MS)], page.environment());
  const begin = parseStart(await running.line());
  const end = parseEnd(await running.line());
  t.is(end.result, 4);
  const virtualNs = end.virtualNs - begin.virtualNs;
  const wallNs = Number(end.realNs - begin.realNs);
  t.log(`virtual ${virtualNs / MS} ms, wall ${wallNs / MS} ms`);
  t.true(virtualNs >= 400 * MS && virtualNs < 420 * MS);
  t.true(wallNs >= 199 * MS && wallNs < 260 * MS);
});

test.serial('wait slots: freed at exit (timer thread included); the slot of a killed sleeper is reaped', async (t) => {
  const page = makePage(t);
  page.freeze(0);
  const timer = start(t, 'wait', ['timerfd', String(1 * SEC)], page.environment());
  await timer.line();
  const wait = await waitersPublished(page);
  page.set(wait.deadlineNs!);
  t.is(await timer.exited, 0);
  t.deepEqual(page.waits(), [], 'no slot left behind by a process that exited');

  const sleeper = start(t, 'wait', ['nanosleep', String(5 * SEC)], page.environment());
  await sleeper.line();
  await waitersPublished(page);
  sleeper.child.kill('SIGKILL');
  await sleeper.exited;
  t.is(page.earliestWait().waiters, 1, 'SIGKILL leaves the slot');
  t.is(page.reap(), 1);
  t.is(page.earliestWait().waiters, 0);
});

// ---- receive timestamps ----------------------------------------------------

const STAMP_MODES = ['timestamp', 'timestampns', 'timestamping', 'ioctl', 'ioctlns'] as const;
const stampOf = (values: Map<string, string>, mode: (typeof STAMP_MODES)[number]) =>
  BigInt(values.get(mode.startsWith('ioctl') ? 'ioctl' : 'cmsg')!);

test.serial('receive timestamps (SO_TIMESTAMP[NS], SO_TIMESTAMPING, SIOCGSTAMP[NS]) are on the virtual clock', async (t) => {
  const page = makePage(t);
  page.freeze(5 * SEC);
  for (const mode of STAMP_MODES) {
    const values = await runToEnd(t, 'stamp', [mode], page.environment());
    t.is(stampOf(values, mode), EPOCH_NS + 5_000_000_000n, `${mode}: frozen, so stamped at the frozen instant`);
    t.is(values.get('now'), String(EPOCH_NS + 5_000_000_000n));
  }
  page.run(100 * SEC, 1);
  for (const mode of STAMP_MODES) {
    const values = await runToEnd(t, 'stamp', [mode], page.environment());
    const stampNs = stampOf(values, mode);
    const nowNs = BigInt(values.get('now')!);
    const resolutionNs = mode === 'timestamp' || mode === 'ioctl' ? 1000n : 0n;
    t.true(stampNs <= nowNs && nowNs - stampNs < 5_000_000n + resolutionNs, `${mode}: stamp ${stampNs} now ${nowNs}`);
    t.true(stampNs >= EPOCH_NS + 100_000_000_000n);
  }
  // Without the page: host time.
  const values = await runToEnd(t, 'stamp', ['timestampns'], { LD_PRELOAD: shimPath() });
  t.true(Math.abs(Number(BigInt(values.get('cmsg')!) / 1_000_000n) - Date.now()) < 5000);
});

test.serial('a packet that arrived while the cell was frozen is stamped at the instant the clock stood at, not when the cell ran again', async (t) => {
  const page = makePage(t);
  page.freeze(5 * SEC);
  const running = start(t, 'stamp', ['timestampns', 'wait'], page.environment());
  t.is(await running.line(), 'sent 1');
  await sleepMs(20); // the datagram sits in the socket while the clock is frozen
  page.run(6 * SEC, 1);
  running.child.stdin.write('go\n');
  const cmsg = await running.line();
  t.is(cmsg, `cmsg ${EPOCH_NS + 5_000_000_000n}`);
  t.is(await running.exited, 0);
});

test.serial('a packet that arrived while the cell ran, read after a freeze and a later run, keeps its arrival time (the clock history)', async (t) => {
  // ping under CPU hogs read 29-59 ms over a 20 ms round trip: its reply was stamped with the run it
  // was read in, not the one it arrived in (ls_clock__map_past)
  const page = makePage(t);
  page.run(5 * SEC, 1);
  const running = start(t, 'stamp', ['timestampns', 'wait'], page.environment());
  t.is(await running.line(), 'sent 1'); // received at ~5 s + the time since the run began
  const before = page.now();
  page.freeze(before);
  await sleepMs(20);
  for (let i = 0; i < 3; i++) {
    page.run(9 * SEC + i * SEC, 1); // later runs, each frozen again: the history has room for them
    page.freeze(page.now());
  }
  page.run(20 * SEC, 1);
  running.child.stdin.write('go\n');
  const stamp = BigInt((await running.line()).split(' ')[1]!) - EPOCH_NS;
  t.true(stamp >= 5_000_000_000n && stamp <= BigInt(before), `stamp ${stamp} ns, frozen at ${before}`);
  t.is(await running.exited, 0);
});

test.serial('pthread_cancel() ends a virtual nanosleep or poll (cancellation points) and frees its slot', async (t) => {
  for (const kind of ['cancel_nanosleep', 'cancel_poll']) {
    const page = makePage(t);
    page.freeze(0);
    const running = start(t, 'wait', [kind, String(5 * SEC)], page.environment());
    await running.line();
    const end = parseEnd(await running.line());
    t.is(end.result, 1, `${kind}: the thread was cancelled`);
    t.is(await running.exited, 0);
    t.is(page.earliestWait().waiters, 0, `${kind}: no slot left`);
  }
});

// ---- measurements ----------------------------------------------------------

test.serial('measure: wake latency from ls_clock__set to the sleeper running again', async (t) => {
  const latenciesUs: number[] = [];
  for (const kind of ['nanosleep', 'poll'] as const) {
    for (let i = 0; i < 10; i++) {
      const page = makePage(t);
      page.freeze(0);
      const running = start(t, 'wait', [kind, String(1 * SEC)], page.environment());
      await running.line();
      const wait = await waitersPublished(page);
      await sleepMs(5);
      const jumpNs = realNowNs();
      page.set(wait.deadlineNs!);
      const end = parseEnd(await running.line());
      latenciesUs.push(Number(end.realNs - jumpNs) / 1000);
      await running.exited;
    }
    const sorted = latenciesUs.splice(0).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    t.log(`${kind}: wake latency median ${median.toFixed(0)} µs, min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)} µs`);
    t.true(median < 20_000, `${kind} median ${median} µs`);
  }
});

test.serial('measure: clock_gettime cost with and without the shim', async (t) => {
  const page = makePage(t);
  const calls = String(1_000_000);
  const native = await runToEnd(t, 'bench', [calls], {});
  page.run(0, 1);
  const running = await runToEnd(t, 'bench', [calls], page.environment());
  page.freeze();
  const frozen = await runToEnd(t, 'bench', [calls], page.environment());
  const ns = (values: Map<string, string>, name: string) => Number(values.get(name));
  t.log(
    `ns/call clock_gettime: native ${ns(native, 'clock_gettime')}, shim running ${ns(running, 'clock_gettime')}, shim frozen ${ns(frozen, 'clock_gettime')}; ` +
      `gettimeofday: native ${ns(native, 'gettimeofday')}, shim running ${ns(running, 'gettimeofday')}`,
  );
  t.true(ns(running, 'clock_gettime') < 4 * ns(native, 'clock_gettime') + 50);
});
