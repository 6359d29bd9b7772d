// A first conv that gathers its training batch in its forward (shaders/lib/conv_in_gather.wgsl,
// src/ops/conv2d_gather.ts) against the composition of the unfused CPU references (the gather, the
// conv, the max pooling and dropout) and, bit for bit, against the unfused GPU kernels run one after
// another (shaders/batch.wgsl train_batch, then the conv forward), on the GPU's tiles.
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { useGpu, f32 } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { epochOrder, gatherTrain, trainGatherIn, uploadDataset, type TrainGather } from '../src/data/batch.ts';
import { gatherTrainRef } from '../src/data/batch.ref.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { conv2dForward, conv2dGeometry, conv2dPlan, type Conv2dShape } from '../src/ops/conv2d.ts';
import { forwardGathers } from '../src/ops/conv2d_gather.ts';
import { conv2dRef } from '../src/ops/conv2d.ref.ts';
import { maxPoolForwardRef } from '../src/ops/pool.ref.ts';
import { dropoutRef } from '../src/ops/dropout.ref.ts';
import { ShapeError } from '../src/errors.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

const N = 23;
const B = 5;
const STEPS = 4;

function dataset(c: number, h: number, w: number, seed: number): Dataset {
  const rng = new Rng(seed);
  // An item on a dark background: zero fill, padding and erasing all show.
  const images = new Uint8Array(N * c * h * w).map((_, i) =>
    Math.abs((i % w) - w / 2) < w / 3 ? 30 + rng.int(226) : 0,
  );
  return { images, labels: new Uint8Array(N).map(() => rng.int(10)), n: N, rows: h, cols: w, channels: c };
}

interface Case {
  c: number;
  h: number;
  w: number;
  conv: Partial<Conv2dShape> & { k: number };
  act: Act;
  gather: Omit<TrainGather, 'batch' | 'stepsPerEpoch' | 'seed'>;
  /** A 2×2 max pooling and this dropout rate (0: none) in the epilogue. */
  pool?: { rate: number };
  /** Tolerance of x against the reference (bilinear values move with f32 coordinates). */
  atol: number;
  /** A GPU of one unit: the tiles with the most FMAs per word, two columns a thread (32 out-channels). */
  oneUnit?: boolean;
}

const CASES: [string, Case][] = [
  ['grey 3x3 same, relu, plain', { c: 1, h: 12, w: 10, conv: { k: 8 }, act: { kind: 'relu' }, gather: {}, atol: 1e-6 }],
  [
    'grey 3x3 same + pool + dropout, shift + flip + erase, normalised',
    {
      ...{ c: 1, h: 12, w: 10, conv: { k: 16 }, act: { kind: 'relu' }, atol: 1e-6 },
      gather: { augment: { shift: 2, flip: true, erase: 1 }, normalize: { mean: 0.29, std: 0.35 } },
      pool: { rate: 0.25 },
    },
  ],
  [
    'RGB 5x5 valid stride 2, everything (bilinear), per-channel normalised',
    {
      ...{ c: 3, h: 14, w: 12, act: { kind: 'tanh' }, atol: 2e-4 },
      conv: { k: 6, kh: 5, kw: 5, strideH: 2, strideW: 2, padding: 'valid' },
      gather: {
        augment: { shift: 1, flip: true, rotate: 20, zoom: 0.1, erase: 0.5 },
        normalize: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] },
      },
    },
  ],
  // Geometries the staging must cover (a review's): asymmetric 'same' padding, rows too wide to stage,
  // tiles that divide the GEMM (unchecked), an image smaller than a tile (every tile spans batch rows).
  [
    '2 channels, 4x4 kernel, same stride 2 on 9x11 (asymmetric padding), shift + flip',
    {
      ...{ c: 2, h: 9, w: 11, act: { kind: 'relu' }, atol: 1e-6 },
      conv: { k: 8, kh: 4, kw: 4, strideH: 2, strideW: 2 },
      gather: { augment: { shift: 1, flip: true } },
    },
  ],
  [
    '4 channels 6x70: rows too wide to stage, each value decoded as fetched, erase',
    {
      c: 4,
      h: 6,
      w: 70,
      conv: { k: 8, kh: 5, kw: 5 },
      act: { kind: 'relu' },
      gather: { augment: { erase: 1 } },
      atol: 1e-6,
    },
  ],
  [
    '4 channels 8x8, 2x2 kernel, 16 out-channels (unchecked tiles)',
    { c: 4, h: 8, w: 8, conv: { k: 16, kh: 2, kw: 2 }, act: { kind: 'relu' }, gather: {}, atol: 1e-6 },
  ],
  [
    'a 3x3 image: every tile spans batch rows, flip',
    { c: 1, h: 3, w: 3, conv: { k: 8 }, act: { kind: 'relu' }, gather: { augment: { flip: true } }, atol: 1e-6 },
  ],
  [
    'RGB 3x3 same, 40 out-channels (two row tiles), pool, no dropout',
    {
      c: 3,
      h: 8,
      w: 8,
      conv: { k: 40 },
      act: { kind: 'relu' },
      gather: { augment: { shift: 2 } },
      pool: { rate: 0 },
      atol: 1e-6,
    },
  ],
  // Odd outputs pooled: the windows' columns come first, then the last row's and column's; a tile
  // reaching those is decoded as fetched (its columns' rows are not one range), the others staged.
  [
    'grey 9x9 same + pool + dropout (the last row and column outside every window), shift',
    {
      ...{ c: 1, h: 9, w: 9, conv: { k: 8 }, act: { kind: 'relu' }, atol: 1e-6 },
      gather: { augment: { shift: 2 } },
      pool: { rate: 0.25 },
    },
  ],
  [
    'grey 7x43 same + pool: a tile of one image reaching from its last row into its last column',
    { c: 1, h: 7, w: 43, conv: { k: 8 }, act: { kind: 'relu' }, gather: {}, pool: { rate: 0 }, atol: 1e-6 },
  ],
  // Tiles of 8×8 blocks whose threads fetch two columns each (lib/gemm.wgsl fetch order 2), staged or
  // decoded as fetched: a thread's two columns may lie in two batch rows, each with its own transform.
  [
    'grey 28x28, 32 out-channels, pool + dropout, shift + flip + erase: two columns a thread',
    {
      ...{ c: 1, h: 28, w: 28, conv: { k: 32 }, act: { kind: 'relu' }, atol: 1e-6, oneUnit: true },
      gather: { augment: { shift: 2, flip: true, erase: 1 } },
      pool: { rate: 0.25 },
    },
  ],
  [
    '4 channels 6x70, 32 out-channels, rows too wide to stage, flip: two columns a thread',
    {
      ...{ c: 4, h: 6, w: 70, conv: { k: 32 }, act: { kind: 'relu' }, atol: 1e-6, oneUnit: true },
      gather: { augment: { flip: true } },
    },
  ],
];

