import { describe, expect, it } from 'vitest';
import { useGpu, f32 } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import { batchnormBackward, batchnormForward, type BatchnormShape } from '../src/ops/batchnorm.ts';
import { batchnormBackwardRef, batchnormForwardRef } from '../src/ops/batchnorm.ref.ts';
import { Rng } from '../src/util/rng.ts';

// f32 sums over M ≤ ~600 elements per channel, then xhat scaled by invstd ≤ 1/sqrt(eps); the mean is
// rounded to f32, so x = 50 ± 0.5 loses ~1e-5 in xhat (measured 6e-6).
const TOL_Y = { atol: 2e-5, rtol: 1e-4 };
const TOL_STAT = { atol: 1e-5, rtol: 1e-5 };
const TOL_DX = { atol: 1e-5, rtol: 1e-4 };

interface Inputs {
  x: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
  runMean: Float64Array;
  runVar: Float64Array;
  dy: Float64Array;
  prior: Float64Array;
}

function inputs(s: BatchnormShape, seed: number, offset = 0, spread = 2): Inputs {
  const rng = new Rng(seed);
  const size = s.n * s.c * s.hw;
  const x = rng.floats(size, offset - spread, offset + spread);
  return {
    x,
    gamma: rng.floats(s.c, 0.5, 1.5),
    beta: rng.floats(s.c, -0.5, 0.5),
    runMean: rng.floats(s.c, -0.2, 0.2),
    runVar: rng.floats(s.c, 0.5, 1.5),
    dy: rng.floats(size),
    prior: rng.floats(size),
  };
}

const shapeOf = (s: BatchnormShape): number[] => (s.hw === 1 ? [s.n, s.c] : [s.n, s.c, s.hw]);

