// CST → typed AST. Recovery may have dropped any child: every access is guarded
// and a dropped value becomes `{ type: 'missing' }` at the nearest known span.
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { Codes, diagnostic, type Diagnostic, type Span } from './diagnostics.ts';
import { decodeString, lex, tokenSpan } from './lexer.ts';
import { parser } from './parser.ts';

export interface ParseResult {
  ast: A.SourceFile;
  diagnostics: Diagnostic[];
}

function isToken(element: CstElement | undefined): element is IToken {
  return element !== undefined && 'image' in element;
}

function isNode(element: CstElement | undefined): element is CstNode {
  return element !== undefined && 'children' in element;
}

class Builder {
  constructor(
    private readonly file: string,
    private readonly diagnostics: Diagnostic[],
  ) {}

  private tokens(node: CstNode, label: string): IToken[] {
    return (node.children[label] ?? []).filter(isToken).filter((t) => !t.isInsertedInRecovery);
  }

  private token(node: CstNode, label: string): IToken | undefined {
    return this.tokens(node, label)[0];
  }

  private nodes(node: CstNode, label: string): CstNode[] {
    return (node.children[label] ?? []).filter(isNode);
  }

  private node(node: CstNode, label: string): CstNode | undefined {
    return this.nodes(node, label)[0];
  }

  /** Span of a whole CST node (Chevrotain tracks node locations; recovery may leave NaN). */
  span(node: CstNode | undefined): Span {
    const l = node?.location;
    if (l === undefined || !Number.isFinite(l.startOffset) || !Number.isFinite(l.endOffset) || !Number.isFinite(l.startLine) || !Number.isFinite(l.endLine)) {
      return { file: this.file, line: 1, col: 1, endLine: 1, endCol: 2, offset: 0, endOffset: 1 };
    }
    return { file: this.file, line: l.startLine!, col: l.startColumn!, endLine: l.endLine!, endCol: l.endColumn! + 1, offset: l.startOffset, endOffset: l.endOffset! + 1 };
  }

  /** Whether a node holds at least one real (not recovery-inserted) token. */
  hasTokens(node: CstNode): boolean {
    for (const list of Object.values(node.children)) {
      for (const element of list) {
        if (isToken(element) ? !element.isInsertedInRecovery : this.hasTokens(element)) return true;
      }
    }
    return false;
  }

  private tokenSpan(token: IToken): Span {
    return tokenSpan(this.file, token);
  }

  private name(token: IToken | undefined, fallback: Span): A.Name {
    return token === undefined ? { name: '', span: fallback } : { name: token.image, span: this.tokenSpan(token) };
  }

  value(node: CstNode | undefined, fallback: Span): A.Value {
    if (node === undefined || !this.hasTokens(node)) return { type: 'missing', span: fallback };
    const span = this.span(node);
    const number = this.token(node, 'number');
    if (number !== undefined) {
      const match = /^(\d+(?:\.\d+)?)(.*)$/.exec(number.image)!;
      const sign = this.token(node, 'minus') === undefined ? 1 : -1;
      return { type: 'number', value: sign * Number(match[1]), unit: match[2]!, text: (sign < 0 ? '-' : '') + number.image, span };
    }
    const string = this.token(node, 'string');
    if (string !== undefined) return { type: 'string', value: decodeString(this.file, string, this.diagnostics), span };
    const name = this.token(node, 'name');
    if (name !== undefined) return { type: 'name', name: name.image, span };
    return { type: 'missing', span };
  }

  private rangeSpec(node: CstNode | undefined): A.RangeSpec | undefined {
    if (node === undefined) return undefined;
    const span = this.span(node);
    const to = this.node(node, 'to');
    const range: A.RangeSpec = { from: this.value(this.node(node, 'from'), span), span };
    if (to !== undefined || (node.children['DotDot'] ?? []).length > 0) range.to = this.value(to, span);
    return range;
  }

