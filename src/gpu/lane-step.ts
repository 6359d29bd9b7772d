// The inner step of the subgroup-lane GEMM kernels (shaders/lib/lanes.wgsl), written out statement by
// statement for the pipeline's tile rather than as loops for Mesa to unroll. Lavapipe's JIT stores
// every value a loop carries through a blend with the loop's lane mask, so each accumulator update
// costs a load, a blend and a store besides its multiply and add; and Mesa leaves a step of more than
// about 128 multiply-adds rolled, its accumulators then indexed at run time (3× to 6× slower).
// Written out, the step has no loop to unroll whatever the tile, so tiles may hold up to 512
// accumulators (64 rows × 64 columns on 8 lanes: half the loads a multiply-add of the 16 × 64 that
// unrolling allowed), and each update takes LANE_DEPTH inner indices at once:
// acc = fma(a1, b1, fma(a0, b0, acc)), one masked store for two multiply-adds. The sums keep their
// order (index r before r + 1). bench/RESULTS.md (fifteenth session) has the measurements.
// The text depends on the tile, so each tile is its own module (shaders.ts moduleName): a kernel's
// small tiles compile small.

/** The most row groups, lanes and columns a lane tile has (lib/lanes.wgsl; src/ops/lanes.ts). */
export const MAX_ROW_GROUPS = 8;
export const MAX_LANES = 8;
export const MAX_COLS = 8;
/** Inner indices a step: the operands' arrays hold LANE_DEPTH slices of 8, slice d at [8·d, 8·d + 8). */
export const LANE_DEPTH = 2;

/** A lane kernel's tile: its pipeline constants LANES, ROW_GROUPS and COLS. */
export interface LaneStepTile {
  lanes: number;
  rowGroups: number;
  cols: number;
}

/** Row i = g·lanes + l's update, from lane l's value of row group g in each slice. */
function rowUpdate(t: LaneStepTile, g: number, l: number): string[] {
  const slices = Array.from({ length: LANE_DEPTH }, (_, d) => d);
  const lines = slices.map((d) => `  let a${d}_${g}_${l} = subgroupShuffle((*ag)[${8 * d + g}], ${l}u);`);
  for (let j = 0; j < t.cols; j++) {
    const at = `(*acc)[${(g * t.lanes + l) * t.cols + j}]`;
    lines.push(`  ${at} = ${slices.reduce((e, d) => `fma(a${d}_${g}_${l}, (*bv)[${8 * d + j}], ${e})`, at)};`);
  }
  return lines;
}

/**
 * The WGSL of LANE_ACC, LANE_DEPTH and `lanes_step(acc, ag, bv)` for tile `t`: LANE_DEPTH inner indices
 * into the accumulators, acc[i·COLS + j] += Σ_d row i's value of slice d · bv[8·d + j], row i = g·LANES + l
 * taken from lane l's ag[8·d + g] (lib/lanes.wgsl's layout).
 */
export function laneStep(t: LaneStepTile): string {
  if (t.lanes > MAX_LANES || t.rowGroups > MAX_ROW_GROUPS || t.cols > MAX_COLS)
    throw new Error(
      `a lane tile has at most ${MAX_ROW_GROUPS} row groups of ${MAX_LANES} lanes by ${MAX_COLS} columns`,
    );
  const lines = [
    `const LANE_ACC: u32 = ${t.rowGroups * t.lanes * t.cols}u;`,
    `const LANE_DEPTH: u32 = ${LANE_DEPTH}u;`,
    'fn lanes_step(acc: ptr<function, array<f32, LANE_ACC>>, ag: ptr<function, array<f32, 8 * LANE_DEPTH>>,',
    '              bv: ptr<function, array<f32, 8 * LANE_DEPTH>>) {',
  ];
  for (let g = 0; g < t.rowGroups; g++) {
    for (let l = 0; l < t.lanes; l++) lines.push(...rowUpdate(t, g, l));
  }
  lines.push('}');
  return lines.join('\n');
}
