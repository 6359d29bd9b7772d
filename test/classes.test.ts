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
      'the network must end in 3 outputs (one per class) but ends in 10',
    );
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
