// CPU reference for matmul, float64. Same layouts as shaders/matmul.wgsl.
import type { MatmulShape } from './matmul.ts';
import { actRef } from './act.ref.ts';

export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  s: MatmulShape,
  c?: ArrayLike<number>,
): Float64Array {
  const { m, n, k } = s;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const av = s.transA ? a[p * m + i]! : a[i * k + p]!;
        const bv = s.transB ? b[j * k + p]! : b[p * n + j]!;
        sum += av * bv;
      }
      if (bias) sum += bias[j]!;
      sum = actRef(s.act ?? { kind: 'linear' }, sum);
      out[i * n + j] = s.accumulate && c ? sum + c[i * n + j]! : sum;
    }
  }
  return out;
}
