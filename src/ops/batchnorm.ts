// Batch normalization for conv (NCHW, per channel over N·H·W) and dense ([N,F]: hw = 1) outputs:
// training forward with batch statistics and running-stat update, inference forward, backward.
// Math, layout and dispatch geometry: shaders/batchnorm.wgsl. The graph op BATCHNORM: batchnorm_op.ts.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { f32Bytes, perThread, streamWork, treeBarriers } from '../gpu/work.ts';
import type { Act } from '../../dsl/ir.ts';
import { actConstants, actName } from './act.ts';
import { POOL_CODES, type ChainPool } from './chain.ts';
import { poolGeometry, windowsApart } from './pool.ts';
import { readerSums } from './gemm.ts';
import { bnSlices, bnWhole, sliceConstants, sliced, trainWork, withBytes, type BnDevice } from './batchnorm-slices.ts';

export { bnPartials, bnSlices, bnWhole, type BnDevice } from './batchnorm-slices.ts';

export interface BatchnormShape {
  n: number;
  /** Channels (conv) or features (dense). */
  c: number;
  /** H·W for conv outputs, 1 for dense. */
  hw: number;
  /** Added to the variance (Keras default 0.001). */
  eps?: number;
  /** running = momentum·running + (1 − momentum)·batch (Keras default 0.99). */
  momentum?: number;
  /** Forward: batch statistics and running-stat update (true) or running statistics (false). */
  training: boolean;
  /** Backward: dx += result instead of dx = result (dgamma and dbeta are always written). */
  accumulate?: boolean;
  /**
   * The activation fused after it: the forward writes act(z), the training backward takes the gradient of
   * act(z) and folds act'(z) in, z recomputed from x. Linear when absent.
   */
  act?: Act;
  /** Slices per channel (tests force several); bnSlices picks them for the adapter when absent. */
  slices?: number;
  /**
   * With one slice, whether each training pass makes its statistics (sums) itself (bnWhole): true unless
   * false (tests run the two passes it replaces, for their bits).
   */
  whole?: boolean;
  /**
   * With a fused activation: the pooling that reads its output (windows apart), in the same pass (the
   * planner's choice, src/graph/fuse.ts); its shape's input is the batchnorm's output. At inference y is
   * not written then (nothing reads it), nor an argmax.
   */
  pool?: ChainPool;
}

export interface BatchnormForwardIo {
  /** [n, c, hw] input and output. */
  x: BufferRef;
  y: BufferRef;
  /** [c] scale and shift. */
  gamma: BufferRef;
  beta: BufferRef;
  /** [c] running mean and (biased) variance: read in inference, updated in place in training. */
  runMean: BufferRef;
  runVar: BufferRef;
  /** [c] batch mean and 1/sqrt(var + eps), written in training for the backward; unused in inference. */
  saveMean?: BufferRef;
  saveInvStd?: BufferRef;
  /** Training: at least partialSize(…) floats for the per-slice statistics (bnPartials). */
  partial?: BufferRef;
  /** With a fused pooling (BatchnormShape.pool): its output, and in training its argmax for max pooling (u32). */
  pooled?: BufferRef;
  argmax?: BufferRef;
  /**
   * x is a conv's output that this pass sums from the conv's unsummed split-K forward partials (2 to 16
   * of them, [split][c][n·HW + p]) and its bias, and writes (the planner's choice, src/graph/fused-steps.ts).
   */
  xParts?: { parts: BufferRef; splits: number; bias?: BufferRef };
  /** No pooling: a residual add's other input, y = act(z + shortcut) (src/graph/fuse-add.ts). */
  shortcut?: BufferRef;
}

export interface BatchnormBackwardIo {
  dy: BufferRef;
  x: BufferRef;
  gamma: BufferRef;
  /** Read only with a fused activation (to recompute z). */
  beta: BufferRef;
  saveMean: BufferRef;
  saveInvStd: BufferRef;
  dx: BufferRef;
  /** [c], written. */
  dgamma: BufferRef;
  dbeta: BufferRef;
  /** At least bnPartials(…) floats for the per-slice sums. */
  partial: BufferRef;
}

type Params = ReturnType<typeof params>;

