// Softmax + cross-entropy loss (fused, with label smoothing and GPU-side loss/accuracy totals) and
// plain softmax for prediction. Shapes, math and layout: shaders/softmax_xent.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';

export interface XentShape {
  /** Samples (rows of logits). */
  n: number;
  classes: number;
  /** Label smoothing ε in [0, 1]: target = (1 − ε)·onehot + ε/classes (default 0). */
  smoothing?: number;
  /** dlogits = (softmax − target)·scale; 1/n (the default) differentiates the mean loss, as Keras. */
  scale?: number;
}

export interface XentIo {
  /** [n, classes] f32. */
  logits: BufferRef;
  /** [n] u32, each < classes. */
  labels: BufferRef;
  /** [n, classes] f32, written; leave out for evaluation (loss and stats only). */
  dlogits?: BufferRef;
  /** [n] f32 per-sample loss, written. */
  loss: BufferRef;
  /**
   * 2 u32 words accumulated on the GPU (zero them to reset): [0] the loss sum as f32 bits (read it
   * through a Float32Array view), [1] the number of correct predictions (argmax, first max on ties).
   */
  stats: BufferRef;
}

function check(n: number, classes: number): void {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(classes) || classes < 1) {
    throw new ShapeError(`softmax needs at least one sample and one class, got n=${n} classes=${classes}`);
  }
}

/** One dispatch: per-sample loss, optional dlogits, and loss sum / correct count added into stats. */
export function softmaxXent(gpu: Gpu, io: XentIo, s: XentShape): Dispatch[] {
  check(s.n, s.classes);
  const smoothing = s.smoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`label smoothing must be in [0, 1], got ${smoothing}`);
  return [
    gpu.kernel({
      shader: 'softmax_xent',
      entry: 'xent',
      params: [s.n, s.classes, { f32: smoothing }, { f32: s.scale ?? 1 / s.n }, io.dlogits ? 1 : 0],
      bindings: [io.logits, io.labels, io.dlogits ?? gpu.dummy, io.loss, io.stats],
      workgroups: 1,
      label: `softmax_xent ${s.n}x${s.classes}${io.dlogits ? '' : ' (eval)'}`,
    }),
  ];
}

/** probs [n, classes] = row-wise softmax of logits [n, classes]. */
export function softmax(gpu: Gpu, io: { logits: BufferRef; probs: BufferRef }, n: number, classes: number): Dispatch[] {
  check(n, classes);
  return [
    gpu.kernel({
      shader: 'softmax_xent',
      entry: 'softmax',
      params: [n, classes, { f32: 0 }, { f32: 0 }, 0],
      bindings: [io.logits, io.probs],
      workgroups: grid(ceilDiv(n, 64)),
      label: `softmax ${n}x${classes}`,
    }),
  ];
}

/** Reads the totals a stats buffer has accumulated. */
export async function readXentStats(gpu: Gpu, stats: GPUBuffer): Promise<{ lossSum: number; correct: number }> {
  const words = await gpu.read(stats, 8);
  return { lossSum: new Float32Array(words)[0]!, correct: new Uint32Array(words)[1]! };
}
