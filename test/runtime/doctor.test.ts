import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { CAPABILITY_KEYS, formatDoctor, runDoctor } from '../../runtime/doctor.ts';
import type { DoctorReport } from '../../runtime/doctor.ts';

const absentResctrl = '/nonexistent/livestack/resctrl';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-doctor-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the report has every capability, consistent counts, and survives JSON', (t) => {
  const report = runDoctor({ resctrlRoot: absentResctrl });
  t.deepEqual(Object.keys(report.capabilities), [...CAPABILITY_KEYS]);
  for (const key of CAPABILITY_KEYS) {
    const capability = report.capabilities[key];
    t.is(capability.key, key);
    t.true(['ok', 'partial', 'missing'].includes(capability.status), key);
    t.true(capability.detail.length > 0, key);
    t.is(capability.hint === null, capability.status === 'ok', `${key}: a hint exactly when not ok`);
  }
  const { ok, partial, missing } = report.counts;
  t.is(ok + partial + missing, CAPABILITY_KEYS.length);
  t.true(report.summary.startsWith(`${ok} ok, ${partial} partial, ${missing} missing`));
  const parsed = JSON.parse(JSON.stringify(report)) as DoctorReport;
  t.deepEqual(parsed.capabilities, report.capabilities);
  t.is(parsed.probes.resctrl?.present, false);
});

test('this machine (root, cgroups, tap, netns): the essentials are there', (t) => {
  const report = runDoctor();
  t.is(report.capabilities.library.status, 'ok');
  t.is(report.capabilities.freezer.status, 'ok');
  t.is(report.capabilities.netns.status, 'ok');
  t.is(report.capabilities.tap.status, 'ok');
  t.true(report.ok, report.summary);
  t.regex(report.summary, /process cells can run/);
});

test('KVM is reported to match /dev/kvm, with the kvm module hint when missing', (t) => {
  const report = runDoctor({ resctrlRoot: absentResctrl });
  const kvm = report.capabilities.kvm;
  if (report.probes.kvm?.canCreateVm) {
    t.is(kvm.status, 'ok');
    t.regex(kvm.detail, /API 12, VM \+ vCPU created in [\d.]+ ms/);
  } else {
    t.not(kvm.status, 'ok');
    t.regex(kvm.hint ?? '', /load kvm_intel\/kvm_amd/);
    t.is(report.capabilities.guestKernel.status, 'missing');
    t.regex(report.capabilities.guestKernel.hint ?? '', /backend qemu/);
  }
});

test('formatDoctor: one line per capability, resctrl missing with its hint', (t) => {
  const text = formatDoctor(runDoctor({ resctrlRoot: absentResctrl }));
  const lines = text.trimEnd().split('\n');
  t.is(lines.length, 1 + CAPABILITY_KEYS.length);
  const resctrlLine = lines.find((line) => /^\s+\S+\s+resctrl\s/.test(line)) ?? '';
  t.regex(resctrlLine, /^\s+missing\s+resctrl\s+\/nonexistent\/livestack\/resctrl does not exist/);
  t.true(resctrlLine.includes('cache_ways/mem_bandwidth will be ignored: the CPU/kernel has no resctrl'));
  t.true(resctrlLine.includes(`mount -t resctrl resctrl ${absentResctrl}`));
});

test('a fake resctrl tree with L3 and MB is reported ok', (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'info/L3'), { recursive: true });
  mkdirSync(join(root, 'info/MB'), { recursive: true });
  writeFileSync(join(root, 'schemata'), 'L3:0=ff\n');
  writeFileSync(join(root, 'info/L3/cbm_mask'), 'ff\n');
  writeFileSync(join(root, 'info/L3/num_closids'), '16\n');
  writeFileSync(join(root, 'info/MB/bandwidth_gran'), '10\n');
  writeFileSync(join(root, 'info/MB/min_bandwidth'), '10\n');
  writeFileSync(join(root, 'info/MB/num_closids'), '8\n');
  const resctrl = runDoctor({ resctrlRoot: root }).capabilities.resctrl;
  t.is(resctrl.status, 'ok');
  t.regex(resctrl.detail, /L3 8 ways \(cbm_mask ff\), 16 CLOSIDs; MB granularity 10%/);
});

test('a fake cgroup tree without a freezer makes the report not ok', (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'cpu'));
  writeFileSync(join(root, 'cpu/cgroup.procs'), '');
  const report = runDoctor({ cgroupRoot: root, resctrlRoot: absentResctrl });
  t.is(report.capabilities.freezer.status, 'missing');
  t.is(report.capabilities.cgroupV1.status, 'partial');
  t.is(report.capabilities.cgroupV2.status, 'missing');
  t.false(report.ok);
  t.regex(report.summary, /cannot run \(missing: freezer\)/);
});

test('without the library the doctor still reports, from plain file checks', (t) => {
  const repository = fileURLToPath(new URL('../..', import.meta.url));
  const script =
    "import { runDoctor } from './runtime/doctor.ts'; process.stdout.write(JSON.stringify(runDoctor()))";
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repository,
    encoding: 'utf8',
    env: { ...process.env, LIVESTACK_LIB: '/nonexistent/liblivestack.so' },
    timeout: 60_000,
  });
  t.is(child.status, 0, child.stderr);
  const report = JSON.parse(child.stdout) as DoctorReport;
  t.is(report.capabilities.library.status, 'missing');
  t.is(report.capabilities.library.detail, '/nonexistent/liblivestack.so is missing');
  t.regex(report.capabilities.library.hint ?? '', /run npm install/);
  t.false(report.ok);
  t.deepEqual(report.probes, { kvm: null, cgroups: null, resctrl: null, tap: null });
  // File checks still see this machine's tun device and cgroup freezer.
  t.is(report.capabilities.tap.status, 'partial');
  t.is(report.capabilities.freezer.status, 'partial');
  t.is(report.capabilities.cpus.status, 'ok');
});

test('QEMU for backend qemu vm hosts: ok with its version and TCG where installed, else missing with the package', (t) => {
  const qemu = runDoctor({ resctrlRoot: absentResctrl }).capabilities.qemu;
  if (qemu.status === 'ok') {
    t.regex(qemu.detail, /^QEMU \S+ at \S+qemu-system-x86_64 \(TCG\): backend qemu vm hosts can run; /);
  } else {
    if (process.env['LIVESTACK_REQUIRE_LIVE'] === '1') t.fail(`CI installs qemu-system-x86: ${qemu.detail}`);
    t.regex(qemu.hint ?? '', /apt-get install -y qemu-system-x86/);
  }
});
