import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { ABI_VERSION, defaultLibraryPath, errnoError, errnoName, loadLibrary } from '../../ffi/lib.ts';

const buildScript = fileURLToPath(new URL('../../ffi/build.mjs', import.meta.url));
const build = (args: string[] = [], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [buildScript, ...args], { encoding: 'utf8', env });

// Builds (or finds up to date) first; the second run must skip by mtime.
test.serial('build.mjs builds the library and then skips when up to date', (t) => {
  const first = build();
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /^livestack: .*liblivestack\.so/);
  t.true(existsSync(defaultLibraryPath));
  const builtMs = statSync(defaultLibraryPath).mtimeMs;
  const second = build();
  t.is(second.status, 0, second.stderr);
  t.regex(second.stdout, /up to date/);
  t.is(statSync(defaultLibraryPath).mtimeMs, builtMs);
});

test.serial('build.mjs fails loudly and keeps the old library when the compiler fails', (t) => {
  const before = statSync(defaultLibraryPath).mtimeMs;
  const failed = build(['--force'], { ...process.env, CC: 'false' });
  t.is(failed.status, 1);
  t.regex(failed.stderr, /building .*liblivestack\.so with false failed \(exit status 1\)/);
  t.is(statSync(defaultLibraryPath).mtimeMs, before);
});

test.serial('ls_version and ls_abi_version answer', (t) => {
  const library = loadLibrary();
  t.is(library.abiVersion, ABI_VERSION);
  t.regex(library.version, /^\d+\.\d+\.\d+$/);
  t.is(library.handle.func('int ls_abi_version(void)')(), 1);
  t.is(library.handle.func('long ls_sizeof(const char *name)')('no_such_struct'), -constants.errno.ENOENT);
});

test.serial('only ls_ symbols are exported (-fvisibility=hidden)', (t) => {
  const nm = spawnSync('nm', ['-D', '--defined-only', defaultLibraryPath], { encoding: 'utf8' });
  t.is(nm.status, 0, nm.stderr);
  const exported = nm.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === 'T')
    .map((fields) => fields[2]);
  t.true(exported.includes('ls_kvm__probe'));
  t.deepEqual(exported.filter((name) => !name.startsWith('ls_')), []);
});

test('errno values map to their names', (t) => {
  t.is(errnoName(-2), 'ENOENT');
  t.is(errnoName(13), 'EACCES');
  t.is(errnoName(-4095), 'E4095');
  t.is(errnoError(0), null);
  t.deepEqual(errnoError(-1), { errno: 1, code: 'EPERM' });
});
