// Every example network compiles to a graph and trains a few steps on the CPU adapter.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { useGpu } from './helpers/gpu.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import type { Dataset } from '../src/data/dataset.ts';

const files = readdirSync('examples')
  .filter((f) => f.endsWith('.net'))
  .sort();

/** n random images of the network's input shape (grey 28x28, or e.g. CIFAR's 32x32x3). */
function noise(n: number, { h, w, c }: { h: number; w: number; c: number }): Dataset {
  const rng = new Rng(n);
  return {
    images: new Uint8Array(n * h * w * c).map(() => rng.int(256)),
    labels: new Uint8Array(n).map(() => rng.int(10)),
    n,
    rows: h,
    cols: w,
    channels: c,
  };
}

describe('examples train a few steps', () => {
  const gpu = useGpu();
  it('there are examples', () => expect(files.length).toBeGreaterThanOrEqual(6));
  it.each(files)('%s', async (file) => {
    const ir = parseNet(readFileSync(`examples/${file}`, 'utf8'), `examples/${file}`);
    const t = new Trainer(gpu(), ir, 1);
    const before = await t.params.read();
    const batch = 4;
    const h = await t.fit(noise(batch * 2, ir.input), null, {
      epochs: 1,
      batch,
      lr: ir.train.lr,
      optimizer: {
        name: ir.train.optimizer,
        momentum: ir.train.momentum,
        nesterov: ir.train.nesterov,
        weightDecay: ir.train.weightDecay,
      },
      schedule: 'constant',
      labelSmoothing: ir.train.labelSmoothing,
      seed: 1,
      augment: ir.augment,
    });
    expect(Number.isFinite(h[0]!.loss)).toBe(true);
    const after = await t.params.read();
    const name = [...after.keys()].find((k) => k.endsWith('.weight'))!;
    expect(Array.from(after.get(name)!.data)).not.toEqual(Array.from(before.get(name)!.data));
    t.release();
  });
});
