// The batch normalisation's training pass with its activation and the pooling that reads it in one pass
// (shaders/batchnorm.wgsl forward_train_pool, src/ops/batchnorm.ts with `pool`): bit for bit the unfused
// kernels one after another (forward_train, then the max or average pooling), and against the CPU
// references (batchnorm, activation, pooling), over several slices a channel and windows no slice aligns with.
// Then its statistics pass over a conv's unsummed split-K partials (stats_parts, `xParts`): bit for bit the
// conv's reduce pass and the plain statistics.
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { useGpu, f32 } from './helpers/gpu.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { conv2dForward, unsummedForwardSplits, type Conv2dShape } from '../src/ops/conv2d.ts';
import { conv2dRef } from '../src/ops/conv2d.ref.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { batchnormForward, bnPartials, bnWhole, type BatchnormShape } from '../src/ops/batchnorm.ts';
import { batchnormForwardRef } from '../src/ops/batchnorm.ref.ts';
import { actRef } from '../src/ops/act.ref.ts';
import type { PoolKind } from '../src/ops/chain.ts';
import { avgPoolForward, maxPoolForward, poolGeometry, type PoolShape } from '../src/ops/pool.ts';
import { avgPoolForwardRef, maxPoolForwardRef } from '../src/ops/pool.ref.ts';
import { Rng } from '../src/util/rng.ts';

interface Case {
  n: number;
  c: number;
  h: number;
  w: number;
  pool: { kind: PoolKind; k: number; stride: number; padding: 'valid' | 'same' };
  act: Act;
  slices?: number;
}

const CASES: [string, Case][] = [
  [
    'max 2x2 over 8x8, relu',
    { n: 4, c: 3, h: 8, w: 8, pool: { kind: 'max', k: 2, stride: 2, padding: 'valid' }, act: { kind: 'relu' } },
  ],
  // 7x7: the last row and column in no window, written all the same; 3 slices no window lines up with.
  [
    'max 2x2 over 7x7 (a row and column in no window), relu, 3 slices',
    {
      n: 5,
      c: 2,
      h: 7,
      w: 7,
      pool: { kind: 'max', k: 2, stride: 2, padding: 'valid' },
      act: { kind: 'relu' },
      slices: 3,
    },
  ],
  [
    'avg 3x3 stride 3 same over 10x8, tanh, 2 slices',
    {
      n: 3,
      c: 4,
      h: 10,
      w: 8,
      pool: { kind: 'avg', k: 3, stride: 3, padding: 'same' },
      act: { kind: 'tanh' },
      slices: 2,
    },
  ],
];

/** The pooling of a case, over the batchnorm's output. */
const poolShapeOf = (c: Case): PoolShape => ({
  ...{ n: c.n, c: c.c, h: c.h, w: c.w, kh: c.pool.k, kw: c.pool.k },
  ...{ strideH: c.pool.stride, strideW: c.pool.stride, padding: c.pool.padding },
});

