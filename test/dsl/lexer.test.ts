import test from 'ava';
import { Codes } from '../../dsl/diagnostics.ts';
import { decodeString, keywordWords, lex, MAX_SOURCE_BYTES } from '../../dsl/lexer.ts';
import type { Diagnostic } from '../../dsl/diagnostics.ts';

/** `Kind:image` of every token. */
function kinds(text: string): string[] {
  const result = lex('t.scn', text);
  return result.tokens.map((t) => `${t.tokenType.name}:${t.image}`);
}

function clean(text: string): string[] {
  const result = lex('t.scn', text);
  if (result.diagnostics.length > 0) throw new Error(JSON.stringify(result.diagnostics));
  return kinds(text);
}

test('every punctuation and operator token kind', (t) => {
  t.deepEqual(clean('{ } [ ] ( ) , .. -- +- ± - <= >= == != < > = *'), [
    'LCurly:{', 'RCurly:}', 'LBracket:[', 'RBracket:]', 'LParen:(', 'RParen:)', 'Comma:,', 'DotDot:..',
    'DashDash:--', 'PlusMinus:+-', 'PlusMinus:±', 'Minus:-', 'LessEq:<=', 'GreaterEq:>=', 'EqEq:==', 'NotEq:!=',
    'Less:<', 'Greater:>', 'Equals:=', 'Star:*',
  ]);
});

test('operators without spaces are split longest first', (t) => {
  t.deepEqual(clean('<=<>=>==!==--'), [
    'LessEq:<=', 'Less:<', 'GreaterEq:>=', 'GreaterEq:>=', 'Equals:=', 'NotEq:!=', 'Equals:=', 'DashDash:--',
  ]);
  t.deepEqual(clean('a<b>c==d'), ['Identifier:a', 'Less:<', 'Identifier:b', 'Greater:>', 'Identifier:c', 'EqEq:==', 'Identifier:d']);
});

test('every keyword lexes as its own keyword token', (t) => {
  for (const word of keywordWords) {
    t.deepEqual(clean(word), [`Kw_${word}:${word}`], word);
  }
});

test('identifiers, strings, numbers; whitespace and both comment forms are skipped', (t) => {
  t.deepEqual(clean('host_1 "a b" 3 // line comment\n/* block\n comment */ 0.25\t\r\nx'), [
    'Identifier:host_1', 'StringLiteral:"a b"', 'NumberLiteral:3', 'NumberLiteral:0.25', 'Identifier:x',
  ]);
  t.deepEqual(clean('// only a comment'), []);
  t.deepEqual(clean('/**/a/* x */b'), ['Identifier:a', 'Identifier:b']);
});

test('numbers keep their unit glued on', (t) => {
  t.deepEqual(clean('10ms 1.5Gbit/s 0.5% 64KiB 250us 250µs 3 0.25 100Mbit 1.5min'), [
    'NumberLiteral:10ms', 'NumberLiteral:1.5Gbit/s', 'NumberLiteral:0.5%', 'NumberLiteral:64KiB',
    'NumberLiteral:250us', 'NumberLiteral:250µs', 'NumberLiteral:3', 'NumberLiteral:0.25', 'NumberLiteral:100Mbit',
    'NumberLiteral:1.5min',
  ]);
});

test('a negative number is a minus then a number', (t) => {
  t.deepEqual(clean('-1ms'), ['Minus:-', 'NumberLiteral:1ms']);
});

test('web[1..4] lexes as name, [, 1, .., 4, ]', (t) => {
  t.deepEqual(clean('web[1..4]'), ['Identifier:web', 'LBracket:[', 'NumberLiteral:1', 'DotDot:..', 'NumberLiteral:4', 'RBracket:]']);
  t.deepEqual(clean('leaf[10..200]'), ['Identifier:leaf', 'LBracket:[', 'NumberLiteral:10', 'DotDot:..', 'NumberLiteral:200', 'RBracket:]']);
});

test('identifiers take single hyphens but never --', (t) => {
  t.deepEqual(clean('db-primary'), ['Identifier:db-primary']);
  t.deepEqual(clean('a-b-c x-1'), ['Identifier:a-b-c', 'Identifier:x-1']);
  t.deepEqual(clean('a--b'), ['Identifier:a', 'DashDash:--', 'Identifier:b']);
  t.deepEqual(clean('web1--sw0'), ['Identifier:web1', 'DashDash:--', 'Identifier:sw0']);
  t.deepEqual(clean('db-primary--db-replica'), ['Identifier:db-primary', 'DashDash:--', 'Identifier:db-replica']);
  t.deepEqual(clean('a- b'), ['Identifier:a', 'Minus:-', 'Identifier:b']);
});

test('keywords are whole words: longer names that start with a keyword are identifiers', (t) => {
  t.deepEqual(clean('links settings index onoff runner kinds link-a set-1'), [
    'Identifier:links', 'Identifier:settings', 'Identifier:index', 'Identifier:onoff', 'Identifier:runner',
    'Identifier:kinds', 'Identifier:link-a', 'Identifier:set-1',
  ]);
});

