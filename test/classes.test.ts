// The class count is data: the language checks a network against the count it is given (Fashion-
// MNIST's 10 by default), the trainer takes it from the model's output, and the metrics from the
// confusion matrix's size.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { opts, synthetic } from './helpers/train.ts';
import { DEFAULT_CLASSES, DslError, parseNet } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import {
  classificationReport,
  confusionMatrix,
  confusionTable,
  metricsFromProbabilities,
  perClass,
} from '../src/train/metrics.ts';

const THREE = 'input 8x8x1\nconv 4 3x3 same relu\npool 2\ndense 3 softmax';

describe('the class count', () => {
  it('the language: 10 by default, or the count a caller gives', () => {
    expect(DEFAULT_CLASSES).toBe(10);
    expect(() => parseNet(THREE, 'three.net')).toThrow(DslError);
    expect(() => parseNet(THREE, 'three.net')).toThrow('the network must end in 10 outputs (one per class)');
    expect(parseNet(THREE, 'three.net', { classes: 3 }).layers.at(-1)!.output).toEqual({ units: 3 });
    expect(() => parseNet('dense 10 softmax', 'm.net', { classes: 3 })).toThrow(
      'the network ends in 10 outputs but the data has 3 classes',
    );
    // null: any count (a file read before its data); a file without `input` takes the data's shape.
    expect(parseNet('dense 7 softmax', 'm.net', { classes: null }).output).toEqual({ units: 7 });
    expect(parseNet('input 7x7x1\nconv 5 7x7', 'm.net', { classes: null }).output).toEqual({ h: 1, w: 1, c: 5 });
    // …but a network ending in an image is no classifier whatever the data (summary, train before its data).
    for (const net of ['conv 8 3', 'dropout 0.1', 'residual {\n  conv 10 3 same\n}'])
      expect(() => parseNet(net, 'm.net', { classes: null }), net).toThrow(
        /^the network must end in one output per class \(N or 1x1xN\) but ends in \d+x\d+x\d+/,
      );
    const sixteen = parseNet('conv 4 3x3 same relu\npool 2\ndense 3 softmax', 'm.net', {
      classes: 3,
      input: { h: 16, w: 16, c: 3 },
    });
    expect(sixteen.input).toEqual({ h: 16, w: 16, c: 3 });
    expect(sixteen.layers[0]!.params.trainable).toBe(3 * 9 * 4 + 4);
    // An input line must be the data's shape: refused at the line, not found out when the data is read.
    const other = () =>
      parseNet('input 8x8x1\ndense 3 softmax', 'm.net', { classes: 3, input: { h: 16, w: 16, c: 3 } });
    expect(other).toThrow("the model's input is 8x8x1 but the data is 16x16x3");
    expect(() => other()).toThrow(expect.objectContaining({ line: 1, column: 7 }));
    expect(
      parseNet('input 16x16x3\ndense 3 softmax', 'm.net', { classes: 3, input: { h: 16, w: 16, c: 3 } }).input,
    ).toEqual({
      h: 16,
      w: 16,
      c: 3,
    });
  });

  it('the metrics: from the size of the confusion matrix or of the probabilities', () => {
    const probs = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4, 0.6, 0.3, 0.1];
    const labels = [0, 1, 1, 2];
    const m = metricsFromProbabilities(probs, labels);
    expect(Array.from(m.confusion)).toEqual([1, 0, 0, 0, 1, 1, 1, 0, 0]);
    expect(m.accuracy).toBe(0.5);
    expect(confusionMatrix([0, 1, 2, 0], labels, 3)).toEqual({ accuracy: 0.5, confusion: m.confusion });
    expect(perClass(m.confusion).map((c) => c.support)).toEqual([1, 2, 1]);
    expect(classificationReport(m.confusion, undefined, ['a', 'b', 'c'])).toContain('           c      0.00');
    expect(confusionTable(m.confusion, undefined, ['a', 'b', 'c']).split('\n')).toHaveLength(4);
  });

  it('the text confusion matrix: numbered columns right over their counts, whole names down the side', () => {
    const fashion = Array.from({ length: 100 }, (_, i) => (i % 11 === 0 ? 990 + i / 11 : i % 7));
    fashion[9] = 12; // T-shirt/top taken for an ankle boot: a two-digit count
    expect(confusionTable(fashion)).toBe(
      [
        'true \\ predicted    0    1    2    3    4    5    6    7    8    9',
        '0 T-shirt/top     990    1    2    3    4    5    6    0    1   12',
        '1 Trouser           3  991    5    6    0    1    2    3    4    5',
        '2 Pullover          6    0  992    2    3    4    5    6    0    1',
        '3 Dress             2    3    4  993    6    0    1    2    3    4',
        '4 Coat              5    6    0    1  994    3    4    5    6    0',
        '5 Sandal            1    2    3    4    5  995    0    1    2    3',
        '6 Shirt             4    5    6    0    1    2  996    4    5    6',
        '7 Sneaker           0    1    2    3    4    5    6  997    1    2',
        '8 Bag               3    4    5    6    0    1    2    3  998    5',
        '9 Ankle boot        6    0    1    2    3    4    5    6    0  999',
      ].join('\n'),
    );
    // Wider counts widen every column alike; twelve classes number their rows to two digits.
    const twelve = Array.from({ length: 144 }, (_, i) => (i === 0 ? 123456 : i % 13 === 0 ? 7 : 0));
    const names = Array.from({ length: 12 }, (_, c) => `class number ${c} with a long name`);
    const lines = confusionTable(twelve, 12, names).split('\n');
    expect(lines[0]).toBe(
      `${'true \\ predicted'.padEnd(23)}${[...Array(12).keys()].map((j) => String(j).padStart(7)).join('')}`,
    );
    expect(lines[1]).toBe(` 0 class number 0 with…${'123456'.padStart(7)}${'0'.padStart(7).repeat(11)}`);
    expect(lines[12]).toBe(`11 class number 11 wit…${'0'.padStart(7).repeat(11)}${'7'.padStart(7)}`);
    // Every column's header ends where its counts end.
    for (const line of lines) expect(line.length).toBe(lines[0]!.length);
  });

  describe('the trainer: from the model', () => {
    const gpu = useGpu();

    it('trains, evaluates and predicts a three-class model', async () => {
      const t = new Trainer(gpu(), parseNet(THREE, 'three.net', { classes: 3 }), 1);
      try {
        expect(t.classes).toBe(3);
        const data = synthetic(96, 3);
        const three = { ...data, labels: data.labels.map((l) => l % 3) };
        await t.fit(three, null, opts({ epochs: 1 }));
        const ev = await t.evaluate(three);
        expect(ev.confusion).toHaveLength(9);
        expect(ev.confusion.reduce((a, b) => a + b, 0)).toBe(96);
        const p = await t.probabilities(three);
        expect(p).toHaveLength(96 * 3);
        expect(metricsFromProbabilities(p, three.labels).confusion).toEqual(ev.confusion);
        const tta = await t.evaluate(three, undefined, { tta: true });
        expect(tta.confusion).toHaveLength(9);
        const one = await t.predict(new Float32Array(64).fill(0.5), 1);
        expect(one.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(one).toHaveLength(3);
      } finally {
        t.release();
      }
    });
  });
});
