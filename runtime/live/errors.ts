// Errors of live cells: what failed, for which host, and what to do.

/** A cell could not be created, driven or torn down. */
export class CellError extends Error {
  override readonly name = 'CellError';
  constructor(
    /** The plan host the cell belongs to ("" for run-wide steps). */
    readonly host: string,
    /** What failed, e.g. "cannot create cgroup /sys/fs/cgroup/cpuset/livestack/…". */
    readonly reason: string,
    /** What to do about it. */
    readonly remedy: string,
    options?: { cause?: unknown },
  ) {
    super(`${host ? `host ${host}: ` : ''}${reason}${remedy ? ` (${remedy})` : ''}`, options);
  }
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The errno code of a Node system error ("ENOENT"), or undefined. */
export const codeOf = (error: unknown): string | undefined =>
  error !== null && typeof error === 'object' && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

/** Blocks the thread for ms (teardown in exit handlers cannot await). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
