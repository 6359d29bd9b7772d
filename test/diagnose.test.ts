// firstNonFinite (src/train/diagnose.ts): after a diverged loss, the first layer whose activations
// on a few images are NaN or ±Inf, named as the summary names it; null when every one is finite.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { SMALL, synthetic } from './helpers/train.ts';
import { syntheticImages } from './helpers/files.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { Trainer } from '../src/train/trainer.ts';
import { firstNonFinite } from '../src/train/diagnose.ts';
import type { NamedTensor } from '../src/model/safetensors.ts';

const gpu = useGpu();
const images = synthetic(16, 1);

/** Every parameter of the model set to `value(name)`. */
function weights(source: string, value: (name: string) => number): Map<string, NamedTensor> {
  const params = buildGraph(parseNet(source, 'm.net'), 1).params;
  return new Map(params.map((p) => [p.name, { shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(value(p.name)) }]));
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
    const source = 'input 8x8x1\nconv 4 3x3 same relu\nresidual { conv 4 3x3 same relu; conv 4 3x3 same }\nflatten\ndense 10';
    const t = new Trainer(gpu(), parseNet(source, 'res.net'), 1);
    // conv1 ≈ 0.05 (positive), res1.conv1 ≈ 1e19 (finite), res1.conv2 ≈ 1e39: Inf.
    const w = (n: string): number => (n === 'conv1.weight' ? 0.1 : n.startsWith('res1.') && n.endsWith('.weight') ? 1e20 : n.endsWith('.weight') ? 0.01 : 0);
    t.params.load(weights(source, w));
    expect(await firstNonFinite(t, images, 2)).toEqual({ layer: 'res1.conv2', op: 'conv2d', index: 0, value: Infinity });
    t.release();
  });

  it('600 unnormalised residual blocks at their initial weights: the block where they overflow', async () => {
    // Each block adds conv(relu(conv(x))) to x: the activations grow about 1.2× a block from
    // Glorot's initialisation, ~1e26 after 300 blocks (finite), past f32's range before 600.
    const source = `conv 8 3x3 same relu\n${'residual { conv 8 3x3 same relu; conv 8 3x3 same }\n'.repeat(600)}globalavgpool\ndense 10 softmax`;
    const t = new Trainer(gpu(), parseNet(source, 'deep.net'), 1);
    const r = await firstNonFinite(t, { ...syntheticImages(2, 1), n: 2, rows: 28, cols: 28 }, 2);
    expect(r, JSON.stringify(r)).not.toBeNull();
    expect(r!.layer).toMatch(/^res\d+(\.conv[12])?$/);
    expect(Number(/^res(\d+)/.exec(r!.layer)![1])).toBeGreaterThan(300);
    expect(Number.isFinite(r!.value)).toBe(false);
    t.release();
  });
});
