import test from 'ava';
import { Rng } from '../../../runtime/core/random.ts';
import { TraceHash } from '../../../runtime/core/trace.ts';
import { serialisationNs, formatVirtual, instant } from '../../../runtime/core/time.ts';

test('a stream is a function of (seed, name)', (t) => {
  const a = new Rng(42, 'link:a--b:0');
  const b = new Rng(42, 'link:a--b:0');
  const c = new Rng(42, 'link:a--b:1');
  const d = new Rng(43, 'link:a--b:0');
  const take = (r: Rng) => Array.from({ length: 8 }, () => r.nextU32());
  const first = take(a);
  t.deepEqual(take(b), first);
  t.notDeepEqual(take(c), first);
  t.notDeepEqual(take(d), first);
});

test('uniform and exponential streams have the right means', (t) => {
  const r = new Rng(7, 'moments');
  let sum = 0;
  let sumExp = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    t.true(u >= 0 && u < 1);
    sum += u;
    sumExp += r.exponential(5);
  }
  // 5 standard errors: 1/sqrt(12 n) and 5/sqrt(n)
  t.true(Math.abs(sum / n - 0.5) < 5 / Math.sqrt(12 * n));
  t.true(Math.abs(sumExp / n - 5) < (5 * 5) / Math.sqrt(n));
});

test('the trace hash depends on every folded field and on order', (t) => {
  const hash = (events: number[][]) => {
    const h = new TraceHash();
    for (const [time, source, seq, kind] of events) h.fold(time!, source!, seq!, kind!);
    return h.hex();
  };
  const base = [[10, 1, 0, 2], [2 ** 40 + 5, 3, 1, 1]];
  t.is(hash(base), hash(base.map((e) => [...e])));
  t.not(hash(base), hash([base[1]!, base[0]!]));
  t.not(hash(base), hash([[10, 1, 0, 2], [2 ** 40 + 6, 3, 1, 1]]));
  t.not(hash(base), hash([[10, 1, 0, 3], [2 ** 40 + 5, 3, 1, 1]]));
});

test('time helpers: serialisation rounds up to whole ns; formatting is exact', (t) => {
  t.is(serialisationNs(1514, 1e9), 12112);
  t.is(serialisationNs(1, 3), Math.ceil(8e9 / 3));
  t.is(serialisationNs(1000, null), 0);
  t.is(formatVirtual(1_500_000_001), '1.500000001s');
  t.throws(() => instant(-1));
  t.throws(() => instant(1.5));
});
