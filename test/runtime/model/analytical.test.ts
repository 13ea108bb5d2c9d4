// The network model against hand computation and queueing theory.
import test from 'ava';
import { lines, logFields, run } from './helpers.ts';

test('one-way delay over a link is latency + frame·8/bandwidth, exactly, for every packet', async (t) => {
  // 1000 B IP packets are 1014 B frames: 1014·8 / 10 Mbit/s = 811,200 ns; + 3 ms latency
  const result = await run(`scenario "d" { duration 1s
    host a { app onoff { to b  rate 1Mbit  size 1000B } }
    host b { app sink { port 9 } }
    link a -- b { latency 3ms  bandwidth 10Mbit } }`);
  const sink = logFields(result, 'b', 'sink');
  t.is(sink['packets'], 125); // one every 8 ms, none in flight at 1 s
  t.is(sink['min_delay_ms'], 3.8112);
  t.is(sink['max_delay_ms'], 3.8112);
});

test('through a store-and-forward switch each hop adds its latency and serialisation', async (t) => {
  // hop 1: 3 ms + 1014·8/10 Mbit/s (811,200 ns); switch 10 us; hop 2: 2 ms + 1014·8/100 Mbit/s (81,120 ns)
  const result = await run(`scenario "d" { duration 1s
    host a { app onoff { to b  rate 1Mbit  size 1000B } }
    host b { app sink { port 9 } }
    switch sw { latency 10us }
    link a -- sw { latency 3ms  bandwidth 10Mbit }
    link sw -- b { latency 2ms  bandwidth 100Mbit } }`);
  const sink = logFields(result, 'b', 'sink');
  t.is(sink['min_delay_ms'], 5.90232);
  t.is(sink['max_delay_ms'], 5.90232);
});

test('M/D/1: Poisson arrivals into a fixed-rate link wait ρD/(2(1−ρ)) on average (within 2%)', async (t) => {
  const serviceNs = (1014 * 8 * 1e9) / 10e6; // 811,200 ns per 1000 B packet at 10 Mbit/s
  const rateBitsPerSec = 4_930_966; // ρ = λD ≈ 0.5
  const rho = (rateBitsPerSec / 8000) * (serviceNs / 1e9);
  const result = await run(`scenario "mm" { seed 1  duration 2500s
    host a { app onoff { to b  rate ${rateBitsPerSec}bps  size 1000B  arrivals poisson } }
    host b { app sink { port 9 } }
    link a -- b { latency 1ms  bandwidth 10Mbit  queue 100000 packets } }`);
  const sink = logFields(result, 'b', 'sink');
  const waitMeasuredNs = sink['mean_delay_ms']! * 1e6 - serviceNs - 1e6;
  const waitTheoryNs = (rho * serviceNs) / (2 * (1 - rho));
  const error = Math.abs(waitMeasuredNs - waitTheoryNs) / waitTheoryNs;
  t.log(`packets ${sink['packets']}, ρ ${rho.toFixed(6)}, wait measured ${waitMeasuredNs.toFixed(0)} ns, theory ${waitTheoryNs.toFixed(0)} ns, error ${(error * 100).toFixed(3)}%`);
  t.true(sink['packets']! > 1_400_000);
  t.true(error < 0.02);
});

test('loss: drops follow the configured rate within 4 standard deviations', async (t) => {
  const result = await run(`scenario "loss" { seed 11  duration 100s
    host a { app onoff { to b  rate 1Mbit  size 1000B } }
    host b { app sink { port 9 } }
    link a -- b { latency 1ms  bandwidth 10Mbit  loss 2% } }`);
  const [ab] = result.network.directions.get('a--b')!;
  const sent = ab.stats.packets;
  const dropped = ab.stats.dropsLoss;
  const sigma = Math.sqrt(sent * 0.02 * 0.98);
  t.log(`sent ${sent}, dropped ${dropped}, expected ${sent * 0.02} ± ${sigma.toFixed(1)}`);
  t.is(sent, 12_500);
  t.true(Math.abs(dropped - sent * 0.02) < 4 * sigma);
  t.is(logFields(result, 'b', 'sink')['packets'], sent - dropped);
});

