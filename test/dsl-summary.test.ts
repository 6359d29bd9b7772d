// Keras-style summaries: the table's text, and parameter counts equal to Keras's for the same
// networks (conv kh·kw·cin·filters + filters; dense in·units + units; batch norm 2c trainable
// gamma/beta + 2c non-trainable moving mean/variance; a projection cin·cout + cout).
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { parseNet, summarize, type Layer, type ModelIR } from '../dsl/index.ts';
import { multiplyAdds } from '../dsl/summary.ts';

const DIR = new URL('../examples/', import.meta.url);
const example = (name: string): ModelIR => parseNet(readFileSync(new URL(name, DIR), 'utf8'), `examples/${name}`);
const totals = (ir: ModelIR): string[] =>
  summarize(ir)
    .split('\n')
    .filter((l) => /params: /.test(l));

const REFERENCE = `Model: "reference"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 conv1 (Conv2D)              (None, 28, 28, 32)        320
 pool1 (MaxPooling2D)        (None, 14, 14, 32)        0
 dropout1 (Dropout)          (None, 14, 14, 32)        0
 conv2 (Conv2D)              (None, 14, 14, 64)        18496
 pool2 (MaxPooling2D)        (None, 7, 7, 64)          0
 dropout2 (Dropout)          (None, 7, 7, 64)          0
 conv3 (Conv2D)              (None, 7, 7, 128)         73856
 pool3 (MaxPooling2D)        (None, 3, 3, 128)         0
 dropout3 (Dropout)          (None, 3, 3, 128)         0
 flatten1 (Flatten)          (None, 1152)              0
 dense1 (Dense)              (None, 128)               147584
 dropout4 (Dropout)          (None, 128)               0
 dense2 (Dense)              (None, 10)                1290
=================================================================
Total params: 241,546
Trainable params: 241,546
Non-trainable params: 0
Mult-adds per image (M): 7.64
_________________________________________________________________`;

// Totals worked out by hand from the formulas above (tutorial-valid is keras.io's "Simple MNIST convnet").
const EXAMPLES: [string, number, number][] = [
  ['reference.net', 241546, 0],
  ['tutorial-valid.net', 34826, 0],
  ['strided.net', 89546, 0],
  ['batchnorm.net', 421866, 448],
  ['leaky.net', 421642, 0],
  ['residual.net', 19562, 0],
  ['quick.net', 56714, 0],
  ['fast.net', 150698, 640], // checked by hand: convs 288+9216+18432+36864+73728, BN β/γ 640, dense 11530
  ['cifar10.net', 554474, 256], // convs 864+9216+18432, BN β/γ 256, dense 524416+1290
  ['best.net', 695850, 1856], // convs, BN, two 1×1 projections with bias (2112 + 8320), dense 1290
];

function names(layers: Layer[], out: string[] = []): string[] {
  for (const l of layers) {
    out.push(l.name);
    if (l.kind === 'residual') {
      names(l.body, out);
      if (l.projection) out.push(l.projection.name);
    }
  }
  return out;
}

