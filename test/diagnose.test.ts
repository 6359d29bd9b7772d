// firstNonFinite (src/train/diagnose.ts): after a diverged loss, the first layer whose activations
// on a few images are NaN or ±Inf, named as the summary names it; null when every one is finite.
// firstNonFiniteGradient: the same for one training step without its update: the first non-finite
// activation, else loss, else gradient (backward order), else gradient whose square overflows f32,
// with the largest activation and gradient; the trainer is left exactly as it was.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { SMALL, synthetic } from './helpers/train.ts';
import { syntheticImages } from './helpers/files.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { Trainer } from '../src/train/trainer.ts';
import { firstNonFinite, firstNonFiniteGradient } from '../src/train/diagnose.ts';
import type { NamedTensor } from '../src/model/safetensors.ts';

const gpu = useGpu();
const images = synthetic(16, 1);

/** Every parameter of the model set to `value(name, i)`, i the flat index (a dense weight is [in, out]). */
function weights(
  source: string,
  value: (name: string, i: number, shape: readonly number[]) => number,
): Map<string, NamedTensor> {
  const params = buildGraph(parseNet(source, 'm.net'), 1).params;
  return new Map(
    params.map((p) => [
      p.name,
      {
        shape: p.shape,
        data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => value(p.name, i, p.shape)),
      },
    ]),
  );
}

/** Every value of every parameter and running statistic, and the step counter: what must not change. */
async function snapshot(t: Trainer): Promise<{ weights: Map<string, Float32Array>; step: number; stats: Uint32Array }> {
  const weights = new Map([...(await t.params.read())].map(([name, w]) => [name, w.data]));
  return { weights, step: await t.step(), stats: await gpu().readU32(t.stats) };
}

describe('firstNonFinite', () => {
  it('a model whose activations are finite: null, and every buffer it made is released', async () => {
    const t = new Trainer(gpu(), parseNet(SMALL, 'small.net'), 1);
    const live = gpu().liveBytes;
    expect(await firstNonFinite(t, images, 4)).toBeNull();
    expect(gpu().liveBytes).toBe(live);
    t.release();
  });

  it('a dense layer fed huge weights: it is named, with the index and value of its first Inf', async () => {
    const source = 'input 8x8x1\ndense 16 relu\ndense 10 softmax';
    const t = new Trainer(gpu(), parseNet(source, 'huge.net'), 1);
    // 64 pixels of about 0.1–1 times 1e38 each: past f32's 3.4e38 for every unit of every image.
    t.params.load(weights(source, (n) => (n === 'dense1.weight' ? 1e38 : n.endsWith('.weight') ? 0.01 : 0)));
    expect(await firstNonFinite(t, images, 4)).toEqual({ layer: 'dense1', op: 'dense', index: 0, value: Infinity });
    t.release();
  });

  it('inside a residual block: the layer as the summary shows it (res1.conv2), not the block', async () => {
    const source =
      'input 8x8x1\nconv 4 3x3 same relu\nresidual { conv 4 3x3 same relu; conv 4 3x3 same }\nflatten\ndense 10';
    const t = new Trainer(gpu(), parseNet(source, 'res.net'), 1);
    // conv1 ≈ 0.05 (positive), res1.conv1 ≈ 1e19 (finite), res1.conv2 ≈ 1e39: Inf.
    const w = (n: string): number =>
      n === 'conv1.weight'
        ? 0.1
        : n.startsWith('res1.') && n.endsWith('.weight')
          ? 1e20
          : n.endsWith('.weight')
            ? 0.01
            : 0;
    t.params.load(weights(source, w));
    expect(await firstNonFinite(t, images, 2)).toEqual({
      layer: 'res1.conv2',
      op: 'conv2d',
      index: 0,
      value: Infinity,
    });
    t.release();
  });

  it('600 unnormalised residual blocks at their initial weights: the block where they overflow', async () => {
    // Each block adds conv(relu(conv(x))) to x: the activations grow about 1.2× a block from
    // Glorot's initialisation, ~1e26 after 300 blocks (finite), past f32's range before 600.
    const block = 'residual { conv 8 3x3 same relu; conv 8 3x3 same }\n';
    const source = `conv 8 3x3 same relu\n${block.repeat(600)}globalavgpool\ndense 10 softmax`;
    const t = new Trainer(gpu(), parseNet(source, 'deep.net'), 1);
    const r = await firstNonFinite(t, { ...syntheticImages(2, 1), n: 2, rows: 28, cols: 28 }, 2);
    expect(r, JSON.stringify(r)).not.toBeNull();
    expect(r!.layer).toMatch(/^res\d+(\.conv[12])?$/);
    expect(Number(/^res(\d+)/.exec(r!.layer)![1])).toBeGreaterThan(300);
    expect(Number.isFinite(r!.value)).toBe(false);
    t.release();
  });
});

