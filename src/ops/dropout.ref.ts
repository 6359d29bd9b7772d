// CPU reference for dropout, float64, with the shader's mask bit for bit (src/util/hash.ts mirrors
// shaders/lib/random.wgsl; the rate is compared as the f32 the shader sees).
import type { DropoutShape } from './dropout.ts';
import { rand01 } from '../util/hash.ts';

/** 1 where element i is kept at this step, 0 where dropped. */
export function dropoutMaskRef(count: number, rate: number, seed: number, counter: number): Uint8Array {
  const p = Math.fround(rate);
  const mask = new Uint8Array(count);
  for (let i = 0; i < count; i++) mask[i] = rand01(seed >>> 0, counter >>> 0, i) >= p ? 1 : 0;
  return mask;
}

/** y = x·keep/(1 − p) (+ prior when accumulating). The backward is the same map applied to dy. */
export function dropoutRef(
  x: ArrayLike<number>,
  counter: number,
  s: DropoutShape,
  prior?: ArrayLike<number>,
): Float64Array {
  const mask = dropoutMaskRef(s.count, s.rate, s.seed, counter);
  const out = new Float64Array(s.count);
  for (let i = 0; i < s.count; i++) {
    out[i] = mask[i] ? x[i]! / (1 - s.rate) : 0;
    if (s.accumulate && prior) out[i]! += prior[i]!;
  }
  return out;
}

export const dropoutBackwardRef = dropoutRef;
