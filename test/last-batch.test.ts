// The epoch's last, partial batch (issue 18): trained as a smaller step of its own, as Keras does
// (6,000 images at batch 128: 47 steps, the last of 112), its images weighted as images in the
// epoch's averages; runs that dropped it (before) keep dropping it when resumed.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { opts, synthetic } from './helpers/train.ts';
import { parseNet } from '../dsl/index.ts';
import { epochShape, type LastBatch, type PartialEpoch } from '../src/train/fit-options.ts';
import { Monitor, Trainer, type EpochLog, type FitOptions, type Progress } from '../src/train/trainer.ts';
import { monitorOptions } from '../src/train/fit-options.ts';

/** No dropout or batch norm: a step's forward is inference's, so a fit at lr 0 scores each image as evaluate does. */
const PLAIN = 'input 8x8x1\nconv 4 3x3 same relu\npool 2\ndense 10 softmax';
/** Batch norm (statistics of the batch, the partial one too), dropout, and the weight averages below. */
const FULL = 'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\npool 2\ndropout 0.1\ndense 10 softmax';
/** 100 images at batch 32: 3 steps of 32 and one of 4, as 6,000 at 128 is 46 of 128 and one of 112. */
const N = 100;

describe('epochShape', () => {
  it('6,000 images at batch 128: 46 steps of 128, then one of 112 (47), or 46 when dropped', () => {
    expect(epochShape(6000, 128)).toEqual({ batch: 128, fullSteps: 46, tail: 112, stepsPerEpoch: 47 });
    expect(epochShape(6000, 128, 'drop')).toEqual({ batch: 128, fullSteps: 46, tail: 0, stepsPerEpoch: 46 });
    expect(epochShape(N, 32)).toEqual({ batch: 32, fullSteps: 3, tail: 4, stepsPerEpoch: 4 });
    expect(epochShape(6016, 128).stepsPerEpoch).toBe(47);
    expect(epochShape(20, 32)).toEqual({ batch: 20, fullSteps: 1, tail: 0, stepsPerEpoch: 1 });
  });
});

describe('the last partial batch', () => {
  const gpu = useGpu();

  /** One epoch at lr 0 (the weights stay): its progress and log, and evaluate's score of the same images. */
  async function frozenEpoch(lastBatch: LastBatch) {
    const train = synthetic(N, 31);
    const t = new Trainer(gpu(), parseNet(PLAIN, 'plain.net'), 3);
    const progress: Progress[] = [];
    const sgd = { name: 'sgd', momentum: 0, nesterov: false, weightDecay: 0 } as const;
    // Two steps a submit: the partial step is recorded in one submit with a full one.
    const o = opts({ optimizer: sgd, lr: 0, lastBatch, stepsPerSubmit: 2, onProgress: (p) => progress.push(p) });
    const [log] = await t.fit(train, null, o);
    const step = await t.step();
    const whole = await t.evaluate(train);
    t.release();
    if (!log) throw new Error('no epoch log');
    return { log, progress, step, whole };
  }

  it('every image is trained on once an epoch, and the averages weight the partial step by its images', async () => {
    const { log, progress, step, whole } = await frozenEpoch('train');
    expect(step).toBe(4);
    expect(progress.at(-1)).toMatchObject({ epoch: 1, step: 4, steps: 4 });
    // The sum over the epoch's steps of every image's loss, over 100 images, is the mean over all
    // 100: an image trained twice or never, or the 4-image step weighted as a 32-image one, is not.
    expect(log.loss).toBeCloseTo(whole.loss, 5);
    expect(Math.round(log.accuracy * N)).toBe(Math.round(whole.accuracy * N));
    expect(log.accuracy).toBe(Math.round(whole.accuracy * N) / N);
  });

  it('with lastBatch drop (runs from before), 3 steps of 32: 96 images an epoch', async () => {
    const { log, progress, step, whole } = await frozenEpoch('drop');
    expect(step).toBe(3);
    expect(progress.at(-1)).toMatchObject({ step: 3, steps: 3 });
    expect(Math.abs(log.loss - whole.loss)).toBeGreaterThan(1e-5);
  });

  it.each(['train', 'drop'] satisfies LastBatch[])(
    'same seed, same weights; resumed mid-epoch before the partial step, the same weights and epoch sums (%s)',
    async (lastBatch) => {
      const train = synthetic(N, 41),
        val = synthetic(40, 42);
      const o = (more: Partial<FitOptions>) =>
        opts({ epochs: 3, lr: 0.01, ema: 0.9, lastBatch, stepsPerSubmit: lastBatch === 'train' ? 3 : 2, ...more });
      const sums = (logs: EpochLog[]) => logs.map((l) => [l.epoch, l.loss, l.accuracy, l.val_loss, l.val_accuracy]);
      const whole = async (): Promise<{ w: number[][]; logs: EpochLog[] }> => {
        const t = new Trainer(gpu(), parseNet(FULL, 'full.net'), 6);
        const logs = await t.fit(train, val, o({}));
        const w = [...(await t.params.read()).values()].map((x) => Array.from(x.data));
        t.release();
        return { w, logs };
      };
      const { w: final, logs } = await whole();
      expect((await whole()).w).toEqual(final);
      // The third poll: training the partial step (3 steps a submit), after the second epoch's first
      // three steps, before its partial one (step 7 of 12); dropping it (2 a submit), at step 5 of 9.
      const first = new Trainer(gpu(), parseNet(FULL, 'full.net'), 6);
      let polls = 0;
      let partial: PartialEpoch | undefined;
      const onInterrupt = (p: PartialEpoch): void => void (partial = p);
      await first.fit(train, val, o({ shouldStop: () => ++polls === 3, onInterrupt }));
      expect(partial?.step).toBe(lastBatch === 'train' ? 7 : 5);
      const weights = await first.params.read();
      const state = await first.stateTensors();
      const step = await first.step();
      first.release();
      expect(step).toBe(lastBatch === 'train' ? 7 : 5);
      const second = new Trainer(gpu(), parseNet(FULL, 'full.net'), 6);
      second.prepareOptimizer(o({}).optimizer);
      second.params.load(weights);
      second.loadStateTensors(state);
      const monitor = new Monitor(monitorOptions(o({})));
      const resumed = await second.fit(train, val, o({ initialStep: step, monitor, partial }));
      expect([...(await second.params.read()).values()].map((x) => Array.from(x.data))).toEqual(final);
      // The resumed epoch's loss and accuracy carry on the interrupted sums: an unbroken epoch's, bit for bit.
      expect(sums(resumed)).toEqual(sums(logs.slice(1)));
      expect(await second.step()).toBe(lastBatch === 'train' ? 12 : 9);
      second.release();
    },
  );
});