test('request/reply across a dumbbell takes the hand-computed time', async (t) => {
  // request 1000 B: one 1054 B frame. c→l 1 ms + 84,320; switch 5 us; l→r 10 ms + 843,200; switch 5 us; r→s 1 ms + 84,320
  //   = 13,021,840 ns.
  // reply 3000 B: segments of 1460, 1460, 80 B payload = frames 1514, 1514, 134 B, back to back; the last one
  //   reaches the client 14,685,360 ns after the server sends (serialisations 121,120 / 10,720 ns at 100 Mbit/s,
  //   1,211,200 / 107,200 ns at 10 Mbit/s, each hop waiting for its transmitter): RTT 27,707,200 ns.
  const result = await run(`scenario "dumbbell" { duration 1s
    host c { app request { to s  every 100ms  size 1000B  reply 3000B } }
    host s { app echo { port 7 } }
    switch l { latency 5us }
    switch r { latency 5us }
    link c -- l { latency 1ms  bandwidth 100Mbit }
    link l -- r { latency 10ms  bandwidth 10Mbit }
    link r -- s { latency 1ms  bandwidth 100Mbit } }`);
  const rtts = lines(result, 'c', 'request id=').map((l) => Number(/rtt_ms=([0-9.]+)/.exec(l)![1]));
  t.is(rtts.length, 10);
  t.deepEqual(new Set(rtts), new Set([27.7072]));
});

test('a drop-tail queue holds its limit and the link runs at its rate', async (t) => {
  const result = await run(`scenario "q" { duration 10s
    host a { app onoff { to b  rate 20Mbit  size 1000B } }
    host b { app sink { port 9 } }
    link a -- b { latency 1ms  bandwidth 10Mbit  queue 5 packets } }`);
  const [ab] = result.network.directions.get('a--b')!;
  t.is(ab.stats.maxQueuePackets, 5);
  t.true(ab.stats.dropsQueue > 10_000);
  const mbps = logFields(result, 'b', 'sink')['mbps']!;
  t.true(mbps > 9.8 && mbps <= 10, `${mbps}`);
});

test('link down drops, link up restores, link set changes the rate at its virtual time', async (t) => {
  const result = await run(`scenario "f" { duration 3s
    host a { app onoff { to b  rate 500Kbit  size 1000B } }
    host b { app sink { port 9 } }
    link a -- b { latency 1ms  bandwidth 10Mbit }
    at 1s { link a -- b down }
    at 1.5s { link a -- b up }
    at 2s { link a -- b set { bandwidth 1Mbit } } }`);
  const [ab] = result.network.directions.get('a--b')!;
  t.is(ab.stats.dropsDown, 31); // sends every 16 ms: 1008, 1024, …, 1488 ms
  const sink = logFields(result, 'b', 'sink');
  t.is(sink['packets'], 188 - 31 - 1); // 188 sent in 3 s (0 … 2992 ms), the last one still on the wire
  t.is(sink['min_delay_ms'], 1.8112);
  t.is(sink['max_delay_ms'], 9.112); // from 2 s: 1014·8 / 1 Mbit/s = 8.112 ms + 1 ms
});

test('jitter delays within [latency, latency + jitter] and never reorders', async (t) => {
  const result = await run(`scenario "j" { seed 3  duration 2s
    host a { app request { to b  every 1ms  size 100B  reply 100B } }
    host b { app echo { port 7 } }
    link a -- b { latency 5ms  jitter 2ms } }`);
  const ids = lines(result, 'a', 'request id=').map((l) => Number(/id=(\d+)/.exec(l)![1]));
  t.true(ids.length > 1900);
  t.deepEqual(ids, [...ids].sort((x, y) => x - y));
  const rtts = lines(result, 'a', 'request id=').map((l) => Number(/rtt_ms=([0-9.]+)/.exec(l)![1]));
  t.true(Math.min(...rtts) >= 10 && Math.max(...rtts) <= 14);
  t.true(new Set(rtts).size > 100);
});
