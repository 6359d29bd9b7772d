import { describe, expect, it } from 'vitest';
import { useGpu, f32, spreadFromName } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import {
  avgPoolBackward,
  avgPoolForward,
  maxPoolBackward,
  maxPoolForward,
  poolGeometry,
  type PoolShape,
} from '../src/ops/pool.ts';
import { globalAvgPoolBackward, globalAvgPoolForward, type GlobalPoolShape } from '../src/ops/global_pool.ts';
import {
  avgPoolBackwardRef,
  avgPoolForwardRef,
  globalAvgPoolBackwardRef,
  globalAvgPoolForwardRef,
  maxPoolBackwardRef,
  maxPoolForwardRef,
} from '../src/ops/pool.ref.ts';
import type { Padding } from '../dsl/ir.ts';
import { backwardChain, type EpilogueChain } from '../src/ops/chain.ts';
import { actGradRef, actRef } from '../src/ops/act.ref.ts';
import { expectSameBits } from './helpers/bits.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

// Max forward selects f32 inputs: exact. Sums of ≤ ceil(k/s)² (backwards) or k² (average) f32 terms
// of magnitude ≤ 1: a few ulp.
const EXACT = { atol: 0, rtol: 0 };
const TOL = { atol: 1e-6, rtol: 1e-5 };

/** n distinct values in (-1, 1), spaced 2/n apart, shuffled: no ties, so the argmax is unambiguous. */
function distinct(rng: Rng, n: number): Float64Array {
  const x = Float64Array.from({ length: n }, (_, i) => Math.fround(((i + 0.5) / n) * 2 - 1));
  return rng.shuffle(x);
}

function shape(
  n: number,
  c: number,
  h: number,
  w: number,
  k: number | [number, number],
  s: number | [number, number],
  padding: Padding,
): PoolShape {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  const [strideH, strideW] = typeof s === 'number' ? [s, s] : s;
  return { n, c, h, w, kh, kw, strideH, strideW, padding };
}

const cases: [string, PoolShape][] = [
  ['batch 1, one channel 4x4, pool 2/2 valid', shape(1, 1, 4, 4, 2, 2, 'valid')],
  ['2x3x5x7 pool 2/2 same (odd sizes, padding after)', shape(2, 3, 5, 7, 2, 2, 'same')],
  ['1x1x5x5 pool 3/1 valid (overlapping)', shape(1, 1, 5, 5, 3, 1, 'valid')],
  ['2x2x6x7 pool 3/1 same (overlapping, padding both sides)', shape(2, 2, 6, 7, 3, 1, 'same')],
  ['1x3x7x9 pool 3/2 same (overlapping)', shape(1, 3, 7, 9, 3, 2, 'same')],
  ['2x1x8x6 pool 3/3 valid', shape(2, 1, 8, 6, 3, 3, 'valid')],
  ['1x2x9x8 pool 2x3 stride 1x2 same (non-square)', shape(1, 2, 9, 8, [2, 3], [1, 2], 'same')],
  ['3x2x7x5 pool 3x2 stride 3x1 valid (non-square)', shape(3, 2, 7, 5, [3, 2], [3, 1], 'valid')],
  ['1x1x3x3 pool 2/1 same (even window, padding after only)', shape(1, 1, 3, 3, 2, 1, 'same')],
  ['1x2x8x8 pool 2/3 valid (stride > window: unpooled cells)', shape(1, 2, 8, 8, 2, 3, 'valid')],
  ['1x1x10x11 pool 3/4 same', shape(1, 1, 10, 11, 3, 4, 'same')],
  ['2x1x1x1 pool 3/2 same (window mostly padding)', shape(2, 1, 1, 1, 3, 2, 'same')],
  ['4x8x14x14 pool 2/2 valid (MNIST-like)', shape(4, 8, 14, 14, 2, 2, 'valid')],
  ['4x8x14x14 pool 2/2 valid in one workgroup (grid-stride loop)', shape(4, 8, 14, 14, 2, 2, 'valid')],
  ['1x2x7x10 pool 3/3 same (padding 1 before on both axes, windows without overlap)', shape(1, 2, 7, 10, 3, 3, 'same')],
  ['2x1x9x9 pool 3/4 same (padding 1 before, gaps between windows)', shape(2, 1, 9, 9, 3, 4, 'same')],
  ['2x3x9x8 pool 3/2 same in one workgroup (grid-stride loop, overlapping)', shape(2, 3, 9, 8, 3, 2, 'same')],
];
// 2100² = 4.41M input elements > 64·65535: with one thread per element (spreadFromName) the
// backwards that walk the input (avg, overlapping max) run on a 2-D grid of workgroups; max
// backward without overlap walks the 1050² outputs, on a 1-D grid.
const big: [string, PoolShape] = ['1x1x2100x2100 pool 2/2 valid (2-D grid)', shape(1, 1, 2100, 2100, 2, 2, 'valid')];
const bigOverlapping: [string, PoolShape] = [
  '1x1x2100x2100 pool 3/2 same (overlapping, 2-D grid)',
  shape(1, 1, 2100, 2100, 3, 2, 'same'),
];