function run(g: Gpu, ds: Dispatch[]): void {
  g.run(ds);
  g.free(ds);
}

describe('a first conv gathering its batch in its forward', () => {
  const gpu = useGpu();
  const tiles = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });

  it.each(CASES)('%s: bit for bit the gather then the conv, and the references', async (_name, c) => {
    const g = c.oneUnit ? gpu().withTuning({ lanes: 0, gemmSide: 16, units: 1 }) : tiles();
    const ds = dataset(c.c, c.h, c.w, 7);
    const s: Conv2dShape = {
      ...{ n: B, c: c.c, h: c.h, w: c.w, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' },
      ...c.conv,
    };
    const plan = conv2dPlan(g, s, 'forward', { split: false });
    expect(plan.tile.bn === 2 * plan.threads, 'two columns a thread').toBe(c.oneUnit === true);
    if (_name.includes('(unchecked tiles)')) expect(plan.checked, 'tiles that divide the GEMM').toBe(false);
    const { oh, ow } = conv2dGeometry(s);
    const pooled = c.pool !== undefined;
    expect(forwardGathers(g, s, pooled)).toBe(true);
    const rng = new Rng(3);
    const w = Array.from({ length: s.k * s.c * s.kh * s.kw }, () => rng.normal() * 0.3);
    const b = Array.from({ length: s.k }, () => rng.normal() * 0.1);
    const order = epochOrder(N, 5, 0);
    const data = uploadDataset(g, ds);
    const [xs, ys, outs] = [B * c.c * c.h * c.w, B * s.k * oh * ow, B * s.k * Math.floor(oh / 2) * Math.floor(ow / 2)];
    const nan = (count: number) => g.upload(new Float32Array(count).fill(Number.NaN));
    const bufs = {
      ...{ indices: g.upload(order), counter: g.alloc(16), w: g.upload(f32(w)), b: g.upload(f32(b)) },
      ...{ x: nan(xs), labels: g.alloc(B * 4), y: nan(ys), pooled: nan(outs), argmax: g.alloc(outs * 4) },
      ...{ x2: nan(xs), labels2: g.alloc(B * 4), y2: nan(ys), pooled2: nan(outs), argmax2: g.alloc(outs * 4) },
    };
    const settings: TrainGather = { batch: B, stepsPerEpoch: STEPS, seed: 11, ...c.gather };
    const from = trainGatherIn({ data, indices: bufs.indices, counter: bufs.counter }, settings);
    const dropout = c.pool && c.pool.rate > 0 ? { rate: c.pool.rate, seed: 13 } : undefined;
    const poolOf = (p: 'pooled' | 'argmax') => (x: 'x' | 'x2') => bufs[x === 'x' ? p : (`${p}2` as const)];
    const pool = (x: 'x' | 'x2') =>
      pooled ? { pooled: poolOf('pooled')(x), argmax: poolOf('argmax')(x), counter: bufs.counter, dropout } : undefined;
    for (const step of [1, 6]) {
      g.write(bufs.counter, new Uint32Array([step, 0, 0, 0]));
      const gather = { from, labels: bufs.labels };
      const fused = conv2dForward(g, { x: bufs.x, w: bufs.w, b: bufs.b, y: bufs.y, pool: pool('x'), gather }, s, c.act);
      expect(fused, 'one dispatch').toHaveLength(1);
      expect(fused[0]!.label).toMatch(/^gather \+ conv2d forward/);
      run(g, fused);
      const io = { data, indices: bufs.indices, counter: bufs.counter, x: bufs.x2, labels: bufs.labels2 };
      const y2 = { x: bufs.x2, w: bufs.w, b: bufs.b, y: bufs.y2, pool: pool('x2') };
      // The direct GEMM, as the gathering conv's (never Winograd: conv2d_plan.ts winogradPlan).
      const direct = { split: false, winograd: false } as const;
      run(g, [...gatherTrain(g, io, settings), ...conv2dForward(g, y2, s, c.act, direct)]);
      const [x, y] = [await g.readF32(bufs.x), await g.readF32(bufs.y)];
      const labels = await g.readU32(bufs.labels);
      expect(x, `x bit for bit the gather's (step ${step})`).toEqual(await g.readF32(bufs.x2));
      expect(labels, `labels as the gather's (step ${step})`).toEqual(await g.readU32(bufs.labels2));
      expect(y, `y bit for bit the unfused conv (step ${step})`).toEqual(await g.readF32(bufs.y2));
      // The composition of the references: the gather's batch, then the conv (and pooling, dropout).
      const ref = gatherTrainRef(ds, order, step, settings);
      expectAllclose(`x (step ${step})`, x, ref.x, { atol: c.atol, rtol: 0 });
      expect(Array.from(labels)).toEqual(Array.from(ref.labels));
      const yRef = conv2dRef(ref.x, w, b, s, c.act);
      expectAllclose(`y (step ${step})`, y, yRef, { atol: 50 * c.atol, rtol: 1e-5 });
      if (!pooled) continue;
      const argmax = await g.readU32(bufs.argmax);
      expect(await g.readF32(bufs.pooled), 'pooled bit for bit').toEqual(await g.readF32(bufs.pooled2));
      expect(argmax, 'argmax as the unfused').toEqual(await g.readU32(bufs.argmax2));
      const p = maxPoolForwardRef(y, {
        n: B,
        c: s.k,
        h: oh,
        w: ow,
        kh: 2,
        kw: 2,
        strideH: 2,
        strideW: 2,
        padding: 'valid',
      });
      const want = dropout ? dropoutRef(p.y, step, { count: outs, ...dropout }) : p.y;
      expectAllclose('pooled', await g.readF32(bufs.pooled), want, { atol: 1e-7, rtol: 1e-6 });
    }
    for (const buf of Object.values(bufs)) g.release(buf);
    data.release();
  });

  it('refuses a batch of another shape, and is left to its own pass on the lane kernels', () => {
    const g = tiles();
    const ds = dataset(1, 12, 10, 7);
    const data = uploadDataset(g, ds);
    const [indices, counter] = [g.upload(epochOrder(N, 5, 0)), g.alloc(16)];
    const from = trainGatherIn({ data, indices, counter }, { batch: B, stepsPerEpoch: STEPS, seed: 1 });
    const s: Conv2dShape = { n: B, c: 1, h: 12, w: 9, k: 8, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
    const io = { x: g.dummy, w: g.dummy, y: g.dummy, gather: { from, labels: g.dummy } };
    expect(() => conv2dForward(g, io, s)).toThrow(ShapeError);
    expect(() => conv2dForward(g, io, s)).toThrow(/takes 5x1x12x9 but the gathered batch is 5x1x12x10/);
    expect(forwardGathers(gpu().withTuning({ lanes: 4 }), { ...s, w: 10 }, false)).toBe(false);
    expect(forwardGathers(g, { ...s, w: 10 }, true)).toBe(true);
    for (const buf of [indices, counter]) g.release(buf);
    data.release();
  });
});
