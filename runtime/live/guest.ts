// Guest images for `kind vm` hosts on the KVM backend: an ELF built with the
// guest SDK (ffi/guest/), given as `image "prog.c"` (built here with the
// machine's C compiler, cached by content) or as a prebuilt `image "prog.elf"`.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CellError } from './errors.ts';

const ffiDir = fileURLToPath(new URL('../../ffi/', import.meta.url));
const sdkDir = join(ffiDir, 'guest');
const includeDir = join(ffiDir, 'include');
const cacheDir = join(ffiDir, 'build', 'guests');

/** Flags of a guest build: freestanding, static, no stack protector (it reads %fs, which a guest has not
 *  set up), no PIC (the image is linked at LS_GUEST_IMAGE_GPA), baseline x86-64 (no AVX: XCR0 is not set up). */
export const GUEST_CFLAGS = [
  '-ffreestanding', '-fno-stack-protector', '-fno-pic', '-no-pie', '-nostdlib', '-static', '-O2', '-march=x86-64',
  '-fcf-protection=none', '-fno-asynchronous-unwind-tables', '-Wall', '-Wextra',
  `-I${includeDir}`, `-I${sdkDir}`, `-Wl,-T,${join(sdkDir, 'guest.ld')}`, '-Wl,--build-id=none',
];

/** A scenario's relative path, relative to the file that declared it (source is "file:line", file relative to baseDir). */
export function scenarioPath(path: string, source: string, baseDir: string): string {
  if (isAbsolute(path)) return path;
  const file = source.replace(/:\d+(:\d+)?$/, '');
  return resolve(baseDir, dirname(file), path);
}

/** The bytes of a guest image; a `.c` source is built with the SDK first (cached by the hash of everything that goes in). */
export function guestImage(host: string, path: string, where = ''): Buffer {
  const at = where === '' ? '' : `${where}: `;
  if (!existsSync(path)) {
    throw new CellError(host, `${at}image ${path} does not exist`, 'give image "…" a guest program: a C file using ffi/guest/ls.h (see scenarios/vm/guests/) or an ELF built with it');
  }
  if (!path.endsWith('.c')) return readFileSync(path);
  const sources = [...readdirSync(sdkDir).filter((f) => f.endsWith('.c')).sort().map((f) => join(sdkDir, f)), path];
  const hash = createHash('sha256');
  for (const file of [...sources, join(sdkDir, 'ls.h'), join(sdkDir, 'guest.ld'), join(includeDir, 'livestack-guest.h')]) hash.update(readFileSync(file));
  hash.update(GUEST_CFLAGS.join(' '));
  const output = join(cacheDir, `${hash.digest('hex').slice(0, 24)}.elf`);
  if (existsSync(output)) return readFileSync(output);
  mkdirSync(cacheDir, { recursive: true });
  const temporary = `${output}.tmp-${process.pid}`;
  const compiler = process.env['CC'] || 'cc';
  const result = spawnSync(compiler, [...GUEST_CFLAGS, '-o', temporary, ...sources], { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    rmSync(temporary, { force: true });
    const output = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').slice(0, 12).join('\n');
    throw new CellError(host, `${at}building the guest ${path} failed${result.error ? `: ${result.error.message}` : ''}${output ? `:\n${output}` : ''}`, 'fix the program (it is built freestanding with ffi/guest/ls.h, no libc)');
  }
  renameSync(temporary, output);
  return readFileSync(output);
}
