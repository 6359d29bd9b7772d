// Deterministic reductions (fixed summation order, no float atomics): bias gradients, metrics,
// scalar totals and a non-finite check. Each function records exactly one dispatch.
// Shapes, order of summation and layout: shaders/reduce.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
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
): Dispatch {
  positive('sumRows', { m: s.m, n: s.n });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'sum_rows',
    params: [s.m, s.n, s.accumulate ? 1 : 0],
    bindings: [io.x, io.out],
    workgroups: grid(ceilDiv(s.n, 16)),
    label: `sumRows ${s.m}x${s.n}${s.accumulate ? ' +=' : ''}`,
  });
}

/** out [c] (+)= Σ over batch and space of x [n, c, hw] (NCHW, hw = H·W): a conv layer's bias gradient. */
export function sumChannels(
  gpu: Gpu,
  io: { x: BufferRef; out: BufferRef },
  s: { n: number; c: number; hw: number; accumulate?: boolean },
): Dispatch {
  positive('sumChannels', { n: s.n, c: s.c, hw: s.hw });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'sum_channels',
    params: [s.n, s.c, s.hw, s.accumulate ? 1 : 0],
    bindings: [io.x, io.out],
    workgroups: grid(s.c),
    label: `sumChannels ${s.n}x${s.c}x${s.hw}${s.accumulate ? ' +=' : ''}`,
  });
}

/** out u32 [m] = index of the first maximum of each row of x [m, n]. */
export function argmaxRows(gpu: Gpu, io: { x: BufferRef; out: BufferRef }, s: { m: number; n: number }): Dispatch {
  positive('argmaxRows', { m: s.m, n: s.n });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'argmax_rows',
    params: [s.m, s.n, 0],
    bindings: [io.x, io.out],
    workgroups: grid(ceilDiv(s.m, 64)),
    label: `argmaxRows ${s.m}x${s.n}`,
  });
}

/** counter[index] += #{i < m : predictions[i] == labels[i]}; predictions and labels u32 [m]. */
export function countCorrect(
  gpu: Gpu,
  io: { predictions: BufferRef; labels: BufferRef; counter: BufferRef },
  s: { m: number; index?: number },
): Dispatch {
  positive('countCorrect', { m: s.m });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'count_correct',
    params: [s.m, wordIndex(s.index)],
    bindings: [io.predictions, io.labels, io.counter],
    workgroups: 1,
    label: `countCorrect ${s.m}`,
  });
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
): Dispatch {
  positive('confusionAccumulate', { m: s.m, classes: s.classes });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'confusion',
    params: [s.m, s.classes, 0],
    bindings: [io.scores, io.labels, io.confusion],
    workgroups: grid(ceilDiv(s.m, 64)),
    label: `confusion ${s.m}x${s.classes}`,
  });
}

export interface TotalShape {
  /** Elements of x. */
  n: number;
  /** Word of `out` to write (default 0). */
  index?: number;
  /** out[index] += total instead of out[index] = total. */
  accumulate?: boolean;
}

function total(gpu: Gpu, io: { x: BufferRef; out: BufferRef }, s: TotalShape, mean: boolean): Dispatch {
  positive(mean ? 'mean' : 'sum', { n: s.n });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'sum_all',
    params: [s.n, wordIndex(s.index), s.accumulate ? 1 : 0, { f32: mean ? 1 / s.n : 1 }],
    bindings: [io.x, io.out],
    workgroups: 1,
    label: `${mean ? 'mean' : 'sum'} ${s.n}${s.accumulate ? ' +=' : ''}`,
  });
}

/** out[index] (+)= Σ x[i] over f32 x [n], in a fixed order (one workgroup). */
export function sum(gpu: Gpu, io: { x: BufferRef; out: BufferRef }, s: TotalShape): Dispatch {
  return total(gpu, io, s, false);
}

/** out[index] (+)= (Σ x[i]) · f32(1/n). */
export function mean(gpu: Gpu, io: { x: BufferRef; out: BufferRef }, s: TotalShape): Dispatch {
  return total(gpu, io, s, true);
}

/**
 * flag u32 [index] = 1 if any of the n f32 values of x is NaN, +Inf or −Inf (exponent bits all ones,
 * read as bits); otherwise left as it is, so one flag can collect many checks until the host zeroes it.
 */
export function nonFiniteCheck(
  gpu: Gpu,
  io: { x: BufferRef; flag: BufferRef },
  s: { n: number; index?: number },
): Dispatch {
  positive('nonFiniteCheck', { n: s.n });
  return gpu.kernel({
    shader: 'reduce',
    entry: 'non_finite',
    params: [s.n, wordIndex(s.index)],
    bindings: [io.x, io.flag],
    workgroups: grid(ceilDiv(s.n, 64)),
    label: `nonFiniteCheck ${s.n}`,
  });
}