describe('batch normalization (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const cases: [string, BatchnormShape, number?, number?][] = [
    // name, shape, x offset, x spread
    ['conv 2x3x5x5 training', { n: 2, c: 3, hw: 25, training: true }],
    ['conv 4x8x7x7 training', { n: 4, c: 8, hw: 49, training: true }],
    ['conv batch 1, 1x2x17x18 training (M > 256)', { n: 1, c: 2, hw: 306, training: true }],
    ['conv 3x4x6x6 training, momentum 0.9, eps 1e-5', { n: 3, c: 4, hw: 36, training: true, momentum: 0.9, eps: 1e-5 }],
    ['conv 2x3x4x4 training, x = 50 ± 0.5 (two-pass variance)', { n: 2, c: 3, hw: 16, training: true }, 50, 0.5],
    ['conv 2x3x3x3 training, backward accumulates into dx', { n: 2, c: 3, hw: 9, training: true, accumulate: true }],
    ['dense 16x10 training', { n: 16, c: 10, hw: 1, training: true }],
    ['dense 300x5 training (M > 256)', { n: 300, c: 5, hw: 1, training: true }],
    ['dense batch 1, 1x5 training (variance 0)', { n: 1, c: 5, hw: 1, training: true }],
    ['conv 2x3x4x4 inference', { n: 2, c: 3, hw: 16, training: false }],
    ['dense 8x6 inference', { n: 8, c: 6, hw: 1, training: false }],
    ['dense batch 1, 1x5 inference', { n: 1, c: 5, hw: 1, training: false, eps: 1e-5 }],
  ];
  it.each(cases)('%s', async (_name, s, offset = 0, spread = 2) => {
    const g = gpu();
    const inp = inputs(s, s.n * 100 + s.c * 10 + s.hw, offset, spread);
    const size = s.n * s.c * s.hw;
    const ref = batchnormForwardRef(inp.x, inp.gamma, inp.beta, inp.runMean, inp.runVar, s);
    const [xb, gb, bb, rmb, rvb, dyb, dxb] = [
      inp.x,
      inp.gamma,
      inp.beta,
      inp.runMean,
      inp.runVar,
      inp.dy,
      inp.prior,
    ].map((a) => g.upload(f32(a)));
    const yb = g.alloc(size * 4),
      smb = g.alloc(s.c * 4),
      sib = g.alloc(s.c * 4),
      dgb = g.alloc(s.c * 4),
      dbb = g.alloc(s.c * 4);
    const fwd = batchnormForward(
      g,
      { x: xb!, gamma: gb!, beta: bb!, runMean: rmb!, runVar: rvb!, y: yb, saveMean: smb, saveInvStd: sib },
      s,
    );
    const bwd = s.training
      ? batchnormBackward(
          g,
          { dy: dyb!, x: xb!, gamma: gb!, saveMean: smb, saveInvStd: sib, dx: dxb!, dgamma: dgb, dbeta: dbb },
          s,
        )
      : [];
    g.run([...fwd, ...bwd]);
    const y = await g.readF32(yb);
    expect(y.every(Number.isFinite)).toBe(true);
    expectAllclose('batchnorm y', y, ref.y, TOL_Y, shapeOf(s));
    expectAllclose('batchnorm running mean', await g.readF32(rmb!), ref.runMean, TOL_STAT, [s.c]);
    expectAllclose('batchnorm running var', await g.readF32(rvb!), ref.runVar, TOL_STAT, [s.c]);
    if (s.training) {
      expectAllclose('batchnorm saved mean', await g.readF32(smb), ref.mean, TOL_STAT, [s.c]);
      expectAllclose('batchnorm saved invstd', await g.readF32(sib), ref.invStd, { atol: 0, rtol: 1e-4 }, [s.c]);
      const grads = batchnormBackwardRef(inp.dy, inp.x, inp.gamma, ref.mean, ref.invStd, s, inp.prior);
      const dx = await g.readF32(dxb!);
      expect(dx.every(Number.isFinite)).toBe(true);
      expectAllclose('batchnorm dx', dx, grads.dx, TOL_DX, shapeOf(s));
      expectAllclose('batchnorm dgamma', await g.readF32(dgb), grads.dgamma, TOL_Y, [s.c]);
      expectAllclose('batchnorm dbeta', await g.readF32(dbb), grads.dbeta, TOL_Y, [s.c]);
    }
    for (const b of [xb!, gb!, bb!, rmb!, rvb!, dyb!, dxb!, yb, smb, sib, dgb, dbb]) g.release(b);
    g.free([...fwd, ...bwd]);
  });
});

describe('batch normalization reference gradients (finite differences)', () => {
  const cases: [string, BatchnormShape][] = [
    ['conv 2x2x3', { n: 2, c: 2, hw: 3, training: true }],
    ['dense 4x3', { n: 4, c: 3, hw: 1, training: true }],
    ['dense batch 1 (variance 0)', { n: 1, c: 3, hw: 1, training: true }],
  ];
  it.each(cases)('%s: dx, dgamma, dbeta through the batch statistics', (_name, s) => {
    const inp = inputs(s, 31 + s.n);
    const fwd = (x: Float64Array, gamma: Float64Array, beta: Float64Array): number =>
      dot(batchnormForwardRef(x, gamma, beta, inp.runMean, inp.runVar, s).y, inp.dy);
    const ref = batchnormForwardRef(inp.x, inp.gamma, inp.beta, inp.runMean, inp.runVar, s);
    const grads = batchnormBackwardRef(inp.dy, inp.x, inp.gamma, ref.mean, ref.invStd, s);
    checkGradFd('batchnorm dx', inp.x, (x) => fwd(x, inp.gamma, inp.beta), grads.dx);
    checkGradFd('batchnorm dgamma', inp.gamma, (gm) => fwd(inp.x, gm, inp.beta), grads.dgamma);
    checkGradFd('batchnorm dbeta', inp.beta, (bt) => fwd(inp.x, inp.gamma, bt), grads.dbeta);
  });
});
