// Which kernel a conv's weight gradient takes on this adapter's tiled kernels, and the partial sums it
// leaves: narrow (a conv of few taps: conv2d_narrow.ts), Winograd's F(3×3, 2×2) (conv2d_winograd.ts), or the
// direct GEMM (conv2d.ts); the lane kernels' (conv2d_lanes.ts). conv2d.ts launches them.
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { laneWeightPartsLength } from './conv2d_lanes.ts';
import {
  laneTarget,
  weightInner,
  weightPlan,
  weightWinogradPlan,
  type Conv2dShape,
  type ConvOptions,
} from './conv2d_plan.ts';
import { MAX_PARTS, MAX_SPLITS, reduceSplits } from './gemm.ts';
import type { SplitLayout } from './grad-reduce.ts';

/** Taps (C·KH·KW) a narrow weight gradient holds at most: 12 columns a channel with the bias's. */
export const NARROW_TAPS = 11;

/** The narrow weight gradient's splits of the positions, `chunk` each, over `blocks` of 16 out-channels. */
export interface NarrowWeightPlan {
  narrow: true;
  splits: number;
  chunk: number;
  blocks: number;
}

/**
 * The weight gradient of a conv of at most NARROW_TAPS taps on the tiled kernels (conv2d_narrow.ts): as many
 * splits as fill the device (2·units workgroups), each lane taking a position at least; null otherwise,
 * or where no partial-sums buffer can be given.
 */
export function weightNarrowPlan(
  gpu: Gpu,
  s: Conv2dShape,
  o: ConvOptions & { bias?: boolean },
): NarrowWeightPlan | null {
  const taps = s.c * s.kh * s.kw;
  if (gpu.lanes > 0 || taps > NARROW_TAPS || o.split === false || o.narrow === false) return null;
  const positions = weightInner(s);
  const blocks = ceilDiv(s.k, 16);
  const most = Math.min(MAX_SPLITS, Math.floor(MAX_PARTS / (s.k * (taps + 1))), Math.floor(positions / 32));
  const want = Math.max(1, Math.min(most, ceilDiv(o.target ?? 2 * gpu.units, blocks)));
  const chunk = ceilDiv(positions, want);
  return { narrow: true, splits: ceilDiv(positions, chunk), chunk, blocks };
}

/** The weight gradient's split count on this adapter's tiled kernels: narrow, Winograd's or the direct GEMM's. */
const tiledWeightSplits = (gpu: Gpu, s: Conv2dShape, o: ConvOptions & { bias?: boolean }): number =>
  (weightNarrowPlan(gpu, s, o) ?? weightWinogradPlan(gpu, s, o) ?? weightPlan(gpu, s, o)).splits;

/**
 * Floats of the partial sums conv2dBackwardWeights needs (io.parts) for this shape, with or without
 * a bias gradient, on this adapter: splits × K·C·KH·KW (+ K), or 0 when the sum is not split.
 */
export function weightPartsLength(gpu: Gpu, s: Conv2dShape, o: ConvOptions & { bias?: boolean } = {}): number {
  const ckk = s.c * s.kh * s.kw;
  const lanes = { k: s.k, ckk, positions: weightInner(s) };
  if (gpu.lanes > 0) return laneWeightPartsLength(gpu, lanes, { ...o, target: laneTarget(o) });
  const splits = tiledWeightSplits(gpu, s, o);
  return splits > 1 ? splits * s.k * (ckk + (o.bias ? 1 : 0)) : 0;
}

/**
 * How the weight gradient's split-K partial sums are laid out on this adapter's tiled kernels (rows K,
 * columns C·KH·KW and the bias gradient's), for the planner to sum later; null when dW does not split
 * or the adapter runs the lane kernels (conv2d.ts conv2dBackwardWeights `unsummed`).
 */
export function weightPartsLayout(gpu: Gpu, s: Conv2dShape, o: { bias: boolean }): SplitLayout | null {
  if (gpu.lanes > 0) return null;
  const splits = tiledWeightSplits(gpu, s, o);
  const ckk = s.c * s.kh * s.kw;
  if (splits < 2) return null;
  return { splits, rows: s.k, cols: ckk + (o.bias ? 1 : 0), sums: o.bias ? 'column' : 'none' };
}

/** A weight gradient's io: dw (and db), and the partials' buffer where it splits. */
export interface WeightIo {
  dw: BufferRef;
  db?: BufferRef;
  parts?: BufferRef;
}

/**
 * A split weight gradient's pass, then conv2d_backward_weights.wgsl's reduce_splits of its partials into dw
 * and db (the direct GEMM's layout, which the narrow and Winograd passes write too); the pass alone when
 * `unsummed` (the planner sums them).
 */
export function thenWeightReduce(
  gpu: Gpu,
  pass: Dispatch,
  o: { io: WeightIo; params: Uniform; sums: 0 | 1; splits: number; len: number; label: string; unsummed?: boolean },
): Dispatch[] {
  if (o.unsummed) return [pass];
  const bindings = [o.io.parts ?? null, null, o.io.dw, o.io.db ?? gpu.dummy];
  const label = `${o.label} reduce ${o.splits} splits`;
  const reduce = { shader: 'conv2d_backward_weights', params: o.params, constants: { GEMM_SUMS: o.sums } } as const;
  return [pass, reduceSplits(gpu, { ...reduce, bindings, len: o.len, splits: o.splits, label })];
}
