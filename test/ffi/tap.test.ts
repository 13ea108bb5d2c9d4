import { readdirSync, readlinkSync } from 'node:fs';
import test from 'ava';
import { probeTap } from '../../ffi/tap.ts';

test('as root: a tap can be created and a network namespace unshared', (t) => {
  t.is(process.getuid?.(), 0, 'these tests run as root (CELLS-FACTS.md)');
  const probe = probeTap();
  t.deepEqual(probe, {
    tunDevice: true,
    tapOk: true,
    tapError: null,
    netnsFile: true,
    unshareOk: true,
    unshareError: null,
  });
});

test('the probe leaves no device behind and never moves this process', (t) => {
  const namespaceBefore = readlinkSync('/proc/self/ns/net');
  probeTap();
  t.is(readlinkSync('/proc/self/ns/net'), namespaceBefore);
  t.deepEqual(
    readdirSync('/sys/class/net').filter((name) => name.startsWith('lsprobe')),
    [],
  );
});