  selector(node: CstNode | undefined, fallback: Span): A.Selector {
    if (node === undefined) return { name: '', span: fallback };
    const span = this.span(node);
    const selector: A.Selector = { name: this.token(node, 'name')?.image ?? '', span };
    const range = this.rangeSpec(this.node(node, 'rangeSpec'));
    if (range !== undefined) selector.range = range;
    return selector;
  }

  settings(node: CstNode | undefined): A.Setting[] {
    if (node === undefined) return [];
    return this.nodes(node, 'setting').map((setting) => {
      const span = this.span(setting);
      const flag = this.token(setting, 'flag');
      if (flag !== undefined) return { key: this.name(flag, span), packets: false, span };
      const result: A.Setting = {
        key: this.name(this.token(setting, 'key'), span),
        value: this.value(this.node(setting, 'value'), span),
        packets: this.token(setting, 'Kw_packets') !== undefined,
        span,
      };
      return result;
    });
  }

  unknown(node: CstNode): { type: 'unknown'; keyword: A.Name; span: Span } {
    const span = this.span(node);
    return { type: 'unknown', keyword: this.name(this.token(node, 'keyword'), span), span };
  }

  hostItems(body: CstNode | undefined): A.HostItem[] {
    if (body === undefined) return [];
    const items: A.HostItem[] = [];
    for (const item of this.nodes(body, 'hostItem')) {
      const setting = this.node(item, 'hostSetting');
      const run = this.node(item, 'runItem');
      const env = this.node(item, 'envItem');
      const file = this.node(item, 'fileItem');
      const app = this.node(item, 'appItem');
      const unknown = this.node(item, 'unknownItem');
      if (setting !== undefined) {
        const key = this.token(setting, 'key');
        if (key === undefined) continue;
        const span = this.span(setting);
        items.push({
          type: 'setting',
          key: key.image as A.HostSettingKey,
          keySpan: this.tokenSpan(key),
          value: this.value(this.node(setting, 'value'), span),
          span,
        });
      } else if (run !== undefined) {
        const span = this.span(run);
        const result: A.HostItem = { type: 'run', command: this.value(this.node(run, 'command'), span), span };
        const at = this.node(run, 'at');
        if (at !== undefined) result.at = this.value(at, span);
        const as = this.token(run, 'as');
        if (as !== undefined) result.as = this.name(as, span);
        items.push(result);
      } else if (env !== undefined) {
        const span = this.span(env);
        items.push({ type: 'env', name: this.name(this.token(env, 'name'), span), value: this.value(this.node(env, 'value'), span), span });
      } else if (file !== undefined) {
        const span = this.span(file);
        items.push({
          type: 'file',
          path: this.value(this.node(file, 'path'), span),
          content: this.value(this.node(file, 'content'), span),
          span,
        });
      } else if (app !== undefined) {
        const span = this.span(app);
        items.push({ type: 'app', kind: this.name(this.token(app, 'kind'), span), settings: this.settings(this.node(app, 'settingsBlock')), span });
      } else if (unknown !== undefined) {
        items.push(this.unknown(unknown));
      }
    }
    return items;
  }

  letDecl(node: CstNode): A.Let {
    const span = this.span(node);
    return { type: 'let', name: this.name(this.token(node, 'name'), span), value: this.value(this.node(node, 'value'), span), span };
  }

  templateDecl(node: CstNode): A.Template {
    const span = this.span(node);
    const template: A.Template = {
      type: 'template',
      name: this.name(this.token(node, 'name'), span),
      items: this.hostItems(this.node(node, 'hostBody')),
      span,
    };
    const from = this.token(node, 'from');
    if (from !== undefined) template.from = this.name(from, span);
    return template;
  }

