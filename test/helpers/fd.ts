// Central finite differences in float64: the check that CPU reference backwards are right.
import { expectAllclose } from './allclose.ts';

/**
 * For a scalar loss L(x) = sum(f(x) * g) with a fixed random cotangent g, compares the analytic
 * input gradient with (L(x+h) - L(x-h)) / 2h, element by element.
 */
export function checkGradFd(
  name: string,
  x: Float64Array,
  loss: (x: Float64Array) => number,
  analytic: ArrayLike<number>,
  h = 1e-6,
  tol = { atol: 1e-6, rtol: 1e-5 },
): void {
  const fd = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i]!;
    x[i] = keep + h;
    const up = loss(x);
    x[i] = keep - h;
    const down = loss(x);
    x[i] = keep;
    fd[i] = (up - down) / (2 * h);
  }
  expectAllclose(`${name} (finite differences)`, analytic, fd, tol);
}

/** sum(y * g): turns a tensor-valued function into the scalar loss finite differences need. */
export function dot(y: ArrayLike<number>, g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i]! * g[i]!;
  return s;
}
