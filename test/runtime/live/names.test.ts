// Names of leftovers (runtime/live/names.ts), /etc/hosts text and output
// line splitting (runtime/live/cell.ts): no machine access.
import test from 'ava';
import { LineSplitter, MAX_LINE_CHARS, hostsFileText } from '../../../runtime/live/cell.ts';
import { assertSafeHostName, cgroupCellPath, netnsName, newRunId, nextTapName, resctrlGroupName, runIdPid, runTempDirName, stalePid } from '../../../runtime/live/names.ts';

test('every name carries the pid and is recognised by the stale cleanup', (t) => {
  const runId = newRunId(4194304);
  t.regex(runId, /^4194304-[0-9a-f]{6}$/);
  t.is(runIdPid(runId), 4194304);
  t.is(stalePid.netns(netnsName(runId, 'web-1')), 4194304);
  t.is(stalePid.cgroupRun(cgroupCellPath(runId, 'web-1').split('/')[1]!), 4194304);
  t.is(stalePid.tempDir(runTempDirName(runId)), 4194304);
  t.is(stalePid.resctrl(resctrlGroupName(runId, 'web-1')), 4194304);
  const tap = nextTapName(4194304);
  t.true(tap.length <= 15, tap);
  t.is(stalePid.tap(tap), 4194304);
  for (const foreign of ['ls-test.clock', 'livestack-probe-12', 'lsprobe0', 'eth0', 'ls-x-y', 'livestack-12']) {
    t.is(stalePid.netns(foreign) ?? stalePid.tempDir(foreign) ?? stalePid.tap(foreign) ?? stalePid.cgroupRun(foreign), null, foreign);
  }
});

test('tap names stay within IFNAMSIZ while the sequence wraps', (t) => {
  for (let i = 0; i < 100_001; i++) {
    const name = nextTapName(4194304);
    if (name.length > 15) t.fail(name);
  }
  t.pass();
});

test('host names that cannot name a namespace or cgroup are refused', (t) => {
  t.notThrows(() => assertSafeHostName('web-1_a'));
  for (const bad of ['', '../etc', 'a/b', 'a.b', '-a', 'a b', 'x'.repeat(201)]) t.throws(() => assertSafeHostName(bad), { instanceOf: RangeError }, bad);
});

test('/etc/hosts lists localhost and every host', (t) => {
  t.is(
    hostsFileText('a', '1-abcdef', [
      { name: 'a', address: '198.18.0.1' },
      { name: 'b', address: '198.18.0.2' },
    ]),
    '# /etc/hosts of LiveStack cell a (run 1-abcdef)\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n198.18.0.1\ta\n198.18.0.2\tb\n',
  );
});

test('output is split into lines across chunks, UTF-8 safe, CRLF trimmed, long lines cut', (t) => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  const text = Buffer.from('é1\r\nsecond li');
  splitter.push(text.subarray(0, 1)); // half of é
  splitter.push(text.subarray(1));
  splitter.push(Buffer.from('ne\n\nlast'));
  splitter.end();
  t.deepEqual(lines, ['é1', 'second line', '', 'last']);
  const long: string[] = [];
  const cutter = new LineSplitter((line) => long.push(line));
  cutter.push(Buffer.from('x'.repeat(MAX_LINE_CHARS + 10)));
  cutter.end();
  t.deepEqual(long.map((line) => line.length), [MAX_LINE_CHARS, 10]);
});
