// Loads a .scn file and, transitively, the files it imports.
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type * as A from './ast.ts';
import { parse } from './build.ts';
import { Codes, diagnostic, type Diagnostic, type Span } from './diagnostics.ts';
import { MAX_IMPORT_DEPTH } from './limits.ts';

export type ReadFile = (path: string) => string;

export interface Program {
  /** the file the user named */
  main: A.SourceFile;
  /** every file by display path (relative to the main file's folder), imports first */
  files: Map<string, A.SourceFile>;
  /** display path → text, for caret excerpts */
  sources: Map<string, string>;
  /** display path → the display paths it imports, in order (transitively resolved by the checker) */
  importsOf: Map<string, string[]>;
  diagnostics: Diagnostic[];
}

export interface LoadOptions {
  readFile?: ReadFile;
  /** text of the main file, when it is not on disk (tests, stdin) */
  text?: string;
}

const defaultRead: ReadFile = (path) => readFileSync(path, 'utf8');

/** Never throws: unreadable files become diagnostics. */
export function loadProgram(mainPath: string, options: LoadOptions = {}): Program {
  const read = options.readFile ?? defaultRead;
  const root = dirname(resolve(mainPath));
  const display = (absolute: string) => relative(root, absolute) || absolute;
  const files = new Map<string, A.SourceFile>();
  const sources = new Map<string, string>();
  const importsOf = new Map<string, string[]>();
  const diagnostics: Diagnostic[] = [];

  const mainAbsolute = resolve(mainPath);
  const mainDisplay = display(mainAbsolute);
  let mainText: string;
  if (options.text !== undefined) {
    mainText = options.text;
  } else {
    try {
      mainText = read(mainAbsolute);
    } catch (error) {
      const span: Span = { file: mainDisplay, line: 1, col: 1, endLine: 1, endCol: 1, offset: 0, endOffset: 0 };
      diagnostics.push(diagnostic(Codes.importFailed, span, `cannot read ${mainPath}: ${errorText(error)}`, 'check the path'));
      const empty: A.SourceFile = { path: mainDisplay, imports: [], lets: [], templates: [], scenarios: [], unknown: [] };
      return { main: empty, files, sources, importsOf, diagnostics };
    }
  }

  const visit = (absolute: string, text: string, stack: string[]): A.SourceFile => {
    const name = display(absolute);
    const parsed = parse(name, text);
    files.set(name, parsed.ast);
    sources.set(name, text);
    for (const d of parsed.diagnostics) diagnostics.push(d); // not push(...): 100k+ items overflow the stack
    const imported: string[] = [];
    importsOf.set(name, imported);
    for (const item of parsed.ast.imports) {
      const target = resolve(dirname(absolute), item.path);
      const targetName = display(target);
      if (stack.includes(target) || target === absolute) {
        diagnostics.push(
          diagnostic(Codes.importCycle, item.span, `import cycle: ${[...stack, absolute, target].map(display).join(' → ')}`, 'remove one of the imports'),
        );
        continue;
      }
      if (stack.length >= MAX_IMPORT_DEPTH) {
        diagnostics.push(diagnostic(Codes.importFailed, item.span, `imports nest deeper than ${MAX_IMPORT_DEPTH} files`));
        continue;
      }
      imported.push(targetName);
      if (files.has(targetName)) continue;
      let targetText: string;
      try {
        targetText = read(target);
      } catch (error) {
        diagnostics.push(
          diagnostic(Codes.importFailed, item.span, `cannot import "${item.path}": ${errorText(error)}`, `the path is relative to ${display(dirname(absolute)) || '.'}/`),
        );
        continue;
      }
      visit(target, targetText, [...stack, absolute]);
    }
    return parsed.ast;
  };

  const main = visit(mainAbsolute, mainText, []);
  return { main, files, sources, importsOf, diagnostics };
}

function errorText(error: unknown): string {
  if (error !== null && typeof error === 'object' && 'code' in error && typeof error.code === 'string') {
    return error.code === 'ENOENT' ? 'no such file' : error.code === 'EISDIR' ? 'is a directory' : error.code;
  }
  return String(error);
}
