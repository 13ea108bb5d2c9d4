// Imports go one way (ARCHITECTURE.md): dsl/ knows nothing of the runtime,
// and only runtime/live and the doctor reach the C library.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, dirname } from 'node:path';

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? tsFiles(path) : name.endsWith('.ts') ? [path] : [];
  });
}

function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) found.push(normalize(join(dirname(file), match[1]!)));
  return found;
}

test('dsl/ imports only dsl/', (t) => {
  const files = tsFiles('dsl');
  t.true(files.length > 5);
  for (const file of files) for (const target of localImports(file)) t.true(target.startsWith('dsl/'), `${file} imports ${target}`);
});

// runtime/sync/ may use ffi/sync.ts alone: its agents spin on their sockets in C while they wait
// for peers (a sleeping receiver costs a VM exit per window on a nested machine; ffi/c/sync.c)
test('only runtime/live and runtime/doctor import ffi/ (and runtime/sync the socket spinner)', (t) => {
  for (const file of [...tsFiles('runtime'), ...tsFiles('dsl'), ...tsFiles('cli')]) {
    for (const target of localImports(file)) {
      const allowed = file.startsWith('runtime/live/') || file === 'runtime/doctor.ts' || (file.startsWith('runtime/sync/') && target === 'ffi/sync.ts');
      if (target.startsWith('ffi/')) t.true(allowed, `${file} imports ${target}`);
    }
  }
  t.pass();
});

test('runtime/core does no I/O', (t) => {
  for (const file of tsFiles('runtime/core')) {
    t.notRegex(readFileSync(file, 'utf8'), /from ['"]node:(fs|net|child_process|dgram|http|https)['"]/, file);
  }
  t.pass();
});
