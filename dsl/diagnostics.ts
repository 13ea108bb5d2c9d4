// Diagnostics: every problem in a scenario is reported as data, never thrown.
// Codes are stable (documented in docs/LANGUAGE.md); tests pin code, span and message.

export type Severity = 'error' | 'warning';

/** A source range. Lines and columns are 1-based; offsets are 0-based, end exclusive. */
export interface Span {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
  offset: number;
  endOffset: number;
}

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  span: Span;
  /** "did you mean …" or what to do; shown after the excerpt */
  hint?: string;
}

/** The catalogue of diagnostic codes: one place, so codes never collide or drift. */
export const Codes = {
  // lexical and syntax
  unexpectedCharacter: 'LS0001',
  syntax: 'LS0002',
  unterminated: 'LS0003',
  unknownItem: 'LS0004',
  badEscape: 'LS0005',
  inputTooLarge: 'LS0006',
  // names and structure
  unknownEndpoint: 'LS1001',
  duplicateName: 'LS1002',
  emptyRange: 'LS1003',
  overlappingRange: 'LS1004',
  unknownTemplate: 'LS1005',
  unknownName: 'LS1006',
  cycle: 'LS1007',
  importFailed: 'LS1008',
  importCycle: 'LS1009',
  unknownMetric: 'LS1010',
  placeMatchesNothing: 'LS1011',
  rangeTooLarge: 'LS1012',
  duplicateLink: 'LS1013',
  selfLink: 'LS1014',
  unknownLink: 'LS1015',
  noScenario: 'LS1016',
  unknownParam: 'LS1017',
  duplicateItem: 'LS1018',
  unknownScenario: 'LS1019',
  // values and units
  missingUnit: 'LS2001',
  wrongUnitKind: 'LS2002',
  unknownUnit: 'LS2003',
  outOfRange: 'LS2004',
  wrongValueType: 'LS2005',
  unknownEnum: 'LS2006',
  notInteger: 'LS2007',
  // semantics
  missingLatency: 'LS3001',
  windowTooLarge: 'LS3002',
  atAfterDuration: 'LS3003',
  appOnLiveHost: 'LS3004',
  runOnModelHost: 'LS3005',
  badRegex: 'LS3006',
  regexNoGroup: 'LS3007',
  metricWithUnit: 'LS3008',
  cpusOverPlaced: 'LS3009',
  badApp: 'LS3010',
  settingNotAllowed: 'LS3011',
  vmItemOnNonVm: 'LS3012',
  untilHostNoCommands: 'LS3013',
  expectExitNoCommands: 'LS3014',
  neverEnds: 'LS3015',
  badSweep: 'LS3016',
  tooManyHosts: 'LS3017',
  unknownAggregate: 'LS3018',
  actionOnModelHost: 'LS3019',
  resctrlOnModelHost: 'LS3020',
  tooManyPoints: 'LS3021',
  vmWithoutImage: 'LS3022',
  tooManyLinks: 'LS3023',
} as const;

export type Code = (typeof Codes)[keyof typeof Codes];

export function diagnostic(
  code: Code,
  span: Span,
  message: string,
  hint?: string,
  severity: Severity = 'error',
): Diagnostic {
  return hint === undefined ? { code, severity, message, span } : { code, severity, message, span, hint };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** Damerau-free Levenshtein distance, bounded: returns > max early for speed. */
export function editDistance(a: string, b: string, max = 3): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return max + 1;
    previous = current;
  }
  return previous[b.length]!;
}

const MAX_SUGGEST_LENGTH = 64;

/** The closest candidate within a distance that scales with the word's length, or undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  // edit distance is O(length²): names this long are generated, not typed, and get no suggestion
  if (word.length > MAX_SUGGEST_LENGTH) return undefined;
  const lower = word.toLowerCase();
  const max = word.length <= 3 ? 1 : word.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = max + 1;
  let examined = 0;
  for (const candidate of candidates) {
    // bounded work: a scenario with 100k hosts must not make one typo cost seconds
    if (++examined > 5_000) break;
    if (candidate.length > MAX_SUGGEST_LENGTH) continue;
    const distance = editDistance(lower, candidate.toLowerCase(), max);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const match = closest(word, candidates);
  return match === undefined ? undefined : `did you mean '${match}'?`;
}

/** Formats one diagnostic as `file:line:col: error LS1001: message`, a caret excerpt and the hint. */
export function formatDiagnostic(d: Diagnostic, sources: ReadonlyMap<string, string>): string {
  const head = `${d.span.file}:${d.span.line}:${d.span.col}: ${d.severity} ${d.code}: ${d.message}`;
  const lines = [head];
  const text = sources.get(d.span.file);
  if (text !== undefined) {
    const sourceLine = lineAt(text, d.span.line);
    if (sourceLine !== undefined) {
      const gutter = String(d.span.line);
      const shown = sourceLine.length > 200 ? sourceLine.slice(0, 200) + '…' : sourceLine;
      const width = d.span.endLine === d.span.line ? Math.max(1, d.span.endCol - d.span.col) : Math.max(1, shown.length - d.span.col + 1);
      const caretStart = Math.min(d.span.col - 1, shown.length);
      lines.push(`  ${gutter} | ${shown.replace(/\t/g, ' ')}`);
      lines.push(`  ${' '.repeat(gutter.length)} | ${' '.repeat(caretStart)}${'^'.repeat(Math.min(width, 200))}`);
    }
  }
  if (d.hint !== undefined) lines.push(`  = ${d.hint}`);
  return lines.join('\n');
}

function lineAt(text: string, line: number): string | undefined {
  let start = 0;
  for (let current = 1; current < line; current++) {
    const next = text.indexOf('\n', start);
    if (next < 0) return undefined;
    start = next + 1;
  }
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? text.length : end).replace(/\r$/, '');
}

/** Sorts diagnostics by file, position, then code: output order is stable. */
export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.sort(
    (a, b) =>
      (a.span.file < b.span.file ? -1 : a.span.file > b.span.file ? 1 : 0) ||
      a.span.offset - b.span.offset ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}
