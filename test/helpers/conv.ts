// A conv shape for the kernel tests: 3×3, stride 1, 'same', unless `o` says otherwise.
import type { Conv2dShape } from '../../src/ops/conv2d.ts';

export const conv3x3 = (n: number, c: number, h: number, w: number, k: number, o: Partial<Conv2dShape> = {}) =>
  ({ n, c, h, w, k, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same', ...o }) satisfies Conv2dShape as Conv2dShape;