describe('batchnorm + activation + pooling in one pass (GPU vs the unfused kernels and CPU references)', () => {
  const gpu = useGpu();

  // At a GPU's 256 threads a slice pass and a CPU adapter's 16 (GpuTuning.treeThreads).
  const widths = CASES.flatMap(([name, c]) => [256, 16].map((w) => [`${name}, ${w} threads`, c, w] as const));
  it.each(widths)('%s', async (_name, c, threads) => {
    const g = gpu().withTuning({ treeThreads: threads });
    const hw = c.h * c.w;
    const shape = poolShapeOf(c);
    const pool = { kind: c.pool.kind, shape };
    const s: BatchnormShape = { n: c.n, c: c.c, hw, training: true, act: c.act, slices: c.slices };
    const { oh, ow } = poolGeometry(shape);
    const [count, outs] = [c.n * c.c * hw, c.n * c.c * oh * ow];
    const rng = new Rng(13);
    const x = rng.floats(count, -2, 2);
    const [gamma, beta] = [rng.floats(c.c, 0.5, 1.5), rng.floats(c.c, -0.5, 0.5)];
    const [runMean, runVar] = [rng.floats(c.c, -0.1, 0.1), rng.floats(c.c, 0.9, 1.1)];
    const nan = (k: number): GPUBuffer => g.upload(new Float32Array(k).fill(Number.NaN));
    const make = () => ({
      x: g.upload(f32(x)),
      gamma: g.upload(f32(gamma)),
      beta: g.upload(f32(beta)),
      runMean: g.upload(f32(runMean)),
      runVar: g.upload(f32(runVar)),
      y: nan(count),
      saveMean: nan(c.c),
      saveInvStd: nan(c.c),
      partial: g.alloc(bnPartials(g, s) * 4),
      pooled: nan(outs),
      argmax: g.alloc(outs * 4),
    });
    const [a, b] = [make(), make()];
    const fused = batchnormForward(g, a, { ...s, pool });
    // One slice a channel: one pass that makes its statistics first (bnWhole); else the stats pass, then this.
    const pass = expect.stringMatching(
      new RegExp(`^batchnorm (stats\\+)?train .* \\+ ${c.pool.kind}pool ${c.pool.k}x${c.pool.k}/`),
    );
    expect(fused.map((d) => d.label)).toEqual(
      bnWhole(g, s) ? [pass] : [expect.stringMatching(/^batchnorm stats \d/), pass],
    );
    const pooling = { x: b.y, y: b.pooled, argmax: b.argmax };
    const unfused = [
      ...batchnormForward(g, b, s),
      ...(c.pool.kind === 'max' ? maxPoolForward(g, pooling, shape) : avgPoolForward(g, pooling, shape)),
    ];
    g.run([...fused, ...unfused]);
    const read = async (o: typeof a) =>
      Promise.all([o.y, o.pooled, o.saveMean, o.saveInvStd, o.runMean, o.runVar].map((q) => g.readF32(q)));
    const [mine, theirs] = [await read(a), await read(b)];
    const names = ['y', 'pooled', 'saved mean', 'saved 1/std', 'running mean', 'running variance'];
    mine.forEach((v, i) => expect(v, `${names[i]} bit for bit`).toEqual(theirs[i]));
    const arg = await g.readU32(a.argmax);
    if (c.pool.kind === 'max') expect(arg, 'argmax').toEqual(await g.readU32(b.argmax));
    // And the composition of the CPU references.
    const ref = batchnormForwardRef(x, gamma, beta, runMean, runVar, s);
    const y = Float64Array.from(ref.y, (v) => actRef(c.act, v));
    expectAllclose('y', mine[0]!, y, { atol: 1e-4, rtol: 1e-4 });
    const pooled = c.pool.kind === 'max' ? maxPoolForwardRef(mine[0]!, shape).y : avgPoolForwardRef(mine[0]!, shape);
    expectAllclose('pooled', mine[1]!, pooled, { atol: 1e-6, rtol: 1e-6 });
    g.free([...fused, ...unfused]);
    for (const o of [a, b]) for (const q of Object.values(o)) g.release(q);
  });

  // At inference (the running statistics): the pooled output alone (y unwritten, no argmax), bit for bit
  // forward_infer with the activation and then the pooling kernel.
  it.each(CASES)('%s, at inference', async (_name, c) => {
    const g = gpu();
    const hw = c.h * c.w;
    const shape = poolShapeOf(c);
    const s: BatchnormShape = { n: c.n, c: c.c, hw, training: false, act: c.act };
    const { oh, ow } = poolGeometry(shape);
    const rng = new Rng(17);
    const x = rng.floats(c.n * c.c * hw, -2, 2);
    const [gamma, beta] = [rng.floats(c.c, 0.5, 1.5), rng.floats(c.c, -0.5, 0.5)];
    const [runMean, runVar] = [rng.floats(c.c, -0.1, 0.1), rng.floats(c.c, 0.9, 1.1)];
    const params = [x, gamma, beta, runMean, runVar].map((a) => g.upload(f32(a)));
    const [xb, gb, bb, mb, vb] = params as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
    const io = { x: xb, gamma: gb, beta: bb, runMean: mb, runVar: vb };
    const outs = c.n * c.c * oh * ow;
    const [pooled, y, pooled2, argmax] = [outs, x.length, outs, outs].map((k) => g.alloc(k * 4));
    const fused = batchnormForward(g, { ...io, y: g.dummy, pooled }, { ...s, pool: { kind: c.pool.kind, shape } });
    expect(fused.map((d) => d.label)).toEqual([
      expect.stringMatching(new RegExp(`^batchnorm infer .* \\+ ${c.pool.kind}pool ${c.pool.k}x${c.pool.k}/`)),
    ]);
    const pooling = { x: y as GPUBuffer, y: pooled2 as GPUBuffer, argmax: argmax as GPUBuffer };
    const unfused = [
      ...batchnormForward(g, { ...io, y: y as GPUBuffer }, s),
      ...(c.pool.kind === 'max' ? maxPoolForward(g, pooling, shape) : avgPoolForward(g, pooling, shape)),
    ];
    g.run([...fused, ...unfused]);
    const mine = await g.readF32(pooled as GPUBuffer);
    expect(mine, 'pooled bit for bit').toEqual(await g.readF32(pooled2 as GPUBuffer));
    const z = batchnormForwardRef(x, gamma, beta, runMean, runVar, s).y.map((v) => actRef(c.act, v));
    const want = c.pool.kind === 'max' ? maxPoolForwardRef(z, shape).y : avgPoolForwardRef(z, shape);
    expectAllclose('pooled', mine, want, { atol: 1e-4, rtol: 1e-4 });
    g.free([...fused, ...unfused]);
    for (const b of [...params, pooled, y, pooled2, argmax]) g.release(b as GPUBuffer);
  });

  it('refuses a pooling of overlapping windows or of another shape', () => {
    const g = gpu();
    const io = { x: g.dummy, y: g.dummy, gamma: g.dummy, beta: g.dummy, runMean: g.dummy, runVar: g.dummy };
    const saved = { saveMean: g.dummy, saveInvStd: g.dummy, partial: g.dummy, pooled: g.dummy, argmax: g.dummy };
    const s: BatchnormShape = { n: 2, c: 3, hw: 64, training: true, act: { kind: 'relu' } };
    const window = { kh: 3, kw: 3, strideH: 2, strideW: 2, padding: 'valid' as const };
    const overlap = { kind: 'max' as const, shape: { n: 2, c: 3, h: 8, w: 8, ...window } };
    expect(() => batchnormForward(g, { ...io, ...saved }, { ...s, pool: overlap })).toThrow(
      /cannot pool .* windows apart/,
    );
    const other = { kind: 'max' as const, shape: { ...overlap.shape, kh: 2, kw: 2, c: 4 } };
    expect(() => batchnormForward(g, { ...io, ...saved }, { ...s, pool: other })).toThrow(/cannot pool 2x4x8x8/);
  });
});

