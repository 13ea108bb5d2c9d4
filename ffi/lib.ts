// Loads liblivestack.so (built by ffi/build.mjs on `npm install`) and binds
// its functions lazily, so importing a binding module never throws: the
// doctor must be able to report a missing library instead of crashing.
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import type { LibraryHandle, TypeObject } from 'koffi';

/** INT64_MAX, as the C side spells "none" or "no limit" in int64_t fields. */
export const INT64_MAX = 0x7fffffffffffffffn;

/** Must equal LS_ABI_VERSION in ffi/include/livestack.h. */
export const ABI_VERSION = 1;

export const defaultLibraryPath = fileURLToPath(new URL('./build/liblivestack.so', import.meta.url));

/** LIVESTACK_LIB overrides the path (a debug or sanitizer build, or a test
 * of what happens when the library is missing). */
export function libraryPath(): string {
  return process.env.LIVESTACK_LIB || defaultLibraryPath;
}

export class LibraryError extends Error {
  override readonly name = 'LibraryError';
  constructor(
    /** What is wrong, e.g. "/x/liblivestack.so is missing". */
    readonly reason: string,
    /** What to do about it. */
    readonly remedy: string,
    readonly path: string,
  ) {
    super(`${reason}: ${remedy}`);
  }
}

const REBUILD = 'rebuild it with npm run build:ffi';

export interface Library {
  readonly path: string;
  readonly version: string;
  readonly abiVersion: number;
  readonly handle: LibraryHandle;
}

type KoffiFunction = ReturnType<LibraryHandle['func']>;
/** koffi's (unexported) TypeSpec: a type name, a TypeObject or koffi.out(...). */
export type TypeSpec = Parameters<typeof koffi.sizeof>[0];

// The outcome of the first load, success or failure: retrying a failed
// dlopen in the same process would only fail the same way.
let loaded: Library | LibraryError | undefined;

/** The library, loaded once per process. Throws LibraryError with what to do. */
export function loadLibrary(): Library {
  loaded ??= openLibrary(libraryPath());
  if (loaded instanceof LibraryError) throw loaded;
  return loaded;
}

function openLibrary(path: string): Library | LibraryError {
  if (!existsSync(path)) {
    return new LibraryError(`${path} is missing`, 'run npm install (it builds ffi/build/liblivestack.so)', path);
  }
  let handle: LibraryHandle;
  try {
    handle = koffi.load(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return new LibraryError(`cannot load ${path}: ${reason}`, REBUILD, path);
  }
  try {
    const abiVersion = handle.func('int ls_abi_version(void)')() as number;
    if (abiVersion !== ABI_VERSION) {
      handle.unload();
      return new LibraryError(`${path} has ABI version ${abiVersion}, these bindings need ${ABI_VERSION}`, REBUILD, path);
    }
    const version = handle.func('const char *ls_version(void)')() as string;
    return { path, version, abiVersion, handle };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return new LibraryError(`${path} is not a LiveStack library: ${reason}`, REBUILD, path);
  }
}

/**
 * Declares a C function on first use. Every struct it exchanges is checked
 * against the C sizeof (ls_sizeof), so a header changed without its binding
 * fails loudly here rather than reading a struct of another layout.
 */
export function lazyFunction(
  name: string,
  result: string,
  parameters: readonly TypeSpec[],
  structs: readonly TypeObject[] = [],
): () => KoffiFunction {
  let bound: KoffiFunction | undefined;
  return () => {
    if (bound) return bound;
    const library = loadLibrary();
    const sizeOf = library.handle.func('long ls_sizeof(const char *type_name)');
    for (const struct of structs) {
      const cSize = sizeOf(struct.name) as number;
      if (cSize !== koffi.sizeof(struct)) {
        throw new LibraryError(
          `struct ${struct.name} is ${cSize} bytes in ${library.path} but ${koffi.sizeof(struct)} in the bindings`,
          REBUILD,
          library.path,
        );
      }
    }
    bound = library.handle.func(name, result, [...parameters]);
    return bound;
  };
}

/** A failed system call, as the C side reports it (negative errno). */
export interface ErrnoError {
  /** Positive errno value. */
  readonly errno: number;
  /** Its symbolic name, e.g. "ENOENT"; "E<n>" if Node does not know it. */
  readonly code: string;
}

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Aliases share a number (EWOULDBLOCK = EAGAIN): keep the first, usual one.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

export function errnoName(errno: number): string {
  const positive = Math.abs(errno);
  return errnoNames.get(positive) ?? `E${positive}`;
}

/** null for 0 (success), else the error; accepts -errno or errno. */
export function errnoError(result: number): ErrnoError | null {
  if (result === 0) return null;
  return { errno: Math.abs(result), code: errnoName(result) };
}
