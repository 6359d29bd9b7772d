// CPU reference for batch normalization, float64. Same layouts as shaders/batchnorm.wgsl:
// x [n, c, hw], per-channel statistics over M = n·hw, biased variance, Keras running-stat update.
import type { BatchnormShape } from './batchnorm.ts';

export interface BatchnormForwardRef {
  y: Float64Array;
  /** Batch mean and 1/sqrt(var + eps) in training; the running ones in inference. */
  mean: Float64Array;
  invStd: Float64Array;
  /** Running statistics after this call (updated in training, unchanged in inference). */
  runMean: Float64Array;
  runVar: Float64Array;
}

const idx = (s: BatchnormShape, n: number, c: number, p: number): number => (n * s.c + c) * s.hw + p;

export function batchnormForwardRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runMean: ArrayLike<number>,
  runVar: ArrayLike<number>,
  s: BatchnormShape,
): BatchnormForwardRef {
  const eps = s.eps ?? 0.001,
    mom = s.momentum ?? 0.99,
    M = s.n * s.hw;
  const y = new Float64Array(s.n * s.c * s.hw);
  const mean = new Float64Array(s.c),
    invStd = new Float64Array(s.c);
  const rm = Float64Array.from(runMean),
    rv = Float64Array.from(runVar);
  for (let c = 0; c < s.c; c++) {
    let mu = rm[c]!,
      v = rv[c]!;
    if (s.training) {
      mu = 0;
      for (let n = 0; n < s.n; n++) for (let p = 0; p < s.hw; p++) mu += x[idx(s, n, c, p)]!;
      mu /= M;
      v = 0;
      for (let n = 0; n < s.n; n++) for (let p = 0; p < s.hw; p++) v += (x[idx(s, n, c, p)]! - mu) ** 2;
      v /= M;
      rm[c] = mom * rm[c]! + (1 - mom) * mu;
      rv[c] = mom * rv[c]! + (1 - mom) * v;
    }
    mean[c] = mu;
    invStd[c] = 1 / Math.sqrt(v + eps);
    for (let n = 0; n < s.n; n++) {
      for (let p = 0; p < s.hw; p++) {
        const i = idx(s, n, c, p);
        y[i] = gamma[c]! * (x[i]! - mu) * invStd[c]! + beta[c]!;
      }
    }
  }
  return { y, mean, invStd, runMean: rm, runVar: rv };
}

/** Training-mode backward: the batch statistics depend on x. dx += result when s.accumulate and prior is given. */
export function batchnormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  mean: ArrayLike<number>,
  invStd: ArrayLike<number>,
  s: BatchnormShape,
  prior?: ArrayLike<number>,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const M = s.n * s.hw;
  const dx = new Float64Array(s.n * s.c * s.hw);
  const dgamma = new Float64Array(s.c),
    dbeta = new Float64Array(s.c);
  for (let c = 0; c < s.c; c++) {
    const xhat = (i: number): number => (x[i]! - mean[c]!) * invStd[c]!;
    let sd = 0,
      sdx = 0;
    for (let n = 0; n < s.n; n++) {
      for (let p = 0; p < s.hw; p++) {
        const i = idx(s, n, c, p);
        sd += dy[i]!;
        sdx += dy[i]! * xhat(i);
      }
    }
    dgamma[c] = sdx;
    dbeta[c] = sd;
    for (let n = 0; n < s.n; n++) {
      for (let p = 0; p < s.hw; p++) {
        const i = idx(s, n, c, p);
        dx[i] = ((gamma[c]! * invStd[c]!) / M) * (M * dy[i]! - sd - xhat(i) * sdx);
        if (s.accumulate && prior) dx[i] += prior[i]!;
      }
    }
  }
  return { dx, dgamma, dbeta };
}
