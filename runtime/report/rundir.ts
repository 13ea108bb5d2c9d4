// The run directory, written so that a crash or Ctrl-C never leaves a
// half-written summary posing as complete: an INCOMPLETE marker exists from the
// first write until the last, and every file is written to a temporary name
// and renamed into place.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const INCOMPLETE_MARKER = 'INCOMPLETE';

export class RunDirectory {
  constructor(readonly path: string) {
    mkdirSync(path, { recursive: true });
    this.write(INCOMPLETE_MARKER, 'running: this run has not finished writing its results\n');
  }

  write(relative: string, content: string | Uint8Array): void {
    const target = join(this.path, relative);
    mkdirSync(dirname(target), { recursive: true });
    const temporary = `${target}.tmp-${process.pid}`;
    writeFileSync(temporary, content);
    renameSync(temporary, target);
  }

  /** Marks the run as interrupted (partial results kept) — the marker stays. */
  interrupted(reason: string): void {
    this.write(INCOMPLETE_MARKER, `interrupted: ${reason}\nthe files here are partial results\n`);
  }

  complete(): void {
    rmSync(join(this.path, INCOMPLETE_MARKER), { force: true });
  }
}

export function defaultRunPath(scenario: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const safe = scenario.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '') || 'scenario';
  return join('runs', `${safe}-${stamp}`);
}
