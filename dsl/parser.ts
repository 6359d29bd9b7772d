// .net parser: recursive descent over the tokens, one statement per line or `;`. It resolves every
// option against its range (errors, never silent defaults) but leaves shapes to the checker.
import { MAX_INPUT, LEAKY_SLOPE, type AugmentValues, type Padding, type SpatialShape, type TrainValues } from './ir.ts';
import {
  ACTIVATIONS,
  LAYERS,
  type ActSpec,
  type LayerBody,
  type LayerSpec,
  type Program,
  type WrittenAct,
} from './ast.ts';
import { DslError, suggest, type Span } from './errors.ts';
import { describe, lex, spanOf, type Token, type TokenKind } from './lexer.ts';
import { elsewhere, positionalHint, quoteHint, settingHint, slopeHint, statementHint, unknownOption } from './keras.ts';
import type { HintAt } from './keras.ts';
import {
  AUGMENT_KEYS,
  TRAIN_KEYS,
  checkValue,
  resolveAugment,
  resolveTrain,
  trainConflicts,
  type ValueSpec,
} from './options.ts';

const STATEMENTS: readonly string[] = ['input', 'train', 'augment', ...LAYERS, ...ACTIVATIONS];
const MAX_DEPTH = 16;

const UNITS: ValueSpec = { type: 'int', min: 1, max: 65536 };
const KERNEL: ValueSpec = { type: 'int', min: 1, max: 7 };
const CONV_STRIDE: ValueSpec = { type: 'int', min: 1, max: 4 };
// The pool kernel takes any stride; up to 7 keeps the default stride (= the window) always legal.
const POOL_STRIDE: ValueSpec = { type: 'int', min: 1, max: 7 };
const UNIT_OPEN: ValueSpec = { type: 'num', min: 0, max: 1, maxOpen: true };
const BOOL: ValueSpec = { type: 'bool' };

const join = (a: Span, b: Token): Span => ({ offset: a.offset, length: b.offset + b.length - a.offset });
/** The table's own entry for `key` (never one inherited from Object, such as "toString"). */
const own = <T>(table: Readonly<Record<string, T>>, key: string): T | undefined =>
  Object.hasOwn(table, key) ? table[key] : undefined;

/** A layer option: a bare flag, or a key that takes `=value`; `slot` is what it sets (each set once). */
type Option = { slot: string } & (
  | { flag: (t: Token) => void; value?: undefined }
  | { value: (t: Token) => void; flag?: undefined }
);

class Parser {
  private pos = 0;
  private readonly tokens: Token[];
  /** What the parser finds past the last token (which is itself the end of file). */
  private readonly eof: Token;
  private last: Token;

  constructor(
    private readonly source: string,
    private readonly file: string,
  ) {
    this.tokens = lex(source);
    this.eof = { kind: 'eof', offset: source.length, length: 0, text: '' };
    this.last = this.tokens[0] ?? this.eof;
  }

