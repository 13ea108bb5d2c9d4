// Chevrotain grammar for .scn (LANGUAGE.md). Error recovery is on, so one run
// reports many errors; `build.ts` turns the CST into the typed AST.
import { CstParser, EOF, type CstNode, type IToken, type TokenType, type IParserErrorMessageProvider } from 'chevrotain';
import * as T from './lexer.ts';

const Kw = T.Kw;

const hostSettingKeywords: TokenType[] = [
  Kw.kind, Kw.cpus, Kw.cpu_scale, Kw.memory, Kw.cache_ways, Kw.mem_bandwidth,
  Kw.image, Kw.kernel, Kw.initrd, Kw.append, Kw.backend,
];

function describe(token: TokenType): string {
  if (token === EOF) return 'end of file';
  if (token.name.startsWith('Kw_')) return `'${token.name.slice(3)}'`;
  const named: Record<string, string> = {
    NameLike: 'a name', Identifier: 'a name', StringLiteral: 'a "string"', NumberLiteral: 'a number',
    LCurly: "'{'", RCurly: "'}'", LBracket: "'['", RBracket: "']'", LParen: "'('", RParen: "')'",
    Comma: "','", DotDot: "'..'", DashDash: "'--'", PlusMinus: "'+-'", Minus: "'-'", Equals: "'='",
    LessEq: "'<='", GreaterEq: "'>='", EqEq: "'=='", NotEq: "'!='", Less: "'<'", Greater: "'>'", Star: "'*'",
  };
  return named[token.name] ?? token.name;
}

function found(token: IToken): string {
  return token.tokenType === EOF ? 'end of file' : `'${token.image.length > 40 ? token.image.slice(0, 40) + '…' : token.image}'`;
}

const valueFirsts = ["'-'", 'a number', 'a "string"', 'a name'];

