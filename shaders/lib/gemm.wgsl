// The register-tiled GEMM core of the tiled kernels (matmul.wgsl and the three conv2d passes):
// C[M,N] = A[M,K]·B[K,N] over BK-deep slices staged in workgroup memory, with optionally the row
// sums of A (GEMM_SUMS 1: a conv bias gradient, A = dY) or the column sums of B (GEMM_SUMS 2: a
// dense bias gradient, B = dZ) from the same slices. Tile constants come from src/ops/gemm.ts.
//
// Tile: GEMM_BM × GEMM_BN outputs per workgroup of GEMM_TX × GEMM_TY threads. Thread (tx, ty) owns
// GEMM_RB × GEMM_CB blocks of 4×4 contiguous outputs, block (i, j) at tile rows 4·ty + 4·GEMM_TY·i
// and columns 4·tx + 4·GEMM_TX·j: a 4×4, 4×8, 8×4 or 8×8 register tile, held in mat4x4 accumulators
// (block[r] is the vec4 of its row r) that are indexed only by constants. A's slice [BK][BM] and
// B's [BK][BN] are stored as vec4 rows (gemm_ab), so a thread reads its 4 rows (columns) of step kk
// with one vec4 load per block: (RB + CB) vec4 loads for 16·RB·CB FMAs (lib/rank1.wgsl's update, prepended
// before this file by the loader).
// K loop (gemm_run): the slice fetched during the previous step goes from registers to workgroup
// memory, the next slice's global loads are issued (gemm_fetch, defined by the including shader, into
// gemm_pa / gemm_pb), then the current slice is multiplied, so global latency hides behind the FMAs.
// Every loop bound here is a constant or an override expression: Tint adds no loop guard (the K loop
// has the only one; test/cost.test.ts checks the SPIR-V), and the accumulators stay in registers. (An
// including shader's own loops outside the K loop, a gathering conv's staging, may have others.)
// GEMM_CHECKED false: the shapes divide the tile (rows by BM, columns by BN, every split's K range by
// BK), so no bounds are checked; src/ops/gemm.ts picks it only then.
//
// The including shader defines: its uniform P with a `splits` field; gemm_fetch(k0, k_end, li);
// gemm_store(row, col, v) (the epilogue: bias, activation, layout, accumulation; row == M or col == N
// is the sums' row or column) and gemm_store4(row, col, v, count) (the first `count` of 4 consecutive
// columns, so that a column's decode is shared); gemm_out_dims() (the rows and columns a partial-sums
// tile holds, sums included); gemm_parts_out (written by its split-K entry) and gemm_parts_in (read by
// reduce_splits).

override GEMM_BM: u32 = 64u;
override GEMM_BN: u32 = 64u;
// 4×4 blocks per thread down the rows and across the columns: 1 or 2.
override GEMM_RB: u32 = 1u;
override GEMM_CB: u32 = 1u;
override GEMM_TX: u32 = GEMM_BN / (4u * GEMM_CB);
override GEMM_TY: u32 = GEMM_BM / (4u * GEMM_RB);
override GEMM_T: u32 = GEMM_TX * GEMM_TY;
override GEMM_CHECKED: bool = true;
override GEMM_SUMS: u32 = 0u;
// Which slice element a thread fetches as its j-th A (B) value, (k, x) with x its row m (column n):
//   0 inner fastest: e = li + j·T, k = e % BK, x = e / BK (a row-major A, Bᵀ, conv weights)
//   1 outer fastest: e = li + j·T, x = e % X, k = e / X (Aᵀ, a row-major B)
//   2 column runs (B only): the conv gathers, which decode a thread's columns once and step each one's k by one.
//     A thread fetches GEMM_RUNS columns x = li % X + r·T (r < GEMM_RUNS), a run of GEMM_RUN_LEN
//     consecutive k = (li / X)·GEMM_RUN_LEN + i from each, as j = r·GEMM_RUN_LEN + i: one column where
//     T is a multiple of X; X / T columns of all BK where X is a multiple of T (src/ops/gemm.ts allows 2).
override GEMM_A_ORDER: u32 = 0u;
override GEMM_B_ORDER: u32 = 1u;
// Values each thread fetches per step: at most 32 (src/ops/gemm.ts).
override GEMM_LA: u32 = GEMM_BK * GEMM_BM / GEMM_T;
override GEMM_LB: u32 = GEMM_BK * GEMM_BN / GEMM_T;
// Fetch order 2: columns a thread fetches, and the k of each it fetches, a step.
override GEMM_RUNS: u32 = max(1u, GEMM_BN / GEMM_T);
override GEMM_RUN_LEN: u32 = GEMM_LB / GEMM_RUNS;
const GEMM_BK = 16u;
// The inner indices a step multiplies: BK, or the whole inner dimension where it is shorter than BK (one
// step: a first conv's 9 taps, a dense layer over 10 classes), so the zeros staged past it cost nothing.
override GEMM_KK: u32 = GEMM_BK;

