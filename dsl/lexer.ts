// Lexer for .scn files (Chevrotain). Keywords are contextual: every keyword
// token is also a `NameLike`, so a host may be called `link` or `set`.
import { createToken, Lexer, type IToken, type TokenType } from 'chevrotain';
import { Codes, diagnostic, type Diagnostic, type Span } from './diagnostics.ts';

export const NameLike = createToken({ name: 'NameLike', pattern: Lexer.NA });

// A name may contain single hyphens between word characters (`db-primary`),
// never `--`, so `a--b` still reads as a link between `a` and `b`.
export const Identifier = createToken({
  name: 'Identifier',
  pattern: /[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*/,
  categories: [NameLike],
});

function keyword(word: string): TokenType {
  return createToken({
    name: 'Kw_' + word,
    pattern: new RegExp(word),
    longer_alt: Identifier,
    categories: [NameLike],
  });
}

export const keywordWords = [
  'import', 'let', 'template', 'scenario', 'seed', 'duration', 'until', 'exits', 'exit', 'sync', 'param',
  'sweep', 'in', 'host', 'from', 'switch', 'link', 'at', 'metric', 'match', 'expect', 'within',
  'finished', 'place', 'on', 'kind', 'cpus', 'cpu_scale', 'memory', 'cache_ways', 'mem_bandwidth', 'run',
  'as', 'env', 'file', 'image', 'kernel', 'initrd', 'append', 'backend', 'app', 'capture', 'packets',
  'down', 'up', 'set', 'kill', 'pause', 'resume', 'log',
] as const;
export type KeywordWord = (typeof keywordWords)[number];

export const Kw = Object.fromEntries(keywordWords.map((w) => [w, keyword(w)])) as Record<KeywordWord, TokenType>;

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n\f\v]+/, group: Lexer.SKIPPED });
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({ name: 'BlockComment', pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED });
// Caught so the checker can say "unterminated" instead of a cascade of errors.
export const UnterminatedComment = createToken({ name: 'UnterminatedComment', pattern: /\/\*[\s\S]*/, group: 'broken' });
export const StringLiteral = createToken({ name: 'StringLiteral', pattern: /"(?:[^"\\\n]|\\[^\n])*"/ });
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"(?:[^"\\\n]|\\[^\n])*/ });
// A number with its unit glued on (`10ms`, `1.5Gbit/s`, `0.5%`); the checker interprets units.
export const NumberLiteral = createToken({
  name: 'NumberLiteral',
  pattern: /\d+(?:\.\d+)?(?:[A-Za-z_%µ]+(?:\/s)?)?/,
});
export const LCurly = createToken({ name: 'LCurly', pattern: /\{/ });
export const RCurly = createToken({ name: 'RCurly', pattern: /\}/ });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
export const RBracket = createToken({ name: 'RBracket', pattern: /\]/ });
export const LParen = createToken({ name: 'LParen', pattern: /\(/ });
export const RParen = createToken({ name: 'RParen', pattern: /\)/ });
export const Comma = createToken({ name: 'Comma', pattern: /,/ });
export const DotDot = createToken({ name: 'DotDot', pattern: /\.\./ });
export const DashDash = createToken({ name: 'DashDash', pattern: /--/ });
export const PlusMinus = createToken({ name: 'PlusMinus', pattern: /\+-|±/ });
export const Minus = createToken({ name: 'Minus', pattern: /-/ });
export const LessEq = createToken({ name: 'LessEq', pattern: /<=/ });
export const GreaterEq = createToken({ name: 'GreaterEq', pattern: />=/ });
export const EqEq = createToken({ name: 'EqEq', pattern: /==/ });
export const NotEq = createToken({ name: 'NotEq', pattern: /!=/ });
export const Less = createToken({ name: 'Less', pattern: /</ });
export const Greater = createToken({ name: 'Greater', pattern: />/ });
export const Equals = createToken({ name: 'Equals', pattern: /=/ });
export const Star = createToken({ name: 'Star', pattern: /\*/ });

