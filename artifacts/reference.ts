// The OLTP issue's reference figures (real kernel, real programs, namespaces joined
// by a delay element; MariaDB 10.11, sysbench 1.0.20, 4 threads, 30 s, medians of 3),
// shared by the artifact (artifacts/oltp.ts) and its bench (bench/oltp.ts).

export interface Reference {
  tps: number;
  qps: number;
  p95: number;
}

/** one-way latency (ns) → the reference figures */
export const REFERENCE = new Map<number, Reference>([
  [500_000, { tps: 160.2, qps: 3205, p95: 26.68 }],
  [1_000_000, { tps: 89.01, qps: 1780, p95: 45.79 }],
  [5_000_000, { tps: 18.67, qps: 373, p95: 215.44 }],
]);
/** PostgreSQL 15 (scenario oltp-pgsql), 1 ms: qps not given by the issue */
export const REFERENCE_PGSQL = new Map<number, Reference>([[1_000_000, { tps: 88.3, qps: NaN, p95: 46.63 }]]);
/** the bound on tps and p95 */
export const TOLERANCE = 0.05;
