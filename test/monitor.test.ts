// The Monitor on its own (no GPU): one rule for "better", early stopping, the plateau factor, the
// best weights, and what a checkpoint keeps of it.
import { describe, expect, it } from 'vitest';
import { Monitor } from '../src/train/monitor.ts';
import { fitOptions, monitorOptions } from '../src/train/fit-options.ts';
import type { NamedTensor } from '../src/model/safetensors.ts';
import { parseNet } from '../dsl/index.ts';

const epoch = (n: number, loss: number, val?: { loss: number; acc: number }) => ({
  epoch: n,
  seconds: 1,
  loss,
  accuracy: 0.5,
  lr: 0.001,
  ...(val ? { val_loss: val.loss, val_accuracy: val.acc } : {}),
});
const weights = (x: number) => async (): Promise<Map<string, NamedTensor>> =>
  new Map([['w', { shape: [1], data: new Float32Array([x]) }]]);

describe('Monitor', () => {
  it('watches val_loss when there is validation, else the training loss; lower is better', async () => {
    const m = new Monitor();
    expect((await m.observe(epoch(1, 0.9, { loss: 0.5, acc: 0.8 }), weights(1))).improved).toBe(true);
    expect(m.best).toEqual({ value: 0.5, epoch: 1 });
    // A better training loss is not a better epoch while there is validation.
    expect((await m.observe(epoch(2, 0.1, { loss: 0.6, acc: 0.9 }), weights(2))).improved).toBe(false);
    const plain = new Monitor();
    await plain.observe(epoch(1, 0.9), weights(1));
    await plain.observe(epoch(2, 0.7), weights(2));
    expect(plain.best).toEqual({ value: 0.7, epoch: 2 });
    const byAccuracy = new Monitor({ metric: 'val_accuracy' });
    await byAccuracy.observe(epoch(1, 0.9, { loss: 0.5, acc: 0.8 }), weights(1));
    await byAccuracy.observe(epoch(2, 0.9, { loss: 0.6, acc: 0.9 }), weights(2));
    expect(byAccuracy.best).toEqual({ value: -0.9, epoch: 2 });
  });

  it('a NaN is never the best', async () => {
    const m = new Monitor();
    expect((await m.observe(epoch(1, Number.NaN), weights(1))).improved).toBe(false);
    expect(m.best).toBeNull();
    expect(m.bad).toBe(1);
  });

  it('stops after `patience` epochs without improvement; plateau halves the rate every second one', async () => {
    const m = new Monitor({ patience: 4, plateau: true });
    const verdicts = [];
    for (const [i, loss] of [1, 2, 3, 0.5, 0.6, 0.7, 0.8, 0.9].entries())
      verdicts.push(await m.observe(epoch(i + 1, loss), weights(i)));
    expect(verdicts.map((v) => v.stop)).toEqual([false, false, false, false, false, false, false, true]);
    expect(verdicts.map((v) => v.rescaled)).toEqual([false, false, true, false, false, true, false, true]);
    expect(m.lrScale).toBe(0.125);
    expect(m.save()).toEqual({ best: { value: 0.5, epoch: 4 }, monitor: { bad: 4, lrScale: 0.125, stopped: 8 } });
  });

  it('keeps the best weights only when asked, and continues from what a checkpoint saved', async () => {
    const off = new Monitor();
    await off.observe(epoch(1, 1), weights(1));
    expect(off.bestWeights).toBeNull();
    const on = new Monitor({ keepBest: true, patience: 3 });
    await on.observe(epoch(1, 1), weights(1));
    await on.observe(epoch(2, 2), weights(2));
    expect(on.bestWeights?.get('w')?.data[0]).toBe(1);
    const resumed = new Monitor({ keepBest: true, patience: 3 }, { ...on.save(), weights: on.bestWeights });
    expect(resumed.save()).toEqual(on.save());
    expect(resumed.bestWeights).toBe(on.bestWeights);
    expect((await resumed.observe(epoch(3, 3), weights(3))).stop).toBe(false);
    expect((await resumed.observe(epoch(4, 4), weights(4))).stop).toBe(true);
  });

  it("its options follow a model's train line", () => {
    const ir = parseNet('dense 10 softmax\ntrain early_stop=3 schedule=plateau validation=0.1');
    expect(monitorOptions(fitOptions(ir))).toEqual({ metric: 'val_loss', patience: 3, plateau: true, keepBest: true });
    const none = parseNet('dense 10 softmax');
    expect(monitorOptions(fitOptions(none))).toEqual({
      metric: undefined,
      patience: 0,
      plateau: false,
      keepBest: false,
    });
    expect(monitorOptions(fitOptions(none), true).keepBest).toBe(true);
  });

  it('records the epoch it stopped at; a resumed run stays stopped until its patience grows', async () => {
    const m = new Monitor({ patience: 2 });
    for (const [i, loss] of [1, 0.5, 0.6, 0.7].entries()) await m.observe(epoch(i + 1, loss), weights(i));
    expect(m.stopped).toBe(4);
    expect(m.halted).toBe(true);
    expect(m.save()).toEqual({ best: { value: 0.5, epoch: 2 }, monitor: { bad: 2, lrScale: 1, stopped: 4 } });
    expect(m.watched(epoch(2, 0.5))).toEqual({ metric: 'loss', value: 0.5 });
    expect(m.watched(epoch(2, 0.5, { loss: 0.4, acc: 0.9 }))).toEqual({ metric: 'val_loss', value: 0.4 });
    expect(new Monitor({ metric: 'val_accuracy' }).watched(epoch(2, 0.5, { loss: 0.4, acc: 0.9 }))).toEqual({
      metric: 'val_accuracy',
      value: 0.9,
    });
    expect(new Monitor({ patience: 2 }, m.save()).halted).toBe(true);
    expect(new Monitor({ patience: 0 }, m.save()).halted).toBe(false);
    const longer = new Monitor({ patience: 3 }, m.save());
    expect(longer.halted).toBe(false);
    // Training on: the next epoch's verdict replaces the old stop.
    expect((await longer.observe(epoch(5, 0.8), weights(5))).stop).toBe(true);
    expect(longer.stopped).toBe(5);
    await longer.observe(epoch(6, 0.1), weights(6));
    expect(longer.stopped).toBeNull();
    expect(longer.save().monitor).toEqual({ bad: 0, lrScale: 1 });
  });
});
