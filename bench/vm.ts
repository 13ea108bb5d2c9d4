// Speed of the micro-VMM (issue "VM cells", bench): each row is a figure with
// a baseline measured in the same run, and their ratio.
//
//   npx tsx bench/vm.ts           # full
//   npx tsx bench/vm.ts --smoke   # small counts; checks that every row runs
//
// rows:
//  - FFI call: a trivial C function called through koffi from JS, against the same call from a C loop
//  - exit round trip: KVM_RUN of a guest that only writes a port, against a getppid() system call
//  - quantum kick: how far a 100 us / 1 ms / 10 ms quantum overshoots (timer signal + immediate_exit),
//    against the same timer signal on a spinning host thread
//  - VM create: Vm.create + destroy (memory, vCPU, page tables, thread), against spawning /bin/true
//  - CPU-bound guest: wall/virtual of a spinning guest in 1 ms and 10 ms windows (goal <= 1.1 at 10 ms)
//  - idle guest: virtual/wall of a guest sleeping 20 s (goal >= 20x faster than real time)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compileText } from '../dsl/compile.ts';
import { benchExits, benchKicks, Vm, VmState, vmBench, vmExitCostNs } from '../ffi/vm.ts';
import { guestImage } from '../runtime/live/guest.ts';
import { simulate } from '../runtime/simulation.ts';

export interface VmBenchRow {
  name: string;
  figure: string;
  baseline: string;
  ratio: number;
  goal: string;
  pass: boolean;
}

const guests = fileURLToPath(new URL('../scenarios/vm/guests/', import.meta.url));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const us = (ns: number) => `${(ns / 1000).toFixed(1)} us`;

export async function runVmBench(smoke: boolean): Promise<VmBenchRow[]> {
  const rows: VmBenchRow[] = [];
  const calls = smoke ? 20_000 : 2_000_000;
  vmBench.koffiLoopNs(1000);
  const koffi = vmBench.koffiLoopNs(calls) / calls;
  const c = vmBench.cLoopNs(calls) / calls;
  rows.push({ name: 'FFI call (koffi vs C loop)', figure: `${koffi.toFixed(1)} ns`, baseline: `${c.toFixed(2)} ns`, ratio: koffi / c, goal: 'report', pass: true });

  const exitCount = smoke ? 50 : 2000;
  const exits = benchExits(exitCount).slice(Math.floor(exitCount / 10));
  const syscall = vmBench.syscallsNs(smoke ? 1000 : 100_000) / (smoke ? 1000 : 100_000);
  rows.push({
    name: 'exit round trip (PIO vs getppid)', figure: `p50 ${us(percentile(exits, 0.5))}, p99 ${us(percentile(exits, 0.99))}`,
    baseline: `${syscall.toFixed(0)} ns`, ratio: percentile(exits, 0.5) / syscall, goal: 'report', pass: true,
  });

  for (const quantumNs of [100_000, 1_000_000, 10_000_000]) {
    const count = smoke ? 5 : quantumNs >= 10_000_000 ? 100 : 500;
    const kicks = benchKicks(count, quantumNs);
    const timer = vmBench.timerOvershootNs(count, quantumNs);
    rows.push({
      name: `kick overshoot, ${quantumNs / 1000} us quantum`, figure: `p50 ${us(percentile(kicks, 0.5))}, p99 ${us(percentile(kicks, 0.99))}`,
      baseline: `p50 ${us(percentile(timer, 0.5))}`, ratio: percentile(kicks, 0.5) / Math.max(1, percentile(timer, 0.5)), goal: 'report', pass: true,
    });
  }

  const hello = guestImage('bench', `${guests}hello.c`);
  const config = { memoryBytes: 64 << 20, scale: 1, cores: [], hostIndex: 0, address: '198.18.0.1', prefixLength: 15, startNs: 0 };
  Vm.create(config, hello, '').destroy();
  const creates: number[] = [];
  for (let i = 0; i < (smoke ? 5 : 200); i++) {
    const started = process.hrtime.bigint();
    Vm.create(config, hello, '').destroy();
    creates.push(Number(process.hrtime.bigint() - started));
  }
  const spawns: number[] = [];
  for (let i = 0; i < (smoke ? 5 : 50); i++) {
    const started = process.hrtime.bigint();
    spawnSync('/bin/true');
    spawns.push(Number(process.hrtime.bigint() - started));
  }
  rows.push({
    name: 'VM create + destroy (64 MiB, vs spawning /bin/true)', figure: `p50 ${(percentile(creates, 0.5) / 1e6).toFixed(2)} ms`,
    baseline: `p50 ${(percentile(spawns, 0.5) / 1e6).toFixed(2)} ms`, ratio: percentile(creates, 0.5) / percentile(spawns, 0.5), goal: 'report', pass: true,
  });

  // a spinning guest in windows: wall per virtual second (steady state: a short and a long run differenced)
  const spin = guestImage('bench', `${guests}spin.c`);
  const spinRun = (rounds: number, windowNs: number) => {
    const vm = Vm.create({ ...config, cores: [1] }, spin, String(rounds));
    try {
      const started = process.hrtime.bigint();
      for (let at = 0; ; at += windowNs) {
        const r = vm.window(at, at + windowNs);
        if (r.state === VmState.Exited) return { wallNs: Number(process.hrtime.bigint() - started), virtualNs: r.clockNs };
      }
    } finally {
      vm.destroy();
    }
  };
  for (const windowNs of [1_000_000, 10_000_000]) {
    const short = spinRun(smoke ? 2_000_000 : 20_000_000, windowNs);
    const long = spinRun(smoke ? 6_000_000 : 200_000_000, windowNs);
    const ratio = (long.wallNs - short.wallNs) / Math.max(1, long.virtualNs - short.virtualNs);
    rows.push({
      name: `CPU-bound guest, ${windowNs / 1e6} ms windows`, figure: `wall/virtual ${ratio.toFixed(3)}`, baseline: `exit cost ${us(vmExitCostNs())}`,
      ratio, goal: windowNs >= 10_000_000 ? '<= 1.1' : 'report', pass: smoke || windowNs < 10_000_000 || ratio <= 1.1,
    });
  }

  const sleepS = smoke ? 2 : 20;
  const sleepPlan = compileText('bench.scn', `scenario "idle" {
  duration ${sleepS + 1}s
  until exit
  host g { kind vm  image "${guests}sleep.c"  run "${sleepS * 1e9}" }
}`);
  if (!sleepPlan.ok) throw new Error(sleepPlan.diagnostics.map((d) => d.message).join('\n'));
  const started = performance.now();
  const result = await simulate(sleepPlan.plans[0]!);
  const wallS = (performance.now() - started) / 1000;
  const speedup = result.reachedNs / 1e9 / wallS;
  rows.push({ name: `idle guest (sleeps ${sleepS} s)`, figure: `${(result.reachedNs / 1e9).toFixed(3)} s virtual in ${wallS.toFixed(3)} s`, baseline: 'real time', ratio: speedup, goal: '>= 20x', pass: speedup >= 20 });
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runVmBench(process.argv.includes('--smoke'));
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'row'.padEnd(width)}  figure | baseline | ratio | goal`);
  for (const r of rows) console.log(`${r.name.padEnd(width)}  ${r.figure} | ${r.baseline} | ${r.ratio.toFixed(2)} | ${r.goal}${r.pass ? '' : '  NOT MET'}`);
}
