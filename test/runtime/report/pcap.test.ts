// tshark (Wireshark) reads the pcap of a captured link: packet count and virtual timestamps.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pcapBytes } from '../../../runtime/report/pcap.ts';
import { run } from '../model/helpers.ts';

async function tsharkAvailable(): Promise<boolean> {
  const probe = await execa('tshark', ['--version'], { reject: false });
  return probe.exitCode === 0;
}

test('a captured link opens in tshark with every frame at its virtual time', async (t) => {
  if (!(await tsharkAvailable())) {
    // tests never skip themselves in CI: a missing tool is a failure there (.ci/run installs it)
    if (process.env['LIVESTACK_REQUIRE_LIVE'] === '1') t.fail('tshark is missing: apt-get install -y tshark');
    else t.pass('tshark not installed here; CI installs it');
    return;
  }
  // a→b: 1000 B IP packets every 8 ms (t = 0, 8, …, 96 ms); b echoes nothing; capture both directions
  const result = await run(`scenario "cap" { duration 100ms
    host a { app onoff { to b  rate 1Mbit  size 1000B } }
    host b { app sink { port 9 } }
    link a -- b { latency 2ms  bandwidth 10Mbit  capture } }`);
  const records = result.network.captures.get('a--b')!;
  const path = join(mkdtempSync(join(tmpdir(), 'livestack-pcap-')), 'a--b.pcap');
  writeFileSync(path, pcapBytes(records));
  const out = await execa('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'udp.dstport'], { env: { ...process.env, HOME: tmpdir() } });
  const rows = out.stdout.trim().split('\n').map((line) => line.split('\t'));
  t.is(rows.length, 13);
  rows.forEach((row, i) => {
    t.is(Number(row[0]).toFixed(9), (i * 0.008).toFixed(9));
    t.is(row[1], '1014');
    t.is(row[2], '198.18.0.1');
    t.is(row[3], '198.18.0.2');
    t.is(row[4], '9');
  });
});

test('pcap header: nanosecond magic, Ethernet link type, records merged by time', (t) => {
  const frame = (n: number) => ({ bytes: Uint8Array.of(n, n, n), wireBytes: 60 });
  const bytes = pcapBytes([
    { timeNs: 2_000_000_005, direction: 1, packet: frame(2) },
    { timeNs: 1_000_000_000, direction: 0, packet: frame(1) },
  ]);
  t.is(bytes.readUInt32LE(0), 0xa1b23c4d);
  t.is(bytes.readUInt32LE(20), 1);
  t.is(bytes.length, 24 + 2 * (16 + 60));
  t.is(bytes.readUInt32LE(24), 1);
  t.is(bytes.readUInt32LE(28), 0);
  t.is(bytes.readUInt32LE(24 + 76), 2);
  t.is(bytes.readUInt32LE(28 + 76), 5);
  t.is(bytes[40], 1);
  t.is(bytes[43], 0); // implicit payload is zeros
});
