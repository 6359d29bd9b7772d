// CPU reference for softmax + cross-entropy, float64. Same layouts and conventions as
// shaders/softmax_xent.wgsl.
import type { XentShape } from './softmax_xent.ts';

export interface XentRef {
  /** (softmax − target)·scale, [n, classes]. */
  dlogits: Float64Array;
  /** Per-sample loss, [n]. */
  loss: Float64Array;
  lossSum: number;
  /** Samples whose first max logit is at the label. */
  correct: number;
}

export function softmaxRef(logits: ArrayLike<number>, n: number, classes: number): Float64Array {
  const out = new Float64Array(n * classes);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < classes; j++) m = Math.max(m, logits[i * classes + j]!);
    let s = 0;
    for (let j = 0; j < classes; j++) s += Math.exp(logits[i * classes + j]! - m);
    for (let j = 0; j < classes; j++) out[i * classes + j] = Math.exp(logits[i * classes + j]! - m) / s;
  }
  return out;
}

export function softmaxXentRef(logits: ArrayLike<number>, labels: ArrayLike<number>, s: XentShape): XentRef {
  const { n, classes } = s;
  const eps = s.smoothing ?? 0;
  const scale = s.scale ?? 1 / n;
  const p = softmaxRef(logits, n, classes);
  const dlogits = new Float64Array(n * classes);
  const loss = new Float64Array(n);
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    let m = -Infinity,
      arg = 0;
    for (let j = 0; j < classes; j++) {
      const z = logits[i * classes + j]!;
      if (z > m) [m, arg] = [z, j];
    }
    let s2 = 0;
    for (let j = 0; j < classes; j++) s2 += Math.exp(logits[i * classes + j]! - m);
    const lse = m + Math.log(s2);
    let l = 0;
    for (let j = 0; j < classes; j++) {
      const target = (j === y ? 1 - eps : 0) + eps / classes;
      // −log softmax_j = lse − z_j, finite however large the logits.
      l += target * (lse - logits[i * classes + j]!);
      dlogits[i * classes + j] = (p[i * classes + j]! - target) * scale;
    }
    loss[i] = l;
    lossSum += l;
    if (arg === y) correct++;
  }
  return { dlogits, loss, lossSum, correct };
}