function uniqueFirsts(paths: TokenType[][][]): string[] {
  const seen = new Set<string>();
  for (const alt of paths) for (const path of alt) if (path[0] !== undefined) seen.add(describe(path[0]));
  // "a value" reads better than its four possible first tokens
  if (valueFirsts.every((v) => seen.has(v))) {
    for (const v of valueFirsts) seen.delete(v);
    return ['a value (number, "string" or name)', ...seen];
  }
  return [...seen];
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    return `expected ${describe(expected)} but found ${found(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `unexpected ${found(firstRedundant)} after the end of the file's items`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual }) {
    const options = uniqueFirsts(expectedPathsPerAlt);
    const shown = options.length > 8 ? options.slice(0, 8).join(', ') + ', …' : options.join(', ');
    return `expected ${shown} but found ${found(actual[0]!)}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual }) {
    return `expected at least one of ${uniqueFirsts([expectedIterationPaths]).join(', ')} but found ${found(actual[0]!)}`;
  },
};

export class ScnParser extends CstParser {
  /** OR alternatives built once, not on every rule call (Chevrotain's documented performance practice) */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each slot holds one OR's alternatives
  private readonly alternatives: any[] = [];

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider: messages, nodeLocationTracking: 'full' });
    this.performSelfAnalysis();
  }

  file = this.RULE('file', () => {
    this.MANY(() =>
      this.OR(this.alternatives[0] ??= [
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.letDecl) },
        { ALT: () => this.SUBRULE(this.templateDecl) },
        { ALT: () => this.SUBRULE(this.scenarioDecl) },
        { ALT: () => this.SUBRULE(this.unknownItem) },
      ]),
    );
  });

  importDecl = this.RULE('importDecl', () => {
    this.CONSUME(Kw.import);
    this.CONSUME(T.StringLiteral, { LABEL: 'path' });
  });

  letDecl = this.RULE('letDecl', () => {
    this.CONSUME(Kw.let);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.value);
  });

  templateDecl = this.RULE('templateDecl', () => {
    this.CONSUME(Kw.template);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(Kw.from);
      this.CONSUME2(T.NameLike, { LABEL: 'from' });
    });
    this.SUBRULE(this.hostBody);
  });

  scenarioDecl = this.RULE('scenarioDecl', () => {
    this.CONSUME(Kw.scenario);
    this.CONSUME(T.StringLiteral, { LABEL: 'name' });
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.scenarioItem));
    this.CONSUME(T.RCurly);
  });

  scenarioItem = this.RULE('scenarioItem', () => {
    this.OR(this.alternatives[1] ??= [
      { ALT: () => this.SUBRULE(this.seedItem) },
      { ALT: () => this.SUBRULE(this.durationItem) },
      { ALT: () => this.SUBRULE(this.untilItem) },
      { ALT: () => this.SUBRULE(this.syncItem) },
      { ALT: () => this.SUBRULE(this.paramItem) },
      { ALT: () => this.SUBRULE(this.sweepItem) },
      { ALT: () => this.SUBRULE(this.letDecl) },
      { ALT: () => this.SUBRULE(this.templateDecl) },
      { ALT: () => this.SUBRULE(this.hostDecl) },
      { ALT: () => this.SUBRULE(this.switchDecl) },
      { ALT: () => this.SUBRULE(this.linkDecl) },
      { ALT: () => this.SUBRULE(this.atDecl) },
      { ALT: () => this.SUBRULE(this.metricDecl) },
      { ALT: () => this.SUBRULE(this.expectDecl) },
      { ALT: () => this.SUBRULE(this.placeDecl) },
      { ALT: () => this.SUBRULE(this.unknownItem) },
    ]);
  });

  seedItem = this.RULE('seedItem', () => {
    this.CONSUME(Kw.seed);
    this.SUBRULE(this.value);
  });

  durationItem = this.RULE('durationItem', () => {
    this.CONSUME(Kw.duration);
    this.SUBRULE(this.value);
  });

  untilItem = this.RULE('untilItem', () => {
    this.CONSUME(Kw.until);
    this.OR(this.alternatives[2] ??= {
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          // `until HOST exits` first: `exit` is also a valid host name
          GATE: () => this.LA(2).tokenType === Kw.exits || this.LA(2).tokenType === T.LBracket,
          ALT: () => {
            this.SUBRULE(this.selector);
            this.CONSUME(Kw.exits);
          },
        },
        { ALT: () => this.CONSUME(Kw.exit, { LABEL: 'exit' }) },
      ],
    });
  });

  syncItem = this.RULE('syncItem', () => {
    this.CONSUME(Kw.sync);
    this.SUBRULE(this.settingsBlock);
  });

  paramItem = this.RULE('paramItem', () => {
    this.CONSUME(Kw.param);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.value);
  });

  sweepItem = this.RULE('sweepItem', () => {
    this.CONSUME(Kw.sweep);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.CONSUME(Kw.in);
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.value);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.value);
      });
    });
    this.CONSUME(T.RBracket);
  });

  hostDecl = this.RULE('hostDecl', () => {
    this.CONSUME(Kw.host);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.OPTION(() => this.SUBRULE(this.rangeSpec));
    this.OPTION2(() => {
      this.CONSUME(Kw.from);
      this.CONSUME2(T.NameLike, { LABEL: 'from' });
    });
    this.OPTION3(() => this.SUBRULE(this.hostBody));
  });

  hostBody = this.RULE('hostBody', () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.hostItem));
    this.CONSUME(T.RCurly);
  });

  hostItem = this.RULE('hostItem', () => {
    this.OR(this.alternatives[3] ??= [
      { ALT: () => this.SUBRULE(this.hostSetting) },
      { ALT: () => this.SUBRULE(this.runItem) },
      { ALT: () => this.SUBRULE(this.envItem) },
      { ALT: () => this.SUBRULE(this.fileItem) },
      { ALT: () => this.SUBRULE(this.appItem) },
      { ALT: () => this.SUBRULE(this.unknownItem) },
    ]);
  });

  hostSetting = this.RULE('hostSetting', () => {
    this.OR(this.alternatives[12] ??= hostSettingKeywords.map((keyword) => ({ ALT: () => this.CONSUME(keyword, { LABEL: 'key' }) })));
    this.SUBRULE(this.value);
  });

  runItem = this.RULE('runItem', () => {
    this.CONSUME(Kw.run);
    this.SUBRULE(this.value, { LABEL: 'command' });
    this.OPTION(() => {
      this.CONSUME(Kw.at);
      this.SUBRULE2(this.value, { LABEL: 'at' });
    });
    this.OPTION2(() => {
      this.CONSUME(Kw.as);
      this.CONSUME(T.NameLike, { LABEL: 'as' });
    });
  });

  envItem = this.RULE('envItem', () => {
    this.CONSUME(Kw.env);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.value);
  });

  fileItem = this.RULE('fileItem', () => {
    this.CONSUME(Kw.file);
    this.SUBRULE(this.value, { LABEL: 'path' });
    this.CONSUME(T.Equals);
    this.SUBRULE2(this.value, { LABEL: 'content' });
  });

  appItem = this.RULE('appItem', () => {
    this.CONSUME(Kw.app);
    this.CONSUME(T.NameLike, { LABEL: 'kind' });
    this.OPTION(() => this.SUBRULE(this.settingsBlock));
  });

  switchDecl = this.RULE('switchDecl', () => {
    this.CONSUME(Kw.switch);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.OPTION(() => this.SUBRULE(this.rangeSpec));
    this.OPTION2(() => this.SUBRULE(this.settingsBlock));
  });

  linkDecl = this.RULE('linkDecl', () => {
    this.CONSUME(Kw.link);
    this.SUBRULE(this.selector, { LABEL: 'a' });
    this.CONSUME(T.DashDash);
    this.SUBRULE2(this.selector, { LABEL: 'b' });
    this.OPTION(() => this.SUBRULE(this.settingsBlock));
  });

  settingsBlock = this.RULE('settingsBlock', () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(T.RCurly);
  });

  setting = this.RULE('setting', () => {
    this.OR(this.alternatives[4] ??= {
      IGNORE_AMBIGUITIES: true,
      DEF: [
        // `capture` is the one flag without a value
        { ALT: () => this.CONSUME(Kw.capture, { LABEL: 'flag' }) },
        {
          ALT: () => {
            this.CONSUME(T.NameLike, { LABEL: 'key' });
            this.SUBRULE(this.value);
            this.OPTION(() => this.CONSUME(Kw.packets));
          },
        },
      ],
    });
  });

  atDecl = this.RULE('atDecl', () => {
    this.CONSUME(Kw.at);
    this.SUBRULE(this.value);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.action));
    this.CONSUME(T.RCurly);
  });

  action = this.RULE('action', () => {
    this.OR(this.alternatives[5] ??= [
      { ALT: () => this.SUBRULE(this.linkAction) },
      {
        ALT: () => {
          this.OR2(this.alternatives[13] ??= [
            { ALT: () => this.CONSUME(Kw.kill, { LABEL: 'verb' }) },
            { ALT: () => this.CONSUME(Kw.pause, { LABEL: 'verb' }) },
            { ALT: () => this.CONSUME(Kw.resume, { LABEL: 'verb' }) },
          ]);
          this.SUBRULE(this.selector);
        },
      },
      {
        ALT: () => {
          this.CONSUME(Kw.run, { LABEL: 'verb' });
          this.SUBRULE2(this.selector);
          this.SUBRULE(this.value);
        },
      },
      {
        ALT: () => {
          this.CONSUME(Kw.log, { LABEL: 'verb' });
          this.SUBRULE2(this.value);
        },
      },
      { ALT: () => this.SUBRULE(this.unknownItem) },
    ]);
  });

  linkAction = this.RULE('linkAction', () => {
    this.CONSUME(Kw.link);
    this.SUBRULE(this.selector, { LABEL: 'a' });
    this.CONSUME(T.DashDash);
    this.SUBRULE2(this.selector, { LABEL: 'b' });
    this.OR(this.alternatives[6] ??= [
      { ALT: () => this.CONSUME(Kw.down, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(Kw.up, { LABEL: 'op' }) },
      {
        ALT: () => {
          this.CONSUME(Kw.set, { LABEL: 'op' });
          this.SUBRULE(this.settingsBlock);
        },
      },
    ]);
  });

  metricDecl = this.RULE('metricDecl', () => {
    this.CONSUME(Kw.metric);
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.CONSUME(Kw.from);
    this.SUBRULE(this.selector);
    this.CONSUME(Kw.match);
    this.SUBRULE(this.value);
  });

  expectDecl = this.RULE('expectDecl', () => {
    this.CONSUME(Kw.expect);
    this.OR(this.alternatives[7] ??= {
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          // AGG(METRIC) OP VALUE | AGG(METRIC) within VALUE +- VALUE
          GATE: () => this.LA(2).tokenType === T.LParen,
          ALT: () => {
            this.CONSUME(T.NameLike, { LABEL: 'aggregate' });
            this.CONSUME(T.LParen);
            this.CONSUME2(T.NameLike, { LABEL: 'metric' });
            this.CONSUME(T.RParen);
            this.OR2(this.alternatives[14] ??= [
              {
                ALT: () => {
                  this.SUBRULE(this.compareOp);
                  this.SUBRULE(this.value);
                },
              },
              {
                ALT: () => {
                  this.CONSUME(Kw.within);
                  this.SUBRULE2(this.value, { LABEL: 'center' });
                  this.CONSUME(T.PlusMinus);
                  this.SUBRULE3(this.value, { LABEL: 'tolerance' });
                },
              },
            ]);
          },
        },
        {
          GATE: () => this.LA(2).tokenType === Kw.within,
          ALT: () => {
            this.CONSUME(Kw.finished);
            this.CONSUME2(Kw.within);
            this.SUBRULE4(this.value, { LABEL: 'finishedWithin' });
          },
        },
        {
          ALT: () => {
            this.SUBRULE(this.selector);
            this.CONSUME(Kw.exit);
            this.SUBRULE5(this.value, { LABEL: 'code' });
          },
        },
      ],
    });
  });

  compareOp = this.RULE('compareOp', () => {
    this.OR(this.alternatives[8] ??= [
      { ALT: () => this.CONSUME(T.LessEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.GreaterEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.EqEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.NotEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.Less, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.Greater, { LABEL: 'op' }) },
    ]);
  });

  placeDecl = this.RULE('placeDecl', () => {
    this.CONSUME(Kw.place);
    this.OR(this.alternatives[9] ??= [
      { ALT: () => this.CONSUME(T.StringLiteral, { LABEL: 'glob' }) },
      {
        ALT: () => {
          this.SUBRULE(this.selector);
          this.OPTION(() => this.CONSUME(T.Star, { LABEL: 'star' }));
        },
      },
    ]);
    this.CONSUME(Kw.on);
    this.SUBRULE(this.value, { LABEL: 'agent' });
  });

  /** A word that starts no known item: kept, so the checker can say "did you mean". */
  unknownItem = this.RULE('unknownItem', () => {
    this.CONSUME(T.Identifier, { LABEL: 'keyword' });
    this.OPTION(() =>
      this.OR(this.alternatives[10] ??= [
        { ALT: () => this.CONSUME(T.NumberLiteral, { LABEL: 'rest' }) },
        { ALT: () => this.CONSUME(T.StringLiteral, { LABEL: 'rest' }) },
      ]),
    );
  });

  selector = this.RULE('selector', () => {
    this.CONSUME(T.NameLike, { LABEL: 'name' });
    this.OPTION(() => this.SUBRULE(this.rangeSpec));
  });

  rangeSpec = this.RULE('rangeSpec', () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.value, { LABEL: 'from' });
    this.OPTION(() => {
      this.CONSUME(T.DotDot);
      this.SUBRULE2(this.value, { LABEL: 'to' });
    });
    this.CONSUME(T.RBracket);
  });

  value = this.RULE('value', () => {
    this.OR(this.alternatives[11] ??= [
      {
        ALT: () => {
          this.OPTION(() => this.CONSUME(T.Minus, { LABEL: 'minus' }));
          this.CONSUME(T.NumberLiteral, { LABEL: 'number' });
        },
      },
      { ALT: () => this.CONSUME(T.StringLiteral, { LABEL: 'string' }) },
      { ALT: () => this.CONSUME(T.NameLike, { LABEL: 'name' }) },
    ]);
  });
}

let shared: ScnParser | undefined;

/** One parser instance (self-analysis is costly); parsing is synchronous, so sharing is safe. */
export function parser(): ScnParser {
  shared ??= new ScnParser();
  return shared;
}

export type { CstNode };
