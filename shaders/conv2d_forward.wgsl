// Conv2d forward as an implicit GEMM: y = act(W · im2col(x) + b).
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: x [N,C,H,W], w [K,C,KH,KW] (= [K, C·KH·KW] row-major), b [K], y [N,K,OH,OW].
// GEMM rows: out-channels k; columns: positions p = (n·OH + oy)·OW + ox; inner: r = (c·KH + ky)·KW + kx.
//   im2col(x)[r,p] = x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft], 0 outside the input
//   (padTop/padLeft from src/ops/geometry.ts: TF's asymmetric same padding; the rest is implied).
// The GEMM is lib/gemm.wgsl's (tile GEMM_BM × GEMM_BN, register blocks: src/ops/gemm.ts). Fetch
// order: weights 0 (inner fastest, one row's consecutive r per 16 threads); im2col 2 (column runs):
// thread li keeps positions col0 + li % BN + run·T (run < GEMM_RUNS: one, or two where the tile has
// half as many threads as columns), whose window origins it decodes once, and fetches GEMM_RUN_LEN
// consecutive r of each, decoding the first per step and stepping (kx, ky, c) by one after that.
// The input comes through lib/conv_in.wgsl (x read as it is) or lib/conv_in_gather.wgsl (the batch
// gathered from the dataset as it is fetched, and x written for the weight gradient: `main` only).
// Entry points and bindings (uniform P: lib/conv.wgsl):
//   main         0 params, 1 x, 2 w, 3 b (any buffer when !HAS_BIAS), 4 y (overwritten); 5 a residual
//                add's shortcut (module conv2d_forward_add); with the gather, 8–13 as
//                lib/conv_in_gather.wgsl lists.
//                Dispatch grid(rowTiles · colTiles) workgroups of GEMM_TX × GEMM_TY threads,
//                rowTiles = ceil(K/BM), colTiles = ceil(N·OH·OW/BN); tile t = wg.x + wg.y·nwg.x is
//                row tile t / colTiles, column tile t % colTiles.
//   main_split   split-K: workgroup z (wg.z < splits) multiplies r in [z·chunk, (z+1)·chunk) into
//                parts[z][K][N·OH·OW]: 0 params, 1 x, 2 w, 3 parts.
//   reduce_splits  the partials summed in a fixed order, then bias and act (lib/gemm.wgsl):
//                0 params, 1 parts, 2 unused, 3 b, 4 y, 5 the shortcut (module conv2d_forward_add).
// Uses act() from lib/activation.wgsl, the GEMM core from lib/gemm.wgsl and the output layout from
// lib/conv_out.wgsl (plain, each output stored through lib/conv_put.wgsl: module conv2d_forward; or
// lib/conv_put_add.wgsl, the shortcut added before the activation: conv2d_forward_add) or
// lib/conv_out_pool.wgsl (a 2×2 max pooling and dropout in the epilogue: module conv2d_forward_pool, entry
// main only), and the input's lib, prepended by the loader.

override HAS_BIAS: bool = false;

@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> gemm_parts_out: array<f32>;
@group(0) @binding(1) var<storage, read> gemm_parts_in: array<f32>;

// This thread's tile row origin and its im2col columns (one a run): window origin, image offset, in range.
var<private> cv_row0: u32;
var<private> cv_iy0: vec2<i32>;
var<private> cv_ix0: vec2<i32>;
var<private> cv_xbase: vec2<u32>;
var<private> cv_ok: vec2<bool>;

