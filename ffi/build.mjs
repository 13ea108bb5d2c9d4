// Builds ffi/build/liblivestack.so from ffi/c/*.c. Run by `npm install`
// (the package's "install" script), so it is plain Node ESM with no
// dependencies: nothing from node_modules exists yet when it runs.
//
//   node ffi/build.mjs [--force]     ($CC picks the compiler, default cc)
//
// Skips the build when the .so is newer than every source, header and this
// script. Writes to a temporary file and renames it, so a failed build never
// leaves a truncated library, and a process that already loaded the old one
// keeps a valid mapping.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ffiDir = dirname(fileURLToPath(import.meta.url));
const buildDir = join(ffiDir, 'build');
const output = join(buildDir, 'liblivestack.so');
const cDir = join(ffiDir, 'c');
const includeDir = join(ffiDir, 'include');
const flags = ['-Wall', '-Wextra', '-Werror', '-O2', '-fPIC', '-shared', '-fvisibility=hidden', `-I${includeDir}`];
const force = process.argv.includes('--force');
const shown = (path) => {
  const fromCwd = relative(process.cwd(), path);
  return fromCwd && !fromCwd.startsWith('..') ? fromCwd : path;
};

const listFiles = (dir, suffixes) =>
  readdirSync(dir).filter((name) => suffixes.some((suffix) => name.endsWith(suffix))).sort().map((name) => join(dir, name));

const sources = listFiles(cDir, ['.c']);
const inputs = [...sources, ...listFiles(cDir, ['.h']), ...listFiles(includeDir, ['.h']), fileURLToPath(import.meta.url)];
if (sources.length === 0) {
  console.error(`livestack: no C sources in ${shown(cDir)}`);
  process.exit(1);
}

const mtimeMs = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -Infinity;
  }
};
const newestInputMs = Math.max(...inputs.map(mtimeMs));
if (!force && mtimeMs(output) > newestInputMs) {
  console.log(`livestack: ${shown(output)} is up to date`);
  process.exit(0);
}

const compiler = process.env.CC || 'cc';
const temporary = `${output}.tmp-${process.pid}`;
mkdirSync(buildDir, { recursive: true });
const startMs = performance.now();
const result = spawnSync(compiler, [...flags, '-o', temporary, ...sources], { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.error || result.status !== 0) {
  rmSync(temporary, { force: true });
  const why = result.error ? result.error.message : result.signal ? `killed by ${result.signal}` : `exit status ${result.status}`;
  console.error(`livestack: building ${shown(output)} with ${compiler} failed (${why})`);
  console.error(`livestack: command: ${compiler} ${[...flags, '-o', shown(output), ...sources.map(shown)].join(' ')}`);
  process.exit(1);
}
renameSync(temporary, output);
const elapsedSec = ((performance.now() - startMs) / 1000).toFixed(2);
console.log(`livestack: built ${shown(output)} from ${sources.length} C files with ${compiler} in ${elapsedSec} s`);
