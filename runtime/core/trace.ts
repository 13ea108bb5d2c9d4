// The trace hash: each component folds the events it handles, in order, into a
// 64-bit running hash (two 32-bit lanes of a murmur3-style mix). Components see
// the same events in the same order however the run is partitioned, so the
// combination of per-component hashes (in component order) is
// partition-independent: same plan + seed ⇒ same trace hash.
import { createHash } from 'node:crypto';

export class TraceHash {
  private a = 0x9e3779b9 | 0;
  private b = 0x85ebca6b | 0;
  events = 0;

  /** Folds one event: time (exact to the ns, split into two 32-bit halves) and three small integers. */
  fold(time: number, source: number, seq: number, kind: number): void {
    const high = Math.floor(time / 4294967296);
    const low = time >>> 0;
    this.a = mix(this.a, low);
    this.a = mix(this.a, high);
    this.a = mix(this.a, kind);
    this.b = mix(this.b, source);
    this.b = mix(this.b, seq);
    this.b = mix(this.b, low ^ kind);
    this.events++;
  }

  /** Folds a detail (a packet's wire size, a drop) into the current event. */
  detail(value: number): void {
    this.a = mix(this.a, value | 0);
  }

  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0');
  }
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The run's trace hash: sha256 over every component's hash and event count, in component order. */
export function combineTraces(components: ReadonlyArray<{ trace: TraceHash }>): string {
  const hash = createHash('sha256');
  for (const c of components) hash.update(`${c.trace.hex()}:${c.trace.events};`);
  return hash.digest('hex');
}
