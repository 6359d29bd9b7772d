import { describe, it } from 'vitest';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import { matmul, type MatmulShape } from '../src/ops/matmul.ts';
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
    const ab = g.upload(f32(a)),
      bb = g.upload(f32(b)),
      biasb = g.upload(f32(bias)),
      cb = g.upload(f32(c0));
    const d = matmul(g, { a: ab, b: bb, bias: withBias ? biasb : undefined, c: cb }, s);
    g.run(d);
    const out = await g.readF32(cb);
    expectAllclose('matmul C', out, matmulRef(a, b, withBias ? bias : null, s, c0), TOL, [s.m, s.n]);
    for (const buf of [ab, bb, biasb, cb]) g.release(buf);
    g.free(d);
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
