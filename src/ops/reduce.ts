// Deterministic reductions (fixed summation order, no float atomics): a dense layer's bias
// gradient, the confusion matrix, and a non-finite check, each spread over many workgroups with no
// long serial loop. Each function records exactly one dispatch.
// Shapes, order of summation and layout: shaders/reduce.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, perThread, streamWork, treeBarriers } from '../gpu/work.ts';
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

/**
 * Row lanes of sum_rows for m rows: each lane sums at most 4 rows (up to 256 lanes; past 1,024 rows
 * a lane sums ⌈m/256⌉), the fewest lanes that do, so a workgroup covers as many columns as it can.
 */
export function sumRowsLanes(m: number): number {
  let lanes = 1;
  while (lanes < 256 && lanes * 4 < m) lanes *= 2;
  return lanes;
}

/** out [n] (+)= Σ over the m rows of x [m, n]: a dense layer's bias gradient, dB = Σ_batch dY. */
export function sumRows(
  gpu: Gpu,
  io: { x: BufferRef; out: BufferRef },
  s: { m: number; n: number; accumulate?: boolean },
): Dispatch[] {
  positive('sumRows', { m: s.m, n: s.n });
  const lanes = sumRowsLanes(s.m);
  return [
    gpu.kernel({
      shader: 'reduce',
      entry: 'sum_rows',
      params: { m: s.m, n: s.n, accumulate: s.accumulate ? 1 : 0, lanes },
      bindings: [io.x, io.out],
      workgroups: grid(ceilDiv(s.n, 256 / lanes)),
      label: `sumRows ${s.m}x${s.n}${s.accumulate ? ' +=' : ''}`,
      // `lanes` row lanes per column: each a loop over m / lanes rows, then a tree over the lanes.
      work: chainWork({
        flops: s.m * s.n,
        bytesRead: f32Bytes(s.m * s.n, s.accumulate ? s.n : 0),
        bytesWritten: f32Bytes(s.n),
        threads: 256,
        depth: ceilDiv(s.m, lanes),
        barriers: treeBarriers(lanes),
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
      params: { m: s.m, classes: s.classes },
      bindings: [io.scores, io.labels, io.confusion],
      workgroups: grid(ceilDiv(s.m, 256)),
      label: `confusion ${s.m}x${s.classes}`,
      // One thread per row: its label, then the row's scores one after another (the argmax); then
      // the workgroup's bins added into the matrix.
      work: chainWork({
        flops: s.m * s.classes,
        bytesRead: f32Bytes(s.m * s.classes, s.m, s.classes * s.classes),
        bytesWritten: f32Bytes(s.classes * s.classes),
        threads: 256,
        depth: 1 + s.classes + ceilDiv(s.classes * s.classes, 256),
        barriers: 1,
        sharedBytes: s.classes * s.classes <= 1024 ? 4096 : 0,
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
  const workgroups = gpu.spread(s.n);
  return [
    gpu.kernel({
      shader: 'reduce',
      entry: 'non_finite',
      params: { n: s.n, index: wordIndex(s.index) },
      bindings: [io.x, io.flag],
      workgroups,
      label: `nonFiniteCheck ${s.n}`,
      work: streamWork({
        flops: s.n,
        bytesRead: f32Bytes(s.n),
        bytesWritten: 4,
        perThread: perThread(s.n, workgroups),
      }),
    }),
  ];
}
