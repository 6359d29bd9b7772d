// Conv2d shapes and how each pass is tiled on this adapter: the output geometry, the tiled kernels'
// tile and split-K (gemm.ts) or the lane kernels' tiles (conv2d_lanes.ts), the partial-sums buffers
// those need, and whether a forward can pool in its epilogue. conv2d.ts launches the passes.
import { ShapeError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { laneWeightPartsLength } from './conv2d_lanes.ts';
import { chooseGemm, partsLength, readerSums, type GemmPlan } from './gemm.ts';
import type { SplitLayout } from './grad-reduce.ts';
import { window2d, type Geometry2d, type Window2d } from './geometry.ts';
import { laneTile } from './lanes.ts';

export interface Conv2dShape extends Window2d {
  /** Batch. */
  n: number;
  /** In-channels. */
  c: number;
  /** Input height and width. */
  h: number;
  w: number;
  /** Out-channels. */
  k: number;
}

/**
 * How a pass may be tiled: `split` false where no partial-sums buffer can be given (a pooled forward,
 * or a launcher given none); `target` workgroups (tests).
 */
export interface ConvOptions {
  split?: boolean;
  target?: number;
}

/** Output size and the padding before (top, left), Keras/TF semantics; throws ShapeError on a bad shape. */
export function conv2dGeometry(s: Conv2dShape): Geometry2d {
  for (const key of ['n', 'c', 'h', 'w', 'k', 'kh', 'kw', 'strideH', 'strideW'] as const) {
    const v = s[key];
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`conv2d ${key} must be a positive integer but is ${v}`);
  }
  return window2d(s.h, s.w, s);
}

export const forwardPlan = (gpu: Gpu, s: Conv2dShape, o: ConvOptions): GemmPlan => {
  const g = conv2dGeometry(s);
  const cols = s.n * g.oh * g.ow;
  const need = { rows: s.k, cols, inner: s.c * s.kh * s.kw, columnRuns: true };
  return chooseGemm(gpu, { ...need, split: o.split ?? true, target: o.target });
};

/** dX per stride phase: the largest phase's columns and inner (phase (0, 0) has the most taps). */
export function inputGemm(s: Conv2dShape) {
  const cols = s.n * ceilDiv(s.h, s.strideH) * ceilDiv(s.w, s.strideW);
  const inner = s.k * ceilDiv(s.kh, s.strideH) * ceilDiv(s.kw, s.strideW);
  return { rows: s.c, cols, inner, phases: s.strideH * s.strideW };
}

export const inputPlan = (gpu: Gpu, s: Conv2dShape, o: ConvOptions): GemmPlan => {
  const { phases, ...gemm } = inputGemm(s);
  const need = { ...gemm, copies: phases, ragged: phases > 1, columnRuns: true };
  return chooseGemm(gpu, { ...need, split: o.split ?? true, target: o.target });
};

/** The workgroups the lane kernels' weight gradient aims at: one (no split) when a split is not allowed. */
export const laneTarget = (o: ConvOptions): number | undefined => (o.split === false ? 1 : o.target);

/** The weight gradient's inner dimension: N·OH·OW positions. */
export const weightInner = (s: Conv2dShape): number => {
  const g = conv2dGeometry(s);
  return s.n * g.oh * g.ow;
};

export const weightPlan = (gpu: Gpu, s: Conv2dShape, o: ConvOptions & { bias?: boolean }): GemmPlan => {
  const need = { rows: s.k, cols: s.c * s.kh * s.kw, inner: weightInner(s), columnTable: true };
  return chooseGemm(gpu, { ...need, sums: o.bias ? 1 : 0, split: o.split ?? true, target: o.target });
};

/** The tile and split a pass gets on the tiled kernels of this adapter (gemm.ts). */
export function conv2dPlan(
  gpu: Gpu,
  s: Conv2dShape,
  pass: 'forward' | 'dX' | 'dW',
  o: ConvOptions & { bias?: boolean } = {},
): GemmPlan {
  return pass === 'forward' ? forwardPlan(gpu, s, o) : pass === 'dX' ? inputPlan(gpu, s, o) : weightPlan(gpu, s, o);
}