  action(node: CstNode): A.Action | undefined {
    const span = this.span(node);
    const link = this.node(node, 'linkAction');
    if (link !== undefined) {
      const op = this.token(link, 'op');
      if (op === undefined) return undefined;
      return {
        type: 'link',
        a: this.selector(this.node(link, 'a'), span),
        b: this.selector(this.node(link, 'b'), span),
        op: op.image as 'down' | 'up' | 'set',
        settings: this.settings(this.node(link, 'settingsBlock')),
        span,
      };
    }
    const unknown = this.node(node, 'unknownItem');
    if (unknown !== undefined) return this.unknown(unknown);
    const verb = this.token(node, 'verb')?.image;
    switch (verb) {
      case 'kill':
      case 'pause':
      case 'resume':
        return { type: verb, host: this.selector(this.node(node, 'selector'), span), span };
      case 'run':
        return { type: 'run', host: this.selector(this.node(node, 'selector'), span), command: this.value(this.node(node, 'value'), span), span };
      case 'log':
        return { type: 'log', text: this.value(this.node(node, 'value'), span), span };
      default:
        return undefined;
    }
  }

  expectation(node: CstNode, span: Span): A.Expectation | undefined {
    const aggregate = this.token(node, 'aggregate');
    if (aggregate !== undefined) {
      const metric = this.name(this.token(node, 'metric'), span);
      const op = this.node(node, 'compareOp');
      const opToken = op === undefined ? undefined : this.token(op, 'op');
      if (opToken !== undefined) {
        return { type: 'compare', aggregate: this.name(aggregate, span), metric, op: opToken.image as A.CompareOp, value: this.value(this.node(node, 'value'), span) };
      }
      if (this.token(node, 'Kw_within') === undefined) return undefined;
      return {
        type: 'within',
        aggregate: this.name(aggregate, span),
        metric,
        value: this.value(this.node(node, 'center'), span),
        tolerance: this.value(this.node(node, 'tolerance'), span),
      };
    }
    if (this.token(node, 'Kw_finished') !== undefined) return { type: 'finished', within: this.value(this.node(node, 'finishedWithin'), span) };
    const selector = this.node(node, 'selector');
    if (selector === undefined) return undefined;
    return { type: 'exit', host: this.selector(selector, span), code: this.value(this.node(node, 'code'), span) };
  }

  scenarioItem(node: CstNode): A.ScenarioItem | undefined {
    const [kind, children] = Object.entries(node.children)[0] ?? [];
    const child = children?.[0];
    if (kind === undefined || !isNode(child)) return undefined;
    const span = this.span(child);
    switch (kind) {
      case 'seedItem':
      case 'durationItem':
        return { type: kind === 'seedItem' ? 'seed' : 'duration', value: this.value(this.node(child, 'value'), span), span };
      case 'untilItem': {
        const selector = this.node(child, 'selector');
        if (selector !== undefined) return { type: 'until', host: this.selector(selector, span), span };
        return this.token(child, 'exit') === undefined ? undefined : { type: 'until', span };
      }
      case 'syncItem':
        return { type: 'sync', settings: this.settings(this.node(child, 'settingsBlock')), span };
      case 'paramItem':
        return { type: 'param', name: this.name(this.token(child, 'name'), span), value: this.value(this.node(child, 'value'), span), span };
      case 'sweepItem':
        return {
          type: 'sweep',
          name: this.name(this.token(child, 'name'), span),
          values: this.nodes(child, 'value').map((v) => this.value(v, span)),
          span,
        };
      case 'letDecl':
        return this.letDecl(child);
      case 'templateDecl':
        return this.templateDecl(child);
      case 'hostDecl': {
        const host: A.ScenarioItem = {
          type: 'host',
          name: this.name(this.token(child, 'name'), span),
          items: this.hostItems(this.node(child, 'hostBody')),
          span,
        };
        const range = this.rangeSpec(this.node(child, 'rangeSpec'));
        if (range !== undefined) host.range = range;
        const from = this.token(child, 'from');
        if (from !== undefined) host.from = this.name(from, span);
        return host;
      }
      case 'switchDecl': {
        const sw: A.ScenarioItem = {
          type: 'switch',
          name: this.name(this.token(child, 'name'), span),
          settings: this.settings(this.node(child, 'settingsBlock')),
          span,
        };
        const range = this.rangeSpec(this.node(child, 'rangeSpec'));
        if (range !== undefined) sw.range = range;
        return sw;
      }
      case 'linkDecl': {
        const body = this.node(child, 'settingsBlock');
        return {
          type: 'link',
          a: this.selector(this.node(child, 'a'), span),
          b: this.selector(this.node(child, 'b'), span),
          settings: this.settings(body),
          hasBody: body !== undefined,
          span,
        };
      }
      case 'atDecl':
        return {
          type: 'at',
          time: this.value(this.node(child, 'value'), span),
          actions: this.nodes(child, 'action').flatMap((a) => this.action(a) ?? []),
          span,
        };
      case 'metricDecl':
        return {
          type: 'metric',
          name: this.name(this.token(child, 'name'), span),
          from: this.selector(this.node(child, 'selector'), span),
          regex: this.value(this.node(child, 'value'), span),
          span,
        };
      case 'expectDecl': {
        const expectation = this.expectation(child, span);
        return expectation === undefined ? undefined : { type: 'expect', expectation, span };
      }
      case 'placeDecl': {
        const glob = this.token(child, 'glob');
        const agent = this.value(this.node(child, 'agent'), span);
        if (glob !== undefined) {
          const pattern = { glob: decodeString(this.file, glob, this.diagnostics), span: this.tokenSpan(glob) };
          return { type: 'place', pattern, agent, span };
        }
        const selector = this.selector(this.node(child, 'selector'), span);
        const star = this.token(child, 'star');
        if (star !== undefined) return { type: 'place', pattern: { glob: selector.name + '*', span: selector.span }, agent, span };
        return { type: 'place', pattern: selector, agent, span };
      }
      case 'unknownItem':
        return this.unknown(child);
      default:
        return undefined;
    }
  }

