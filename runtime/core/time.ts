// Virtual time: integer nanoseconds in a JS number, exact up to 2^53 (~104 days).
// Branded so an instant is never passed where a duration is meant.

export type VInstant = number & { readonly __brand: 'VInstant' };
export type VDuration = number & { readonly __brand: 'VDuration' };

export const MAX_VIRTUAL_NS = Number.MAX_SAFE_INTEGER;
export const NS_PER_US = 1_000;
export const NS_PER_MS = 1_000_000;
export const NS_PER_S = 1_000_000_000;

export function instant(ns: number): VInstant {
  assertTime(ns);
  return ns as VInstant;
}

export function duration(ns: number): VDuration {
  assertTime(ns);
  return ns as VDuration;
}

export function after(at: VInstant, d: VDuration): VInstant {
  return instant(at + d);
}

export function assertTime(ns: number): void {
  if (!Number.isSafeInteger(ns) || ns < 0) throw new Error(`virtual time must be an integer ns in [0, 2^53), got ${ns}`);
}

/** Serialisation delay of `bytes` at `rateBitsPerSec`, rounded up to whole ns (a frame is never early). */
export function serialisationNs(bytes: number, rateBitsPerSec: number | null): number {
  if (rateBitsPerSec === null) return 0;
  return Math.ceil((bytes * 8 * NS_PER_S) / rateBitsPerSec);
}

/** `12.345678s` style, exact to the ns. */
export function formatVirtual(ns: number): string {
  const s = Math.floor(ns / NS_PER_S);
  const frac = String(ns % NS_PER_S).padStart(9, '0');
  return `${s}.${frac}s`;
}
