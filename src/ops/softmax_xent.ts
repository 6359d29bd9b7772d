// Softmax + cross-entropy loss (fused, with label smoothing and GPU-side loss/accuracy totals) and
// plain softmax for prediction. Shapes, math and layout: shaders/softmax_xent.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, streamWork, treeBarriers } from '../gpu/work.ts';
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
      params: {
        n: s.n,
        classes: s.classes,
        smoothing: { f32: smoothing },
        scale: { f32: s.scale ?? 1 / s.n },
        grad: io.dlogits ? 1 : 0,
      },
      bindings: [io.logits, io.labels, io.dlogits ?? gpu.dummy, io.loss, io.stats],
      workgroups: 1,
      label: `softmax_xent ${s.n}x${s.classes}${io.dlogits ? '' : ' (eval)'}`,
      // ONE workgroup: each thread takes rows t, t + 256, …, and per row walks its logits two or
      // three times (max, sum of exponentials, gradient) one load after another, then a tree.
      work: chainWork({
        flops: s.n * s.classes * (io.dlogits ? 8 : 4),
        bytesRead: f32Bytes(s.n * s.classes, s.n, 2),
        bytesWritten: f32Bytes(io.dlogits ? s.n * s.classes : 0, s.n, 2),
        threads: 256,
        depth: ceilDiv(s.n, 256) * ((io.dlogits ? 3 : 2) * s.classes + 1),
        barriers: treeBarriers(256),
        sharedBytes: 2048,
      }),
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
      params: { n, classes, smoothing: { f32: 0 }, scale: { f32: 0 }, grad: 0 },
      bindings: [io.logits, io.probs],
      workgroups: grid(ceilDiv(n, 64)),
      label: `softmax ${n}x${classes}`,
      // One thread per row: max, sum and write, each a walk over the row's logits.
      work: streamWork({
        flops: 4 * n * classes,
        bytesRead: f32Bytes(n * classes),
        bytesWritten: f32Bytes(n * classes),
        perThread: 1,
        loads: 3 * classes,
      }),
    }),
  ];
}
