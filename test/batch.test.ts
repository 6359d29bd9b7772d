// The GPU batch gather (shaders/batch.wgsl) against its float64 reference (src/data/batch.ref.ts),
// the epoch/offset contract, and what the augmentation draws mean (reference only).
import type { Dispatch } from '../src/gpu/runtime.ts';
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import {
  epochOrder,
  evalBatches,
  gatherEval,
  gatherTrain,
  stepsPerEpochOf,
  uploadDataset,
  type AugmentParams,
  type Normalize,
  type TrainGather,
} from '../src/data/batch.ts';
import { drawAug, gatherEvalRef, gatherTrainRef } from '../src/data/batch.ref.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { advanceCounter } from '../src/ops/optimizer.ts';
import { ShapeError } from '../src/errors.ts';
import { Rng } from '../src/util/rng.ts';

// H ≠ W so a swapped axis shows. Geometry (rotate/zoom) is f32 on the GPU: coordinates off by ~1e-6
// pixel move a bilinear value by as much; everything else is exact up to the /255 and /std roundings.
const H = 12,
  W = 10,
  N = 37,
  B = 5,
  STEPS = 7;
const EXACT = { atol: 1e-6, rtol: 1e-6 };
const GEO = { atol: 5e-5, rtol: 0 };

function randomDataset(n: number, h: number, w: number, seed: number): Dataset {
  const rng = new Rng(seed);
  // An item on a dark background, like Fashion-MNIST: zero padding and erasing both show.
  const images = new Uint8Array(n * h * w).map((_, i) =>
    Math.abs((i % w) - w / 2) < w / 3 ? 30 + rng.int(226) : rng.int(3),
  );
  return { images, labels: new Uint8Array(n).map(() => rng.int(10)), n, rows: h, cols: w };
}

const ds = randomDataset(N, H, W, 1);
const order = epochOrder(N, 2, 0);

describe('training gather (GPU vs reference), counter written between submits', () => {
  const gpu = useGpu();
  const cases: [string, AugmentParams, Normalize | undefined, typeof EXACT][] = [
    ['plain', {}, undefined, EXACT],
    ['plain, mean/std normalised', {}, { mean: 0.286, std: 0.353 }, EXACT],
    ['shift 2', { shift: 2 }, undefined, EXACT],
    ['flip', { flip: true }, undefined, EXACT],
    ['rotate 30 + zoom 0.2 (bilinear)', { rotate: 30, zoom: 0.2 }, undefined, GEO],
    ['rotate 180 (series sin/cos over ±π)', { rotate: 180 }, undefined, GEO],
    ['erase 1.0', { erase: 1 }, undefined, EXACT],
    [
      'everything, normalised',
      { shift: 3, flip: true, rotate: 15, zoom: 0.1, erase: 0.5 },
      { mean: 0.5, std: 0.25 },
      { atol: 2e-4, rtol: 0 },
    ],
  ];
  it.each(cases)('%s', async (_name, augment, normalize, tol) => {
    const g = gpu();
    const data = uploadDataset(g, ds);
    const indices = g.upload(order),
      counter = g.alloc(16),
      x = g.alloc(B * H * W * 4),
      labels = g.alloc(B * 4);
    const s: TrainGather = { batch: B, stepsPerEpoch: STEPS, seed: 9, augment, normalize };
    const d = gatherTrain(g, { data, indices, counter, x, labels }, s);
    const seen: number[][] = [];
    for (const step of [0, 3, 6, 8]) {
      g.write(counter, new Uint32Array([step, 0, 0, 0]));
      g.run(d);
      const ref = gatherTrainRef(ds, order, step, s);
      const got = await g.readF32(x);
      expectAllclose(`gather x (step ${step})`, got, ref.x, tol, [B, 1, H, W]);
      expect(Array.from(await g.readU32(labels)), `labels (step ${step})`).toEqual(Array.from(ref.labels));
      seen.push(Array.from(got));
    }
    // Every step is its own batch (or its own draws: step 8 is batch 1 again, augmented anew).
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toEqual(seen[i - 1]);
    g.free(d);
    [indices, counter, x, labels].forEach((b) => g.release(b));
    data.release();
  });
});

// Colour (C = 3, NCHW): one draw per sample moves every channel alike; each channel has its own mean/std.
const C = 3;
const rgb: Dataset = { ...randomDataset(N * C, H, W, 4), labels: ds.labels, n: N, channels: C };
const RGB_NORM: Normalize = { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };

describe('colour gather (C = 3, GPU vs reference)', () => {
  const gpu = useGpu();
  const cases: [string, AugmentParams, typeof EXACT][] = [
    ['plain', {}, EXACT],
    ['shift + flip + erase', { shift: 2, flip: true, erase: 1 }, EXACT],
    ['rotate + zoom (bilinear)', { rotate: 30, zoom: 0.2 }, GEO],
  ];
  it.each(cases)("training: %s, per-channel normalised (the dataset's own)", async (_name, augment, tol) => {
    const g = gpu();
    const data = uploadDataset(g, { ...rgb, normalize: RGB_NORM });
    const indices = g.upload(order),
      counter = g.alloc(16),
      x = g.alloc(B * C * H * W * 4),
      labels = g.alloc(B * 4);
    const s: TrainGather = { batch: B, stepsPerEpoch: STEPS, seed: 5, augment };
    const d = gatherTrain(g, { data, indices, counter, x, labels }, s);
    for (const step of [0, 4]) {
      g.write(counter, new Uint32Array([step, 0, 0, 0]));
      g.run(d);
      const ref = gatherTrainRef({ ...rgb, normalize: RGB_NORM }, order, step, s);
      expectAllclose(`colour x (step ${step})`, await g.readF32(x), ref.x, tol, [B, C, H, W]);
      expect(Array.from(await g.readU32(labels))).toEqual(Array.from(ref.labels));
    }
    g.free(d);
    [indices, counter, x, labels].forEach((b) => g.release(b));
    data.release();
  });

  it('evaluation, plain and mirrored, per-channel normalised', async () => {
    const g = gpu();
    const data = uploadDataset(g, rgb);
    const x = g.alloc(6 * C * H * W * 4),
      labels = g.alloc(6 * 4);
    for (const flip of [false, true]) {
      const s = { batch: 6, offset: 30, normalize: RGB_NORM, flip };
      const d = gatherEval(g, { data, x, labels }, s);
      g.run(d);
      expectAllclose(`colour eval x (flip ${flip})`, await g.readF32(x), gatherEvalRef(rgb, s).x, EXACT, [6, C, H, W]);
      g.free(d);
    }
    [x, labels].forEach((b) => g.release(b));
    data.release();
  });

  it('reference: each channel is the grey gather of its plane, with its own mean and std', () => {
    const s: TrainGather = { batch: B, stepsPerEpoch: STEPS, seed: 3, augment: { shift: 2, flip: true, rotate: 20 } };
    const colour = gatherTrainRef({ ...rgb, normalize: RGB_NORM }, order, 2, s).x;
    const px = H * W;
    for (let c = 0; c < C; c++) {
      // The plane c of every sample, as a grey dataset.
      const images = new Uint8Array(N * px);
      for (let i = 0; i < N; i++) images.set(rgb.images.subarray((i * C + c) * px, (i * C + c + 1) * px), i * px);
      const norm = { mean: (RGB_NORM.mean as number[])[c]!, std: (RGB_NORM.std as number[])[c]! };
      const grey = gatherTrainRef({ ...ds, images }, order, 2, { ...s, normalize: norm }).x;
      for (let b = 0; b < B; b++)
        expect(Array.from(colour.subarray((b * C + c) * px, (b * C + c + 1) * px))).toEqual(
          Array.from(grey.subarray(b * px, (b + 1) * px)),
        );
    }
  });

  it('more than four channels, or a std of 0 for a channel, are refused', () => {
    const g = gpu();
    expect(() => uploadDataset(g, { ...rgb, n: 5, channels: 5 })).toThrow(/5 channels: the batch gather takes 1–4/);
    const data = uploadDataset(g, rgb);
    const io = { data, x: g.alloc(4), labels: g.alloc(4) };
    expect(() => gatherEval(g, io, { batch: 1, offset: 0, normalize: { mean: [0, 0, 0], std: [1, 0, 1] } })).toThrow(
      /std 0/,
    );
    data.release();
  });
});

