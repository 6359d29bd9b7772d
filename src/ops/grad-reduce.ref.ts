// CPU reference for shaders/grad_reduce.wgsl (src/ops/grad-reduce.ts), in f32 and in the kernel's order
// of summation, so the GPU's gradients match it bit for bit: each of R = redThreads(S) threads sums its
// contiguous range of ⌈S/R⌉ partials in z order, then the R sums meet in a tree of halving spans.
import { redThreads } from './gemm.ts';
import type { GradSegment } from './grad-reduce.ts';

const f = Math.fround;

/** One output's sum of its `splits` partials (stride `len` from `at`), in the kernel's order. */
export function splitSumRef(parts: ArrayLike<number>, at: number, len: number, splits: number): number {
  const r = redThreads(splits);
  const per = Math.ceil(splits / r);
  const sums = Array.from({ length: r }, (_, y) => {
    let s = 0;
    for (let z = Math.min(splits, y * per); z < Math.min(splits, y * per + per); z++) s = f(s + parts[at + z * len]!);
    return s;
  });
  for (let span = r / 2; span >= 1; span /= 2) for (let y = 0; y < span; y++) sums[y] = f(sums[y]! + sums[y + span]!);
  return sums[0]!;
}

/** grads (a copy, `length` floats) with each segment's dW and db written from its partials. */
export function reduceGradientsRef(
  parts: ArrayLike<number>,
  segments: readonly GradSegment[],
  grads: Float32Array,
): Float32Array {
  const out = Float32Array.from(grads);
  for (const s of segments) {
    const { splits, rows, cols, sums } = s.layout;
    const len = rows * cols;
    for (let i = 0; i < len; i++) {
      const [row, col] = [Math.floor(i / cols), i % cols];
      const v = splitSumRef(parts, s.parts + i, len, splits);
      if (sums === 'column' && col === cols - 1) out[s.db + row] = v;
      else if (sums === 'column') out[s.dw + row * (cols - 1) + col] = v;
      else if (sums === 'row' && row === rows - 1) out[s.db + col] = v;
      else out[s.dw + i] = v;
    }
  }
  return out;
}