  sourceFile(root: CstNode | undefined, path: string): A.SourceFile {
    const result: A.SourceFile = { path, imports: [], lets: [], templates: [], scenarios: [], unknown: [] };
    if (root === undefined) return result;
    for (const node of this.nodes(root, 'importDecl')) {
      const token = this.token(node, 'path');
      if (token !== undefined) result.imports.push({ type: 'import', path: decodeString(this.file, token, this.diagnostics), span: this.span(node) });
    }
    for (const node of this.nodes(root, 'letDecl')) result.lets.push(this.letDecl(node));
    for (const node of this.nodes(root, 'templateDecl')) result.templates.push(this.templateDecl(node));
    for (const node of this.nodes(root, 'unknownItem')) result.unknown.push(this.unknown(node).keyword);
    for (const node of this.nodes(root, 'scenarioDecl')) {
      const nameToken = this.token(node, 'name');
      const span = this.span(node);
      result.scenarios.push({
        type: 'scenario',
        name: nameToken === undefined ? '' : decodeString(this.file, nameToken, this.diagnostics),
        nameSpan: nameToken === undefined ? span : this.tokenSpan(nameToken),
        items: this.nodes(node, 'scenarioItem').flatMap((item) => this.scenarioItem(item) ?? []),
        span,
      });
    }
    return result;
  }
}

/** Lexes and parses one file's text. Never throws for any input. */
export function parse(file: string, text: string): ParseResult {
  const lexed = lex(file, text);
  const diagnostics = [...lexed.diagnostics];
  const p = parser();
  p.input = lexed.tokens;
  const cst = p.file();
  const syntaxErrors = p.errors;
  p.input = []; // drop references to the tokens
  for (const error of syntaxErrors) {
    const span = tokenSpan(file, error.token);
    // an error at end of file points at the last real token's end instead of nowhere
    const last = lexed.tokens[lexed.tokens.length - 1];
    const where = Number.isFinite(error.token.startOffset) || last === undefined ? span : { ...tokenSpan(file, last) };
    diagnostics.push(diagnostic(Codes.syntax, where, error.message));
  }
  const builder = new Builder(file, diagnostics);
  return { ast: builder.sourceFile(cst, file), diagnostics };
}
