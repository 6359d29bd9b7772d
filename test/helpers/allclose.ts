// Comparing GPU output with a float64 reference, with messages that say where and by how much:
//   conv2d dW mismatch at [3,0,1,2]: ref=0.1234 gpu=0.1301 (|diff| 6.7e-3 > tol 1.2e-4); 17 of 288 elements off
import { expect } from 'vitest';

export interface Tol {
  atol?: number;
  rtol?: number;
}

function index(flat: number, shape?: readonly number[]): string {
  if (!shape || shape.length === 0) return `${flat}`;
  const idx: number[] = [];
  let r = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(r % shape[d]!);
    r = Math.floor(r / shape[d]!);
  }
  return idx.join(',');
}

/** null when close; otherwise the failure message. */
export function allcloseMessage(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tol = {},
  shape?: readonly number[],
): string | null {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-4;
  if (actual.length !== expected.length) return `${name}: length ${actual.length}, expected ${expected.length}`;
  let bad = 0;
  let first = '';
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    const lim = atol + rtol * Math.abs(e);
    const d = Math.abs(a - e);
    if (!(d <= lim)) {
      if (bad === 0)
        first =
          `${name} mismatch at [${index(i, shape)}]: ref=${e} gpu=${a} ` +
          `(|diff| ${d.toExponential(2)} > tol ${lim.toExponential(2)})`;
      bad++;
    }
  }
  return bad === 0 ? null : `${first}; ${bad} of ${expected.length} elements off`;
}

export function expectAllclose(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tol = {},
  shape?: readonly number[],
): void {
  const msg = allcloseMessage(name, actual, expected, tol, shape);
  if (msg) expect.fail(msg);
}

expect.extend({
  toBeAllclose(
    received: ArrayLike<number>,
    expected: ArrayLike<number>,
    tol: Tol & { shape?: number[]; name?: string } = {},
  ) {
    const msg = allcloseMessage(tol.name ?? 'value', received, expected, tol, tol.shape);
    return { pass: msg === null, message: () => msg ?? 'arrays are close' };
  },
});

declare module 'vitest' {
  interface Matchers<R extends void | Promise<void> = void | Promise<void>, T = unknown> {
    toBeAllclose(expected: ArrayLike<number>, tol?: Tol & { shape?: number[]; name?: string }): R;
  }
}
