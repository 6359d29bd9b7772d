// fit() without a queue drain per submit (src/train/fit.ts, readback.ts): the stats are read back
// through a ring of buffers with several submits in flight, nothing is allocated or bound per step,
// progress reports the same steps as before, and a diverged loss leaves the ring ready for the next fit.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { opts, synthetic, SMALL } from './helpers/train.ts';
import { parseNet } from '../dsl/index.ts';
import { DivergedError, Trainer, type Progress } from '../src/train/trainer.ts';
import type { Gpu } from '../src/gpu/runtime.ts';

/** Counts what `g`'s device is asked to create and submit while `fn` runs. */
async function counting<T>(g: Gpu, fn: () => Promise<T>) {
  const d = g.device as unknown as Record<string, unknown>;
  const q = g.device.queue as unknown as Record<string, unknown>;
  const n = { buffers: 0, bindGroups: 0, submits: 0, maps: 0, inFlightAtFirstMap: -1 };
  const saved = { createBuffer: d.createBuffer, createBindGroup: d.createBindGroup, submit: q.submit };
  const mapRead = g.mapRead;
  const wrap =
    (target: Record<string, unknown>, key: string, count: () => void) =>
    (...a: unknown[]) => {
      count();
      return (saved[key as keyof typeof saved] as (...x: unknown[]) => unknown).apply(target, a);
    };
  d.createBuffer = wrap(d, 'createBuffer', () => n.buffers++);
  d.createBindGroup = wrap(d, 'createBindGroup', () => n.bindGroups++);
  q.submit = wrap(q, 'submit', () => n.submits++);
  g.mapRead = async (b, what) => {
    n.maps++;
    await mapRead.call(g, b, what);
    if (n.inFlightAtFirstMap < 0) n.inFlightAtFirstMap = n.submits;
  };
  try {
    return { result: await fn(), n };
  } finally {
    Object.assign(d, { createBuffer: saved.createBuffer, createBindGroup: saved.createBindGroup });
    q.submit = saved.submit;
    g.mapRead = mapRead;
  }
}

describe('fit reads the stats back through a ring, never draining the queue per submit', () => {
  const gpu = useGpu();

  it('keeps submits in flight, and allocates and binds nothing per step once planned', async () => {
    const g = gpu();
    const t = new Trainer(g, parseNet(SMALL, 'small.net'), 2);
    const data = synthetic(640, 5); // 20 steps an epoch, 2 to a submit: 10 submits
    const o = opts({ epochs: 3, stepsPerSubmit: 2, progressEvery: 1e9 });
    await t.fit(data, null, o); // plans, pipelines, optimizer state, learning rates
    const again = await counting(g, () => t.fit(data, null, o));
    expect(again.n.bindGroups, 'bind groups made in 30 steps').toBe(0);
    expect(again.n.buffers, 'buffers made in 30 steps').toBe(0);
    const one = await counting(g, () => t.fit(data, null, { ...o, epochs: 1 }));
    // One map per submit, and the first one resolved only after the host had submitted more.
    expect(one.n.maps).toBe(10);
    expect(one.n.inFlightAtFirstMap).toBeGreaterThanOrEqual(2);
    t.release();
  });

  it('reports the same steps as before, its values those of the reported step', async () => {
    const g = gpu();
    const run = async (perSubmit: number) => {
      const t = new Trainer(g, parseNet(SMALL, 'small.net'), 3);
      const seen: Progress[] = [];
      const h = await t.fit(
        synthetic(640, 6),
        null,
        opts({ stepsPerSubmit: perSubmit, progressEvery: 4, onProgress: (p) => void seen.push(p) }),
      );
      t.release();
      return { steps: seen.map((p) => p.step), last: seen.at(-1)!, h };
    };
    // Steps a submit ≥ the report interval: every submit reports; 3 a submit, every 6 steps.
    const a = await run(4),
      b = await run(3);
    expect(a.steps).toEqual([4, 8, 12, 16, 20]);
    expect(b.steps).toEqual([6, 12, 18, 20]);
    // The epoch's last report is the epoch's totals; the steps were the same in both runs.
    expect(a.last.loss).toBeCloseTo(a.h[0]!.loss, 6);
    expect(a.last.accuracy).toBe(a.h[0]!.accuracy);
    expect(b.h[0]!.loss).toBe(a.h[0]!.loss);
  });

  it('a diverged loss stops the epoch at a report and leaves the ring ready for the next fit', async () => {
    const g = gpu();
    const t = new Trainer(g, parseNet(SMALL, 'small.net'), 4);
    const sgd = { name: 'sgd' as const, momentum: 0, nesterov: false, weightDecay: 0 };
    // An infinite rate: the first step's weights are ±Inf or NaN (Inf·0), and so is every loss after it.
    const o = opts({ optimizer: sgd, lr: Infinity, stepsPerSubmit: 2, progressEvery: 4 });
    const data = synthetic(640, 7);
    const first = await t.fit(data, null, o).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(DivergedError);
    expect((first as DivergedError).step % 4).toBe(0); // a report point
    // The weights are not finite now: the next fit diverges too, with no error from the ring's buffers.
    const again = await t.fit(data, null, o).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(DivergedError);
    t.release();
    expect(g.liveBytes).toBe(0);
  });
});

// On the tiled kernels the loss runs in the logits' GEMM, in bands of 32 rows whose partial totals the update
// adds as it ends the step (src/ops/matmul.ts matmulXent, src/ops/optimizer.ts UpdateAdds). With a rate of 0
// the weights stay put, so the epoch's loss and accuracy are an evaluation's of the same samples (its loss
// pass, no update): every step's totals counted once, the last, partial batch's too.
describe('fit on the tiled kernels: the loss totals the update adds', () => {
  const gpu = useGpu();

  it("an epoch at a rate of 0 reports an evaluation's loss and accuracy", async () => {
    const g = gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });
    const net = 'input 8x8x1\nconv 4 3x3 same relu\npool 2\ndense 10 softmax';
    const t = new Trainer(g, parseNet(net, 'plain.net'), 5);
    const data = synthetic(150, 8); // 2 steps of 64, then 22
    const [h] = await t.fit(data, null, opts({ batch: 64, lr: 0, stepsPerSubmit: 2 }));
    const e = await t.evaluate(data);
    expect(h!.accuracy).toBe(e.accuracy);
    expect(h!.loss).toBeCloseTo(e.loss, 5);
    expect(h!.loss).toBeGreaterThan(1); // ten classes, untrained: about ln 10
    t.release();
  });
});