export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  StringLiteral,
  UnterminatedString,
  NumberLiteral,
  LCurly,
  RCurly,
  LBracket,
  RBracket,
  LParen,
  RParen,
  Comma,
  DotDot,
  DashDash,
  PlusMinus,
  Minus,
  LessEq,
  GreaterEq,
  EqEq,
  NotEq,
  Less,
  Greater,
  Equals,
  Star,
  // Longest keywords first: `in` must not claim the start of `initrd`, nor `app` of `append`.
  ...[...keywordWords].sort((a, b) => b.length - a.length).map((w) => Kw[w]),
  Identifier,
  NameLike,
];

const scnLexer = new Lexer(allTokens, { ensureOptimizations: false, positionTracking: 'full' });

export interface LexResult {
  tokens: IToken[];
  diagnostics: Diagnostic[];
}

/** Hard cap on input size: a larger file is refused with a diagnostic, never parsed slowly. */
export const MAX_SOURCE_BYTES = 32 * 1024 * 1024;

export function tokenSpan(file: string, token: IToken): Span {
  const line = Number.isFinite(token.startLine) ? token.startLine! : 1;
  const col = Number.isFinite(token.startColumn) ? token.startColumn! : 1;
  const endLine = Number.isFinite(token.endLine) ? token.endLine! : line;
  const endCol = Number.isFinite(token.endColumn) ? token.endColumn! + 1 : col + 1;
  const offset = Number.isFinite(token.startOffset) ? token.startOffset : 0;
  const endOffset = Number.isFinite(token.endOffset) ? token.endOffset! + 1 : offset + 1;
  return { file, line, col, endLine, endCol, offset, endOffset };
}

export function lex(file: string, text: string): LexResult {
  const diagnostics: Diagnostic[] = [];
  if (text.length > MAX_SOURCE_BYTES) {
    diagnostics.push(
      diagnostic(
        Codes.inputTooLarge,
        { file, line: 1, col: 1, endLine: 1, endCol: 2, offset: 0, endOffset: 1 },
        `file is ${text.length} bytes; the limit is ${MAX_SOURCE_BYTES}`,
        'split the scenario with import, or generate fewer hosts with ranges (web[1..1000])',
      ),
    );
    return { tokens: [], diagnostics };
  }
  const result = scnLexer.tokenize(text);
  for (const error of result.errors) {
    const length = Math.max(1, error.length);
    const line = error.line ?? 1;
    const col = error.column ?? 1;
    const character = text.slice(error.offset, error.offset + Math.min(length, 20));
    diagnostics.push(
      diagnostic(
        Codes.unexpectedCharacter,
        { file, line, col, endLine: line, endCol: col + length, offset: error.offset, endOffset: error.offset + length },
        `unexpected character${length > 1 ? 's' : ''} ${JSON.stringify(character)}`,
        'names are letters, digits, _ and single -; strings are in "double quotes"',
      ),
    );
  }
  const tokens: IToken[] = [];
  for (const token of result.tokens) {
    if (token.tokenType === UnterminatedString) {
      diagnostics.push(
        diagnostic(Codes.unterminated, tokenSpan(file, token), 'unterminated string', 'close it with " on the same line (use \\n for a newline)'),
      );
      // keep going as if it were closed: one mistake, one diagnostic
      tokens.push({ ...token, image: token.image + '"', tokenType: StringLiteral });
    } else {
      tokens.push(token);
    }
  }
  for (const token of result.groups['broken'] ?? []) {
    diagnostics.push(diagnostic(Codes.unterminated, tokenSpan(file, token), 'unterminated block comment', 'close it with */'));
  }
  return { tokens, diagnostics };
}

const escapes: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t' };

/** Decodes a string literal's escapes; unknown escapes become diagnostics and are kept literally. */
export function decodeString(file: string, token: IToken, diagnostics: Diagnostic[]): string {
  const body = token.image.slice(1, -1);
  if (!body.includes('\\')) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = body[i + 1];
    const replacement = next === undefined ? undefined : escapes[next];
    if (replacement === undefined) {
      const span = tokenSpan(file, token);
      const col = span.col + 1 + i;
      diagnostics.push(
        diagnostic(
          Codes.badEscape,
          { ...span, col, endCol: col + 2, endLine: span.line, offset: span.offset + 1 + i, endOffset: span.offset + 3 + i },
          `unknown escape '\\${next ?? ''}' in string`,
          'the escapes are \\" \\\\ \\n \\t',
        ),
      );
      out += '\\' + (next ?? '');
    } else {
      out += replacement;
    }
    i++;
  }
  return out;
}
