// CPU reference for the elementwise kernels, float64. Same math as shaders/elementwise.wgsl.
import type { Act } from '../../dsl/ir.ts';
import { actGradRef, actRef } from './act.ref.ts';

export function activationRef(x: ArrayLike<number>, act: Act): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => actRef(act, x[i]!));
}

/** d act / dx written in terms of the output y = act(x) (linear, relu, leaky with alpha > 0, sigmoid, tanh). */
export function actGradFromOutputRef(act: Act, y: number): number {
  switch (act.kind) {
    case 'linear':
      return 1;
    case 'relu':
      return y > 0 ? 1 : 0;
    case 'leaky':
      return y > 0 ? 1 : act.alpha;
    case 'sigmoid':
      return y * (1 - y);
    case 'tanh':
      return 1 - y * y;
    case 'gelu':
      throw new Error('gelu has no gradient in terms of its output');
    default:
      return act satisfies never;
  }
}

/** dx = dy · act'(saved) (saved = x when from 'input', y = act(x) when from 'output'), + prior when given. */
export function activationBackwardRef(
  dy: ArrayLike<number>,
  saved: ArrayLike<number>,
  act: Act,
  from: 'input' | 'output',
  prior?: ArrayLike<number>,
): Float64Array {
  return Float64Array.from({ length: dy.length }, (_, i) => {
    const g = from === 'input' ? actGradRef(act, saved[i]!) : actGradFromOutputRef(act, saved[i]!);
    return dy[i]! * g + (prior ? prior[i]! : 0);
  });
}

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i]! + b[i]!);
}

/** c + a: the accumulate kernel's result. */
export function accumulateRef(a: ArrayLike<number>, c: ArrayLike<number>): Float64Array {
  return addRef(c, a);
}