describe("batchnorm statistics summed from a conv's split-K forward partials (GPU tiles, against unfused)", () => {
  const gpu = useGpu();
  // The tiled kernels on a GPU of 16 units: this conv splits 2 to 16 ways (as test/pool-parts.test.ts).
  // The direct GEMM, whose split-K partials these read (a Winograd forward leaves none: conv2d_plan.ts).
  const tiles = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 16, winograd: false });
  const conv: Conv2dShape = {
    ...{ n: 2, c: 64, h: 7, w: 7, k: 128, kh: 3, kw: 3 },
    ...{ strideH: 1, strideW: 1, padding: 'same' as const },
  };

  it.each([
    ['with a bias, relu after the batchnorm', true, false],
    ['without a bias, relu and a 2x2 max pooling in its pass', false, true],
  ])('%s', async (_name, withBias, pooled) => {
    const g = tiles();
    const splits = unsummedForwardSplits(g, conv);
    expect(splits, 'the conv splits 2 to 16 ways').toBeGreaterThanOrEqual(2);
    const hw = conv.h * conv.w;
    const count = conv.n * conv.k * hw;
    const shape: PoolShape = {
      n: conv.n,
      c: conv.k,
      h: 7,
      w: 7,
      kh: 2,
      kw: 2,
      strideH: 2,
      strideW: 2,
      padding: 'valid',
    };
    const pool = pooled ? { kind: 'max' as const, shape } : undefined;
    const s: BatchnormShape = { n: conv.n, c: conv.k, hw, training: true, act: { kind: 'relu' }, pool };
    const outs = conv.n * conv.k * 9;
    const rng = new Rng(21);
    const up = (k: number, lo: number, hi: number): GPUBuffer => g.upload(f32(rng.floats(k, lo, hi)));
    const [x, w, b] = [up(conv.n * conv.c * hw, -1, 1), up(conv.k * conv.c * 9, -0.1, 0.1), up(conv.k, -0.2, 0.2)];
    const [gamma, beta] = [up(conv.k, 0.5, 1.5), up(conv.k, -0.5, 0.5)];
    const stats = rng.floats(2 * conv.k, 0.5, 1);
    const nan = (k: number): GPUBuffer => g.upload(new Float32Array(k).fill(Number.NaN));
    const make = () => ({
      z: nan(count),
      y: nan(count),
      runMean: g.upload(f32(stats.slice(0, conv.k))),
      runVar: g.upload(f32(stats.slice(conv.k))),
      saveMean: nan(conv.k),
      saveInvStd: nan(conv.k),
      partial: g.alloc(bnPartials(g, s) * 4),
      pooled: nan(outs),
      argmax: g.alloc(outs * 4),
      parts: g.alloc(splits * count * 4),
    });
    const [a, o] = [make(), make()];
    const bias = withBias ? b : undefined;
    const bn = (q: typeof a) => ({ ...q, x: q.z, gamma, beta, pooled: pooled ? q.pooled : undefined });
    const fused = [
      ...conv2dForward(g, { x, w, b: bias, y: g.dummy, parts: a.parts }, conv, undefined, { unsummed: true }),
      ...batchnormForward(g, { ...bn(a), xParts: { parts: a.parts, splits, bias } }, s),
    ];
    expect(fused[1]?.label).toMatch(new RegExp(`^batchnorm stats .* \\+ ${splits} splits$`));
    const unfused = [
      ...conv2dForward(g, { x, w, b: bias, y: o.z, parts: o.parts }, conv),
      ...batchnormForward(g, bn(o), s),
    ];
    g.run([...fused, ...unfused]);
    const names = ['conv output', 'y', 'saved mean', 'saved 1/std', 'running mean', 'running variance'];
    const read = (q: typeof a) =>
      Promise.all([q.z, q.y, q.saveMean, q.saveInvStd, q.runMean, q.runVar].map((r) => g.readF32(r)));
    const [mine, theirs] = [await read(a), await read(o)];
    mine.forEach((v, i) => expect(v, `${names[i]} bit for bit`).toEqual(theirs[i]));
    if (pooled) expect(await g.readF32(a.pooled), 'pooled').toEqual(await g.readF32(o.pooled));
    expectAllclose(
      'conv output',
      mine[0]!,
      conv2dRef(await g.readF32(x), await g.readF32(w), withBias ? await g.readF32(b) : null, conv),
      {
        atol: 1e-5,
        rtol: 1e-5,
      },
    );
    g.free([...fused, ...unfused]);
    for (const q of [a, o]) for (const r of Object.values(q)) g.release(r);
    for (const r of [x, w, b, gamma, beta]) g.release(r);
  });
});