describe('the epoch contract', () => {
  const gpu = useGpu();

  it('steps recorded into ONE submit each read their own batch: counter advanced on the GPU', async () => {
    const g = gpu();
    const data = uploadDataset(g, ds);
    const k = 4,
      slot = Math.ceil((B * H * W * 4) / 256) * 256; // storage offsets align to 256
    const indices = g.upload(order),
      counter = g.alloc(16),
      x = g.alloc(k * slot),
      labels = g.alloc(k * 256);
    g.write(counter, new Uint32Array([5, 0, 0, 0]));
    const s: TrainGather = { batch: B, stepsPerEpoch: STEPS, seed: 4, augment: { shift: 1, flip: true, erase: 0.5 } };
    const steps: Dispatch[] = [];
    for (let i = 0; i < k; i++) {
      steps.push(
        ...gatherTrain(
          g,
          {
            data,
            indices,
            counter,
            x: { buffer: x, offset: i * slot, size: B * H * W * 4 },
            labels: { buffer: labels, offset: i * 256, size: B * 4 },
          },
          s,
        ),
      );
      steps.push(...advanceCounter(g, { counter }));
    }
    g.run(steps);
    const xs = await g.readF32(x),
      ls = await g.readU32(labels);
    for (let i = 0; i < k; i++) {
      const ref = gatherTrainRef(ds, order, 5 + i, s); // 5, 6, then 7 and 8 wrap to batches 0 and 1
      expectAllclose(`step ${5 + i} x`, xs.subarray((i * slot) / 4, (i * slot) / 4 + B * H * W), ref.x, EXACT, [
        B,
        1,
        H,
        W,
      ]);
      expect(Array.from(ls.subarray(i * 64, i * 64 + B))).toEqual(Array.from(ref.labels));
    }
    expect((await g.readU32(counter))[0]).toBe(5 + k);
    g.free(steps);
    [indices, counter, x, labels].forEach((b) => g.release(b));
    data.release();
  });

  it('offset = ((counter[0] − epochStartStep) mod stepsPerEpoch)·B: batch t is indices[t·B …]', async () => {
    const g = gpu();
    const data = uploadDataset(g, ds);
    const indices = g.upload(order),
      counter = g.alloc(16),
      x = g.alloc(B * H * W * 4),
      labels = g.alloc(B * 4);
    const d = gatherTrain(
      g,
      { data, indices, counter, x, labels },
      { batch: B, stepsPerEpoch: STEPS, seed: 1, epochStartStep: 100 },
    );
    for (const [step, t] of [
      [100, 0],
      [103, 3],
      [106, 6],
      [107, 0],
      [115, 1],
    ] as const) {
      g.write(counter, new Uint32Array([step, 0, 0, 0]));
      g.run(d);
      const want = Array.from(order.subarray(t * B, t * B + B));
      expect(Array.from(await g.readU32(labels)), `labels at step ${step}`).toEqual(want.map((i) => ds.labels[i]));
      const img = Array.from(await g.readF32(x, H * W, (B - 1) * H * W)); // the batch's last row
      expect(img, `last image at step ${step}`).toEqual(
        Array.from(ds.images.subarray(want[B - 1]! * H * W, (want[B - 1]! + 1) * H * W), (v) => Math.fround(v / 255)),
      );
    }
    g.free(d);
    [indices, counter, x, labels].forEach((b) => g.release(b));
    data.release();
  });

  it('evaluation covers every sample, the last batch partial, normalised like training', async () => {
    const g = gpu();
    const data = uploadDataset(g, ds);
    const normalize = { mean: 0.3, std: 0.4 };
    const chunks = evalBatches(N, 8);
    expect(chunks.map((c) => c.size)).toEqual([8, 8, 8, 8, 5]);
    const x = g.alloc(8 * H * W * 4),
      labels = g.alloc(8 * 4);
    const xs: number[] = [],
      ls: number[] = [];
    for (const c of chunks) {
      const d = gatherEval(g, { data, x, labels }, { batch: c.size, offset: c.offset, normalize });
      g.run(d);
      const ref = gatherEvalRef(ds, { batch: c.size, offset: c.offset, normalize });
      expectAllclose(`eval x @${c.offset}`, await g.readF32(x, c.size * H * W), ref.x, EXACT, [c.size, 1, H, W]);
      xs.push(...ref.x);
      ls.push(...(await g.readU32(labels, c.size)));
      g.free(d);
    }
    expect(ls).toEqual(Array.from(ds.labels));
    expect(xs.length).toBe(N * H * W);
    // Mirrored (test-time augmentation): every image, not a random draw.
    const d = gatherEval(g, { data, x, labels }, { batch: 5, offset: 32, normalize, flip: true });
    g.run(d);
    expectAllclose(
      'eval x mirrored',
      await g.readF32(x, 5 * H * W),
      gatherEvalRef(ds, { batch: 5, offset: 32, normalize, flip: true }).x,
      EXACT,
      [5, 1, H, W],
    );
    g.free(d);
    [x, labels].forEach((b) => g.release(b));
    data.release();
  });

  it('shapes that would read past the data are ShapeErrors', () => {
    const g = gpu();
    const data = uploadDataset(g, ds);
    const ten = g.alloc(4 * 10);
    const io = { data, indices: ten, counter: g.dummy, x: g.dummy, labels: g.dummy };
    expect(() => gatherTrain(g, io, { batch: B, stepsPerEpoch: 8, seed: 0 })).toThrow(
      new ShapeError('8 steps of 5 need 40 samples but the dataset has 37'),
    );
    expect(() => gatherTrain(g, io, { batch: B, stepsPerEpoch: 3, seed: 0 })).toThrow(
      new ShapeError('the index buffer holds 10 u32 but an epoch reads 15'),
    );
    expect(() => gatherEval(g, { data, x: g.dummy, labels: g.dummy }, { batch: 8, offset: 30 })).toThrow(
      new ShapeError("samples 30…37 are outside the dataset's 37"),
    );
    expect(() => gatherTrain(g, io, { batch: B, stepsPerEpoch: 2, seed: 0, augment: { zoom: 1 } })).toThrow(
      'augment zoom 1: expected a fraction in [0, 1)',
    );
    expect(() => gatherTrain(g, io, { batch: B, stepsPerEpoch: 2, seed: 0, augment: { shift: 1.5 } })).toThrow(
      'augment shift 1.5: expected a whole number of pixels in 0–11',
    );
    g.release(ten);
    data.release();
  });
});

