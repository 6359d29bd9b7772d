// Checkpoints written before the parameters, gradients and optimizer slots were packed (issue 17)
// resume after it. test/fixtures/checkpoint-b02b7b4 holds what b02b7b4's code wrote for the runs of
// CASES below (one epoch, then the state a checkpoint keeps), and the weights and optimizer state it
// reached when it resumed that state for a second epoch. Loading the files and writing them again
// gives the same bytes; resuming reaches the same weights up to rounding (the dense bias gradient
// now sums its rows in another fixed order, src/ops/reduce.ts, so the last bits differ).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { opts, synthetic } from './helpers/train.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer, type FitOptions } from '../src/train/trainer.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.ts';

const DIR = 'test/fixtures/checkpoint-b02b7b4';
const MODEL = 'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\npool 2\ndropout 0.1\ndense 10 softmax';
/** The runs the fixture was written from: seed 9, 320 synthetic images (seed 21), batch 32, 2 epochs. */
const CASES: [string, Partial<FitOptions>][] = [
  ['adam-ema', { optimizer: { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0 }, ema: 0.9, lr: 0.01 }],
  ['sgd-nesterov', { optimizer: { name: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 }, lr: 0.05 }],
];

const file = (name: string): Uint8Array => new Uint8Array(readFileSync(`${DIR}/${name}.safetensors`));
const tensors = (name: string) => decodeSafetensors(file(name), name).tensors;

describe('a checkpoint written before packing resumes after it', () => {
  const gpu = useGpu();

  it.each(CASES)('%s', async (name, extra) => {
    const o = (more: Partial<FitOptions>) => opts({ epochs: 2, ...extra, ...more });
    const t = new Trainer(gpu(), parseNet(MODEL, 'fixture.net'), 9);
    t.prepareOptimizer(o({}).optimizer);
    t.params.load(tensors(`${name}.weights`));
    t.loadStateTensors(tensors(`${name}.optimizer`));
    // The same names, shapes and values, byte for byte: weights.safetensors and optimizer.safetensors.
    expect(Buffer.from(encodeSafetensors(await t.params.read()))).toEqual(Buffer.from(file(`${name}.weights`)));
    expect(Buffer.from(encodeSafetensors(await t.stateTensors()))).toEqual(Buffer.from(file(`${name}.optimizer`)));
    await t.fit(synthetic(320, 21), null, o({ initialStep: 10 }));
    const after = tensors(`${name}.after`);
    const weights = await t.params.read();
    expect([...weights.keys()].sort()).toEqual([...after.keys()].sort());
    for (const [k, v] of weights)
      expectAllclose(`${name} ${k}`, v.data, after.get(k)!.data, { atol: 2e-5, rtol: 1e-4 });
    const state = await t.stateTensors();
    const afterState = tensors(`${name}.after-optimizer`);
    expect([...state.keys()].sort()).toEqual([...afterState.keys()].sort());
    for (const [k, v] of state)
      expectAllclose(`${name} ${k}`, v.data, afterState.get(k)!.data, { atol: 2e-5, rtol: 1e-3 }, v.shape);
    t.release();
  });
});
