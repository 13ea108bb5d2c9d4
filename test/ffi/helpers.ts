// Fake /sys trees for probes that must be testable on machines without the
// real thing (no resctrl here; cgroup layouts differ between machines).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A temp dir holding files (path -> content; content null = empty dir,
 * {link} = symlink), removed when the test ends. */
export function fakeTree(t: ExecutionContext, files: Record<string, string | null | { link: string }>): string {
  const root = mkdtempSync(join(tmpdir(), 'livestack-test-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    if (content === null) {
      mkdirSync(full, { recursive: true });
    } else if (typeof content === 'object') {
      mkdirSync(dirname(full), { recursive: true });
      symlinkSync(content.link, full);
    } else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
  return root;
}
