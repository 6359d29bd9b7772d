// Conv2d forward as an implicit GEMM: y = act(W · im2col(x) + b).
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: x [N,C,H,W], w [K,C,KH,KW] (= [K, C·KH·KW] row-major), b [K], y [N,K,OH,OW].
// GEMM rows: out-channels k; columns: positions p = (n·OH + oy)·OW + ox; inner: r = (c·KH + ky)·KW + kx.
//   im2col(x)[r,p] = x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft], 0 outside the input
//   (padTop/padLeft from src/ops/geometry.ts: TF's asymmetric same padding; the rest is implied).
// Bindings: 0 params (P: lib/conv.wgsl), 1 x, 2 w, 3 b (any buffer when !HAS_BIAS), 4 y (overwritten).
// Dispatch: grid(rowTiles · colTiles) workgroups of GEMM_T×GEMM_T threads, rowTiles = ceil(K/BM),
// colTiles = ceil(N·OH·OW/64); tile t = wg.x + wg.y·nwg.x is row tile t / colTiles, column tile
// t % colTiles. Tiles BM×64×16: each thread owns (BM/GEMM_T)×(64/GEMM_T) outputs strided by GEMM_T (lib/gemm.wgsl).
// BM (override) is 64, or 32 when K ≤ 32 so that a narrow layer does not compute a half-empty tile.
// Uses act() from lib/activation.wgsl and gemm_tile() from lib/gemm.wgsl, prepended by the loader.

override HAS_BIAS: bool = false;
// Rows (out-channels) per tile: 64 or 32 (a multiple of 16, at most 64).
override BM: u32 = 64u;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const BN = 64u;
// As [BK][BM]: weights; Bs [BK][BN]: im2col(x) (lib/gemm.wgsl).

@compute @workgroup_size(GEMM_T, GEMM_T)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= P.col_tiles * ((P.k + BM - 1u) / BM)) { return; }
  let row0 = (tile / P.col_tiles) * BM;
  let col0 = (tile % P.col_tiles) * BN;
  let khw = P.kh * P.kw;
  let hw = P.h * P.w;
  let inner = P.c * khw;
  let ohw = P.oh * P.ow;
  let cols = P.n * ohw;

  // Thread li loads column col0 + li % 64 of every im2col tile, so its window origin is computed
  // once, and GEMM_SLICE_ROWS of the tile's 16 inner rows from q·GEMM_SLICE_ROWS, q = li / 64 (the same
  // for a whole warp).
  let cb = li % BN;
  let q4 = (li / BN) * GEMM_SLICE_ROWS;
  let p = col0 + cb;
  let p_ok = p < cols;
  let pq = p % ohw;
  let iy0 = i32((pq / P.ow) * P.sh) - i32(P.pad_top);
  let ix0 = i32((pq % P.ow) * P.sw) - i32(P.pad_left);
  let xbase = (p / ohw) * P.c * hw;
  // Weights: thread li always loads inner index k0 + li % 16 of rows li / 16 + GEMM_LOAD_STRIDE·i.
  let ka = li % BK;
  let ma = li / BK;

  // r = k0 decoded as (c·H·W, ky, kx); advanced by one per loaded element instead of divided,
  // since integer division is slow on every device (and scalarized on a CPU).
  var coff = 0u;
  var ky = 0u;
  var kx = 0u;
  var acc: array<f32, 64>;
  for (var k0 = 0u; k0 < inner; k0 += BK) {
    for (var i = 0u; i < BM / GEMM_LOAD_STRIDE; i++) {
      let m = ma + i * GEMM_LOAD_STRIDE;
      var av = 0.0;
      if (row0 + m < P.k && k0 + ka < inner) { av = wt[(row0 + m) * inner + k0 + ka]; }
      As[ka * BM + m] = av;
    }
    // Every thread steps the decoded index through all 16 rows; it loads only its own.
    for (var i = 0u; i < BK; i++) {
      if (i >= q4 && i < q4 + GEMM_SLICE_ROWS) {
        let iy = iy0 + i32(ky);
        let ix = ix0 + i32(kx);
        var bv = 0.0;
        if (p_ok && k0 + i < inner && iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w)) {
          bv = x[xbase + coff + u32(iy) * P.w + u32(ix)];
        }
        Bs[i * BN + cb] = bv;
      }
      kx++;
      if (kx == P.kw) {
        kx = 0u;
        ky++;
        if (ky == P.kh) { ky = 0u; coff += hw; }
      }
    }
    workgroupBarrier();
    gemm_tile(&acc, lid);
    workgroupBarrier();
  }

  for (var j = 0u; j < BN / GEMM_T; j++) {
    let col = col0 + lid.x + j * GEMM_T;
    if (col >= cols) { continue; }
    let yn = col / ohw;
    let yq = col % ohw;
    for (var i = 0u; i < BM / GEMM_T; i++) {
      let row = row0 + lid.y + i * GEMM_T;
      if (row >= P.k) { continue; }
      var v = acc[i * 8u + j];
      if (HAS_BIAS) { v += bias[row]; }
      y[(yn * P.k + row) * ohw + yq] = act(v);
    }
  }
}