function params(s: BatchnormShape, gpu: BnDevice) {
  for (const [k, v] of [
    ['n', s.n],
    ['c', s.c],
    ['hw', s.hw],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`batchnorm ${k} must be a positive integer, got ${v}`);
  }
  const { n, c, hw } = s;
  const { slices, len } = bnSlices(gpu, s);
  return {
    n,
    c,
    hw,
    eps: { f32: s.eps ?? 0.001 },
    momentum: { f32: s.momentum ?? 0.99 },
    accumulate: s.accumulate ? 1 : 0,
    slices,
    len,
    tree: 2 ** Math.ceil(Math.log2(slices)),
    ...poolParams(s, slices),
  };
}

/** The pooling's window in the uniform (forward_train_pool), and its windows per slice; 1 × HW without one. */
function poolParams(s: BatchnormShape, slices: number) {
  const p = s.pool?.shape;
  if (!p) return { h: 1, w: s.hw, oh: 1, ow: s.hw, kh: 1, kw: 1, sh: 1, sw: 1, padTop: 0, padLeft: 0, windows: 0 };
  if (p.n !== s.n || p.c !== s.c || p.h * p.w !== s.hw || !windowsApart(p))
    throw new ShapeError(`batchnorm ${desc(s)} cannot pool ${p.n}x${p.c}x${p.h}x${p.w} windows apart in its pass`);
  const g = poolGeometry(p);
  const [sh, sw, kh, kw] = [p.strideH, p.strideW, p.kh, p.kw];
  const windows = Math.ceil((s.n * g.oh * g.ow) / slices);
  return { h: p.h, w: p.w, oh: g.oh, ow: g.ow, kh, kw, sh, sw, padTop: g.padTop, padLeft: g.padLeft, windows };
}

const windowOf = (p: ChainPool): string =>
  `${p.kind}pool ${p.shape.kh}x${p.shape.kw}/${p.shape.strideH}x${p.shape.strideW}`;

const desc = (s: BatchnormShape, add = false): string =>
  `${s.n}x${s.c}x${s.hw}${add ? ' + add' : ''}${s.act && s.act.kind !== 'linear' ? ` + ${actName(s.act)}` : ''}`;

/** A training forward's buffers: the saved statistics and the per-slice partials bound too. */
type TrainIo = BatchnormForwardIo & { saveMean: BufferRef; saveInvStd: BufferRef; partial: BufferRef };

function trainForward(gpu: Gpu, io: BatchnormForwardIo, s: BatchnormShape): Dispatch[] {
  const { saveMean, saveInvStd, partial } = io;
  if (!saveMean || !saveInvStd || !partial) throw new ShapeError('batchnorm training forward needs its saved buffers');
  const t = { ...io, saveMean, saveInvStd, partial };
  const p = params(s, gpu);
  const whole = bnWhole(gpu, s, !!io.xParts);
  const pass = s.pool ? pooledForward(gpu, t, s, p, whole) : normalise(gpu, t, s, p, whole);
  if (whole) return [pass];
  const none = null;
  const stats = sliced(s, gpu, { passes: 2, trees: 2, combine: false });
  return [
    io.xParts
      ? statsFromParts(gpu, { ...t, xParts: io.xParts }, s, p)
      : gpu.kernel({
          shader: 'batchnorm',
          entry: 'stats',
          // stats reads no activation: one pipeline for every activation.
          constants: sliceConstants(gpu),
          params: p,
          bindings: [io.x, none, none, none, none, none, none, none, partial],
          workgroups: [p.slices, s.c],
          label: `batchnorm stats ${desc(s)} ${p.slices} slices`,
          work: withBytes(stats, s.n * s.c * s.hw, 1, 0, 0, 3 * s.c * p.slices),
        }),
    pass,
  ];
}

/** The per-channel floats a training pass reads: the partials it combines (not where whole), gamma, beta, running. */
const trainVectors = (s: BatchnormShape, p: Params, whole: boolean): number =>
  (whole ? 0 : 3 * s.c * p.slices) + 4 * s.c;

/** A training pass's label: `batchnorm train`, `batchnorm stats+train` where it makes its statistics. */
const trainLabel = (whole: boolean): string => `batchnorm ${whole ? 'stats+train' : 'train'}`;

