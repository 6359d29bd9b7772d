// A conv shape for the kernel tests: 3×3, stride 1, 'same', unless `o` says otherwise.
import { conv2dGeometry, type Conv2dShape } from '../../src/ops/conv2d.ts';

export const conv3x3 = (n: number, c: number, h: number, w: number, k: number, o: Partial<Conv2dShape> = {}) =>
  ({ n, c, h, w, k, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same', ...o }) satisfies Conv2dShape as Conv2dShape;

/**
 * `values` [N, K, OH, OW] with the outputs past `s.covered` (Conv2dShape.covered: what the conv's reader
 * reads) set to `fill`; as given where the shape covers all of its output.
 */
export function uncoveredTo(values: ArrayLike<number>, s: Conv2dShape, fill: number): Float64Array {
  const past = pastCover(s);
  return Float64Array.from(values, (v, i) => (past(i) ? fill : v));
}

/** Whether element i of an output [N, K, OH, OW] lies past `s.covered`. */
export function pastCover(s: Conv2dShape): (i: number) => boolean {
  const { oh, ow } = conv2dGeometry(s);
  const [rows, cols] = s.covered ?? [oh, ow];
  return (i) => Math.floor(i / ow) % oh >= rows || i % ow >= cols;
}