fn gemm_fetch(k0: u32, k_end: u32, li: u32) {
  let khw = P.kh * P.kw;
  let hw = P.h * P.w;
  let inner = P.c * khw;
  for (var j = 0u; j < GEMM_LA; j++) {
    let e = gemm_a_coord(j, li);
    let m = cv_row0 + e.y;
    var v = 0.0;
    if (!GEMM_CHECKED || (m < P.k && k0 + e.x < k_end)) { v = wt[m * inner + k0 + e.x]; }
    gemm_pa[j] = v;
  }
  // r0 decoded once (integer division is slow on every device, scalarized on a CPU), then stepped.
  let r0 = k0 + gemm_b_coord(0u, li).x; // this thread's first k of a step (lib/gemm.wgsl order 2)
  let c0 = r0 / khw;
  let ky0 = (r0 % khw) / P.kw;
  let kx0 = r0 % P.kw;
  for (var run = 0u; run < GEMM_RUNS; run++) {
    var ci = c0;
    var coff = c0 * hw;
    var ky = ky0;
    var kx = kx0;
    for (var j = 0u; j < GEMM_RUN_LEN; j++) {
      let iy = cv_iy0[run] + i32(ky);
      let ix = cv_ix0[run] + i32(kx);
      var v = 0.0;
      let ok = !GEMM_CHECKED || (cv_ok[run] && r0 + j < k_end);
      if (ok && iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w)) {
        v = conv_in(run, cv_xbase[run] + coff, ci, u32(iy), u32(ix));
      }
      gemm_pb[run * GEMM_RUN_LEN + j] = v;
      kx++;
      if (kx == P.kw) {
        kx = 0u;
        ky++;
        if (ky == P.kh) { ky = 0u; ci++; coff += hw; }
      }
    }
  }
}

fn gemm_out_dims() -> vec2u {
  return vec2u(P.k, P.n * P.oh * P.ow);
}

fn gemm_store(row: u32, col: u32, v: f32) {
  gemm_store4(row, col, vec4(v, 0.0, 0.0, 0.0), 1u);
}

// Columns col … col + count − 1 of out-channel row, biased, written where conv_store4 (lib/conv_out.wgsl,
// or lib/conv_out_pool.wgsl) puts them, as it activates them (with the shortcut added first where
// lib/conv_put_add.wgsl stores).
fn gemm_store4(row: u32, col: u32, v: vec4<f32>, count: u32) {
  var b = 0.0;
  if (HAS_BIAS) { b = bias[row]; }
  conv_store4(row, col, v + vec4(b), count);
}

/** The tile of workgroup wg, and this thread's im2col columns; none past the last tile. */
fn tile_of(wg: vec3u, nwg: vec3u, li: u32) -> GemmTile {
  let tile = wg.x + wg.y * nwg.x;
  let ohw = P.oh * P.ow;
  let cols = P.n * ohw;
  cv_row0 = (tile / P.col_tiles) * GEMM_BM;
  let col0 = (tile % P.col_tiles) * GEMM_BN;
  for (var run = 0u; run < GEMM_RUNS; run++) {
    let p = col0 + gemm_b_coord(run * GEMM_RUN_LEN, li).y;
    let ok = p < cols;
    let at = conv_position(p);
    cv_ok[run] = ok;
    cv_iy0[run] = i32(at.y * P.sh) - i32(P.pad_top);
    cv_ix0[run] = i32(at.z * P.sw) - i32(P.pad_left);
    cv_xbase[run] = conv_in_sample(run, at.x, ok);
  }
  return GemmTile(cv_row0, col0, P.k, cols, 0u);
}

fn has_tile(wg: vec3u, nwg: vec3u) -> bool {
  return wg.x + wg.y * nwg.x < P.col_tiles * ((P.k + GEMM_BM - 1u) / GEMM_BM);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  if (!has_tile(wg, nwg)) { return; }
  let tile = wg.x + wg.y * nwg.x;
  conv_in_stage(tile, li);
  let t = tile_of(wg, nwg, li);
  gemm_run(t, 0u, P.c * P.kh * P.kw, lid, li);
  gemm_emit_store(t, lid, li);
  conv_in_finish(tile, li);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main_split(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  if (!has_tile(wg, nwg)) { return; }
  let t = tile_of(wg, nwg, li);
  let k0 = wg.z * P.chunk;
  gemm_run(t, k0, min(P.c * P.kh * P.kw, k0 + P.chunk), lid, li);
  gemm_emit_parts(t, lid, li, wg.z * P.k * t.cols, t.cols);
}
