// Softmax + cross-entropy loss (fused, with label smoothing and GPU-side loss/accuracy totals, summed
// in a fixed order: in the loss pass up to 256 rows, in a totals pass above) and plain softmax for
// prediction. Shapes, math and layout:
// shaders/softmax_xent.wgsl.
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
  /** u32 [2·xentGroups(n)]: each workgroup's loss sum and correct count, for the totals pass. */
  partials: BufferRef;
  /**
   * u32 [≥ 2], a training step's counter: the loss pass copies word 0 into word 1, the running step
   * the step's update reads as it ends the step (src/ops/optimizer.ts endsStep).
   */
  counter?: BufferRef;
}

/** Rows a partial total sums (lib/xent.wgsl's trees): a workgroup's of the loss pass over more than 256 rows. */
export const XENT_GROUP = 32;
const ONE_GROUP = 256;

/** Classes at most of a row that lib/xent.wgsl reads once into registers (XENT_REG). */
const XENT_REG = 16;

/**
 * The dependent loads of one row's loss: a row of at most XENT_REG classes is read once, its loads issued
 * together, then its label; a wider one is walked in memory, twice, or three times with its gradient.
 */
export const xentRowLoads = (classes: number, grad: boolean): number =>
  classes <= XENT_REG ? 2 : (grad ? 3 : 2) * classes + 1;

/** Workgroups of the loss pass over n rows: one up to 256 rows, else one a 32 rows, each leaving 2 words. */
export const xentGroups = (n: number): number => (n <= ONE_GROUP ? 1 : ceilDiv(n, XENT_GROUP));

function check(n: number, classes: number): void {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(classes) || classes < 1) {
    throw new ShapeError(`softmax needs at least one sample and one class, got n=${n} classes=${classes}`);
  }
}

/**
 * The loss pass (per-sample loss, optional dlogits), which adds its loss sum and correct count into
 * stats itself when it is one workgroup (n ≤ 256). Else it leaves each workgroup's partial totals, and
 * the totals pass that adds them into stats follows, unless `o.total` is false (a training step's plan
 * leaves them to its update, or records xentTotal at its end). With io.counter it also takes the step's
 * snapshot of the counter.
 */
export function softmaxXent(gpu: Gpu, io: XentIo, s: XentShape, o: { total?: boolean } = {}): Dispatch[] {
  check(s.n, s.classes);
  const smoothing = s.smoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`label smoothing must be in [0, 1], got ${smoothing}`);
  const groups = xentGroups(s.n);
  const inline = groups === 1;
  const threads = inline ? ONE_GROUP : XENT_GROUP;
  const loss = gpu.kernel({
    shader: 'softmax_xent',
    entry: 'xent',
    params: {
      n: s.n,
      classes: s.classes,
      smoothing: { f32: smoothing },
      scale: { f32: s.scale ?? 1 / s.n },
      grad: io.dlogits ? 1 : 0,
      inlineTotal: inline ? 1 : 0,
      snapshot: io.counter ? 1 : 0,
    },
    constants: { XENT_WG: threads },
    // Distinct writable dummies: Dawn refuses two writable bindings of one range of a buffer.
    bindings: [io.logits, io.labels, io.dlogits ?? gpu.dummy, io.loss, io.partials, io.stats, io.counter ?? gpu.dummy2],
    workgroups: grid(groups),
    label: `softmax_xent ${s.n}x${s.classes}${io.dlogits ? '' : ' (eval)'}${inline ? ' + totals' : ''}`,
    // One thread per row: its logits read (xentRowLoads: once, or walked a pass at a time), then a tree over
    // each 32 rows.
    work: chainWork({
      flops: s.n * s.classes * (io.dlogits ? 8 : 4),
      bytesRead: f32Bytes(s.n * s.classes, s.n, inline ? 2 : 0),
      bytesWritten: f32Bytes(io.dlogits ? s.n * s.classes : 0, s.n, 2 * groups),
      threads,
      depth: xentRowLoads(s.classes, io.dlogits !== undefined),
      barriers: treeBarriers(XENT_GROUP),
      sharedBytes: 8 * threads,
    }),
  });
  const totals = { partials: io.partials, groups, stats: io.stats };
  return o.total === false || inline ? [loss] : [loss, ...xentTotal(gpu, totals)];
}

/**
 * A loss's partial totals (the loss pass's of more than 256 rows, or a loss in the logits' GEMM of several
 * bands: matmul.ts matmulXent): `groups` pairs (the loss sum as f32 bits, the correct count), one a 32 rows,
 * for the totals pass (xentTotal) or a training step's update (optimizer.ts UpdateAdds) to add into stats.
 */
export interface LossTotals {
  /** u32 [2·groups]. */
  partials: BufferRef;
  groups: number;
  /** u32 [2], accumulated: stats as XentIo describes it. */
  stats: BufferRef;
}

/** The totals pass: stats += the partials' (loss sum, correct count), in a fixed order (lib/loss_totals.wgsl). */
export function xentTotal(gpu: Gpu, t: LossTotals): Dispatch[] {
  return [
    gpu.kernel({
      shader: 'softmax_xent',
      entry: 'total',
      params: { groups: t.groups },
      bindings: [t.partials, t.stats],
      workgroups: 1,
      label: `softmax_xent totals ${t.groups} groups`,
      // ONE workgroup: each thread adds ⌈groups/256⌉ partials in order, then a tree.
      work: chainWork({
        flops: 2 * t.groups,
        bytesRead: f32Bytes(2 * t.groups, 2),
        bytesWritten: f32Bytes(2),
        threads: 256,
        depth: ceilDiv(t.groups, 256) + 1,
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
      params: { n, classes, smoothing: { f32: 0 }, scale: { f32: 0 }, grad: 0, inlineTotal: 0, snapshot: 0 },
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
