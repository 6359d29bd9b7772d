// Conv2d backward to the weights and the bias, deterministic (fixed summation order, no atomics).
// dL/dw[k,c,ky,kx] = Σ_{n,oy,ox} dy[n,k,oy,ox] · x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft]
// dL/db[k] = Σ_{n,oy,ox} dy[n,k,oy,ox]
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: dy [N,K,OH,OW], x [N,C,H,W], dw [K,C,KH,KW], db [K]; both overwritten.
//
// main: implicit GEMM dw = dy · im2col(x)ᵀ, lib/gemm.wgsl's (tile GEMM_BM × GEMM_BN, register blocks:
//   src/ops/gemm.ts). Rows: out-channels k; columns: r = (c·KH + ky)·KW + kx; inner: positions
//   p = (n·CH + oy)·CW + ox of the CH×CW part of each output lib/conv.wgsl conv_cover says (all of OH×OW
//   unless dY is 0 past it). With GEMM_SUMS 1 the workgroups of column tile 0 also sum their dy rows
//   as they pass through workgroup memory: db, the GEMM's extra column C·KH·KW, at no extra pass.
//   Both fetches (order 0) give thread li the position p = k0 + li % 16 (consecutive threads,
//   consecutive positions), decoded once a step, and rows / columns li / 16 + (T/16)·j; a column's
//   tap comes from the table `taps`, decoded once per workgroup (by its threads in turn).
//   Bindings: 0 params (P: lib/conv.wgsl), 1 dy, 2 x, 3 dw, 4 db (any buffer without GEMM_SUMS).
//   Dispatch: grid(rowTiles · colTiles) workgroups of GEMM_TX × GEMM_TY threads, rowTiles =
//   ceil(K/BM), colTiles = ceil(C·KH·KW/BN); tile t = wg.x + wg.y·nwg.x is row tile t / colTiles,
//   column tile t % colTiles.
// main_split: split-K, for the weight gradient is a few tiles over a long inner dimension (N·OH·OW,
//   200k at batch 256 on 28×28): workgroup z sums only positions [z·chunk, (z+1)·chunk) into its
//   partial tile parts[z][K][C·KH·KW (+1: db)]. Bindings: 0 params, 1 dy, 2 x, 3 parts.
//   Dispatch: (grid(rowTiles · colTiles), splits).
// reduce_splits (lib/gemm.wgsl): dw (and db) = Σ_z parts[z] in a fixed order. Bindings: 0 params,
//   1 parts, 2 unused, 3 dw, 4 db. Also the reduction of the lane kernel's partials (the same layout).

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw_db: array<f32>;
@group(0) @binding(3) var<storage, read_write> gemm_parts_out: array<f32>;
@group(0) @binding(1) var<storage, read> gemm_parts_in: array<f32>;

// An out-of-range tap: its input row is never inside the image.
const NO_TAP = 1048576;

// For the tile's BN columns r: (c·H·W + ky·W + kx, ky, kx), decoded once.
var<workgroup> taps: array<vec4<i32>, GEMM_BN>;
var<private> dw_row0: u32;

fn gemm_fetch(k0: u32, k_end: u32, li: u32) {
  let ohw = P.oh * P.ow;
  let cover = conv_cover();
  let p = k0 + li % GEMM_BK;
  let ok = !GEMM_CHECKED || p < k_end;
  let pn = p / (cover.x * cover.y);
  let pq = p % (cover.x * cover.y);
  let oy = pq / cover.y;
  let ox = pq % cover.y;
  let dybase = pn * P.k * ohw + oy * P.ow + ox;
  let iy0 = i32(oy * P.sh) - i32(P.pad_top);
  let ix0 = i32(ox * P.sw) - i32(P.pad_left);
  let xbase = i32(pn * P.c * P.h * P.w) + iy0 * i32(P.w) + ix0;
  for (var j = 0u; j < GEMM_LA; j++) {
    let m = dw_row0 + gemm_a_coord(j, li).y;
    var v = 0.0;
    if (ok && (!GEMM_CHECKED || m < P.k)) { v = dy[dybase + m * ohw]; }
    gemm_pa[j] = v;
  }
  for (var j = 0u; j < GEMM_LB; j++) {
    let tap = taps[gemm_b_coord(j, li).y];
    let iy = iy0 + tap.y;
    let ix = ix0 + tap.z;
    var v = 0.0;
    if (ok && iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w)) { v = x[u32(xbase + tap.x)]; }
    gemm_pb[j] = v;
  }
}

fn gemm_out_dims() -> vec2u {
  return vec2u(P.k, P.c * P.kh * P.kw + select(0u, 1u, GEMM_SUMS == 1u));
}

fn gemm_store(row: u32, col: u32, v: f32) {
  let ckk = P.c * P.kh * P.kw;
  if (col < ckk) {
    dw[row * ckk + col] = v;
  } else if (GEMM_SUMS == 1u) {
    dw_db[row] = v;
  }
}

fn gemm_store4(row: u32, col: u32, v: vec4<f32>, count: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (i < count) { gemm_store(row, col + i, v[i]); }
  }
}

/** The tile of workgroup wg, its columns' taps decoded into `taps` (read after gemm_run's first barrier). */
fn tile_of(wg: vec3u, nwg: vec3u, li: u32) -> GemmTile {
  let tile = wg.x + wg.y * nwg.x;
  let khw = P.kh * P.kw;
  let ckk = P.c * khw;
  dw_row0 = (tile / P.col_tiles) * GEMM_BM;
  let col0 = (tile % P.col_tiles) * GEMM_BN;
  // Column e's tap by thread e % T (a tile may have fewer threads than columns). The trip count is an
  // override expression, so Tint adds no loop guard (test/cost.test.ts).
  for (var i = 0u; i < (GEMM_BN + GEMM_T - 1u) / GEMM_T; i++) {
    let e = li + i * GEMM_T;
    if (e >= GEMM_BN) { break; }
    let rc = col0 + e;
    let t = rc % khw;
    let ky = i32(t / P.kw);
    let kx = i32(t % P.kw);
    let tap = vec4(i32((rc / khw) * P.h * P.w) + ky * i32(P.w) + kx, ky, kx, 0);
    taps[e] = select(vec4(0, NO_TAP, 0, 0), tap, rc < ckk);
  }
  return GemmTile(dw_row0, col0, P.k, ckk, 0u);
}

fn has_tile(wg: vec3u, nwg: vec3u) -> bool {
  return wg.x + wg.y * nwg.x < P.col_tiles * ((P.k + GEMM_BM - 1u) / GEMM_BM);
}

/** The positions summed: N·CH·CW of the part of each output lib/conv.wgsl conv_cover says (dY is 0 past it). */
fn conv_positions() -> u32 {
  let cover = conv_cover();
  return P.n * cover.x * cover.y;
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  if (!has_tile(wg, nwg)) { return; }
  let t = tile_of(wg, nwg, li);
  workgroupBarrier();
  gemm_run(t, 0u, conv_positions(), lid, li);
  gemm_emit_store(t, lid, li);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main_split(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  if (!has_tile(wg, nwg)) { return; }
  let t = tile_of(wg, nwg, li);
  workgroupBarrier();
  let k0 = wg.z * P.chunk;
  gemm_run(t, k0, min(conv_positions(), k0 + P.chunk), lid, li);
  let dims = gemm_out_dims();
  gemm_emit_parts(t, lid, li, wg.z * dims.x * dims.y, dims.y);
}
