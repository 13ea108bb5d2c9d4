// The typed syntax tree of a .scn file. Every node carries its source span.
// Parsing with error recovery may leave pieces out: optional fields and
// `missing` values stand for them, and the checker never assumes presence.
import type { Span } from './diagnostics.ts';

export interface Name {
  name: string;
  span: Span;
}

export type Value =
  /** `10ms`, `3`, `0.5%`: `unit` is '' for a plain number; `text` is the literal as written */
  | { type: 'number'; value: number; unit: string; text: string; span: Span }
  | { type: 'string'; value: string; span: Span }
  /** a bare word: a let/param/sweep reference, or an enum word such as `process` */
  | { type: 'name'; name: string; span: Span }
  /** left out by error recovery */
  | { type: 'missing'; span: Span };

/** `[1..4]` (a range) or `[2]` (one index) after a name */
export interface RangeSpec {
  from: Value;
  to?: Value;
  span: Span;
}

/** A reference to a host or switch: `web`, `web[1..4]`, `web[2]` */
export interface Selector {
  name: string;
  range?: RangeSpec;
  span: Span;
}

/** `latency 10ms`, `queue 100 packets`, `capture`, `to server` inside `{ }` */
export interface Setting {
  key: Name;
  value?: Value;
  packets: boolean;
  span: Span;
}

export type HostSettingKey =
  | 'kind'
  | 'cpus'
  | 'cpu_scale'
  | 'memory'
  | 'cache_ways'
  | 'mem_bandwidth'
  | 'image'
  | 'kernel'
  | 'initrd'
  | 'append'
  | 'backend';

export type HostItem =
  | { type: 'setting'; key: HostSettingKey; keySpan: Span; value: Value; span: Span }
  | { type: 'run'; command: Value; at?: Value; as?: Name; span: Span }
  | { type: 'env'; name: Name; value: Value; span: Span }
  | { type: 'file'; path: Value; content: Value; span: Span }
  | { type: 'app'; kind: Name; settings: Setting[]; span: Span }
  | { type: 'unknown'; keyword: Name; span: Span };

export type Action =
  | { type: 'link'; a: Selector; b: Selector; op: 'down' | 'up' | 'set'; settings: Setting[]; span: Span }
  | { type: 'kill' | 'pause' | 'resume'; host: Selector; span: Span }
  | { type: 'run'; host: Selector; command: Value; span: Span }
  | { type: 'log'; text: Value; span: Span }
  | { type: 'unknown'; keyword: Name; span: Span };

export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export type Expectation =
  | { type: 'exit'; host: Selector; code: Value }
  | { type: 'compare'; aggregate: Name; metric: Name; op: CompareOp; value: Value }
  | { type: 'within'; aggregate: Name; metric: Name; value: Value; tolerance: Value }
  | { type: 'finished'; within: Value };

export interface Let {
  type: 'let';
  name: Name;
  value: Value;
  span: Span;
}

export interface Template {
  type: 'template';
  name: Name;
  from?: Name;
  items: HostItem[];
  span: Span;
}

export type ScenarioItem =
  | { type: 'seed' | 'duration'; value: Value; span: Span }
  | { type: 'until'; host?: Selector; span: Span }
  | { type: 'sync'; settings: Setting[]; span: Span }
  | { type: 'param'; name: Name; value: Value; span: Span }
  | { type: 'sweep'; name: Name; values: Value[]; span: Span }
  | Let
  | Template
  | { type: 'host'; name: Name; range?: RangeSpec; from?: Name; items: HostItem[]; span: Span }
  | { type: 'switch'; name: Name; range?: RangeSpec; settings: Setting[]; span: Span }
  | { type: 'link'; a: Selector; b: Selector; settings: Setting[]; hasBody: boolean; span: Span }
  | { type: 'at'; time: Value; actions: Action[]; span: Span }
  | { type: 'metric'; name: Name; from: Selector; regex: Value; span: Span }
  | { type: 'expect'; expectation: Expectation; span: Span }
  | { type: 'place'; pattern: Selector | { glob: string; span: Span }; agent: Value; span: Span }
  | { type: 'unknown'; keyword: Name; span: Span };

export interface Import {
  type: 'import';
  path: string;
  span: Span;
}

export interface Scenario {
  type: 'scenario';
  name: string;
  nameSpan: Span;
  items: ScenarioItem[];
  span: Span;
}

export interface SourceFile {
  path: string;
  imports: Import[];
  lets: Let[];
  templates: Template[];
  scenarios: Scenario[];
  /** top-level words that are not import/let/template/scenario */
  unknown: Name[];
}