  fail(span: Span, message: string, suggestion?: string): never {
    throw new DslError(this.file, this.source, span, message, suggestion);
  }
  /** Fails at `t`; where a Keras spelling is found there (keras.ts), at its span, suggesting fmgpu's. */
  failHint(t: Token, message: string, at: HintAt | undefined, fallback?: string): never {
    const hint = at?.(this.source, t);
    this.fail(hint?.span ?? spanOf(t), message, hint ? hint.suggestion : fallback);
  }
  /** The current token; a malformed one is reported the moment the parser reaches it. */
  peek(): Token {
    const t = this.tokens[this.pos] ?? this.eof;
    if (t.kind === 'error') this.failHint(t, t.message, quoteHint);
    return t;
  }
  next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    this.last = t;
    return t;
  }
  eat(kind: TokenKind): Token | null {
    return this.peek().kind === kind ? this.next() : null;
  }
  expect(kind: TokenKind, what: string): Token {
    return this.eat(kind) ?? this.fail(spanOf(this.peek()), `expected ${what} but found ${describe(this.peek())}`);
  }
  atEnd(): boolean {
    const k = this.peek().kind;
    return k === ';' || k === 'newline' || k === 'eof' || k === '}';
  }
  skipSeps(): void {
    while (this.eat(';') || this.eat('newline'));
  }
  lineOf(offset: number): number {
    return this.source.slice(0, offset).split('\n').length;
  }

  /** The next token as a value of the given range. */
  value(spec: ValueSpec, what: string): number | boolean | string {
    const t = this.peek();
    const text = t.kind === 'word' || t.kind === 'number' || t.kind === 'size' ? t.text : '';
    const v = checkValue(spec, text, t.kind === 'number', what, describe(t));
    if (!v.ok) this.failHint(t, v.message, positionalHint, v.suggestion);
    this.next();
    return v.value;
  }

  /** `3` or `3x2`, each part in range: [h, w]. */
  size(spec: ValueSpec, noun: string, example: string): [number, number] {
    const t = this.peek();
    if (t.kind === 'number') {
      const k = this.value(spec, `the ${noun}`) as number;
      return [k, k];
    }
    const [h, w, ...more] = t.kind === 'size' ? t.parts : [];
    if (h === undefined || w === undefined || more.length > 0)
      this.failHint(t, `expected a ${noun} like ${example} but found ${describe(t)}`, positionalHint);
    for (const p of [h, w]) {
      const v = checkValue(spec, String(p), true, `the ${noun}`, describe(t));
      if (!v.ok) this.fail(spanOf(t), v.message);
    }
    this.next();
    return [h, w];
  }

  program(): Program {
    let input: SpatialShape | null = null;
    let inputAt: Span | null = null;
    const layers: LayerSpec[] = [];
    const train: Partial<TrainValues> = {};
    const augment: Partial<AugmentValues> = {};
    const trainSpans = new Map<string, Span>();
    const augmentSpans = new Map<string, Span>();
    this.skipSeps();
    while (this.peek().kind !== 'eof') {
      const t = this.peek();
      if (t.kind === 'word' && t.text === 'input') {
        this.next();
        if (inputAt) this.fail(spanOf(t), `input is already given on line ${this.lineOf(inputAt.offset)}`);
        if (layers.length > 0) this.fail(spanOf(t), 'input must come before the first layer');
        inputAt = spanOf(this.peek());
        input = this.inputShape();
      } else if (t.kind === 'word' && t.text === 'train') {
        this.next();
        this.settings('train', TRAIN_KEYS, train, trainSpans);
      } else if (t.kind === 'word' && t.text === 'augment') {
        this.next();
        this.settings('augment', AUGMENT_KEYS, augment, augmentSpans);
      } else {
        layers.push(this.layer(0));
      }
      this.endStatement(false);
      this.skipSeps();
    }
    const end = spanOf(this.peek());
    const trainConfig = resolveTrain(train);
    for (const [key, message] of trainConflicts(trainConfig)) {
      const written = [...trainSpans].find(([k]) => own(TRAIN_KEYS, k)?.field === key);
      if (written) this.fail(written[1], message);
    }
    return { input, inputAt, layers, train: trainConfig, augment: resolveAugment(augment), end };
  }

  endStatement(inBlock: boolean): void {
    const t = this.peek();
    if (t.kind === ';' || t.kind === 'newline') this.next();
    else if (t.kind !== 'eof' && !(inBlock && t.kind === '}'))
      this.fail(spanOf(t), `expected end of statement but found ${describe(t)}`);
  }

  inputShape(): SpatialShape {
    const t = this.peek();
    const [h, w, c = 1, ...more] = t.kind === 'size' ? t.parts : [];
    if (h === undefined || w === undefined || more.length > 0)
      this.fail(spanOf(t), `expected an input size like 28x28x1 but found ${describe(t)}`);
    const side: ValueSpec = { type: 'int', min: 1, max: MAX_INPUT.side };
    const checks: [number, ValueSpec, string][] = [
      [h, side, 'the input height'],
      [w, side, 'the input width'],
      [c, { type: 'int', min: 1, max: MAX_INPUT.channels }, 'the input channels'],
    ];
    for (const [v, spec, what] of checks) {
      const r = checkValue(spec, String(v), true, what, describe(t));
      if (!r.ok) this.fail(spanOf(t), r.message);
    }
    this.next();
    return { h, w, c };
  }

  /** `key=value …` (a bare boolean key means true) into `set`, each key once per file. */
  settings<F extends string>(
    what: string,
    table: Readonly<Record<string, { field: F; spec: ValueSpec }>>,
    set: Partial<Record<F, unknown>>,
    spans: Map<string, Span>,
  ): void {
    while (!this.atEnd()) {
      const t = this.peek();
      const example = what === 'train' ? 'a train option like epochs=10' : 'an augment option like shift=2';
      if (t.kind !== 'word') this.fail(spanOf(t), `expected ${example} but found ${describe(t)}`);
      const entry = own(table, t.text);
      if (!entry)
        this.failHint(
          t,
          elsewhere(`unknown ${what} option ${describe(t)}`, t.text),
          settingHint,
          suggest(t.text, Object.keys(table)),
        );
      const { field, spec } = entry;
      const seen = spans.get(t.text);
      if (seen) this.fail(spanOf(t), `${t.text} is already given on line ${this.lineOf(seen.offset)}`);
      this.next();
      spans.set(t.text, spanOf(t));
      if (spec.type === 'bool' && this.peek().kind !== '=') set[field] = true;
      else {
        this.expect('=', `"=" after ${t.text}`);
        set[field] = this.value(spec, t.text);
      }
    }
  }

  layer(depth: number): LayerSpec {
    const t = this.peek();
    if (t.kind !== 'word') this.fail(spanOf(t), `expected a layer but found ${describe(t)}`);
    if (depth > 0 && (t.text === 'input' || t.text === 'train' || t.text === 'augment'))
      this.fail(spanOf(t), `${t.text} is only allowed at the top level, not inside residual`);
    if (ACTIVATIONS.includes(t.text)) {
      const act = this.act(this.next());
      return { kind: 'activation', act, span: act.span };
    }
    if (!LAYERS.includes(t.text))
      this.failHint(t, elsewhere(`unknown layer ${describe(t)}`, t.text), statementHint, suggest(t.text, STATEMENTS));
    this.next();
    const start = spanOf(t);
    const layer = this.layerBody(t.text, depth);
    return { ...layer, span: join(start, this.last) };
  }

  layerBody(word: string, depth: number): LayerBody {
    switch (word) {
      case 'conv': {
        const filters = this.value(UNITS, 'the number of filters') as number;
        const [kh, kw] = this.size(KERNEL, 'conv kernel', '3 or 3x3');
        const o = {
          kind: 'conv' as const,
          filters,
          kh,
          kw,
          strideH: 1,
          strideW: 1,
          padding: 'valid' as Padding,
          act: { kind: 'linear', span: null } as ActSpec,
          bias: true,
        };
        this.options('conv', {
          ...this.paddingOptions(o),
          ...this.actOptions(o),
          stride: {
            slot: 'stride',
            value: () => ([o.strideH, o.strideW] = this.size(CONV_STRIDE, 'conv stride', '2 or 2x2')),
          },
          bias: { slot: 'bias', value: () => (o.bias = this.value(BOOL, 'bias') as boolean) },
        });
        return o;
      }
      case 'pool':
      case 'avgpool': {
        const [kh, kw] = this.size(KERNEL, `${word} size`, '2 or 2x2');
        const o = {
          kind: 'pool' as const,
          mode: word === 'pool' ? ('max' as const) : ('avg' as const),
          kh,
          kw,
          strideH: kh,
          strideW: kw,
          padding: 'valid' as Padding,
        };
        this.options(word, {
          ...this.paddingOptions(o),
          stride: {
            slot: 'stride',
            value: () => ([o.strideH, o.strideW] = this.size(POOL_STRIDE, `${word} stride`, '2 or 2x2')),
          },
        });
        return o;
      }
      case 'dense': {
        const o = {
          kind: 'dense' as const,
          units: this.value(UNITS, 'the number of units') as number,
          act: { kind: 'linear', span: null } as ActSpec,
          bias: true,
        };
        this.options('dense', {
          ...this.actOptions(o),
          bias: { slot: 'bias', value: () => (o.bias = this.value(BOOL, 'bias') as boolean) },
        });
        return o;
      }
      case 'dropout':
        return { kind: 'dropout', rate: this.value(UNIT_OPEN, 'the dropout rate') as number };
      case 'batchnorm': {
        const o = { kind: 'batchnorm' as const, momentum: 0.99, eps: 0.001 };
        this.options('batchnorm', {
          momentum: { slot: 'momentum', value: () => (o.momentum = this.value(UNIT_OPEN, 'momentum') as number) },
          eps: {
            slot: 'eps',
            value: () => (o.eps = this.value({ type: 'num', min: 0, minOpen: true }, 'eps') as number),
          },
        });
        return o;
      }
      case 'globalavgpool':
      case 'flatten':
        return { kind: word };
      case 'residual':
        return { kind: 'residual', body: this.block(depth + 1) };
      default:
        throw new Error(`unreachable layer keyword ${word}`);
    }
  }

  block(depth: number): LayerSpec[] {
    const kw = this.last;
    if (depth > MAX_DEPTH) this.fail(spanOf(kw), `residual blocks nest deeper than ${MAX_DEPTH} levels`);
    while (this.eat('newline'));
    this.expect('{', '"{" after residual');
    const body: LayerSpec[] = [];
    this.skipSeps();
    while (this.peek().kind !== '}') {
      if (this.peek().kind === 'eof')
        this.fail(
          spanOf(this.peek()),
          `expected "}" to close the residual block on line ${this.lineOf(kw.offset)} but found end of file`,
        );
      body.push(this.layer(depth));
      this.endStatement(true);
      this.skipSeps();
    }
    if (body.length === 0) this.fail(spanOf(this.peek()), `expected a layer but found "}"`);
    this.next();
    return body;
  }

  paddingOptions(o: { padding: Padding }): Record<string, Option> {
    return {
      same: { slot: 'padding', flag: () => (o.padding = 'same') },
      valid: { slot: 'padding', flag: () => (o.padding = 'valid') },
    };
  }

  actOptions(o: { act: ActSpec }): Record<string, Option> {
    return Object.fromEntries(ACTIVATIONS.map((a) => [a, { slot: 'activation', flag: (t) => (o.act = this.act(t)) }]));
  }

  /** An activation word (already taken), with leaky's optional `(alpha)`. */
  act(t: Token): WrittenAct {
    const kind = t.text as ActSpec['kind'];
    if (kind !== 'leaky') return { kind, span: spanOf(t) };
    let alpha = LEAKY_SLOPE;
    if (slopeHint(this.source, t)) this.failHint(t, 'leaky takes its slope in parentheses', slopeHint);
    if (this.eat('(')) {
      alpha = this.value({ type: 'num', min: 0, max: 1 }, 'the leaky slope') as number;
      this.expect(')', '")"');
    }
    return { kind, alpha, span: join(spanOf(t), this.last) };
  }

  /** Options in any order until the end of the statement: bare flags and `key=value`, each slot once. */
  options(layer: string, table: Record<string, Option>): void {
    const given = new Map<string, string>();
    while (!this.atEnd()) {
      const t = this.peek();
      if (t.kind !== 'word')
        this.fail(spanOf(t), `expected a ${layer} option or end of statement but found ${describe(t)}`);
      const opt = own(table, t.text);
      if (!opt) this.fail(...unknownOption(this.source, t, layer, Object.keys(table)));
      const prev = given.get(opt.slot);
      if (prev !== undefined)
        this.fail(spanOf(t), `the ${opt.slot} is already given${prev ? ` (${JSON.stringify(prev)})` : ''}`);
      given.set(opt.slot, opt.flag ? t.text : '');
      this.next();
      if (opt.flag) opt.flag(t);
      else {
        this.expect('=', `"=" after ${t.text}`);
        opt.value(t);
      }
    }
  }
}

export function parseProgram(source: string, file: string): Program {
  return new Parser(source, file).program();
}
