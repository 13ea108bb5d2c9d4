// `npm run bench [-- NAME… [--smoke]]`: runs the benchmarks in bench/ one after
// another (each in its own process: they measure, and must not share a heap or
// a loaded library state), all of them when no NAME is given.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ALL = ['dsl', 'core', 'live', 'distributed', 'vm', 'oltp'];
const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
const names = args.filter((a) => !a.startsWith('--'));
const unknown = names.filter((n) => !ALL.includes(n));
if (unknown.length > 0) {
  console.error(`bench: no such benchmark: ${unknown.join(', ')} (have: ${ALL.join(', ')})`);
  process.exit(2);
}
let failed = 0;
for (const name of names.length > 0 ? names : ALL) {
  const file = join(here, `${name}.ts`);
  if (!existsSync(file)) continue;
  console.log(`\n== bench/${name}.ts ${flags.join(' ')}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', file, ...flags], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.error(`bench/${name}.ts exited ${result.status ?? result.signal}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
