// CPU references for the optimizer updates, float64, the formulas of shaders/optimizer.wgsl written
// plainly: k steps from a starting counter, with one gradient per step and the same lr table rule.
import { ADAM_DEFAULTS, type AdamOptions, type SgdOptions } from './optimizer.ts';

/** The learning rate of the step that runs when `completed` steps are done. */
export function lrAt(lrTable: ArrayLike<number>, completed: number): number {
  return lrTable[Math.min(completed, lrTable.length - 1)]!;
}

export interface RefSteps {
  param: ArrayLike<number>;
  /** One gradient per step, each [count]. */
  grads: readonly ArrayLike<number>[];
  lrTable: ArrayLike<number>;
  /** counter[0] before the first step (default 0). */
  startStep?: number;
}

export function sgdRef(
  s: RefSteps & { velocity?: ArrayLike<number> },
  o: SgdOptions,
): { param: Float64Array; velocity: Float64Array } {
  const p = Float64Array.from(s.param);
  const vel = s.velocity ? Float64Array.from(s.velocity) : new Float64Array(p.length);
  const mu = o.momentum ?? 0,
    wd = o.weightDecay ?? 0;
  s.grads.forEach((g, k) => {
    const lr = lrAt(s.lrTable, (s.startStep ?? 0) + k);
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! - lr * wd * p[i]!;
      if (mu === 0) {
        p[i] = p[i]! - lr * g[i]!;
      } else {
        vel[i] = mu * vel[i]! - lr * g[i]!;
        p[i] = p[i]! + (o.nesterov ? mu * vel[i]! - lr * g[i]! : vel[i]!);
      }
    }
  });
  return { param: p, velocity: vel };
}

export function adamRef(
  s: RefSteps & { m?: ArrayLike<number>; v?: ArrayLike<number> },
  o: AdamOptions,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const p = Float64Array.from(s.param);
  const m = s.m ? Float64Array.from(s.m) : new Float64Array(p.length);
  const v = s.v ? Float64Array.from(s.v) : new Float64Array(p.length);
  const b1 = o.beta1 ?? ADAM_DEFAULTS.beta1,
    b2 = o.beta2 ?? ADAM_DEFAULTS.beta2,
    eps = o.eps ?? ADAM_DEFAULTS.eps,
    wd = o.weightDecay ?? 0;
  s.grads.forEach((grad, k) => {
    const done = (s.startStep ?? 0) + k;
    const lr = lrAt(s.lrTable, done);
    const t = done + 1;
    const alpha = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
    for (let i = 0; i < p.length; i++) {
      let g = grad[i]!;
      if (o.decoupled) p[i] = p[i]! - lr * wd * p[i]!;
      else g += wd * p[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * g;
      v[i] = b2 * v[i]! + (1 - b2) * g * g;
      p[i] = p[i]! - (alpha * m[i]!) / (Math.sqrt(v[i]!) + eps);
    }
  });
  return { param: p, m, v };
}

/** The weight average after one step: avg + (1 − decay)(p − avg), the shader's form, of the updated weights p. */
export function emaRef(avg: ArrayLike<number>, p: ArrayLike<number>, decay: number): Float64Array {
  return Float64Array.from(avg, (v, i) => v + (1 - Math.fround(decay)) * (p[i]! - v));
}
