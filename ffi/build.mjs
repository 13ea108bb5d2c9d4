// Builds LiveStack's C parts into ffi/build/. Run by `npm install` (the
// package's "install" script), so it is plain Node ESM with no dependencies:
// nothing from node_modules exists yet when it runs.
//
//   node ffi/build.mjs [--force]     ($CC picks the compiler, default cc)
//
// Targets (each built only if its folder has C sources):
//   ffi/c/*.c, ffi/c/vmm/*.c → liblivestack.so (loaded by Node through koffi)
//   ffi/c/shim/*.c    → liblivestack-shim.so  (LD_PRELOAD time shim inside cells)
//   ffi/c/launch/*.c  → ls-launch             (starts a command inside a cell)
//
// A target is skipped when its output is newer than every source, header and
// this script. Outputs are written to a temporary file and renamed, so a
// failed build never leaves a truncated file, and a process that already
// loaded the old library keeps a valid mapping.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ffiDir = dirname(fileURLToPath(import.meta.url));
const buildDir = join(ffiDir, 'build');
const cDir = join(ffiDir, 'c');
const includeDir = join(ffiDir, 'include');
const common = ['-Wall', '-Wextra', '-Werror', '-O2', `-I${includeDir}`];
const force = process.argv.includes('--force');
const shown = (path) => {
  const fromCwd = relative(process.cwd(), path);
  return fromCwd && !fromCwd.startsWith('..') ? fromCwd : path;
};

const listFiles = (dir, suffixes) =>
  existsSync(dir)
    ? readdirSync(dir).filter((name) => suffixes.some((suffix) => name.endsWith(suffix))).sort().map((name) => join(dir, name))
    : [];

const targets = [
  { dir: cDir, extra: [join(cDir, 'vmm')], output: 'liblivestack.so', flags: ['-fPIC', '-shared', '-fvisibility=hidden'], libs: ['-lpthread', '-lrt'] },
  { dir: join(cDir, 'shim'), output: 'liblivestack-shim.so', flags: ['-fPIC', '-shared', '-fvisibility=hidden'], libs: ['-ldl', '-lpthread'] },
  { dir: join(cDir, 'launch'), output: 'ls-launch', flags: [], libs: [] },
];

const mtimeMs = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -Infinity;
  }
};

const compiler = process.env.CC || 'cc';
mkdirSync(buildDir, { recursive: true });
let failed = false;
for (const target of targets) {
  const dirs = [target.dir, ...(target.extra ?? [])];
  const sources = dirs.flatMap((dir) => listFiles(dir, ['.c']));
  if (sources.length === 0) {
    if (target.dir === cDir) {
      console.error(`livestack: no C sources in ${shown(cDir)}`);
      process.exit(1);
    }
    continue;
  }
  const output = join(buildDir, target.output);
  const inputs = [...sources, ...dirs.flatMap((dir) => listFiles(dir, ['.h'])), ...listFiles(cDir, ['.h']), ...listFiles(includeDir, ['.h']), fileURLToPath(import.meta.url)];
  const newestInputMs = Math.max(...inputs.map(mtimeMs));
  if (!force && mtimeMs(output) > newestInputMs) {
    console.log(`livestack: ${shown(output)} is up to date`);
    continue;
  }
  const flags = [...common, ...target.flags];
  const temporary = `${output}.tmp-${process.pid}`;
  const startMs = performance.now();
  const result = spawnSync(compiler, [...flags, '-o', temporary, ...sources, ...target.libs], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error || result.status !== 0) {
    rmSync(temporary, { force: true });
    const why = result.error ? result.error.message : result.signal ? `killed by ${result.signal}` : `exit status ${result.status}`;
    console.error(`livestack: building ${shown(output)} with ${compiler} failed (${why})`);
    console.error(`livestack: command: ${compiler} ${[...flags, '-o', shown(output), ...sources.map(shown), ...target.libs].join(' ')}`);
    failed = true;
    continue;
  }
  renameSync(temporary, output);
  const elapsedSec = ((performance.now() - startMs) / 1000).toFixed(2);
  console.log(`livestack: built ${shown(output)} from ${sources.length} C files with ${compiler} in ${elapsedSec} s`);
}
process.exit(failed ? 1 : 0);
