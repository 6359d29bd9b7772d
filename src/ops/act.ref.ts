// CPU reference for activations, float64.
import type { Act } from '../../dsl/ir.ts';

export function erf(x: number): number {
  // Series / continued fraction accurate to ~1e-15: the oracle, not the shader's approximation.
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let sum = z,
      term = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // Continued fraction for erfc at large z.
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (z + f);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x < 0 ? -r : r;
}

export function actRef(a: Act, x: number): number {
  switch (a.kind) {
    case 'linear':
      return x;
    case 'relu':
      return Math.max(x, 0);
    case 'leaky':
      return x > 0 ? x : a.alpha * x;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'tanh':
      return Math.tanh(x);
    case 'gelu':
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    default:
      return a satisfies never;
  }
}

/** d act / dx at x. */
export function actGradRef(a: Act, x: number): number {
  switch (a.kind) {
    case 'linear':
      return 1;
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'leaky':
      return x > 0 ? 1 : a.alpha;
    case 'sigmoid': {
      const y = 1 / (1 + Math.exp(-x));
      return y * (1 - y);
    }
    case 'tanh': {
      const y = Math.tanh(x);
      return 1 - y * y;
    }
    case 'gelu':
      return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
    default:
      return a satisfies never;
  }
}