// The staged slices, A's then B's, in one array: a paired module's two GEMMs (src/gpu/wgsl-pair.ts)
// share it whole, sized for the larger tile, whichever way round their rows and columns fall.
override GEMM_B0: u32 = GEMM_BK * GEMM_BM / 4u;
var<workgroup> gemm_ab: array<vec4<f32>, GEMM_BK * (GEMM_BM + GEMM_BN) / 4u>;

struct GemmAcc { c00: mat4x4<f32>, c01: mat4x4<f32>, c10: mat4x4<f32>, c11: mat4x4<f32> }
var<private> gemm_acc: GemmAcc;
var<private> gemm_pa: array<f32, 32>;
var<private> gemm_pb: array<f32, 32>;
var<private> gemm_sum: f32;
var<private> gemm_sum_on: bool;

/** A workgroup's output tile: origin and bounds in GEMM coordinates; its rows land at row_off + row. */
struct GemmTile { row0: u32, col0: u32, rows: u32, cols: u32, row_off: u32 }

/** (k, x) of the j-th value this thread fetches of a slice whose other side is x_len long. */
fn gemm_coord(order: u32, j: u32, li: u32, x_len: u32) -> vec2u {
  if (order == 2u) {
    let r = j / GEMM_RUN_LEN;
    return vec2u((li / x_len) * GEMM_RUN_LEN + j - r * GEMM_RUN_LEN, li % x_len + r * GEMM_T);
  }
  let e = li + j * GEMM_T;
  if (order == 1u) { return vec2u(e / x_len, e % x_len); }
  return vec2u(e % GEMM_BK, e / GEMM_BK);
}

fn gemm_a_coord(j: u32, li: u32) -> vec2u { return gemm_coord(GEMM_A_ORDER, j, li, GEMM_BM); }
fn gemm_b_coord(j: u32, li: u32) -> vec2u { return gemm_coord(GEMM_B_ORDER, j, li, GEMM_BN); }

/** The fetched slice, registers to workgroup memory. */
fn gemm_stage(li: u32) {
  for (var j = 0u; j < GEMM_LA; j++) {
    let c = gemm_a_coord(j, li);
    gemm_ab[(c.x * GEMM_BM + c.y) / 4u][c.y % 4u] = gemm_pa[j];
  }
  for (var j = 0u; j < GEMM_LB; j++) {
    let c = gemm_b_coord(j, li);
    gemm_ab[GEMM_B0 + (c.x * GEMM_BN + c.y) / 4u][c.y % 4u] = gemm_pb[j];
  }
}

/** The staged slice into this thread's blocks (and its row or column sum). */
fn gemm_compute(tx: u32, ty: u32, li: u32) {
  for (var kk = 0u; kk < GEMM_KK; kk++) {
    let ra = kk * (GEMM_BM / 4u);
    let rb = kk * (GEMM_BN / 4u);
    let a0 = gemm_ab[ra + ty];
    let b0 = gemm_ab[GEMM_B0 + rb + tx];
    gemm_acc.c00 = rank1(gemm_acc.c00, a0, b0);
    if (GEMM_CB == 2u) {
      let b1 = gemm_ab[GEMM_B0 + rb + tx + GEMM_TX];
      gemm_acc.c01 = rank1(gemm_acc.c01, a0, b1);
      if (GEMM_RB == 2u) {
        let a1 = gemm_ab[ra + ty + GEMM_TY];
        gemm_acc.c10 = rank1(gemm_acc.c10, a1, b0);
        gemm_acc.c11 = rank1(gemm_acc.c11, a1, b1);
      }
    } else if (GEMM_RB == 2u) {
      let a1 = gemm_ab[ra + ty + GEMM_TY];
      gemm_acc.c10 = rank1(gemm_acc.c10, a1, b0);
    }
  }
  if (!gemm_sum_on) { return; }
  // One thread per tile row (column): src/ops/gemm.ts gives such tiles at least that many threads.
  if (GEMM_SUMS == 1u && li < GEMM_BM) {
    for (var kk = 0u; kk < GEMM_KK; kk++) { gemm_sum += gemm_ab[(kk * GEMM_BM + li) / 4u][li % 4u]; }
  }
  if (GEMM_SUMS == 2u && li < GEMM_BN) {
    for (var kk = 0u; kk < GEMM_KK; kk++) { gemm_sum += gemm_ab[GEMM_B0 + (kk * GEMM_BN + li) / 4u][li % 4u]; }
  }
}

