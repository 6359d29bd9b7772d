// Checkpoints keep the file layout they had before the parameters, gradients and optimizer slots were
// packed on the GPU (issue 17): the tensor names, dtypes and shapes of weights.safetensors and
// optimizer.safetensors below are what b02b7b4's code (one buffer per tensor) wrote for these runs.
// Before the fixture files were dropped from the repository (no weights in git), 4f6ec7b loaded
// b02b7b4's own files byte for byte and resumed them to its weights within 2e-5. Here: a checkpoint
// written now has exactly that layout, loads and re-encodes to the same bytes, and resuming it gives
// the weights and optimizer state of the run that was never interrupted.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { opts, synthetic } from './helpers/train.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer, type FitOptions } from '../src/train/trainer.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.ts';

const MODEL = 'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\npool 2\ndropout 0.1\ndense 10 softmax';
const WEIGHTS = [
  'bn1.beta F32 4',
  'bn1.gamma F32 4',
  'bn1.moving_mean F32 4',
  'bn1.moving_variance F32 4',
  'conv1.weight F32 4,1,3,3',
  'dense1.bias F32 10',
  'dense1.weight F32 64,10',
];
const SLOTS = (suffixes: string[]): string[] =>
  [
    ['bn1.beta', 4],
    ['bn1.gamma', 4],
    ['conv1.weight', 36],
    ['dense1.bias', 10],
    ['dense1.weight', 640],
  ].flatMap(([name, n]) => suffixes.map((s) => `${name}.${s} F32 ${n}`));
/** The runs: seed 9, 320 synthetic images (seed 21), batch 32, 2 epochs; b02b7b4's layout of each. */
const CASES: [string, Partial<FitOptions>, string[]][] = [
  [
    'adam-ema',
    { optimizer: { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0 }, ema: 0.9, lr: 0.01 },
    SLOTS(['ema', 'm', 'v']),
  ],
  [
    'sgd-nesterov',
    { optimizer: { name: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 }, lr: 0.05 },
    SLOTS(['velocity']),
  ],
];

/** A safetensors file's tensors as `name DTYPE shape`, in the file's order. */
const layout = (bytes: Uint8Array): string[] =>
  [...decodeSafetensors(bytes, 'checkpoint').tensors].map(([k, t]) => `${k} F32 ${t.shape.join(',')}`);

describe('checkpoints keep the layout they had before packing, and resume', () => {
  const gpu = useGpu();

  it.each(CASES)('%s', async (_name, extra, slots) => {
    const o = (more: Partial<FitOptions>) => opts({ epochs: 2, ...extra, ...more });
    const fresh = (): Trainer => {
      const t = new Trainer(gpu(), parseNet(MODEL, 'fixture.net'), 9);
      t.prepareOptimizer(o({}).optimizer);
      return t;
    };
    // What `fmgpu train` checkpoints: the live weights and the state after epoch 1 (onEpoch, before
    // the end of fit swaps the weight averages in).
    const first = fresh();
    let weights: Uint8Array = new Uint8Array();
    let state: Uint8Array = new Uint8Array();
    await first.fit(
      synthetic(320, 21),
      null,
      o({
        epochs: 1,
        onEpoch: async () => {
          weights = encodeSafetensors(await first.params.read());
          state = encodeSafetensors(await first.stateTensors());
          return undefined;
        },
      }),
    );
    first.release();
    expect(layout(weights)).toEqual(WEIGHTS);
    expect(layout(state)).toEqual(slots);

    const resumed = fresh();
    resumed.params.load(decodeSafetensors(weights, 'weights').tensors);
    resumed.loadStateTensors(decodeSafetensors(state, 'optimizer').tensors);
    expect(Buffer.from(encodeSafetensors(await resumed.params.read()))).toEqual(Buffer.from(weights));
    expect(Buffer.from(encodeSafetensors(await resumed.stateTensors()))).toEqual(Buffer.from(state));
    await resumed.fit(synthetic(320, 21), null, o({ initialStep: 10 }));

    const straight = fresh();
    await straight.fit(synthetic(320, 21), null, o({}));
    expect(Buffer.from(encodeSafetensors(await resumed.params.read()))).toEqual(
      Buffer.from(encodeSafetensors(await straight.params.read())),
    );
    expect(Buffer.from(encodeSafetensors(await resumed.stateTensors()))).toEqual(
      Buffer.from(encodeSafetensors(await straight.stateTensors())),
    );
    resumed.release();
    straight.release();
  });
});
