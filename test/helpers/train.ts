// What the in-process training tests share: fit options, a small learnable dataset and a small model.
import type { FitOptions } from '../../src/train/trainer.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { Rng } from '../../src/util/rng.ts';

/** Fit options for the small model: one epoch, batch 32, Adam 0.002, overridden by `o`. */
export const opts = (o: Partial<FitOptions> = {}): FitOptions => ({
  epochs: 1,
  batch: 32,
  lr: 0.002,
  optimizer: { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0 },
  schedule: 'constant',
  labelSmoothing: 0,
  seed: 1,
  stepsPerSubmit: 8,
  ...o,
});

/** Ten classes of 8x8 images, each a bright square at its own place plus noise: learnable in seconds. */
export function synthetic(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * 64),
    labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(10);
    labels[i] = c;
    for (let p = 0; p < 64; p++) images[i * 64 + p] = rng.int(60);
    const y0 = Math.floor(c / 4) * 2 + 1,
      x0 = (c % 4) * 2;
    for (let dy = 0; dy < 2; dy++)
      for (let dx = 0; dx < 2; dx++) images[i * 64 + (y0 + dy) * 8 + x0 + dx] = 200 + rng.int(55);
  }
  return { images, labels, n, rows: 8, cols: 8 };
}

/** A small model for `synthetic`'s 8x8 images. */
export const SMALL = 'input 8x8x1\nconv 4 3x3 same relu\npool 2\ndropout 0.1\ndense 10 softmax';
