// The inner step shared by the subgroup-lane GEMM kernels (matmul_lanes.wgsl,
// conv2d_*_lanes.wgsl), the variant for CPU adapters. A CPU runs a workgroup as SIMD vectors of
// LANES invocations (lavapipe: 8 per AVX2 vector), and every memory access whose index differs
// between lanes becomes LANES scalar loads, so the GPU kernels' workgroup-memory staging costs a
// CPU more than the arithmetic it feeds.
// Here a workgroup is exactly one subgroup and owns a tile of ROW_GROUPS·LANES rows by
// COLS·LANES columns, with no workgroup memory and no barriers:
//   - lane l owns columns l + LANES·j (j < COLS), neighbouring lanes neighbouring columns;
//   - each inner step, lane l loads the operand of row g·LANES + l (g < ROW_GROUPS), and
//     subgroupShuffle hands every row's value to all lanes (a register broadcast on a CPU);
//   - so a step costs ROW_GROUPS + COLS gathers for ROW_GROUPS·LANES·COLS multiply-adds per lane
//     (2 + 8 gathers for 128 with the default 2 and 8), where the 8×8 tiled step costs 16 for 64.
// Accumulator acc[i·COLS + j] is row i, column j; ROW_GROUPS·LANES·COLS ≤ 128, ROW_GROUPS ≤ 8,
// COLS ≤ 8. Every loop bound is a pipeline constant, so the step unrolls and the arrays are
// indexed by constants only: Mesa unrolls a step of 16 rows × 8 columns or 32 rows × 2, not one of
// 32 rows × 4 (5.6× slower on lavapipe; lanes.ts keeps the tiles inside that).
// What a step costs on lavapipe (Mesa 25.0, its JIT's code read with GALLIVM_DEBUG=asm; bench/RESULTS.md,
// fifteenth session): about a third its loads, each lane's a bounds-checked scalar load, the same
// whether the lanes read one address, neighbouring ones or scattered ones (a uniform index takes no
// faster path inside a loop); about two thirds its multiply-adds, each a load of the accumulator, a
// multiply, an add (no FMA instruction), a blend with the loop's lane mask (every value a loop
// carries is masked) and a store. The shuffles cost next to nothing. Hence tiles as wide as the
// unrolling allows, for the most multiply-adds a load.
// Needs the 'subgroups' feature and subgroups of exactly LANES invocations (lanesFor() and the Gpu
// constructor in src/gpu/runtime.ts check), so that a workgroup of LANES is one subgroup.
enable subgroups;

override LANES: u32 = 8u;
override ROW_GROUPS: u32 = 2u;
override COLS: u32 = 8u;

// Workgroup wg's tile of a GEMM with `rows` rows cut into col_tiles column tiles: tile
// t = wg.x + wg.y·nwg.x is row tile t / col_tiles and column tile t % col_tiles. Returns its first
// row and first column, or first row ≥ rows past the last tile (the grid is rounded up). Uniform
// across the workgroup, as the subgroupShuffle after an early return needs.
fn lanes_origin(wg: vec3u, nwg: vec3u, col_tiles: u32, rows: u32) -> vec2u {
  let tile = wg.x + wg.y * nwg.x;
  let tile_rows = ROW_GROUPS * LANES;
  if (tile >= col_tiles * ((rows + tile_rows - 1u) / tile_rows)) { return vec2u(rows, 0u); }
  return vec2u((tile / col_tiles) * tile_rows, (tile % col_tiles) * (COLS * LANES));
}

fn lanes_step(acc: ptr<function, array<f32, 128>>, ag: ptr<function, array<f32, 8>>, bv: ptr<function, array<f32, 8>>) {
  for (var i = 0u; i < ROW_GROUPS * LANES; i++) {
    let a = subgroupShuffle((*ag)[i / LANES], i % LANES);
    for (var j = 0u; j < COLS; j++) {
      (*acc)[i * COLS + j] = fma(a, (*bv)[j], (*acc)[i * COLS + j]);
    }
  }
}