/** This workgroup's tile over inner indices [k_begin, k_end): into gemm_acc (and gemm_sum). */
fn gemm_run(t: GemmTile, k_begin: u32, k_end: u32, lid: vec3u, li: u32) {
  gemm_acc = GemmAcc();
  gemm_sum = 0.0;
  gemm_sum_on = (GEMM_SUMS == 1u && t.col0 == 0u) || (GEMM_SUMS == 2u && t.row0 == 0u);
  var steps = 0u;
  if (k_end > k_begin) { steps = (k_end - k_begin + GEMM_BK - 1u) / GEMM_BK; }
  if (steps == 0u) { return; }
  gemm_fetch(k_begin, k_end, li);
  for (var s = 0u; s < steps; s++) {
    gemm_stage(li);
    workgroupBarrier();
    if (s + 1u < steps) { gemm_fetch(k_begin + (s + 1u) * GEMM_BK, k_end, li); }
    gemm_compute(lid.x, lid.y, li);
    workgroupBarrier();
  }
}

fn gemm_in(t: GemmTile, row: u32, col: u32) -> bool {
  return !GEMM_CHECKED || (row < t.rows && col < t.cols);
}

fn gemm_store_row(t: GemmTile, row: u32, col: u32, v: vec4<f32>) {
  if (GEMM_CHECKED && (row >= t.rows || col >= t.cols)) { return; }
  var count = 4u;
  if (GEMM_CHECKED) { count = min(4u, t.cols - col); }
  gemm_store4(t.row_off + row, col, v, count);
}

fn gemm_store_block(t: GemmTile, b: mat4x4<f32>, row: u32, col: u32) {
  gemm_store_row(t, row, col, b[0]);
  gemm_store_row(t, row + 1u, col, b[1]);
  gemm_store_row(t, row + 2u, col, b[2]);
  gemm_store_row(t, row + 3u, col, b[3]);
}

/** This thread's outputs through the epilogue (gemm_store); the sums at column N (row M). */
fn gemm_emit_store(t: GemmTile, lid: vec3u, li: u32) {
  let r = t.row0 + 4u * lid.y;
  let c = t.col0 + 4u * lid.x;
  gemm_store_block(t, gemm_acc.c00, r, c);
  if (GEMM_CB == 2u) { gemm_store_block(t, gemm_acc.c01, r, c + 4u * GEMM_TX); }
  if (GEMM_RB == 2u) { gemm_store_block(t, gemm_acc.c10, r + 4u * GEMM_TY, c); }
  if (GEMM_RB == 2u && GEMM_CB == 2u) { gemm_store_block(t, gemm_acc.c11, r + 4u * GEMM_TY, c + 4u * GEMM_TX); }
  if (gemm_sum_on && GEMM_SUMS == 1u && li < GEMM_BM && t.row0 + li < t.rows) {
    gemm_store(t.row_off + t.row0 + li, t.cols, gemm_sum);
  }
  if (gemm_sum_on && GEMM_SUMS == 2u && li < GEMM_BN && t.col0 + li < t.cols) {
    gemm_store(t.row_off + t.rows, t.col0 + li, gemm_sum);
  }
}

