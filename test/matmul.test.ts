import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import type { GemmPlan } from '../src/ops/gemm.ts';
import { matmul, matmulPartsLength, matmulPlan, type MatmulOptions, type MatmulShape } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import { Rng } from '../src/util/rng.ts';

// f32 accumulation over K terms of magnitude ≤ 1: error grows ~ sqrt(K) ulp.
const TOL = { atol: 1e-5, rtol: 1e-4 };

describe('matmul (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const cases: [string, MatmulShape, boolean][] = [
    ['1x1x1', { m: 1, n: 1, k: 1 }, false],
    ['tile multiple 64x64x64', { m: 64, n: 64, k: 64 }, true],
    ['ragged 67x33x70', { m: 67, n: 33, k: 70 }, true],
    ['batch 1 dense 1x10x128 + bias', { m: 1, n: 10, k: 128 }, true],
    ['transA 45x17x130 (dW = Xᵀ·dY)', { m: 45, n: 17, k: 130, transA: true }, false],
    ['transB 70x31x19 (dX = dY·Wᵀ)', { m: 70, n: 31, k: 19, transB: true }, false],
    ['both transposed 13x66x9', { m: 13, n: 66, k: 9, transA: true, transB: true }, true],
    ['relu 50x40x30', { m: 50, n: 40, k: 30, act: { kind: 'relu' } }, true],
    ['leaky(0.1) 33x20x16', { m: 33, n: 20, k: 16, act: { kind: 'leaky', alpha: 0.1 } }, true],
    ['sigmoid 20x20x20', { m: 20, n: 20, k: 20, act: { kind: 'sigmoid' } }, true],
    ['tanh 20x21x22', { m: 20, n: 21, k: 22, act: { kind: 'tanh' } }, true],
    ['gelu 24x24x24', { m: 24, n: 24, k: 24, act: { kind: 'gelu' } }, true],
    ['accumulate 30x30x30', { m: 30, n: 30, k: 30, accumulate: true }, false],
    ['tall 300x3x5', { m: 300, n: 3, k: 5 }, true],
  ];
  // Every case with the adapter's own kernel and the other family; the layouts and transposes again
  // with the tiled kernel's other workgroup side and with four lanes (helpers/gpu.ts).
  const rows: [string, MatmulShape, boolean, GemmVariant][] = [
    ...cases.map(([n, s, b]): [string, MatmulShape, boolean, GemmVariant] => [n, s, b, 'own']),
    ...cases.map(([n, s, b]): [string, MatmulShape, boolean, GemmVariant] => [
      `${n}, other family`,
      s,
      b,
      'other family',
    ]),
    ...cases
      .filter(([, s]) => !s.act)
      .map(([n, s, b]): [string, MatmulShape, boolean, GemmVariant] => [`${n}, other side`, s, b, 'other side']),
    ...cases
      .filter(([, s]) => !s.act)
      .map(([n, s, b]): [string, MatmulShape, boolean, GemmVariant] => [`${n}, four lanes`, s, b, 'four lanes']),
  ];
  it.for(rows)('%s', async ([, s, withBias, variant], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const rng = new Rng(s.m * 131 + s.n * 7 + s.k);
    const a = rng.floats(s.m * s.k),
      b = rng.floats(s.k * s.n),
      bias = rng.floats(s.n),
      c0 = rng.floats(s.m * s.n);
    const { c } = await run(g, s, { a, b, bias: withBias ? bias : undefined, c0 });
    expectAllclose('matmul C', c, matmulRef(a, b, withBias ? bias : null, s, c0), TOL, [s.m, s.n]);
  });
});

/**
 * One matmul on `g`, with the partial sums it asks for (filled with NaN: every partial must be
 * written) and, with `dbias`, the bias gradient into a buffer of NaN: C, the bias gradient, and
 * the dispatches' labels.
 */
async function run(
  g: Gpu,
  s: MatmulShape,
  x: { a: Float64Array; b: Float64Array; bias?: Float64Array; c0: Float64Array },
  o: MatmulOptions = {},
): Promise<{ c: Float32Array; dbias: Float32Array | null; labels: string[] }> {
  const up = (v: Float64Array | number[]): GPUBuffer => g.upload(f32(v));
  const len = matmulPartsLength(g, s, o);
  const bufs = {
    a: up(x.a),
    b: up(x.b),
    c: up(x.c0),
    bias: x.bias ? up(x.bias) : undefined,
    dbias: o.dbias ? up(new Array<number>(s.n).fill(NaN)) : undefined,
    parts: len > 0 ? up(new Array<number>(len).fill(NaN)) : undefined,
  };
  const d = matmul(g, bufs, s, { target: o.target });
  g.run(d);
  const c = await g.readF32(bufs.c);
  const dbias = bufs.dbias ? await g.readF32(bufs.dbias) : null;
  for (const q of Object.values(bufs)) if (q) g.release(q);
  g.free(d);
  return { c, dbias, labels: d.map((q) => q.label) };
}