test('initrd, append, import, exits are not broken by the in, app, exit prefixes', (t) => {
  t.deepEqual(clean('initrd append import in app exits exit'), [
    'Kw_initrd:initrd', 'Kw_append:append', 'Kw_import:import', 'Kw_in:in', 'Kw_app:app', 'Kw_exits:exits', 'Kw_exit:exit',
  ]);
});

test('keywords are contextual: a host may be called link or set', (t) => {
  // the lexer gives keyword tokens; the parser accepts them as names (see parser.test.ts)
  t.deepEqual(clean('host link { } host set { }'), [
    'Kw_host:host', 'Kw_link:link', 'LCurly:{', 'RCurly:}', 'Kw_host:host', 'Kw_set:set', 'LCurly:{', 'RCurly:}',
  ]);
});

test('token positions are 1-based lines and columns', (t) => {
  const { tokens } = lex('t.scn', 'host a\n  link b -- c');
  const positions = tokens.map((tok) => [tok.image, tok.startLine, tok.startColumn]);
  t.deepEqual(positions, [['host', 1, 1], ['a', 1, 6], ['link', 2, 3], ['b', 2, 8], ['--', 2, 10], ['c', 2, 13]]);
});

test('string escapes decode to their characters', (t) => {
  const { tokens } = lex('t.scn', String.raw`"a\"b\\c\nd\te"`);
  t.is(tokens.length, 1);
  const diagnostics: Diagnostic[] = [];
  t.is(decodeString('t.scn', tokens[0]!, diagnostics), 'a"b\\c\nd\te');
  t.deepEqual(diagnostics, []);
});

test('LS0005: an unknown escape is reported at the backslash and kept literally', (t) => {
  const { tokens } = lex('t.scn', 'x "ab\\qc"');
  const diagnostics: Diagnostic[] = [];
  t.is(decodeString('t.scn', tokens[1]!, diagnostics), 'ab\\qc');
  t.is(diagnostics.length, 1);
  const d = diagnostics[0]!;
  t.is(d.code, Codes.badEscape);
  t.is(d.code, 'LS0005');
  t.is(d.span.line, 1);
  t.is(d.span.col, 6); // x=1, space=2, "=3, a=4, b=5, \=6
  t.is(d.span.endCol, 8);
  t.regex(d.message, /unknown escape '\\q'/);
});

test('LS0003: an unterminated string is one diagnostic and lexing goes on', (t) => {
  const result = lex('t.scn', 'a\n  b "abc\nc');
  t.deepEqual(
    result.diagnostics.map((d) => [d.code, d.span.line, d.span.col, d.message]),
    [['LS0003', 2, 5, 'unterminated string']],
  );
  // kept as a (closed) string so the parser sees one mistake, and the next line still lexes
  t.deepEqual(result.tokens.map((tok) => [tok.tokenType.name, tok.image]), [
    ['Identifier', 'a'], ['Identifier', 'b'], ['StringLiteral', '"abc"'], ['Identifier', 'c'],
  ]);
});

test('LS0003: an unterminated block comment', (t) => {
  const result = lex('t.scn', 'host a\n   /* no end\n host b');
  t.deepEqual(
    result.diagnostics.map((d) => [d.code, d.span.line, d.span.col, d.message]),
    [['LS0003', 2, 4, 'unterminated block comment']],
  );
  t.deepEqual(result.tokens.map((tok) => tok.image), ['host', 'a']);
});

test('LS0001: an unexpected character with its exact line and column', (t) => {
  const result = lex('t.scn', 'host a {\n  cpus 1 @ 2\n}');
  t.is(result.diagnostics.length, 1);
  const d = result.diagnostics[0]!;
  t.is(d.code, 'LS0001');
  t.is(d.severity, 'error');
  t.is(d.span.line, 2);
  t.is(d.span.col, 10);
  t.is(d.span.endCol, 11);
  t.is(d.span.offset, 'host a {\n  cpus 1 '.length);
  t.is(d.message, 'unexpected character "@"');
  t.deepEqual(result.tokens.map((tok) => tok.image), ['host', 'a', '{', 'cpus', '1', '2', '}']);
});

test('LS0001: a run of bad characters is one diagnostic', (t) => {
  const result = lex('t.scn', 'a $$$ b');
  t.deepEqual(result.diagnostics.map((d) => [d.code, d.span.line, d.span.col, d.span.endCol, d.message]), [
    ['LS0001', 1, 3, 6, 'unexpected characters "$$$"'],
  ]);
});

test('LS0006: input over the size limit is refused without lexing', (t) => {
  const result = lex('t.scn', 'a'.repeat(MAX_SOURCE_BYTES + 1));
  t.deepEqual(result.tokens, []);
  t.deepEqual(result.diagnostics.map((d) => [d.code, d.span.line, d.span.col]), [['LS0006', 1, 1]]);
  t.regex(result.diagnostics[0]!.message, /the limit is 33554432/);
});