/** forward_train: y = act(z), the statistics combined first; forward_train_add: act(z + the shortcut). */
function normalise(gpu: Gpu, io: TrainIo, s: BatchnormShape, p: Params, whole: boolean): Dispatch {
  const more = io.shortcut ? [null, null, null, null, null, io.shortcut] : [];
  const work = trainWork(gpu, s, whole);
  return gpu.kernel({
    shader: 'batchnorm',
    entry: io.shortcut ? 'forward_train_add' : 'forward_train',
    constants: sliceConstants(gpu, s.act, whole),
    params: p,
    bindings: [io.x, io.gamma, io.beta, io.runMean, io.runVar, io.y, io.saveMean, io.saveInvStd, io.partial, ...more],
    workgroups: [p.slices, s.c],
    label: `${trainLabel(whole)} ${desc(s, !!io.shortcut)}`,
    work: withBytes(work, s.n * s.c * s.hw, io.shortcut ? 2 : 1, 1, trainVectors(s, p, whole), 4 * s.c),
  });
}

/** stats_parts: the statistics of a conv's output summed from its partials, which it writes (io.x). */
function statsFromParts(
  gpu: Gpu,
  io: TrainIo & { xParts: NonNullable<BatchnormForwardIo['xParts']> },
  s: BatchnormShape,
  p: ReturnType<typeof params>,
): Dispatch {
  const { splits, parts, bias } = io.xParts;
  if (!readerSums(splits))
    throw new ShapeError(`batchnorm ${desc(s)} sums 2 to 16 partials of its input, got ${splits}`);
  const count = s.n * s.c * s.hw;
  const none = null;
  const work = sliced(s, gpu, { passes: 2, trees: 2, combine: false });
  return gpu.kernel({
    shader: 'batchnorm',
    entry: 'stats_parts',
    constants: { ...sliceConstants(gpu), SRC_SPLITS: splits, HAS_BIAS: bias ? 1 : 0 },
    params: p,
    bindings: [parts, none, none, none, none, none, none, none, io.partial, none, none, none, io.x, bias ?? gpu.dummy],
    workgroups: [p.slices, s.c],
    label: `batchnorm stats ${desc(s)} ${p.slices} slices + ${splits} splits`,
    // The first pass reads the partials and writes x; the second reads x back.
    work: withBytes(work, count, splits + 1, 1, s.c, 3 * s.c * p.slices),
  });
}

/** forward_train_pool: the normalisation, its activation and the pooling that reads it, in one pass. */
function pooledForward(gpu: Gpu, io: TrainIo, s: BatchnormShape, p: Params, whole: boolean): Dispatch {
  const { pool } = s;
  const { saveMean, saveInvStd, partial } = io;
  if (!pool || !io.pooled || (pool.kind === 'max' && !io.argmax))
    throw new ShapeError(`batchnorm ${desc(s)} with a pooling needs its pooled output (and argmax for max pooling)`);
  const count = s.n * s.c * s.hw;
  const out = s.n * s.c * p.oh * p.ow;
  const io2 = [io.x, io.gamma, io.beta, io.runMean, io.runVar, io.y, saveMean, saveInvStd, partial];
  const work = trainWork(gpu, s, whole);
  // A thread a window: its block's cells in one chain of loads, after the statistics' (combined or made).
  const cells = Math.ceil(p.windows / gpu.treeThreads) * (count / out);
  const stats = whole ? 2 * Math.ceil(p.len / gpu.treeThreads) : 1;
  return gpu.kernel({
    shader: 'batchnorm',
    entry: 'forward_train_pool',
    constants: { ...sliceConstants(gpu, s.act, whole), POOL: POOL_CODES[pool.kind] },
    params: p,
    bindings: [...io2, null, io.pooled, io.argmax ?? gpu.dummy],
    workgroups: [p.slices, s.c],
    label: `${trainLabel(whole)} ${desc(s)} + ${windowOf(pool)}`,
    work: {
      ...withBytes(work, count, 1, 1, trainVectors(s, p, whole), 4 * s.c + (pool.kind === 'max' ? 2 : 1) * out),
      shape: {
        kind: 'chain',
        depth: cells + stats,
        barriers: whole ? 2 * treeBarriers(gpu.treeThreads) : treeBarriers(p.tree),
      },
    },
  });
}

