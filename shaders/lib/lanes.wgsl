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
//     (8 + 8 gathers for 512 with 8 row groups and 8 columns), where the 8×8 tiled step costs 16
//     for 64.
// Accumulator acc[i·COLS + j] is row i, column j; ROW_GROUPS ≤ 8, COLS ≤ 8, LANES ≤ 8.
// A kernel's K loop takes LANE_DEPTH inner indices an iteration: slice d of the operands in
// ag[8·d + g] and bv[8·d + j] (zeros past the end of K), then lanes_step, which src/gpu/lane-step.ts
// writes out statement by statement (appended to this file by the loader) and which says why.
// What a step costs on lavapipe (Mesa 25.0, its JIT's code read with GALLIVM_DEBUG=asm; bench/RESULTS.md,
// fifteenth session): its loads, each lane's a bounds-checked scalar load, the same whether the lanes
// read one address, neighbouring ones or scattered ones (a uniform index takes no faster path inside
// a loop); and its multiply-adds, each a multiply and an add (no FMA instruction), the accumulator
// loaded, blended with the loop's lane mask (every value a loop carries is masked) and stored once a
// step. The shuffles cost next to nothing. Hence wide tiles, for the most multiply-adds a load, and
// deep steps, for the fewest masked stores a multiply-add.
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

// The conv kernels' inner index r = (channel·KH + ky)·KW + kx advanced by one: true when it moves on
// to the next channel.
fn lanes_next_tap(ky: ptr<function, u32>, kx: ptr<function, u32>, kh: u32, kw: u32) -> bool {
  *kx += 1u;
  if (*kx < kw) { return false; }
  *kx = 0u;
  *ky += 1u;
  if (*ky < kh) { return false; }
  *ky = 0u;
  return true;
}
