// Units of .scn literals. Decimal prefixes are ×1000, binary ones ×1024.

export type UnitKind = 'duration' | 'rate' | 'size' | 'percent';

interface UnitInfo {
  kind: UnitKind;
  /** to ns, bits/s, bytes or percent */
  factor: number;
}

const table: Record<string, UnitInfo> = {
  ns: { kind: 'duration', factor: 1 },
  us: { kind: 'duration', factor: 1e3 },
  µs: { kind: 'duration', factor: 1e3 },
  ms: { kind: 'duration', factor: 1e6 },
  s: { kind: 'duration', factor: 1e9 },
  min: { kind: 'duration', factor: 60e9 },
  h: { kind: 'duration', factor: 3600e9 },
  bps: { kind: 'rate', factor: 1 },
  Kbps: { kind: 'rate', factor: 1e3 },
  Mbps: { kind: 'rate', factor: 1e6 },
  Gbps: { kind: 'rate', factor: 1e9 },
  Tbps: { kind: 'rate', factor: 1e12 },
  bit: { kind: 'rate', factor: 1 },
  Kbit: { kind: 'rate', factor: 1e3 },
  Mbit: { kind: 'rate', factor: 1e6 },
  Gbit: { kind: 'rate', factor: 1e9 },
  Tbit: { kind: 'rate', factor: 1e12 },
  B: { kind: 'size', factor: 1 },
  KB: { kind: 'size', factor: 1e3 },
  MB: { kind: 'size', factor: 1e6 },
  GB: { kind: 'size', factor: 1e9 },
  TB: { kind: 'size', factor: 1e12 },
  KiB: { kind: 'size', factor: 1024 },
  MiB: { kind: 'size', factor: 1024 ** 2 },
  GiB: { kind: 'size', factor: 1024 ** 3 },
  TiB: { kind: 'size', factor: 1024 ** 4 },
  '%': { kind: 'percent', factor: 1 },
};

export const unitNames = Object.keys(table);

export const unitExamples: Record<UnitKind | 'plain', string> = {
  duration: 'a duration, e.g. 10ms',
  rate: 'a rate, e.g. 100Mbit',
  size: 'a size, e.g. 64KiB',
  percent: 'a percentage, e.g. 0.5%',
  plain: 'a plain number',
};

export const unitHints: Record<UnitKind, string> = {
  duration: 'ns, us, ms, s, min, h',
  rate: 'bps, Kbps, Mbps, Gbps or bit, Kbit, Mbit, Gbit (optionally /s)',
  size: 'B, KB, MB, GB (×1000) or KiB, MiB, GiB (×1024)',
  percent: '%',
};

/** Looks a unit up; `/s` is accepted after rate units only (`10Gbit/s`). */
export function lookupUnit(unit: string): UnitInfo | undefined {
  if (unit.endsWith('/s')) {
    const base = table[unit.slice(0, -2)];
    return base?.kind === 'rate' ? base : undefined;
  }
  return Object.hasOwn(table, unit) ? table[unit] : undefined;
}