export function batchnormForward(gpu: Gpu, io: BatchnormForwardIo, s: BatchnormShape): Dispatch[] {
  if (s.pool && io.shortcut) throw new ShapeError(`batchnorm ${desc(s)} adds a shortcut only without a pooling`);
  if (s.training) return trainForward(gpu, io, s);
  // A thread an element over Gpu.spread's workgroups (forward_infer; forward_infer_add with a shortcut, y =
  // act(z + shortcut)); with a pooling (windows apart), a thread a pooled output, y not written (forward_infer_pool).
  const { pool } = s;
  if (pool && !io.pooled) throw new ShapeError(`batchnorm ${desc(s)} with a pooling needs its pooled output`);
  const p = params(s, gpu);
  const count = s.n * s.c * s.hw;
  const outs = pool ? s.n * s.c * p.oh * p.ow : count;
  const none = null;
  const [y, more] = pool
    ? [gpu.dummy, [none, none, none, none, io.pooled ?? none]]
    : [io.y, io.shortcut ? [none, none, none, none, none, none, none, none, io.shortcut] : []];
  const entry = pool ? 'forward_infer_pool' : io.shortcut ? 'forward_infer_add' : 'forward_infer';
  const workgroups = pool ? grid(ceilDiv(outs, 64)) : gpu.spread(count);
  return [
    gpu.kernel({
      shader: 'batchnorm',
      entry,
      constants: { ...actConstants(s.act), ...(pool ? { POOL: POOL_CODES[pool.kind] } : {}) },
      params: p,
      bindings: [io.x, io.gamma, io.beta, io.runMean, io.runVar, y, ...more],
      workgroups,
      label: `batchnorm infer ${desc(s, !!io.shortcut)}${pool ? ` + ${windowOf(pool)}` : ''}`,
      work: streamWork({
        flops: (io.shortcut ? 3 : 2) * count,
        bytesRead: f32Bytes((io.shortcut ? 2 : 1) * count, 4 * s.c),
        bytesWritten: f32Bytes(outs),
        perThread: pool ? Math.ceil(count / outs) : perThread(count, workgroups),
      }),
    }),
  ];
}

/**
 * g = dy·act'(z) (dy without a fused activation); dL/dx = (gamma·invstd/M)·(M·g − Σg − xhat·Σ(g·xhat)),
 * dgamma = Σ g·xhat, dbeta = Σ g; M = n·hw.
 */
export function batchnormBackward(gpu: Gpu, io: BatchnormBackwardIo, s: BatchnormShape): Dispatch[] {
  const p = params(s, gpu);
  const count = s.n * s.c * s.hw;
  const partials = 2 * s.c * p.slices;
  const workgroups = [p.slices, s.c] as const;
  const none = null;
  const read = s.accumulate ? 3 : 2;
  const backward = (whole: boolean): Dispatch =>
    gpu.kernel({
      shader: 'batchnorm',
      entry: 'backward',
      constants: sliceConstants(gpu, s.act, whole),
      params: p,
      bindings: [io.x, io.gamma, io.beta, io.dy, io.saveMean, io.saveInvStd, io.dx, io.dgamma, io.partial, io.dbeta],
      workgroups,
      label: `batchnorm ${whole ? 'sums+backward' : 'backward'} ${desc(s)}`,
      work: withBytes(
        sliced(s, gpu, whole ? { passes: 2, trees: 1, combine: false } : { passes: 1, trees: 0, combine: true }),
        count,
        read,
        1,
        (whole ? 0 : partials) + 4 * s.c,
        2 * s.c,
      ),
    });
  // Whole channels: the sums made first in the same pass (one dispatch).
  if (bnWhole(gpu, s)) return [backward(true)];
  return [
    gpu.kernel({
      shader: 'batchnorm',
      entry: 'backward_sums',
      constants: sliceConstants(gpu, s.act),
      params: p,
      bindings: [io.x, io.gamma, io.beta, io.dy, io.saveMean, io.saveInvStd, none, none, io.partial],
      workgroups,
      label: `batchnorm backward sums ${desc(s)} ${p.slices} slices`,
      work: withBytes(sliced(s, gpu, { passes: 1, trees: 1, combine: false }), count, 2, 0, 4 * s.c, partials),
    }),
    backward(false),
  ];
}
