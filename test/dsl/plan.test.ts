import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { compileFile } from '../../dsl/compile.ts';
import { MAX_HOSTS } from '../../dsl/limits.ts';
import { canonicalJson, hostAddress, PLAN_VERSION, planFromJson, planHash, planToJson, type Plan } from '../../dsl/plan.ts';
import { compile, describeDiagnostics, planOf, scn } from './helpers.ts';

const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));

const src = scn(
  '  seed 3',
  '  sweep lat in [1ms, 2ms]',
  '  host web[1..3] { run "serve" env B = "2" env A = "1" }',
  '  host client { run "ping web1" as ping }',
  '  switch sw0 { latency 1us }',
  '  link web[1..3] -- sw0 { latency lat bandwidth 1Gbit }',
  '  link client -- sw0 { latency 5ms loss 1% }',
  '  at 2s { link client -- sw0 down log "down" }',
  '  at 1s { kill web3 }',
  '  metric rtt from client match "time=([0-9.]+)"',
  '  expect mean(rtt) < 10',
  '  place web[1..3] on "m1"',
);

/** Recursively rebuilds objects with their keys in reverse order (arrays keep their order). */
function shuffleKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shuffleKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).reverse()) out[key] = shuffleKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

test('compiling the same scenario twice gives byte-identical plan JSON', (t) => {
  const first = compile(src).plans.map(planToJson);
  const second = compile(src).plans.map(planToJson);
  t.is(first.length, 2);
  t.deepEqual(first, second);
  t.not(first[0], first[1], 'two sweep points are two different plans');
});

test('planToJson is canonical: sorted keys at every level, two-space indent, trailing newline, hash included', (t) => {
  const plan = planOf(t, scn('  host a', '  host b', '  link a -- b { latency 1ms }'));
  const text = planToJson(plan);
  t.true(text.endsWith('}\n'));
  t.true(text.startsWith('{\n  "agents": '));
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const keys = Object.keys(parsed);
  t.deepEqual(keys, [...keys].sort());
  const linkKeys = Object.keys((parsed['links'] as Array<Record<string, unknown>>)[0]!);
  t.deepEqual(linkKeys, [...linkKeys].sort());
  t.is(parsed['planHash'], planHash(plan));
  t.is(parsed['planVersion'], PLAN_VERSION);
});

test('the hash is the sha256 of the canonical compact JSON', (t) => {
  const plan = compile(src).plans[0]!;
  const expected = createHash('sha256').update(canonicalJson(plan)).digest('hex');
  t.is(planHash(plan), expected);
  t.regex(planHash(plan), /^[0-9a-f]{64}$/);
  // canonical compact JSON: no whitespace between tokens, sorted keys
  t.false(canonicalJson(plan).includes('\n'));
  t.is(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}');
});

test('the hash is stable across a key-order-shuffled copy', (t) => {
  const plan = compile(src).plans[0]!;
  const shuffled = shuffleKeys(plan) as Plan;
  t.notDeepEqual(Object.keys(shuffled), Object.keys(plan));
  t.is(planHash(shuffled), planHash(plan));
  t.is(planToJson(shuffled), planToJson(plan));
});

test('the hash changes when any value changes', (t) => {
  const plan = compile(src).plans[0]!;
  const base = planHash(plan);
  const variants: Array<(p: Plan) => void> = [
    (p) => { p.seed = 4; },
    (p) => { p.links[0]!.latencyNs += 1; },
    (p) => { p.hosts[1]!.address = '198.18.0.9'; },
    (p) => { p.timeline.reverse(); },
    (p) => { p.hosts[0]!.env[0]!.value = 'x'; },
    (p) => { p.expectations[0]!.text += ' '; },
  ];
  const hashes = new Set([base]);
  for (const change of variants) {
    const copy = structuredClone(plan);
    change(copy);
    const hash = planHash(copy);
    t.not(hash, base);
    hashes.add(hash);
  }
  t.is(hashes.size, variants.length + 1);
  // different sweep points hash differently
  const [p0, p1] = compile(src).plans;
  t.not(planHash(p0!), planHash(p1!));
});

