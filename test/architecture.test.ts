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

test('only runtime/live and runtime/doctor import ffi/', (t) => {
  for (const file of [...tsFiles('runtime'), ...tsFiles('dsl'), ...tsFiles('cli')]) {
    for (const target of localImports(file)) {
      if (target.startsWith('ffi/')) t.true(file.startsWith('runtime/live/') || file === 'runtime/doctor.ts', `${file} imports ${target}`);
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