describe('matmul on the tiled kernels: tiles, split-K, unchecked variants, the bias gradient', () => {
  const gpu = useGpu();
  type Check = (p: GemmPlan) => void;
  const unchecked8x8: Check = (p) => {
    expect(p.checked).toBe(false);
    expect([p.tile.rb, p.tile.cb, p.splits]).toEqual([2, 2, 1]);
  };
  const split: Check = (p) => {
    expect(p.splits).toBeGreaterThan(1);
    expect(p.chunk % 16).toBe(0);
    expect(p.chunk / 16).toBeLessThanOrEqual(64);
  };
  // [name, shape, bias, tuning, options, what the plan must be]
  const cases: [string, MatmulShape, boolean, { units: number; gemmSide?: 8 | 16 }, MatmulOptions, Check][] = [
    [
      '128×128 tiles, 8×8 a thread, unchecked: 256x256x64',
      { m: 256, n: 256, k: 64 },
      true,
      { units: 2 },
      {},
      (p) => {
        expect(p.tile).toEqual({ bm: 128, bn: 128, rb: 2, cb: 2 });
        unchecked8x8(p);
      },
    ],
    [
      '64×64 8×8 tiles, unchecked: 128x128x48, relu',
      { m: 128, n: 128, k: 48, act: { kind: 'relu' } },
      true,
      { units: 2 },
      {},
      unchecked8x8,
    ],
    ['ragged 70x90x40: checked', { m: 70, n: 90, k: 40 }, true, { units: 8 }, {}, (p) => expect(p.checked).toBe(true)],
    [
      "split-K, dense1's forward 64x1152x128 + bias, relu",
      { m: 64, n: 128, k: 1152, act: { kind: 'relu' } },
      true,
      { units: 132 },
      {},
      split,
    ],
    [
      'split-K, dX = dY·Wᵀ 70x600x31, accumulated',
      { m: 70, n: 31, k: 600, transB: true, accumulate: true },
      false,
      { units: 132 },
      {},
      split,
    ],
    [
      'split-K with the bias gradient, dW = Xᵀ·dZ 1152x256x128 (unchecked)',
      { m: 1152, n: 128, k: 256, transA: true },
      false,
      { units: 132 },
      { dbias: true },
      (p) => {
        split(p);
        expect(p.checked).toBe(false);
      },
    ],
    [
      // The planner picks these on GPUs too (an RGB first conv's dW at 128 filters): no other row reaches them.
      '8×4 blocks a thread (rb 2, cb 1), split: 64x16x1000 on 8-thread sides',
      { m: 64, n: 16, k: 1000 },
      true,
      { gemmSide: 8, units: 8 },
      {},
      (p) => expect([p.tile.rb, p.tile.cb, p.splits > 1]).toEqual([2, 1, true]),
    ],
    [
      'the bias gradient in one pass, dW = Xᵀ·dZ 45x130x17',
      { m: 45, n: 17, k: 130, transA: true },
      false,
      { units: 8 },
      { dbias: true, target: 1 },
      (p) => expect(p.splits).toBe(1),
    ],
  ];
  it.for(cases)('%s', async ([, s, withBias, tuning, o, check]) => {
    const g = gpu().withTuning({ lanes: 0, gemmSide: 16, ...tuning });
    check(matmulPlan(g, s, o));
    const rng = new Rng(s.m * 17 + s.n * 5 + s.k);
    const x = { a: rng.floats(s.m * s.k), b: rng.floats(s.k * s.n), c0: rng.floats(s.m * s.n) };
    const bias = withBias ? rng.floats(s.n) : undefined;
    const first = await run(g, s, { ...x, bias }, o);
    const tol = { atol: 1e-5 + 1e-7 * s.k, rtol: 1e-4 };
    expectAllclose('matmul C', first.c, matmulRef(x.a, x.b, bias ?? null, s, x.c0), tol, [s.m, s.n]);
    if (o.dbias) {
      // Σ_k op(B)[k, n]: the reference matmul of a row of ones by op(B).
      const ones = new Float64Array(s.k).fill(1);
      const ref = matmulRef(ones, x.b, null, { m: 1, n: s.n, k: s.k, transB: s.transB });
      expectAllclose('matmul dbias', first.dbias!, ref, tol, [s.n]);
    }
    if (matmulPlan(g, s, o).splits > 1) {
      // Split-K sums its partials in a fixed order: a second run is bit-identical.
      const again = await run(g, s, { ...x, bias }, o);
      expect(new Uint32Array(again.c.buffer)).toEqual(new Uint32Array(first.c.buffer));
      if (o.dbias) expect(new Uint32Array(again.dbias!.buffer)).toEqual(new Uint32Array(first.dbias!.buffer));
      expect(first.labels.at(-1)).toMatch(/reduce \d+ splits$/);
    }
  });
});

describe('matmul reference gradients (finite differences)', () => {
  it('dA = dC·Bᵀ and dB = Aᵀ·dC', () => {
    const rng = new Rng(5);
    const s = { m: 4, n: 3, k: 5 };
    const a = rng.floats(20),
      b = rng.floats(15),
      g = rng.floats(12);
    const dA = matmulRef(g, b, null, { m: 4, n: 5, k: 3, transB: true });
    const dB = matmulRef(a, g, null, { m: 5, n: 3, k: 4, transA: true });
    checkGradFd('matmul dA', a, (x) => dot(matmulRef(x, b, null, s), g), dA);
    checkGradFd('matmul dB', b, (x) => dot(matmulRef(a, x, null, s), g), dB);
  });
});