fn gemm_part_row(t: GemmTile, base: u32, stride: u32, row: u32, col: u32, v: vec4<f32>) {
  let i = base + (t.row_off + row) * stride + col;
  if (gemm_in(t, row, col)) { gemm_parts_out[i] = v.x; }
  if (gemm_in(t, row, col + 1u)) { gemm_parts_out[i + 1u] = v.y; }
  if (gemm_in(t, row, col + 2u)) { gemm_parts_out[i + 2u] = v.z; }
  if (gemm_in(t, row, col + 3u)) { gemm_parts_out[i + 3u] = v.w; }
}

fn gemm_part_block(t: GemmTile, base: u32, stride: u32, b: mat4x4<f32>, row: u32, col: u32) {
  gemm_part_row(t, base, stride, row, col, b[0]);
  gemm_part_row(t, base, stride, row + 1u, col, b[1]);
  gemm_part_row(t, base, stride, row + 2u, col, b[2]);
  gemm_part_row(t, base, stride, row + 3u, col, b[3]);
}

/**
 * Split-K: this thread's outputs into its split's partial tile, gemm_parts_out[base + row·stride +
 * col] (row counted from row_off), every in-range value written (an empty K range writes zeros).
 */
fn gemm_emit_parts(t: GemmTile, lid: vec3u, li: u32, base: u32, stride: u32) {
  let r = t.row0 + 4u * lid.y;
  let c = t.col0 + 4u * lid.x;
  gemm_part_block(t, base, stride, gemm_acc.c00, r, c);
  if (GEMM_CB == 2u) { gemm_part_block(t, base, stride, gemm_acc.c01, r, c + 4u * GEMM_TX); }
  if (GEMM_RB == 2u) { gemm_part_block(t, base, stride, gemm_acc.c10, r + 4u * GEMM_TY, c); }
  if (GEMM_RB == 2u && GEMM_CB == 2u) {
    gemm_part_block(t, base, stride, gemm_acc.c11, r + 4u * GEMM_TY, c + 4u * GEMM_TX);
  }
  if (gemm_sum_on && GEMM_SUMS == 1u && li < GEMM_BM && t.row0 + li < t.rows) {
    gemm_parts_out[base + (t.row_off + t.row0 + li) * stride + t.cols] = gemm_sum;
  }
  if (gemm_sum_on && GEMM_SUMS == 2u && li < GEMM_BN && t.col0 + li < t.cols) {
    gemm_parts_out[base + (t.row_off + t.rows) * stride + t.col0 + li] = gemm_sum;
  }
}

// reduce_splits: out = epilogue(Σ_z parts[z]) over the `P.splits` partial tiles of
// gemm_out_dims() values each, deterministic: thread (x, y) of a workgroup sums, in z order, its
// own contiguous range of ⌈splits / RED_Y⌉ partials of output x, then the RED_Y sums of each output
// meet in a fixed tree in workgroup memory. No thread walks more than ⌈splits / RED_Y⌉ values.
// Dispatch: grid(⌈len / (256 / RED_Y)⌉) workgroups of (256 / RED_Y) × RED_Y threads.
override GEMM_RED_Y: u32 = 1u;
var<workgroup> gemm_red: array<f32, 256>;

@compute @workgroup_size(256u / GEMM_RED_Y, GEMM_RED_Y)
fn reduce_splits(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  let dims = gemm_out_dims();
  let len = dims.x * dims.y;
  let rx = 256u / GEMM_RED_Y;
  let i = (wg.x + wg.y * nwg.x) * rx + lid.x;
  let per = (P.splits + GEMM_RED_Y - 1u) / GEMM_RED_Y;
  let z0 = min(P.splits, lid.y * per);
  let z1 = min(P.splits, z0 + per);
  var s = 0.0;
  if (i < len) {
    for (var z = z0; z < z1; z++) { s += gemm_parts_in[z * len + i]; }
  }
  if (GEMM_RED_Y > 1u) {
    gemm_red[lid.y * rx + lid.x] = s;
    workgroupBarrier();
    for (var half = GEMM_RED_Y / 2u; half > 0u; half /= 2u) {
      if (lid.y < half) { gemm_red[lid.y * rx + lid.x] += gemm_red[(lid.y + half) * rx + lid.x]; }
      workgroupBarrier();
    }
    s = gemm_red[lid.x];
  }
  if (lid.y == 0u && i < len) { gemm_store(i / dims.y, i % dims.y, s); }
}