describe('firstNonFiniteGradient', () => {
  // Three linear dense layers: dense1's weights 1e-30 and dense2's 1e30 keep the activations small
  // (dense2 ≈ 6e0), dense3 sends class 0 alone 1e30 per unit (logits ≈ 1e32, finite). Backward,
  // dL/d dense2 ≈ 0.25·1e30 and dL/d dense1 ≈ 4 · 2.5e29 · B2: with B2 = 1e30 that is 1e60, Inf, so
  // dense1's weight gradient is the first non-finite one (dense3's and dense2's stay finite).
  const CHAIN = 'input 8x8x1\ndense 4\ndense 4\ndense 10';
  const chain =
    (b2: number, b3: number) =>
    (n: string, i: number, shape: readonly number[]): number =>
      n === 'dense1.weight'
        ? 1e-30
        : n === 'dense2.weight'
          ? b2
          : n === 'dense3.weight'
            ? i % shape[1]! === 0
              ? b3
              : 0
            : 0;

  it('a finite forward whose gradients overflow: the first non-finite gradient in backward order', async () => {
    const t = new Trainer(gpu(), parseNet(CHAIN, 'chain.net'), 1);
    t.params.load(weights(CHAIN, chain(1e30, 1e30)));
    expect(await firstNonFinite(t, images, 4)).toBeNull();
    const r = await firstNonFiniteGradient(t, images, 4);
    expect(r, JSON.stringify(r)).toMatchObject({ kind: 'gradient', layer: 'dense1', param: 'dense1.weight', index: 0 });
    expect(Number.isFinite(r!.value)).toBe(false);
    // The logits are the largest activation, about 1e32; dense2's weight gradient (~1e1) or its
    // bias's (~1e30) the largest finite gradient.
    expect(r!.largest).toMatchObject({ layer: 'dense3', op: 'dense' });
    expect(r!.largest!.value).toBeGreaterThan(1e31);
    expect(r!.largest!.value).toBeLessThan(1e34);
    expect(r!.largestGradient?.param).toMatch(/^dense[23]\./);
    t.release();
  });

  it("finite gradients whose square overflows f32 (Adam's second moment): the first such, by parameter", async () => {
    // B2 = 1e15: dL/d dense1 ≈ 1e29 (the logits ≈ 1e2 now, so the softmax spreads the gradient).
    const t = new Trainer(gpu(), parseNet(CHAIN, 'chain.net'), 1);
    t.params.load(weights(CHAIN, chain(1e15, 1e15)));
    const r = await firstNonFiniteGradient(t, images, 4);
    expect(r, JSON.stringify(r)).toMatchObject({ kind: 'squared gradient', layer: 'dense1', param: 'dense1.weight' });
    expect(Number.isFinite(r!.value)).toBe(true);
    expect(Math.abs(r!.value)).toBeGreaterThan(Math.sqrt(3.4028234663852886e38));
    expect(r!.largestGradient).toMatchObject({ layer: 'dense1' });
    expect(r!.largestGradient!.value).toBeGreaterThanOrEqual(Math.abs(r!.value));
    t.release();
  });

  it('finite activations whose summed loss overflows: the loss, at the layer of the logits', async () => {
    // Class 0's logit ≈ Σ pixels · 1.5e37 ≈ 1.6e38 (finite), the others 0: each image not of
    // class 0 costs ~1.6e38, and three of them sum past f32's 3.4e38 (Σ_j over the 9 logits below
    // the maximum is already −Inf, which the kernel's label-smoothing term turns into NaN).
    const source = 'input 8x8x1\ndense 10';
    const t = new Trainer(gpu(), parseNet(source, 'loss.net'), 1);
    t.params.load(weights(source, (n, i, shape) => (n === 'dense1.weight' && i % shape[1]! === 0 ? 1.5e37 : 0)));
    expect(Array.from(images.labels.subarray(0, 4)).filter((y) => y !== 0).length).toBeGreaterThanOrEqual(3);
    expect(await firstNonFinite(t, images, 4)).toBeNull();
    const r = await firstNonFiniteGradient(t, images, 4);
    expect(r, JSON.stringify(r)).toMatchObject({
      kind: 'loss',
      layer: 'dense1',
      op: 'dense',
      largest: { layer: 'dense1', op: 'dense' },
    });
    expect(Number.isFinite(r!.value)).toBe(false); // NaN here: the kernel's 0 · (Σ_j (z_j − max) = −Inf)
    expect(r!.largest!.value).toBeGreaterThan(1e38);
    expect(r!.index).toBeUndefined();
    t.release();
  });

  it('an activation that overflows is still reported first, as firstNonFinite reports it', async () => {
    const source = 'input 8x8x1\ndense 16 relu\ndense 10 softmax';
    const t = new Trainer(gpu(), parseNet(source, 'huge.net'), 1);
    t.params.load(weights(source, (n) => (n === 'dense1.weight' ? 1e38 : n.endsWith('.weight') ? 0.01 : 0)));
    const r = await firstNonFiniteGradient(t, images, 4);
    expect(r).toMatchObject({
      kind: 'activation',
      layer: 'dense1',
      op: 'dense',
      index: 0,
      value: Infinity,
      largestGradient: null,
    });
    expect(await firstNonFinite(t, images, 4)).toEqual({ layer: 'dense1', op: 'dense', index: 0, value: Infinity });
    t.release();
  });

  it('a finite model: null; weights, running statistics, step, accumulators and GPU memory as before', async () => {
    // Batch norm (whose running statistics a training forward updates) and dropout (which reads the counter).
    const source = 'input 8x8x1\nconv 4 3x3 same\nbatchnorm\nrelu\npool 2\ndropout 0.1\ndense 10 softmax';
    const t = new Trainer(gpu(), parseNet(source, 'bn.net'), 1);
    t.setStep(7);
    const before = await snapshot(t);
    const live = gpu().liveBytes;
    expect(await firstNonFiniteGradient(t, images, 4)).toBeNull();
    expect(gpu().liveBytes).toBe(live);
    const after = await snapshot(t);
    expect(after.step).toBe(7);
    expect(after.stats).toEqual(before.stats);
    expect([...after.weights.keys()]).toEqual([...before.weights.keys()]);
    for (const [name, w] of before.weights) expect(after.weights.get(name), name).toEqual(w);
    t.release();
  });

  it('300 unnormalised residual blocks at their initial weights: gradients whose square overflows', async () => {
    // The reviewer's network: activations ~1e22 at res300 (finite, so firstNonFinite finds nothing),
    // gradients up to ~1e23: Adam's g² is Infinity at the first step and its update NaN at the next.
    const block = 'residual { conv 8 3x3 same relu; conv 8 3x3 same }\n';
    const source = `conv 8 3x3 same relu\n${block.repeat(300)}globalavgpool\ndense 10 softmax`;
    const t = new Trainer(gpu(), parseNet(source, 'deep.net'), 1);
    const ds = { ...syntheticImages(2, 1), n: 2, rows: 28, cols: 28 };
    expect(await firstNonFinite(t, ds, 2)).toBeNull();
    const r = await firstNonFiniteGradient(t, ds, 2);
    expect(r, JSON.stringify(r)).toMatchObject({ kind: 'squared gradient', largest: { layer: 'res300', op: 'add' } });
    expect(r!.largest!.value).toBeGreaterThan(1e20);
    expect(r!.largest!.value).toBeLessThan(1e30);
    expect(r!.largestGradient!.value).toBeGreaterThan(1e20);
    expect(r!.largestGradient!.value).toBeLessThan(1e30);
    t.release();
  });
});
