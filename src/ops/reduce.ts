// Deterministic reductions (fixed summation order, no float atomics): a dense layer's bias
// gradient, the confusion matrix, and a non-finite check. Each function records exactly one dispatch.
// Shapes, order of summation and layout: shaders/reduce.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, streamWork, treeBarriers } from '../gpu/work.ts';
import { ShapeError } from '../errors.ts';

function positive(what: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`${what} needs ${k} to be a positive integer, got ${v}`);
  }
}

function wordIndex(index: number | undefined): number {
  const i = index ?? 0;
  if (!Number.isInteger(i) || i < 0) throw new RangeError(`output word index must be a non-negative integer, got ${i}`);
  return i;
}

/** out [n] (+)= Σ over the m rows of x [m, n]: a dense layer's bias gradient, dB = Σ_batch dY. */
export function sumRows(
  gpu: Gpu,
  io: { x: BufferRef; out: BufferRef },
  s: { m: number; n: number; accumulate?: boolean },
): Dispatch[] {
  positive('sumRows', { m: s.m, n: s.n });
  return [
    gpu.kernel({
      shader: 'reduce',
      entry: 'sum_rows',
      params: { m: s.m, n: s.n, accumulate: s.accumulate ? 1 : 0 },
      bindings: [io.x, io.out],
      workgroups: grid(ceilDiv(s.n, 16)),
      label: `sumRows ${s.m}x${s.n}${s.accumulate ? ' +=' : ''}`,
      // 16 row lanes per column: each a loop over m / 16 rows, then a tree over the lanes.
      work: chainWork({
        flops: s.m * s.n,
        bytesRead: f32Bytes(s.m * s.n, s.accumulate ? s.n : 0),
        bytesWritten: f32Bytes(s.n),
        threads: 256,
        depth: ceilDiv(s.m, 16),
        barriers: treeBarriers(16),
        sharedBytes: 1024,
      }),
    }),
  ];
}

/**
 * confusion u32 [classes, classes] += 1 at (row labels[i], column argmax of scores row i) for each
 * sample i < m; scores [m, classes] are logits or probabilities (first max on ties). Samples with
 * labels[i] ≥ classes are not counted. Zero the buffer to start a new count.
 */
export function confusionAccumulate(
  gpu: Gpu,
  io: { labels: BufferRef; scores: BufferRef; confusion: BufferRef },
  s: { m: number; classes: number },
): Dispatch[] {
  positive('confusionAccumulate', { m: s.m, classes: s.classes });
  return [
    gpu.kernel({
      shader: 'reduce',
      entry: 'confusion',
      params: { m: s.m, n: s.classes, accumulate: 0 },
      bindings: [io.scores, io.labels, io.confusion],
      workgroups: grid(ceilDiv(s.m, 64)),
      label: `confusion ${s.m}x${s.classes}`,
      // One thread per row: its label, then the row's scores one after another (the argmax).
      work: streamWork({
        flops: s.m * s.classes,
        bytesRead: f32Bytes(s.m * s.classes, s.m, s.classes * s.classes),
        bytesWritten: f32Bytes(s.classes * s.classes),
        perThread: 1,
        loads: 1 + s.classes,
      }),
    }),
  ];
}

/**
 * flag u32 [index] = 1 if any of the n f32 values of x is NaN, +Inf or −Inf (exponent bits all ones,
 * read as bits); otherwise left as it is, so one flag can collect many checks until the host zeroes it.
 */
export function nonFiniteCheck(
  gpu: Gpu,
  io: { x: BufferRef; flag: BufferRef },
  s: { n: number; index?: number },
): Dispatch[] {
  positive('nonFiniteCheck', { n: s.n });
  return [
    gpu.kernel({
      shader: 'reduce',
      entry: 'non_finite',
      params: { n: s.n, index: wordIndex(s.index) },
      bindings: [io.x, io.flag],
      workgroups: grid(ceilDiv(s.n, 64)),
      label: `nonFiniteCheck ${s.n}`,
      work: streamWork({ flops: s.n, bytesRead: f32Bytes(s.n), bytesWritten: 4, perThread: 1 }),
    }),
  ];
}