describe('dsl summary', () => {
  it('prints the reference network as Keras does, 241,546 parameters', () => {
    expect(summarize(example('reference.net'))).toBe(REFERENCE);
  });

  it('lists every example in examples/', () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.net'))
      .sort();
    expect(files).toEqual(EXAMPLES.map((e) => e[0]).sort());
  });

  it.each(EXAMPLES)(
    '%s parses, ends in 10 logits, %i trainable + %i non-trainable',
    (file, trainable, nonTrainable) => {
      const ir = example(file);
      expect(ir.params).toEqual({ trainable, nonTrainable });
      expect(ir.softmax).toBe(true);
      expect(ir.output).toEqual({ units: 10 });
      const n = (x: number): string => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
      expect(totals(ir)).toEqual([
        `Total params: ${n(trainable + nonTrainable)}`,
        `Trainable params: ${n(trainable)}`,
        `Non-trainable params: ${n(nonTrainable)}`,
      ]);
      const all = names(ir.layers);
      expect(new Set(all).size).toBe(all.length);
    },
  );

  it('counts batch norm: gamma and beta trainable, moving mean and variance not', () => {
    const ir = parseNet(
      'conv 32 3x3 same bias=false\nbatchnorm\nrelu\nglobalavgpool\ndense 64 bias=false\nbatchnorm\ndense 10',
    );
    const bn = ir.layers.filter((l) => l.kind === 'batchnorm');
    expect(bn.map((l) => [l.name, l.params.trainable, l.params.nonTrainable])).toEqual([
      ['bn1', 64, 64],
      ['bn2', 128, 128],
    ]);
    expect(ir.params).toEqual({ trainable: 288 + 64 + 32 * 64 + 128 + 650, nonTrainable: 192 });
    expect(totals(ir)).toEqual(['Total params: 3,370', 'Trainable params: 3,178', 'Non-trainable params: 192']);
  });

  it('counts a projection as a 1x1 conv with bias, and shows it before the add', () => {
    const ir = parseNet(
      'conv 8 3x3 same\nresidual {\n conv 16 3x3 stride=2 same relu\n conv 16 3x3 same\n}\nflatten; dense 10',
    );
    const res = ir.layers[1]!;
    if (res.kind !== 'residual') throw new Error('expected a residual');
    expect(res.projection).toEqual({
      name: 'res1.proj',
      filters: 16,
      strideH: 2,
      strideW: 2,
      params: { trainable: 8 * 16 + 16, nonTrainable: 0 },
    });
    expect(res.params.trainable).toBe(9 * 8 * 16 + 16 + 9 * 16 * 16 + 16 + 144);
    const rows = summarize(ir).split('\n').slice(5, 9);
    expect(rows).toEqual([
      ' res1.conv1 (Conv2D)         (None, 14, 14, 16)        1168',
      ' res1.conv2 (Conv2D)         (None, 14, 14, 16)        2320',
      ' res1.proj (Conv2D)          (None, 14, 14, 16)        144',
      ' res1 (Add)                  (None, 14, 14, 16)        0',
    ]);
  });

  it('counts multiply-adds per image as torchinfo does: conv and dense weights and biases per output', () => {
    // conv 8 3x3 same on 28x28 (80 × 784), the block's convs at 14x14 (1168 and 2320 × 196), the
    // projection (144 × 196), dense 14·14·16 → 10 (31,370 × 1); no pool, activation or add.
    const ir = parseNet(
      'conv 8 3x3 same\nresidual {\n conv 16 3x3 stride=2 same relu\n conv 16 3x3 same\n}\nflatten; dense 10',
    );
    const macs = 80 * 784 + (1168 + 2320 + 144) * 196 + (14 * 14 * 16 * 10 + 10);
    expect(multiplyAdds(ir.layers)).toBe(macs);
    expect(summarize(ir).split('\n').at(-2)).toBe(`Mult-adds per image (M): ${(macs / 1e6).toFixed(2)}`);
  });

  it('needs no projection when the block keeps its shape', () => {
    const ir = parseNet('conv 8 3x3 same\nresidual { conv 8 3x3 same relu; conv 8 3x3 same }\nflatten; dense 10');
    const res = ir.layers[1]!;
    expect(res.kind === 'residual' && res.projection).toBe(null);
    expect(res.params.trainable).toBe(2 * (9 * 8 * 8 + 8));
  });

  it('widens the name column for long names and writes flat shapes as (None, N)', () => {
    const ir = parseNet('residual { residual { conv 4 1 } }\nglobalavgpool\ndense 10 leaky');
    const text = summarize(ir);
    expect(text.split('\n').slice(4, 11)).toEqual([
      ' res1.res1.conv1 (Conv2D)                 (None, 28, 28, 4)         8',
      ' res1.res1.proj (Conv2D)                  (None, 28, 28, 4)         8',
      ' res1.res1 (Add)                          (None, 28, 28, 4)         0',
      ' res1.proj (Conv2D)                       (None, 28, 28, 4)         8',
      ' res1 (Add)                               (None, 28, 28, 4)         0',
      ' globalavgpool1 (GlobalAveragePooling2D)  (None, 4)                 0',
      ' dense1 (Dense)                           (None, 10)                50',
    ]);
    expect(text.split('\n')[1]).toBe('_'.repeat(78));
  });
});
