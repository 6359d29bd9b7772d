// Fuzz: random and mutated sources must each end in a model or a DslError, never another
// exception; a model must be self-consistent, an error must render in the one format.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import {
  DslError,
  formatError,
  parseNet,
  summarize,
  isFlat,
  shapeSize,
  type Layer,
  type ModelIR,
} from '../dsl/index.ts';
import { lex } from '../dsl/lexer.ts';
import { Rng } from '../src/util/rng.ts';

const DIR = new URL('../examples/', import.meta.url);
const EXAMPLES = readdirSync(DIR)
  .filter((f) => f.endsWith('.net'))
  .map((f) => readFileSync(new URL(f, DIR), 'utf8'));
const VOCAB = [
  ...'input conv pool avgpool globalavgpool dense dropout batchnorm flatten residual train augment'.split(' '),
  ...'relu leaky sigmoid tanh gelu linear softmax same valid stride bias momentum eps true false'.split(' '),
  ...'epochs batch optimizer adam adamw sgd lr nesterov weight_decay validation seed early_stop'.split(' '),
  ...'label_smoothing schedule cosine onecycle plateau constant ema tta shift flip rotate zoom erase'.split(' '),
  ...'0 1 2 3 4 7 8 10 16 32 64 128 65537 0.5 0.25 1.5 -1 1e-3 .5 2x2 3x3 1x1 7x7 28x28x1 8x8x3 3x3x3 0x2'.split(' '),
  '=',
  '(',
  ')',
  '{',
  '}',
  ';',
  '\n',
  '\n',
  '\n',
  '#',
  'leaky(0.1)',
  'stride=2',
  'bias=false',
  '×',
  '@',
  '\t',
  '\r\n',
];
const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789 \n\t;=(){}#.-x×_éA🙂\r';

interface Outcome {
  models: number;
  errors: number;
}

/** Parse one input; check what came back. Any exception other than DslError fails the test. */
function run(src: string, seen: Outcome): void {
  let ir: ModelIR;
  try {
    ir = parseNet(src, 'fuzz.net');
  } catch (e) {
    if (!(e instanceof DslError)) throw new Error(`${String(e)} for input ${JSON.stringify(src)}`);
    const text = formatError(e).split('\n');
    if (text.length !== 3 || !/^fuzz\.net:\d+:\d+: error: \S/.test(text[0]!))
      throw new Error(`malformed error ${JSON.stringify(text)} for ${JSON.stringify(src)}`);
    // The error carries its line, so rendering needs no source: it must be the source's own line.
    const line = src
      .replace(/^\uFEFF/, '')
      .split('\n')
      [e.line - 1]?.replace(/\r$/, '');
    if (e.lineText !== line)
      throw new Error(`line ${e.line} quoted as ${JSON.stringify(e.lineText)} for ${JSON.stringify(src)}`);
    if (e.offset < 0 || e.offset + e.length > src.length)
      throw new Error(`error span out of the source for ${JSON.stringify(src)}`);
    seen.errors++;
    return;
  }
  checkModel(ir, src);
  seen.models++;
}

function checkModel(ir: ModelIR, src: string): void {
  const names = new Set<string>();
  const walk = (layers: Layer[], input: ModelIR['input'] | Layer['output']): void => {
    for (const l of layers) {
      if (names.has(l.name)) throw new Error(`duplicate name ${l.name} in ${JSON.stringify(src)}`);
      names.add(l.name);
      if (JSON.stringify(l.input) !== JSON.stringify(input))
        throw new Error(`${l.name}: input does not follow the previous output in ${JSON.stringify(src)}`);
      if (shapeSize(l.output) < 1 || !Number.isSafeInteger(shapeSize(l.output)))
        throw new Error(`${l.name}: bad output shape`);
      if (l.kind === 'dense' && !isFlat(l.input)) throw new Error(`${l.name}: dense on an image`);
      if (l.kind === 'residual') walk(l.body, l.input);
      input = l.output;
    }
  };
  walk(ir.layers, ir.input);
  expect(shapeSize(ir.output)).toBe(10);
  expect(summarize(ir)).toContain('Total params: ');
}

function mutateChars(rng: Rng, src: string): string {
  let s = src;
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const at = rng.int(s.length + 1);
    const ch = CHARS[rng.int(CHARS.length)]!;
    const op = rng.int(3);
    s =
      op === 0
        ? s.slice(0, at) + s.slice(at + 1)
        : op === 1
          ? s.slice(0, at) + ch + s.slice(at)
          : s.slice(0, at) + ch + s.slice(at + 1);
  }
  return s;
}

/** Delete, insert, replace or duplicate whole tokens, keeping the text between them. */
function mutateTokens(rng: Rng, src: string): string {
  const toks = lex(src).filter((t) => t.kind !== 'eof');
  let s = src;
  for (let n = 1 + rng.int(3); n > 0 && toks.length > 0; n--) {
    const t = toks[rng.int(toks.length)]!;
    if (t.offset + t.length > s.length) continue;
    const word = VOCAB[rng.int(VOCAB.length)]!;
    const op = rng.int(4);
    const before = s.slice(0, t.offset),
      tok = s.slice(t.offset, t.offset + t.length),
      after = s.slice(t.offset + t.length);
    s =
      op === 0
        ? before + after
        : op === 1
          ? `${before}${word} ${tok}${after}`
          : op === 2
            ? before + word + after
            : `${before}${tok} ${tok}${after}`;
    toks.splice(0, toks.length, ...lex(s).filter((x) => x.kind !== 'eof'));
  }
  return s;
}

function randomTokens(rng: Rng): string {
  const n = rng.int(30);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(VOCAB[rng.int(VOCAB.length)]!);
  return parts.join(rng.int(2) ? ' ' : '');
}

function randomChars(rng: Rng): string {
  let s = '';
  for (let n = rng.int(60); n > 0; n--)
    s += rng.int(8) === 0 ? String.fromCharCode(rng.int(0x3000)) : CHARS[rng.int(CHARS.length)]!;
  return s;
}

describe('dsl fuzz', () => {
  const cases: [string, number, (rng: Rng, i: number) => string][] = [
    [
      'examples with characters deleted, inserted or replaced',
      4000,
      (rng, i) => mutateChars(rng, EXAMPLES[i % EXAMPLES.length]!),
    ],
    [
      'examples with tokens deleted, inserted, replaced or doubled',
      4000,
      (rng, i) => mutateTokens(rng, EXAMPLES[i % EXAMPLES.length]!),
    ],
    ['random token sequences', 2000, (rng) => randomTokens(rng)],
    ['random characters', 1000, (rng) => randomChars(rng)],
  ];
  it.each(cases)('%s (%i inputs)', (_name, count, make) => {
    const rng = new Rng(count * 7919 + _name.length);
    const seen: Outcome = { models: 0, errors: 0 };
    for (let i = 0; i < count; i++) run(make(rng, i), seen);
    expect(seen.models + seen.errors).toBe(count);
    // The fuzz must reach the checker, not just bounce off the lexer.
    if (_name.startsWith('examples')) expect(seen.models).toBeGreaterThan(count / 20);
  });

  it('deeply nested blocks and long inputs end in errors, not stack overflows', () => {
    const seen: Outcome = { models: 0, errors: 0 };
    run('residual {'.repeat(100000), seen);
    run('{'.repeat(100000), seen);
    run(`${'conv 8 3 same relu\n'.repeat(20000)}dense 10`, seen);
    run(`dense 10 ${'relu '.repeat(10000)}`, seen);
    expect(seen).toEqual({ models: 1, errors: 3 });
  });
});
