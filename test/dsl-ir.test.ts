// The model IR: resolved options, shapes (Keras/TF same/valid geometry), names, implied flatten,
// softmax folded into the loss, train/augment defaults and which keys were written.
import { describe, expect, it } from 'vitest';
import { AUGMENT_DEFAULTS, overrideTrain, parseNet, trainDefaults, tryParseNet, type Layer } from '../dsl/index.ts';

const only = (src: string): Layer => parseNet(`${src}\nflatten; dense 10`).layers[0]!;

describe('dsl IR', () => {
  it.each([
    [
      'conv 8 3',
      {
        kh: 3,
        kw: 3,
        strideH: 1,
        strideW: 1,
        padding: 'valid',
        act: { kind: 'linear' },
        bias: true,
        output: { h: 26, w: 26, c: 8 },
      },
    ],
    ['conv 8 3x5 same', { kh: 3, kw: 5, padding: 'same', output: { h: 28, w: 28, c: 8 } }],
    ['conv 8 3 stride=3 same', { strideH: 3, strideW: 3, output: { h: 10, w: 10, c: 8 } }],
    [
      'conv 8 4 stride=2x1 relu bias=false',
      { strideH: 2, strideW: 1, act: { kind: 'relu' }, bias: false, output: { h: 13, w: 25, c: 8 } },
    ],
    ['conv 8 3 leaky', { act: { kind: 'leaky', alpha: 0.3 } }],
    ['conv 8 3 leaky(0.1)', { act: { kind: 'leaky', alpha: 0.1 } }],
    ['conv 8 3 gelu valid', { act: { kind: 'gelu' }, padding: 'valid' }],
    [
      'pool 2',
      {
        kind: 'pool',
        mode: 'max',
        kh: 2,
        kw: 2,
        strideH: 2,
        strideW: 2,
        padding: 'valid',
        output: { h: 14, w: 14, c: 1 },
      },
    ],
    ['pool 3', { strideH: 3, output: { h: 9, w: 9, c: 1 } }],
    ['pool 3 stride=2 same', { strideH: 2, padding: 'same', output: { h: 14, w: 14, c: 1 } }],
    [
      'avgpool 2x3 stride=1',
      { mode: 'avg', kh: 2, kw: 3, strideH: 1, strideW: 1, output: { h: 27, w: 26, c: 1 }, name: 'avgpool1' },
    ],
    ['dropout 0', { kind: 'dropout', rate: 0 }],
    ['batchnorm', { kind: 'batchnorm', momentum: 0.99, eps: 0.001, name: 'bn1' }],
    ['batchnorm eps=1e-5 momentum=0.9', { momentum: 0.9, eps: 1e-5 }],
    ['tanh', { kind: 'activation', act: { kind: 'tanh' }, name: 'act1' }],
  ] as [string, object][])('%s', (src, expected) => {
    expect(only(src)).toMatchObject(expected);
  });

  it('names layers per kind, and residual contents under the block', () => {
    const ir = parseNet(
      'conv 4 3 same; relu; residual { conv 4 3 same relu; conv 4 3 same; residual { conv 4 1 } }\n' +
        'conv 8 3\npool 2; avgpool 2 same; dense 10',
    );
    const names = ir.layers.map((l) => l.name);
    expect(names).toEqual(['conv1', 'act1', 'res1', 'conv2', 'pool1', 'avgpool1', 'flatten1', 'dense1']);
    const res = ir.layers[2]!;
    if (res.kind !== 'residual') throw new Error('expected a residual');
    expect(res.body.map((l) => l.name)).toEqual(['res1.conv1', 'res1.conv2', 'res1.res1']);
    expect(res.projection).toBe(null);
  });

  it('implies a flatten before a dense on an image, in C·H·W order of a 7x7x8 tensor', () => {
    const ir = parseNet('conv 8 3 stride=4 same\ndense 10 softmax');
    expect(ir.layers.map((l) => [l.kind, l.name])).toEqual([
      ['conv', 'conv1'],
      ['flatten', 'flatten1'],
      ['dense', 'dense1'],
    ]);
    expect(ir.layers[1]).toMatchObject({
      implied: true,
      input: { h: 7, w: 7, c: 8 },
      output: { units: 392 },
      span: ir.layers[2]!.span,
    });
    expect(ir.layers[2]).toMatchObject({
      act: { kind: 'linear' },
      input: { units: 392 },
      params: { trainable: 3930, nonTrainable: 0 },
    });
    expect(ir.softmax).toBe(true);
  });

  it('folds a softmax layer of its own into the loss, and records its absence', () => {
    const a = parseNet('dense 10\nsoftmax');
    expect(a.layers.map((l) => l.kind)).toEqual(['flatten', 'dense']);
    expect(a.softmax).toBe(true);
    expect(parseNet('dense 10').softmax).toBe(false);
  });

  it('accepts 1x1x10 logits', () => {
    const ir = parseNet('input 1x1x3\nconv 10 1 softmax');
    expect(ir.output).toEqual({ h: 1, w: 1, c: 10 });
    expect(ir.input).toEqual({ h: 1, w: 1, c: 3 });
  });

  it('defaults the input to 28x28x1 and its channels to 1', () => {
    expect(parseNet('dense 10').input).toEqual({ h: 28, w: 28, c: 1 });
    expect(parseNet('input 32x16\ndense 10').input).toEqual({ h: 32, w: 16, c: 1 });
  });

  it('spans cover the statement, a residual from its keyword to its brace', () => {
    const src = 'conv 4 3 same relu   # c\nresidual {\n conv 4 3 same\n}\ndense 10';
    const ir = parseNet(src);
    expect(src.slice(ir.layers[0]!.span.offset, ir.layers[0]!.span.offset + ir.layers[0]!.span.length)).toBe(
      'conv 4 3 same relu',
    );
    const r = ir.layers[1]!.span;
    expect(src.slice(r.offset, r.offset + r.length)).toBe('residual {\n conv 4 3 same\n}');
  });

  it('fills train and augment defaults and lists the keys written', () => {
    const ir = parseNet(
      'dense 10\ntrain epochs=3 tta\ntrain optimizer=sgd momentum=0.9 nesterov=false\naugment flip rotate=10',
    );
    expect(ir.train).toEqual({
      ...trainDefaults(),
      epochs: 3,
      tta: true,
      optimizer: 'sgd',
      momentum: 0.9,
      explicit: ['epochs', 'tta', 'optimizer', 'momentum', 'nesterov'],
    });
    expect(ir.augment).toEqual({ ...AUGMENT_DEFAULTS, flip: true, rotate: 10, explicit: ['flip', 'rotate'] });
    const d = parseNet('dense 10');
    expect(d.train).toEqual({
      epochs: 10,
      batch: 32,
      optimizer: 'adam',
      lr: 0.001,
      momentum: 0,
      nesterov: false,
      weightDecay: 0,
      validation: 0,
      split: 'auto',
      seed: 0,
      earlyStop: 0,
      labelSmoothing: 0,
      schedule: 'constant',
      ema: 0,
      tta: false,
      explicit: [],
    });
    expect(d.augment).toEqual({ shift: 0, flip: false, rotate: 0, zoom: 0, erase: 0, explicit: [] });
  });

  it("gives AdamW Keras's weight decay unless one is written", () => {
    expect(parseNet('dense 10\ntrain optimizer=adamw').train.weightDecay).toBe(0.004);
    expect(parseNet('dense 10\ntrain optimizer=adamw weight_decay=0').train.weightDecay).toBe(0);
  });

  it('applies command-line overrides with the same ranges', () => {
    const t = parseNet('dense 10\ntrain epochs=3').train;
    const r = overrideTrain(t, 'optimizer', 'adamw');
    expect(r.ok && [r.config.optimizer, r.config.weightDecay, r.config.epochs, r.config.explicit]).toEqual([
      'adamw',
      0.004,
      3,
      ['epochs', 'optimizer'],
    ]);
    expect(overrideTrain(t, 'lr', '-1')).toEqual({ ok: false, message: 'expected a number > 0 for lr but found "-1"' });
    expect(overrideTrain(t, 'epoch', '5')).toEqual({
      ok: false,
      message: 'unknown train option "epoch" (did you mean "epochs"?)',
    });
    expect(overrideTrain(t, 'momentum', '0.9')).toEqual({
      ok: false,
      message: 'momentum applies only to optimizer=sgd but the optimizer is adam',
    });
    expect(overrideTrain(t, 'constructor', '1').ok).toBe(false);
  });

  it('tryParseNet returns the error instead of throwing', () => {
    const r = tryParseNet('dense 11', 'x.net');
    expect(r.ok).toBe(false);
    expect(!r.ok && [r.error.file, r.error.line, r.error.column]).toEqual(['x.net', 1, 1]);
  });
});