const outCount = (s: PoolShape): number => {
  const g = poolGeometry(s);
  return s.n * s.c * g.oh * g.ow;
};
const dims = (s: PoolShape): number[] => {
  const g = poolGeometry(s);
  return [s.n, s.c, g.oh, g.ow];
};

/** Index of the first difference, or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : a.length;
}

// One device for the file: the pool and global_avg_pool pipelines compile once.
const gpu = useGpu();

describe('max pool (GPU vs CPU reference)', () => {
  async function check(g: Gpu, s: PoolShape, x: Float64Array, dy: Float64Array, prior?: Float64Array): Promise<void> {
    const m = outCount(s),
      n = x.length;
    const xb = g.upload(f32(x)),
      dyb = g.upload(f32(dy)),
      yb = g.alloc(m * 4),
      ab = g.alloc(m * 4);
    const dxb = g.upload(f32(prior ?? new Float64Array(n).fill(NaN))); // every cell must be written
    const ds = [
      ...maxPoolForward(g, { x: xb, y: yb, argmax: ab }, s),
      ...maxPoolBackward(g, { dy: dyb, argmax: ab, dx: dxb }, s),
    ];
    g.run(ds);
    const ref = maxPoolForwardRef(x, s);
    const argmax = await g.readU32(ab, m);
    expect(firstDiff(argmax, ref.argmax), 'first argmax mismatch at').toBe(-1);
    expectAllclose('maxpool y', await g.readF32(yb, m), ref.y, EXACT, dims(s));
    expectAllclose('maxpool dx', await g.readF32(dxb, n), maxPoolBackwardRef(dy, ref.argmax, s, prior), TOL, [
      s.n,
      s.c,
      s.h,
      s.w,
    ]);
    for (const b of [xb, dyb, yb, ab, dxb]) g.release(b);
    g.free(ds);
  }

  it.each([...cases, big, bigOverlapping])('%s', async (name, s) => {
    const rng = new Rng(s.h * 1000 + s.w * 10 + s.kh + s.strideW);
    await check(spreadFromName(gpu(), name), s, distinct(rng, s.n * s.c * s.h * s.w), rng.floats(outCount(s)));
  });

  it('ties (constant input, overlapping 3/1 same): the first real cell of each window wins', async () => {
    const s = shape(1, 2, 5, 6, 3, 1, 'same');
    await check(gpu(), s, new Float64Array(60).fill(0.25), new Rng(1).floats(outCount(s)));
  });

  it('backward accumulates into dx (2x2x6x7 pool 3/2 same)', async () => {
    const s = { ...shape(2, 2, 6, 7, 3, 2, 'same'), accumulate: true };
    const rng = new Rng(2);
    await check(gpu(), s, distinct(rng, 168), rng.floats(outCount(s)), rng.floats(168));
  });

  it.each([
    ['2x3x5x7 pool 2/2 same', shape(2, 3, 5, 7, 2, 2, 'same')],
    ['1x2x8x8 pool 2/3 valid (unpooled cells keep their value)', shape(1, 2, 8, 8, 2, 3, 'valid')],
  ])('backward accumulates into dx, windows without overlap (%s)', async (_name, shp) => {
    const s = { ...shp, accumulate: true };
    const rng = new Rng(4);
    const n = s.n * s.c * s.h * s.w;
    await check(gpu(), s, distinct(rng, n), rng.floats(outCount(s)), rng.floats(n));
  });
});

describe('average pool (GPU vs CPU reference)', () => {
  async function check(g: Gpu, s: PoolShape, x: Float64Array, dy: Float64Array, prior?: Float64Array): Promise<void> {
    const m = outCount(s),
      n = x.length;
    const xb = g.upload(f32(x)),
      dyb = g.upload(f32(dy)),
      yb = g.alloc(m * 4);
    const dxb = g.upload(f32(prior ?? new Float64Array(n).fill(NaN))); // every cell must be written
    const ds = [...avgPoolForward(g, { x: xb, y: yb }, s), ...avgPoolBackward(g, { dy: dyb, dx: dxb }, s)];
    g.run(ds);
    expectAllclose('avgpool y', await g.readF32(yb, m), avgPoolForwardRef(x, s), TOL, dims(s));
    expectAllclose('avgpool dx', await g.readF32(dxb, n), avgPoolBackwardRef(dy, s, prior), TOL, [s.n, s.c, s.h, s.w]);
    for (const b of [xb, dyb, yb, dxb]) g.release(b);
    g.free(ds);
  }

  it.each([...cases, big])('%s', async (name, s) => {
    const rng = new Rng(s.h * 1000 + s.w * 10 + s.kh + s.strideW + 7);
    await check(spreadFromName(gpu(), name), s, rng.floats(s.n * s.c * s.h * s.w), rng.floats(outCount(s)));
  });

  it("'same' divides by the real cells only: ones average to exactly 1 (1x1x5x5 pool 3/2 same)", async () => {
    const s = shape(1, 1, 5, 5, 3, 2, 'same');
    const g = gpu();
    const xb = g.upload(new Float32Array(25).fill(1)),
      yb = g.alloc(9 * 4);
    const d = avgPoolForward(g, { x: xb, y: yb }, s);
    g.run(d);
    expect(Array.from(await g.readF32(yb, 9))).toEqual(new Array(9).fill(1));
    g.release(xb);
    g.release(yb);
    g.free(d);
  });

  it('backward accumulates into dx (1x3x7x9 pool 3/1 same)', async () => {
    const s = { ...shape(1, 3, 7, 9, 3, 1, 'same'), accumulate: true };
    const rng = new Rng(3);
    await check(gpu(), s, rng.floats(189), rng.floats(outCount(s)), rng.floats(189));
  });
});

describe('global average pool (GPU vs CPU reference)', () => {
  const gcases: [string, GlobalPoolShape][] = [
    ['1x1x1x1', { n: 1, c: 1, h: 1, w: 1 }],
    ['2x3x5x7', { n: 2, c: 3, h: 5, w: 7 }],
    ['1x1x28x28 (many elements per thread)', { n: 1, c: 1, h: 28, w: 28 }],
    ['3x5x7x7', { n: 3, c: 5, h: 7, w: 7 }],
    ['4x16x1x1', { n: 4, c: 16, h: 1, w: 1 }],
    ['2x3x8x8, backward accumulates', { n: 2, c: 3, h: 8, w: 8, accumulate: true }],
    ['1x70000x1x2 (70000 planes: 2-D grid)', { n: 1, c: 70000, h: 1, w: 2 }],
    ['3x5x7x7 in one workgroup (grid-stride loop)', { n: 3, c: 5, h: 7, w: 7 }],
  ];
  // The forward's tree at a GPU's 64 threads a plane and a CPU adapter's 16 (GpuTuning.treeThreads).
  const widths = gcases.flatMap(([name, s]) => [64, 16].map((w) => [`${name}, ${w} threads`, s, w] as const));
  it.each(widths)('%s', async (name, s, threads) => {
    const g = spreadFromName(gpu().withTuning({ treeThreads: threads }), name);
    const rng = new Rng(s.c * 100 + s.h * 10 + s.w);
    const planes = s.n * s.c,
      n = planes * s.h * s.w;
    const x = rng.floats(n),
      dy = rng.floats(planes),
      prior = s.accumulate ? rng.floats(n) : undefined;
    const xb = g.upload(f32(x)),
      dyb = g.upload(f32(dy)),
      yb = g.alloc(planes * 4);
    const dxb = g.upload(f32(prior ?? new Float64Array(n).fill(NaN))); // every cell must be written
    const ds = [...globalAvgPoolForward(g, { x: xb, y: yb }, s), ...globalAvgPoolBackward(g, { dy: dyb, dx: dxb }, s)];
    g.run(ds);
    expectAllclose('global avg pool y', await g.readF32(yb, planes), globalAvgPoolForwardRef(x, s), TOL, [s.n, s.c]);
    expectAllclose('global avg pool dx', await g.readF32(dxb, n), globalAvgPoolBackwardRef(dy, s, prior), TOL, [
      s.n,
      s.c,
      s.h,
      s.w,
    ]);
    for (const b of [xb, dyb, yb, dxb]) g.release(b);
    g.free(ds);
  });
});

// The backward running the chain below as it stores (src/graph/fuse.ts BackwardFusion.dx: an add's activation
// read by the pooling, as residual.net ends): bit for bit the plain backward and then the chain's own kernel
// (shaders/chain.wgsl), and against the references composed where the chain is an act' alone.
describe("global average pool's backward running the chain below", () => {
  const gpu = useGpu();
  const s: GlobalPoolShape = { n: 2, c: 3, h: 6, w: 5 };
  const dropout = { rate: 0.25, seed: 9 };
  // The chain's pooling: 2×2 windows apart over a 12×10 input, which the global pooling reads as 6×5.
  const under: PoolShape = { n: 2, c: 3, h: 12, w: 10, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'valid' };
  const chains: [string, EpilogueChain][] = [
    ["relu' from its output", { act: { kind: 'relu' }, from: 'output' }],
    ["dropout, tanh' from its output", { act: { kind: 'tanh' }, from: 'output', dropout }],
    [
      "dropout, max unpooling, relu'",
      { act: { kind: 'relu' }, from: 'output', dropout, pool: { kind: 'max', shape: under } },
    ],
    ['average unpooling, linear', { act: { kind: 'linear' }, from: 'output', pool: { kind: 'avg', shape: under } }],
  ];
  it.each(chains)('%s', async (_name, chain) => {
    const g = gpu();
    const rng = new Rng(31);
    const planes = s.n * s.c;
    const count = planes * s.h * s.w;
    const input = chain.pool ? planes * under.h * under.w : count;
    const dy = rng.floats(planes);
    const pre = rng.floats(input, -1, 1); // the activation's input, and its output saved for act'
    const saved = pre.map((v) => actRef(chain.act, v));
    // Each window's argmax, a cell of its own 2×2 block (plane-relative, as the max pooling saves it).
    const argmax = Array.from({ length: count }, (_, o) => {
      const [oy, ox] = [Math.floor((o % (s.h * s.w)) / s.w), o % s.w];
      const cell = Math.floor(rng.floats(1, 0, 4)[0]!) % 4;
      return (2 * oy + (cell >> 1)) * under.w + 2 * ox + (cell & 1);
    });
    const [dyb, savedb] = [dy, saved].map((a) => g.upload(f32(a)));
    const [argb, counter] = [g.upload(new Uint32Array(argmax)), g.upload(new Uint32Array([3]))];
    const [fused, plainDx, plain] = [input, count, input].map((n) => g.upload(new Float32Array(n).fill(Number.NaN)));
    const io = { saved: savedb!, argmax: chain.pool?.kind === 'max' ? argb : undefined };
    const ds = [
      ...globalAvgPoolBackward(g, { dy: dyb!, dx: fused!, chain: { chain, ...io, counter } }, s),
      ...globalAvgPoolBackward(g, { dy: dyb!, dx: plainDx! }, s),
      ...backwardChain(g, { dy: plainDx!, counter, dx: plain!, ...io }, { ...chain, count: input }),
    ];
    expect(ds[0]!.label).toMatch(/^global_avg_pool.backward 2x3x6x5 \+ /);
    g.run(ds);
    const got = await g.readF32(fused!);
    expectSameBits('the fused backward against the plain one and then the chain kernel', got, await g.readF32(plain!));
    if (!chain.pool && !chain.dropout) {
      const want = globalAvgPoolBackwardRef(dy, s).map((v, i) => v * actGradRef(chain.act, pre[i]!));
      expectAllclose("act'(y) · dX", got, want, TOL, [s.n, s.c, s.h, s.w]);
    }
    g.free(ds);
    for (const b of [dyb, savedb, argb, counter, fused, plainDx, plain]) g.release(b!);
  });

  it('refuses a chain into a gradient it adds to', () => {
    const g = gpu();
    const q = g.dummy;
    const chain = { chain: { act: { kind: 'relu' }, from: 'output' } as const, saved: q, counter: q };
    expect(() => globalAvgPoolBackward(g, { dy: q, dx: q, chain }, { ...s, accumulate: true })).toThrow(/chain/);
  });
});

describe('pool reference gradients (finite differences)', () => {
  const fdCases = cases.filter((_, i) => [1, 3, 4, 6, 7, 9, 11].includes(i));
  it.each(fdCases)('max %s', (_name, s) => {
    const rng = new Rng(11);
    const x = distinct(rng, s.n * s.c * s.h * s.w),
      gy = rng.floats(outCount(s));
    const dx = maxPoolBackwardRef(gy, maxPoolForwardRef(x, s).argmax, s);
    checkGradFd('maxpool dx', x, (v) => dot(maxPoolForwardRef(v, s).y, gy), dx);
  });
  it.each(fdCases)('avg %s', (_name, s) => {
    const rng = new Rng(12);
    const x = rng.floats(s.n * s.c * s.h * s.w),
      gy = rng.floats(outCount(s));
    checkGradFd('avgpool dx', x, (v) => dot(avgPoolForwardRef(v, s), gy), avgPoolBackwardRef(gy, s));
  });
  it('global average 2x3x4x5', () => {
    const s = { n: 2, c: 3, h: 4, w: 5 };
    const rng = new Rng(13);
    const x = rng.floats(120),
      gy = rng.floats(6);
    checkGradFd(
      'global avg pool dx',
      x,
      (v) => dot(globalAvgPoolForwardRef(v, s), gy),
      globalAvgPoolBackwardRef(gy, s),
    );
  });
});
