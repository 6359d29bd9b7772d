// Tiles of the subgroup-lane GEMM kernels (shaders/lib/lanes.wgsl), which CPU adapters run instead
// of the tiled GPU kernels (Gpu.lanes): matmul_lanes.wgsl and conv2d_*_lanes.wgsl.
import { ceilDiv } from '../gpu/runtime.ts';

/**
 * The tile for a rows×cols GEMM: ROW_GROUPS·lanes rows by COLS·lanes columns, at most 128
 * accumulators per lane (2×8 groups of 8 lanes by default), narrowed where the GEMM is narrower so
 * that a first conv layer's 9 weight-gradient columns do not fill a 64-wide tile.
 */
export function laneTile(lanes: number, rows: number, cols: number): { rowGroups: number; cols: number } {
  // At most 4 row groups: 8 groups of one column each measured 6–9× slower on lavapipe than 2×4.
  let rg = Math.min(4, ceilDiv(rows, lanes));
  const cv = Math.min(8, ceilDiv(cols, lanes));
  // More than 16 rows only with at most 2 columns a lane: Mesa leaves a step of 32 rows × 4 columns
  // rolled (5.6× slower on lavapipe than 16 × 8, lib/lanes.wgsl).
  if (cv > 2) rg = Math.min(rg, Math.max(1, Math.floor(16 / lanes)));
  // 2×8 (16 rows × 64 columns, 128 accumulators) measured 15–25% faster than 2×4 on lavapipe: 10
  // gathers feed 128 multiply-adds instead of 6 feeding 64.
  while (rg * cv * lanes > 128) rg = ceilDiv(rg, 2);
  return { rowGroups: rg, cols: cv };
}

/** The lane kernels' override constants for that tile. */
export function laneConstants(lanes: number, t: { rowGroups: number; cols: number }): Record<string, number> {
  return { LANES: lanes, ROW_GROUPS: t.rowGroups, COLS: t.cols };
}