test('planFromJson(planToJson(p)) round-trips', (t) => {
  for (const plan of compile(src).plans) {
    const back = planFromJson(planToJson(plan));
    t.deepEqual(back, plan);
    t.false('planHash' in back);
    t.is(planToJson(back), planToJson(plan));
  }
});

test('planFromJson accepts a plan without a hash', (t) => {
  const plan = compile(src).plans[0]!;
  t.deepEqual(planFromJson(canonicalJson(plan)), plan);
});

test('planFromJson rejects a wrong version', (t) => {
  const plan = compile(src).plans[0]!;
  const wrong = JSON.parse(planToJson(plan)) as Record<string, unknown>;
  wrong['planVersion'] = 2;
  t.throws(() => planFromJson(JSON.stringify(wrong)), { message: /plan version 2 is not supported/ });
  delete wrong['planVersion'];
  t.throws(() => planFromJson(JSON.stringify(wrong)), { message: /plan version undefined is not supported/ });
});

test('planFromJson rejects a tampered hash or tampered content', (t) => {
  const plan = compile(src).plans[0]!;
  const value = JSON.parse(planToJson(plan)) as Record<string, unknown>;
  const badHash = { ...value, planHash: '0'.repeat(64) };
  t.throws(() => planFromJson(JSON.stringify(badHash)), { message: 'plan hash does not match its content' });
  const badContent = { ...value, seed: 99 };
  t.throws(() => planFromJson(JSON.stringify(badContent)), { message: 'plan hash does not match its content' });
});

test('hostAddress: 198.18.0.0/15 in order, skipping .0 and .255', (t) => {
  t.is(hostAddress(0), '198.18.0.1');
  t.is(hostAddress(1), '198.18.0.2');
  t.is(hostAddress(253), '198.18.0.254');
  t.is(hostAddress(254), '198.18.1.1');
  t.is(hostAddress(255), '198.18.1.2');
  t.is(hostAddress(254 * 256 - 1), '198.18.255.254');
  t.is(hostAddress(254 * 256), '198.19.0.1');
  t.is(hostAddress(MAX_HOSTS - 1), '198.19.255.254', 'the last allowed index stays inside 198.19.255.x');
  // every address is unique, in 198.18.0.0/15, and never .0 or .255
  const seen = new Set<string>();
  for (let i = 0; i < MAX_HOSTS; i++) {
    const address = hostAddress(i);
    const [a, b, , d] = address.split('.').map(Number) as [number, number, number, number];
    if (a !== 198 || (b !== 18 && b !== 19) || d === 0 || d === 255 || seen.has(address)) {
      t.fail(`index ${i}: ${address}`);
      return;
    }
    seen.add(address);
  }
  t.is(seen.size, MAX_HOSTS);
});

test('the plan of a scenario with a host past 198.18.0.254 continues in the next /24', (t) => {
  const plan = planOf(t, scn('  host h[0..255]'));
  t.is(plan.hosts[253]!.address, '198.18.0.254');
  t.is(plan.hosts[254]!.address, '198.18.1.1');
  t.is(plan.hosts[255]!.address, '198.18.1.2');
});

test('golden: the plan of fixtures/golden.scn equals fixtures/golden.json byte for byte', (t) => {
  const result = compileFile(fixture('golden.scn'));
  t.deepEqual(result.diagnostics, [], describeDiagnostics(result.diagnostics));
  t.is(result.plans.length, 1);
  const expected = readFileSync(fixture('golden.json'), 'utf8');
  t.is(planToJson(result.plans[0]!), expected);
  // and the stored file is itself a valid plan whose hash matches
  t.deepEqual(planFromJson(expected), result.plans[0]);
});
