import test from 'ava';
import { EventQueue, SimEvent, eventBefore } from '../../../runtime/core/events.ts';
import { Rng } from '../../../runtime/core/random.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);

test('events come out in (time, source, seq) order, whatever the insertion order', (t) => {
  t.log(`seed ${seed} (re-run with SEED=${seed})`);
  const rng = new Rng(seed, 'events');
  const queue = new EventQueue();
  const all: SimEvent[] = [];
  for (let i = 0; i < 20_000; i++) {
    const event = new SimEvent(rng.below(1000), rng.below(8), i, 0, 0, 0, null);
    all.push(event);
    queue.push(event);
    if (rng.chance(0.3)) all.splice(all.indexOf(queue.pop()!), 1);
  }
  const popped: SimEvent[] = [];
  while (queue.size > 0) popped.push(queue.pop()!);
  t.is(popped.length, all.length);
  for (let i = 1; i < popped.length; i++) t.false(eventBefore(popped[i]!, popped[i - 1]!), `seed ${seed}: out of order at ${i}`);
  const expected = [...all].sort((a, b) => a.time - b.time || a.source - b.source || a.seq - b.seq);
  t.deepEqual(popped.map((e) => e.seq), expected.map((e) => e.seq));
});

test('a million pending events push and pop in order', (t) => {
  const queue = new EventQueue();
  const rng = new Rng(1, 'million');
  for (let i = 0; i < 1_000_000; i++) queue.push(new SimEvent(rng.below(1e9), 0, i, 0, 0, 0, null));
  t.is(queue.size, 1_000_000);
  let previous = -1;
  let ordered = true;
  while (queue.size > 0) {
    const e = queue.pop()!;
    if (e.time < previous) ordered = false;
    previous = e.time;
  }
  t.true(ordered);
});