/** Floats of the partial sums the forward needs (io.parts) on this adapter; 0 when it is not split. */
export function forwardPartsLength(gpu: Gpu, s: Conv2dShape, o: ConvOptions = {}): number {
  const g = conv2dGeometry(s);
  return gpu.lanes > 0 ? 0 : partsLength(forwardPlan(gpu, s, o), s.k, s.n * g.oh * g.ow);
}

/** Floats of the partial sums dX needs (io.parts) on this adapter; 0 when it is not split. */
export function inputPartsLength(gpu: Gpu, s: Conv2dShape, o: ConvOptions = {}): number {
  const { rows, cols, phases } = inputGemm(s);
  return gpu.lanes > 0 ? 0 : partsLength(inputPlan(gpu, s, o), phases * rows, cols);
}

/**
 * The split of dX that a reader may sum on its way instead of the reduce_splits pass (conv2dBackwardInput
 * with `unsummed`: dx then holds splits · N·C·H·W partials, [split][c][n·H·W + position]): 2 to 16
 * (reduce_splits' one-thread order, which shaders/chain.wgsl src_at repeats) on the tiled kernels of a
 * stride-1 conv; else 0.
 */
export function unsummedInputSplits(gpu: Gpu, s: Conv2dShape): number {
  if (gpu.lanes > 0 || s.strideH !== 1 || s.strideW !== 1) return 0;
  const { splits } = inputPlan(gpu, s, {});
  return readerSums(splits) ? splits : 0;
}

/**
 * The split of the forward that a reader may sum on its way instead of the reduce_splits pass
 * (conv2dForward with `unsummed`: the parts then hold splits · K·N·OH·OW partials, [split][k][n·OH·OW +
 * position], as dX's): 2 to 16 on the tiled kernels; else 0.
 */
export function unsummedForwardSplits(gpu: Gpu, s: Conv2dShape): number {
  if (gpu.lanes > 0) return 0;
  const { splits } = forwardPlan(gpu, s, {});
  return readerSums(splits) ? splits : 0;
}

/**
 * Floats of the partial sums conv2dBackwardWeights needs (io.parts) for this shape, with or without
 * a bias gradient, on this adapter: splits × K·C·KH·KW (+ K), or 0 when the sum is not split.
 */
export function weightPartsLength(gpu: Gpu, s: Conv2dShape, o: ConvOptions & { bias?: boolean } = {}): number {
  const ckk = s.c * s.kh * s.kw;
  if (gpu.lanes > 0) {
    return laneWeightPartsLength(gpu, { k: s.k, ckk, positions: weightInner(s) }, { ...o, target: laneTarget(o) });
  }
  return partsLength(weightPlan(gpu, s, o), s.k, ckk + (o.bias ? 1 : 0));
}

/**
 * How the weight gradient's split-K partial sums are laid out on this adapter's tiled kernels (rows K,
 * columns C·KH·KW and the bias gradient's), for the planner to sum later; null when dW does not split
 * or the adapter runs the lane kernels (conv2d.ts conv2dBackwardWeights `unsummed`).
 */
export function weightPartsLayout(gpu: Gpu, s: Conv2dShape, o: { bias: boolean }): SplitLayout | null {
  if (gpu.lanes > 0) return null;
  const p = weightPlan(gpu, s, o);
  const ckk = s.c * s.kh * s.kw;
  if (p.splits < 2) return null;
  return { splits: p.splits, rows: s.k, cols: ckk + (o.bias ? 1 : 0), sums: o.bias ? 'column' : 'none' };
}

/** The 2×2, stride-2 windows of an OH×OW plane, valid ones only: ⌊OH/2⌋·⌊OW/2⌋ (lib/conv_out_pool.wgsl). */
export const poolWindows = (g: { oh: number; ow: number }): number => Math.floor(g.oh / 2) * Math.floor(g.ow / 2);

/**
 * Whether this adapter can run `s`'s forward with a 2×2, stride-2 max pooling of valid windows in its
 * epilogue (an odd OH or OW leaves its last row or column to y alone): at least one window, one pass
 * (the tiled kernels' plan not split), lane tiles of whole windows (4 or 8 columns a lane).
 */
export function forwardPools(gpu: Gpu, s: Conv2dShape): boolean {
  const g = conv2dGeometry(s);
  if (poolWindows(g) === 0) return false;
  if (gpu.lanes > 0) return laneTile(gpu.lanes, s.k, s.n * g.oh * g.ow).cols % 4 === 0;
  return forwardPlan(gpu, s, {}).splits === 1;
}
