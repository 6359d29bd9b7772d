// The conv forward with a 2×2 max pooling and dropout in its epilogue (shaders/lib/conv_out_pool.wgsl,
// src/ops/conv2d.ts conv2dForward with `pool`) against the composition of the unfused CPU references
// (conv, max pooling, dropout) and, bit for bit, against the unfused GPU kernels run one after another
// (conv forward, then the fused pooling+dropout chain or the max pooling alone), on every kernel family,
// and by Winograd (src/ops/conv2d_winograd.ts) on both of its tiles.
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { conv2dForward, conv2dGeometry, forwardPools, type Conv2dShape } from '../src/ops/conv2d.ts';
import { conv2dPlan, winogradPlan } from '../src/ops/conv2d_plan.ts';
import { conv2dRef } from '../src/ops/conv2d.ref.ts';
import { poolDropoutForward } from '../src/ops/chain.ts';
import { maxPoolForward, type PoolShape } from '../src/ops/pool.ts';
import { maxPoolForwardRef } from '../src/ops/pool.ref.ts';
import { dropoutRef } from '../src/ops/dropout.ref.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';
import { conv3x3, pastCover, uncoveredTo } from './helpers/conv.ts';

const STEP = 3;
const SEED = 41;

interface Case {
  s: Conv2dShape;
  bias: boolean;
  act: Act;
  rate: number | null;
}

const conv = conv3x3;

const CASES: [string, Case][] = [
  ['3x3 same, bias, relu, dropout 0.25', { s: conv(2, 3, 8, 8, 16), bias: true, act: { kind: 'relu' }, rate: 0.25 }],
  [
    'one channel in, no bias, tanh, no dropout',
    { s: conv(3, 1, 10, 6, 8), bias: false, act: { kind: 'tanh' }, rate: null },
  ],
  [
    '3x3 valid 10x12 -> 8x10, leaky, dropout 0.5',
    { s: conv(2, 4, 10, 12, 20, { padding: 'valid' }), bias: true, act: { kind: 'leaky', alpha: 0.1 }, rate: 0.5 },
  ],
  [
    'stride 2 same 12x12 -> 6x6, 70 out-channels, dropout',
    { s: conv(2, 5, 12, 12, 70, { strideH: 2, strideW: 2 }), bias: true, act: { kind: 'relu' }, rate: 0.25 },
  ],
  // Tiles that divide the GEMM: unchecked, 8×8 outputs a thread on the tiled kernels.
  [
    '64 out-channels on 16x16 (unchecked tiles)',
    { s: conv(8, 16, 16, 16, 64), bias: true, act: { kind: 'relu' }, rate: 0.25 },
  ],
  // Odd outputs: valid windows, the last row or column (or both) outside every window, in y alone.
  [
    '7x7 outputs: the last row and column outside every window',
    { s: conv(2, 4, 7, 7, 16), bias: true, act: { kind: 'relu' }, rate: 0.25 },
  ],
  // Its reader's windows alone (Conv2dShape.covered): by Winograd and on the lane kernels, y is 0 past 6×6.
  [
    '7x7 outputs, the 6x6 the windows read covered',
    { s: conv(2, 4, 7, 7, 16, { covered: [6, 6] }), bias: true, act: { kind: 'sigmoid' }, rate: 0.25 },
  ],
  ['7x8 outputs: the last row alone', { s: conv(3, 2, 7, 8, 8), bias: false, act: { kind: 'tanh' }, rate: null }],
  [
    '3x3 valid 8x11 -> 6x9: the last column alone, leaky, dropout 0.5',
    { s: conv(2, 3, 8, 11, 12, { padding: 'valid' }), bias: true, act: { kind: 'leaky', alpha: 0.1 }, rate: 0.5 },
  ],
  // 32 positions: lane tiles of 4 columns, one window a lane (COLS 4).
  [
    '4x4 outputs, 32 positions (narrow lane tiles)',
    { s: conv(2, 3, 4, 4, 8), bias: false, act: { kind: 'relu' }, rate: 0.5 },
  ],
];
const VARIANTS: GemmVariant[] = ['own', 'other family', 'other side', 'four lanes', 'gpu tiles'];