describe('host side and draws (reference only)', () => {
  it('epoch order: a seeded permutation, new every epoch; steps per epoch drop the remainder', () => {
    const a = epochOrder(1000, 7, 0);
    expect(Array.from(a).sort((p, q) => p - q)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(epochOrder(1000, 7, 0))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(1000, 7, 1))).not.toEqual(Array.from(a));
    expect([stepsPerEpochOf(60000, 128), stepsPerEpochOf(37, 5), stepsPerEpochOf(40, 5)]).toEqual([468, 7, 8]);
  });

  it("draws: flips half the time, shifts cover ±shift, erasing keeps Zhong et al.'s area and aspect", () => {
    let flips = 0,
      erased = 0;
    const shifts = new Set<number>();
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const g = drawAug({ shift: 2, flip: true, erase: 0.5 }, 28, 28, 3, i >> 5, i & 31);
      flips += g.flip ? 1 : 0;
      shifts.add(g.dx).add(g.dy);
      if (g.erase) {
        erased++;
        // eh = floor(√(A·r)), ew = floor(√(A/r)) with A in 2–33% of 784 and r in 0.3–3.33, so:
        const { eh, ew, top, left } = g.erase;
        expect(eh < 28 && ew < 28 && top + eh <= 28 && left + ew <= 28).toBe(true);
        expect(eh * ew).toBeLessThanOrEqual(0.33 * 784);
        expect((eh + 1) * (ew + 1)).toBeGreaterThan(0.02 * 784);
        expect((eh + 1) / ew).toBeGreaterThan(0.3);
        expect(eh / (ew + 1)).toBeLessThan(3.34);
      }
    }
    expect(Math.abs(flips / n - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(erased / n - 0.5)).toBeLessThan(0.04);
    expect([...shifts].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2]);
  });

  it('reference semantics: flip mirrors, shift translates with zero fill', () => {
    const tiny = randomDataset(6, 4, 5, 8);
    const idx = Uint32Array.from([0, 1, 2, 3, 4, 5]);
    const s: TrainGather = { batch: 6, stepsPerEpoch: 1, seed: 11, augment: { shift: 1, flip: true } };
    const { x } = gatherTrainRef(tiny, idx, 0, s);
    for (let b = 0; b < 6; b++) {
      const g = drawAug(s.augment!, 4, 5, 11, 0, b);
      for (let y = 0; y < 4; y++) {
        for (let c = 0; c < 5; c++) {
          const sx = (g.flip ? 4 - c : c) - g.dx,
            sy = y - g.dy;
          const want = sy < 0 || sy >= 4 || sx < 0 || sx >= 5 ? 0 : tiny.images[b * 20 + sy * 5 + sx]! / 255;
          expect(x[b * 20 + y * 5 + c]).toBe(want);
        }
      }
    }
  });

  it('reference semantics: rotation and zoom turn about the centre (an odd image keeps its centre pixel)', () => {
    const tiny = randomDataset(8, 5, 7, 9);
    const s: TrainGather = { batch: 8, stepsPerEpoch: 1, seed: 5, augment: { rotate: 40, zoom: 0.3 } };
    const { x } = gatherTrainRef(tiny, Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 3, s);
    for (let b = 0; b < 8; b++) expect(x[b * 35 + 2 * 7 + 3]).toBeCloseTo(tiny.images[b * 35 + 2 * 7 + 3]! / 255, 12);
    expect(new Set(Array.from({ length: 8 }, (_, b) => drawAug(s.augment!, 5, 7, 5, 3, b).geo!.theta)).size).toBe(8);
  });
});
