// Training end to end on the CPU adapter: the network learns, memory stays flat, runs are
// deterministic, early stopping restores the best weights.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { useGpu } from './helpers/gpu.ts';
import { opts, synthetic, SMALL } from './helpers/train.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer, type EpochLog, type FitOptions } from '../src/train/trainer.ts';
import { monitorOptions } from '../src/train/fit-options.ts';
import { Monitor, type MonitorSaved } from '../src/train/monitor.ts';
import { metricsFromProbabilities } from '../src/train/metrics.ts';
import { loadFashionMnist, DEFAULT_DATA_DIR } from '../src/node/data.ts';
import { subset } from '../src/data/dataset.ts';

describe('training', () => {
  const gpu = useGpu();

  it.skipIf(!existsSync(DEFAULT_DATA_DIR))(
    'learns Fashion-MNIST: > 75% test accuracy after one epoch on 4,000 images',
    async () => {
      const { train, test } = loadFashionMnist(DEFAULT_DATA_DIR, { subset: 4000 });
      const t = new Trainer(
        gpu(),
        parseNet('conv 8 3x3 relu\npool 2\nconv 16 3x3 relu\npool 2\ndense 10 softmax', 'small.net'),
        1,
      );
      const losses: number[] = [];
      await t.fit(train, null, opts({ batch: 16, progressEvery: 32, onProgress: (p) => losses.push(p.loss) }));
      const ev = await t.evaluate(subset(test, 2000));
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      expect(ev.accuracy).toBeGreaterThan(0.75);
      expect(ev.confusion.reduce((a, b) => a + b, 0)).toBe(2000);
      t.release();
    },
  );

  it('keeps live GPU bytes flat over epochs and frees everything on release', async () => {
    const g = gpu();
    const before = g.liveBytes;
    const t = new Trainer(g, parseNet(SMALL, 'small.net'), 2);
    const live: number[] = [];
    const data = synthetic(640, 5);
    await t.fit(data, synthetic(100, 6), opts({ epochs: 4, onEpoch: () => void live.push(g.liveBytes) }));
    expect(live).toHaveLength(4);
    expect(new Set(live).size).toBe(1);
    t.release();
    expect(g.liveBytes).toBe(before);
  });

  it.each([
    ['adam', {}],
    [
      'sgd nesterov with weight averages',
      { ema: 0.9, optimizer: { name: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 }, lr: 0.02 },
    ],
  ] satisfies [string, Partial<FitOptions>][])(
    'is deterministic: same seed, same weights and history (%s)',
    async (_n, o) => {
      const run = async () => {
        const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 3);
        const h = await t.fit(
          synthetic(320, 7),
          null,
          opts({ epochs: 2, augment: { shift: 1, flip: true, erase: 0.3 }, ...o }),
        );
        const w = await t.params.read();
        const state = await t.stateTensors();
        t.release();
        const values = (m: Map<string, { data: Float32Array }>) => [...m].map(([k, x]) => [k, Array.from(x.data)]);
        return { h: h.map((e) => [e.loss, e.accuracy]), w: values(w), state: values(state) };
      };
      const a = await run(),
        b = await run();
      expect(b.h).toEqual(a.h);
      expect(b.w).toEqual(a.w);
      expect(b.state).toEqual(a.state);
    },
  );

  it('learns the synthetic task and validates on held-out data', async () => {
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 4);
    const h = await t.fit(synthetic(1280, 8), synthetic(200, 9), opts({ epochs: 3, lr: 0.01 }));
    expect(h.at(-1)!.val_accuracy!).toBeGreaterThan(0.9);
    expect(h.at(-1)!.loss).toBeLessThan(h[0]!.loss);
    t.release();
  });

  it('stops early on a stalled metric and restores the best weights', async () => {
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 5);
    const val = synthetic(100, 11);
    // A learning rate this high makes validation loss bounce; patience 1 stops at the first stall.
    const h = await t.fit(
      synthetic(320, 10),
      val,
      opts({ epochs: 10, lr: 0.2, earlyStop: { patience: 1, monitor: 'val_loss', restoreBest: true } }),
    );
    const losses = h.map((e) => e.val_loss!);
    const stall = losses.findIndex((v, i) => i > 0 && v >= Math.min(...losses.slice(0, i)));
    expect(h.length).toBe(stall >= 0 ? stall + 1 : 10);
    const best = Math.min(...h.map((e) => e.val_loss!));
    const ev = await t.evaluate(val);
    expect(ev.loss).toBeCloseTo(best, 4);
    t.release();
  });

  it('resuming continues early stopping and the plateau schedule where they were', async () => {
    // Validation labels that are all wrong: its loss stops improving within an epoch or two, so
    // both the plateau schedule and early stopping act within a few epochs.
    const train = synthetic(320, 10),
      clean = synthetic(100, 11);
    const val = { ...clean, labels: clean.labels.map((l) => (l + 3) % 10) };
    const o = (extra: Partial<FitOptions>) =>
      opts({
        epochs: 9,
        lr: 0.05,
        schedule: 'plateau',
        earlyStop: { patience: 5, monitor: 'val_loss', restoreBest: true },
        ...extra,
      });
    const whole = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 5);
    const h = await whole.fit(train, val, o({}));
    const final = await whole.params.read();
    whole.release();
    const cut = 3;
    // Early stopping ends the run before its 9 epochs, after the cut, and the rate was halved.
    expect(h.length).toBeGreaterThan(cut);
    expect(h.length).toBeLessThan(9);
    expect(h.at(-1)!.lr).toBeLessThan(0.05);

    // The same run stopped after `cut` epochs, everything a checkpoint keeps read back in onEpoch
    // as the CLI does: the weights, the optimizer state, the step and the monitor (its best weights
    // included; when fit returns, restoreBest has put the best weights back)...
    const first = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 5);
    const watch = new Monitor(monitorOptions(o({}), true));
    type Read = Awaited<ReturnType<typeof first.params.read>>;
    let saved = null as {
      weights: Read;
      state: Awaited<ReturnType<typeof first.stateTensors>>;
      step: number;
      monitor: MonitorSaved;
    } | null;
    await first.fit(
      train,
      val,
      o({
        monitor: watch,
        onEpoch: async (log) => {
          if (log.epoch < cut) return undefined;
          saved = {
            weights: await first.params.read(),
            state: await first.stateTensors(),
            step: await first.step(),
            monitor: { ...watch.save(), weights: watch.bestWeights },
          };
          return 'stop';
        },
      }),
    );
    first.release();
    if (!saved) throw new Error('no checkpoint at the cut');
    // At the cut, the schedule has already halved the rate and patience is partly used: state a
    // resume without it would lose.
    expect(saved.monitor.monitor!.lrScale).toBeLessThan(1);
    expect(saved.monitor.monitor!.bad).toBeGreaterThan(0);
    expect(saved.monitor.best!.value).toBe(Math.min(...h.slice(0, cut).map((e) => e.val_loss!)));
    // ...and given to a fresh trainer: the rest of the history and the final weights are the same.
    const second = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 5);
    second.prepareOptimizer(o({}).optimizer);
    second.params.load(saved.weights);
    second.loadStateTensors(saved.state);
    const rest = await second.fit(
      train,
      val,
      o({ initialStep: saved.step, monitor: new Monitor(monitorOptions(o({}), true), saved.monitor) }),
    );
    expect(rest.map((e) => [e.epoch, e.lr, e.loss, e.val_loss])).toEqual(
      h.slice(cut).map((e) => [e.epoch, e.lr, e.loss, e.val_loss]),
    );
    expect([...(await second.params.read()).values()].map((x) => Array.from(x.data))).toEqual(
      [...final.values()].map((x) => Array.from(x.data)),
    );
    second.release();
  });

  it('an interrupted fit leaves the live weights, so that it resumes exactly (ema, restoreBest)', async () => {
    const train = synthetic(320, 14),
      val = synthetic(64, 15);
    for (const extra of [
      { ema: 0.9 },
      { earlyStop: { patience: 5, monitor: 'val_loss', restoreBest: true } },
    ] satisfies Partial<FitOptions>[]) {
      const o = (more: Partial<FitOptions>) => opts({ epochs: 3, lr: 0.01, ...extra, ...more });
      const whole = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 8);
      await whole.fit(train, val, o({}));
      const final = await whole.params.read();
      whole.release();
      // Ten steps an epoch, eight to a submit: the third poll is in the second epoch, at step 18.
      const first = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 8);
      const watch = new Monitor(monitorOptions(o({}), true));
      let polls = 0;
      const h = await first.fit(train, val, o({ monitor: watch, shouldStop: () => ++polls === 3 }));
      expect(h).toHaveLength(2);
      const weights = await first.params.read();
      const state = await first.stateTensors();
      const step = await first.step();
      first.release();
      expect(step).toBe(18);
      const second = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 8);
      second.prepareOptimizer(o({}).optimizer);
      second.params.load(weights);
      second.loadStateTensors(state);
      const saved = { ...watch.save(), weights: watch.bestWeights };
      await second.fit(train, val, o({ initialStep: step, monitor: new Monitor(monitorOptions(o({}), true), saved) }));
      expect([...(await second.params.read()).values()].map((x) => Array.from(x.data))).toEqual(
        [...final.values()].map((x) => Array.from(x.data)),
      );
      second.release();
    }
  });

  // A stop seen after an epoch's last submit (Ctrl-C as the epoch ends) once ended that epoch as interrupted,
  // before its onEpoch: `fmgpu train` then wrote a checkpoint of the epochs before it at the step after it,
  // which --resume refuses. Now the epoch ends whole (its onEpoch, its checkpoint), and the fit after it.
  it('a stop asked for as an epoch ends leaves the epoch whole: its onEpoch runs, then the fit stops', async () => {
    // Ten steps an epoch, eight to a submit: the second poll comes as the first epoch ends.
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 8);
    let polls = 0;
    const seen: number[] = [];
    const onEpoch = (log: EpochLog) => void seen.push(log.epoch);
    const h = await t.fit(
      synthetic(320, 14),
      synthetic(64, 15),
      opts({ epochs: 3, lr: 0.01, onEpoch, shouldStop: () => ++polls === 2 }),
    );
    expect(await t.step()).toBe(10);
    expect(h.map((l) => l.epoch)).toEqual([1]);
    expect(seen).toEqual([1]);
    expect(polls).toBe(2);
    t.release();
  });

  it('keeps a moving average of the weights and ends with it (ema)', async () => {
    const drift = async (ema: number): Promise<number> => {
      const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 12);
      const w0 = await t.params.read();
      await t.fit(synthetic(320, 12), synthetic(50, 13), opts({ epochs: 1, lr: 0.01, ema }));
      const w1 = await t.params.read();
      t.release();
      let d = 0;
      for (const [name, v] of w1)
        if (name.endsWith('.weight')) v.data.forEach((x, i) => (d += Math.abs(x - w0.get(name)!.data[i]!)));
      return d;
    };
    const plain = await drift(0),
      averaged = await drift(0.9999);
    // With decay 0.9999 the average moves about 1e-4 of the way each step: ten steps move it ~1e-3 as far.
    expect(averaged).toBeLessThan(plain * 0.01);
    expect(averaged).toBeGreaterThan(0);
  });

  it('with ema, the best weights kept and restored are the averages validation scored', async () => {
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 13);
    const monitor = new Monitor(monitorOptions(opts({}), true));
    const earlyStop = { patience: 10, monitor: 'val_loss', restoreBest: true } as const;
    const read = async (ema: boolean) =>
      [...(await (ema ? t.withEmaWeights(() => t.params.read()) : t.params.read())).values()].map((x) =>
        Array.from(x.data),
      );
    let scored: number[][] | null = null;
    let kept = 0;
    await t.fit(
      synthetic(320, 16),
      synthetic(64, 17),
      opts({
        epochs: 3,
        lr: 0.01,
        ema: 0.9,
        earlyStop,
        monitor,
        onEpoch: async (log) => {
          if (monitor.best?.epoch !== log.epoch) return undefined;
          const best = [...(monitor.bestWeights?.values() ?? [])].map((x) => Array.from(x.data));
          scored = await read(true);
          expect(best).toEqual(scored);
          expect(best).not.toEqual(await read(false));
          kept++;
          return undefined;
        },
      }),
    );
    expect(kept).toBeGreaterThan(0);
    expect(await read(false)).toEqual(scored);
    t.release();
  });

  it('predicts probabilities that sum to one', async () => {
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 6);
    const imgs = new Float32Array(3 * 64).map((_, i) => (i % 7) / 7);
    const p = await t.predict(imgs, 3);
    for (let i = 0; i < 3; i++) expect(p.slice(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    t.release();
  });

  it('test-time augmentation averages each image with its mirror image', async () => {
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 7);
    await t.fit(synthetic(320, 8), null, opts({ epochs: 1 }));
    const test = synthetic(75, 9); // 75 with chunks of 32: a partial last chunk
    // The mirror images, made on the host: what the GPU gather must reproduce.
    const mirrored = { ...test, images: test.images.map((_, i) => test.images[i - (i % 8) + 7 - (i % 8)]!) };
    const plain = await t.probabilities(test, { maxBatch: 32 });
    const flipped = await t.probabilities(mirrored, { maxBatch: 32 });
    const tta = await t.probabilities(test, { tta: true, maxBatch: 32 });
    for (let i = 0; i < tta.length; i++) expect(tta[i]).toBeCloseTo((plain[i]! + flipped[i]!) / 2, 6);
    // Without tta, the host metrics of the probabilities agree with the fused GPU evaluation.
    const ev = await t.evaluate(test, 32);
    const host = metricsFromProbabilities(plain, test.labels);
    expect(host.accuracy).toBe(ev.accuracy);
    expect(Array.from(host.confusion)).toEqual(Array.from(ev.confusion));
    expect(host.loss).toBeCloseTo(ev.loss, 5);
    // With tta, evaluate scores the averaged probabilities; the mirror changes some of them.
    const evTta = await t.evaluate(test, 32, { tta: true });
    expect(evTta).toEqual({ ...metricsFromProbabilities(tta, test.labels), n: 75 });
    expect(tta.some((v, i) => Math.abs(v - plain[i]!) > 1e-3)).toBe(true);
    t.release();
  });
});
