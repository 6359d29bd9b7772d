// Tiles of the subgroup-lane GEMM kernels (shaders/lib/lanes.wgsl), which CPU adapters run instead
// of the tiled GPU kernels (Gpu.lanes): matmul_lanes.wgsl and conv2d_*_lanes.wgsl.
import { ceilDiv } from '../gpu/runtime.ts';
import { MAX_COLS, MAX_LANES, MAX_ROW_GROUPS } from '../gpu/lane-step.ts';

/**
 * The tile for a rows×cols GEMM: ROW_GROUPS·lanes rows by COLS·lanes columns, at most 8 × 8 groups
 * of lanes (64 rows × 64 columns, 512 accumulators a lane, on 8 lanes), narrowed where the GEMM is
 * narrower so that a first conv layer's 9 weight-gradient columns do not fill a 64-wide tile. The
 * widest tile loads the fewest operands a multiply-add, what a step costs on lavapipe; its step is
 * written out (src/gpu/lane-step.ts), so no tile is too large for Mesa to unroll.
 */
export function laneTile(lanes: number, rows: number, cols: number): { rowGroups: number; cols: number } {
  if (lanes > MAX_LANES) throw new Error(`the lane kernels run at most ${MAX_LANES} lanes, not ${lanes}`);
  return { rowGroups: Math.min(MAX_ROW_GROUPS, ceilDiv(rows, lanes)), cols: Math.min(MAX_COLS, ceilDiv(cols, lanes)) };
}

/** The lane kernels' override constants for that tile. */
export function laneConstants(lanes: number, t: { rowGroups: number; cols: number }): Record<string, number> {
  return { LANES: lanes, ROW_GROUPS: t.rowGroups, COLS: t.cols };
}