function run(g: Gpu, ds: Dispatch[]): void {
  g.run(ds);
  g.free(ds);
}

const poolOf = (s: Conv2dShape): PoolShape => {
  const { oh, ow } = conv2dGeometry(s);
  return { n: s.n, c: s.k, h: oh, w: ow, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'valid' };
};

describe('conv forward + 2x2 max pooling + dropout in one pass', () => {
  const gpu = useGpu();
  // Each kernel family's direct conv, and on the GPU tiles the forward by Winograd (conv2d_winograd.ts)
  // on each tile side, where the shape allows it (3×3, stride 1; else the direct conv).
  const kernels = [
    ...VARIANTS.map((v) => [v, false] as const),
    ...([16, 32] as const).map((side) => ['gpu tiles', side] as const),
  ];
  const rows = kernels.flatMap(([v, wino]) =>
    CASES.map(([name, c]) => [`${name} (${v}${wino ? `, Winograd ${wino}` : ''})`, c, v, wino] as const),
  );
  it.for(rows)('%s', async ([name, c, variant, winograd], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const { s } = c;
    if (name.includes('(unchecked tiles)') && g.lanes === 0 && !winograd)
      expect(conv2dPlan(g, s, 'forward').checked, 'tiles that divide the GEMM').toBe(false);
    if (winograd && winogradPlan(g, s, { winograd })) {
      expect(forwardPools(g, s), 'a Winograd forward pools in its epilogue').toBe(true);
    }
    // A forward this variant splits (an H100's tiles for the 64-channel case): the planner leaves its
    // pooling apart, and the launcher refuses to pool it.
    if (!forwardPools(g, s) && !(winograd && winogradPlan(g, s, { winograd }))) {
      expect(variant).toBe('gpu tiles');
      const pool = { pooled: g.dummy, argmax: g.dummy, counter: g.dummy };
      expect(() => conv2dForward(g, { x: g.dummy, w: g.dummy, y: g.dummy, pool }, s)).toThrow(/cannot pool 2x2/);
      return;
    }
    const rng = new Rng(s.k * 7 + s.h);
    const x = rng.floats(s.n * s.c * s.h * s.w, -1, 1);
    const w = rng.floats(s.k * s.c * 9, -0.5, 0.5);
    const b = rng.floats(s.k, -0.2, 0.2);
    const { oh, ow } = conv2dGeometry(s);
    const [ys, outs] = [s.n * s.k * oh * ow, s.n * s.k * Math.floor(oh / 2) * Math.floor(ow / 2)];
    const nan = (n: number): GPUBuffer => g.upload(new Float32Array(n).fill(Number.NaN));
    const bufs = {
      x: g.upload(f32(x)),
      w: g.upload(f32(w)),
      b: g.upload(f32(b)),
      counter: g.upload(new Uint32Array([STEP])),
      y: nan(ys),
      pooled: nan(outs),
      argmax: g.alloc(outs * 4),
      y2: nan(ys),
      pooled2: nan(outs),
      argmax2: g.alloc(outs * 4),
    };
    const d = c.rate === null ? undefined : { rate: c.rate, seed: SEED };
    const io = { x: bufs.x, w: bufs.w, b: c.bias ? bufs.b : undefined };
    const pool = { pooled: bufs.pooled, argmax: bufs.argmax, counter: bufs.counter, dropout: d };
    const fused = conv2dForward(g, { ...io, y: bufs.y, pool }, s, c.act, { winograd });
    expect(fused, 'one dispatch').toHaveLength(1);
    expect(fused[0]!.label).toContain('+ maxpool 2x2');
    run(g, fused);
    const p = poolOf(s);
    const unfused = [
      ...conv2dForward(g, { ...io, y: bufs.y2 }, s, c.act, { split: false, winograd }),
      ...(d
        ? poolDropoutForward(
            g,
            { x: bufs.y2, counter: bufs.counter, y: bufs.pooled2, argmax: bufs.argmax2 },
            { kind: 'max', shape: p },
            d,
          )
        : maxPoolForward(g, { x: bufs.y2, y: bufs.pooled2, argmax: bufs.argmax2 }, p)),
    ];
    run(g, unfused);
    const [y, pooled, argmax] = [await g.readF32(bufs.y), await g.readF32(bufs.pooled), await g.readU32(bufs.argmax)];
    const y2 = await g.readF32(bufs.y2);
    expect(uncoveredTo(y, s, 0), 'y bit for bit the unfused conv (where covered)').toEqual(uncoveredTo(y2, s, 0));
    expect(pooled, 'pooled bit for bit the unfused kernels').toEqual(await g.readF32(bufs.pooled2));
    expect(argmax, 'argmax as the unfused pooling').toEqual(await g.readU32(bufs.argmax2));
    const yRef = conv2dRef(x, w, c.bias ? b : null, s, c.act);
    expectAllclose('y', uncoveredTo(y, s, 0), uncoveredTo(yRef, s, 0), { atol: 1e-5, rtol: 1e-5 });
    // Past what the pooling reads, the lane kernels and Winograd write 0 (the direct GEMM the conv).
    const covers = g.lanes > 0 || (winograd && winogradPlan(g, s, { winograd }));
    const isPast = pastCover(s);
    const past = (v: ArrayLike<number>) => Float64Array.from(v).filter((_, i) => isPast(i));
    if (s.covered) expectAllclose('y past what is covered', past(y), covers ? past(y).fill(0) : past(yRef));
    const ref = maxPoolForwardRef(y, p);
    expect(argmax).toEqual(ref.argmax);
    expectAllclose('pooled', pooled, d ? dropoutRef(ref.y, STEP, { count: outs, ...d }) : ref.y, {
      atol: 1e-7,
      rtol: 1e-6,
    });
    for (const buf of Object.values(bufs)) g.release(buf);
  });

  // At inference nothing reads the argmax: the pooling writes none (POOL_ARG false, a dummy bound).
  it.for(['own', 'gpu tiles'] as const)(
    'without an argmax (inference): the same Y and pooled output (%s)',
    async (variant, ctx) => {
      const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
      const s = conv(2, 4, 7, 7, 16);
      const rng = new Rng(5);
      const x = g.upload(f32(rng.floats(s.n * s.c * s.h * s.w, -1, 1)));
      const w = g.upload(f32(rng.floats(s.k * s.c * 9, -0.5, 0.5)));
      const [ys, outs] = [s.n * s.k * 49, s.n * s.k * 9];
      const nan = (n: number): GPUBuffer => g.upload(new Float32Array(n).fill(Number.NaN));
      const [y, y2, pooled, pooled2] = [nan(ys), nan(ys), nan(outs), nan(outs)];
      const [argmax, counter] = [g.alloc(outs * 4), g.upload(new Uint32Array([STEP]))];
      const act: Act = { kind: 'relu' };
      const bare = conv2dForward(g, { x, w, y, pool: { pooled, counter } }, s, act);
      expect(bare[0]?.label).toContain('+ maxpool 2x2');
      run(g, bare);
      run(g, conv2dForward(g, { x, w, y: y2, pool: { pooled: pooled2, argmax, counter } }, s, act));
      expect(await g.readF32(y)).toEqual(await g.readF32(y2));
      expect(await g.readF32(pooled)).toEqual(await g.readF32(pooled2));
      for (const b of [x, w, y, y2, pooled, pooled2, argmax, counter]) g.release(b);
    },
  );

  it('refuses what it cannot pool: outputs with no whole window, a dropout rate out of range', () => {
    const g = gpu();
    const s = conv(1, 1, 1, 8, 8);
    expect(forwardPools(g, s)).toBe(false);
    const io = { x: g.dummy, w: g.dummy, y: g.dummy };
    const pool = { pooled: g.dummy, argmax: g.dummy, counter: g.dummy };
    expect(() => conv2dForward(g, { ...io, pool }, s)).toThrow(/cannot pool 2x2 in its epilogue/);
    // A dropout rate outside (0, 1), as the pooling chain refuses it.
    const even = conv(1, 1, 8, 8, 8);
    expect(() => conv2dForward(g, { ...io, pool: { ...pool, dropout: { rate: 1, seed: 1 } } }, even)).toThrow(
      /rate must be in \(0, 1\), got 1/,
    );
  });
});
