// Conv2d backward to the weights and the bias, deterministic (fixed summation order, no atomics).
// dL/dw[k,c,ky,kx] = Σ_{n,oy,ox} dy[n,k,oy,ox] · x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft]
// dL/db[k] = Σ_{n,oy,ox} dy[n,k,oy,ox]
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: dy [N,K,OH,OW], x [N,C,H,W], dw [K,C,KH,KW], db [K]; both overwritten.
//
// main: implicit GEMM dw = dy · im2col(x)ᵀ. Rows: out-channels k; columns: r = (c·KH + ky)·KW + kx;
//   inner: positions p = (n·OH + oy)·OW + ox. Bindings: 0 params (P: lib/conv.wgsl), 1 dy, 2 x, 3 out.
//   Dispatch: (grid(rowTiles · colTiles), splits) workgroups of GEMM_T×GEMM_T threads, rowTiles = ceil(K/BM),
//   colTiles = ceil(C·KH·KW/BN); tile t = wg.x + wg.y·nwg.x is row tile t / colTiles, column tile
//   t % colTiles. Tiles BM×BN×16: each thread owns (BM/GEMM_T)×(BN/GEMM_T) outputs strided
//   by GEMM_T (gemm_tile() from lib/gemm.wgsl, prepended by the loader). BM, BN (overrides) are
//   64, narrowed to 32 or 16 for small K or C·KH·KW (a first layer's C·KH·KW is 9) so that the
//   tile is not mostly empty and more workgroups share the work.
//   Split-K: the weight gradient is a few tiles with a very long inner dimension (N·OH·OW, 200k at
//   batch 256 on 28×28), so workgroup z sums only positions [z·chunk, (z+1)·chunk) and writes its
//   partial to out[z·K·C·KH·KW + …]; with one split, out is dw itself.
// reduce_splits: dw[i] = Σ_z parts[z·len + i] in z order (deterministic). Bindings: 0 params,
//   1 parts, 2 dw. Dispatch: grid(ceil(K·C·KH·KW / 256)) workgroups of 256.
// bias_grad: one workgroup of 256 per k, strided partial sums then a tree.
//   Bindings: 0 params (P: lib/conv.wgsl), 1 dy, 2 db. Dispatch: grid(K) workgroups.

// Tile rows (out-channels) and columns (C·KH·KW): each 16, 32 or 64.
override BM: u32 = 64u;
override BN: u32 = 64u;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw_sum: array<f32>;

// An out-of-range tap: its input row is never inside the image.
const NO_TAP = 1048576;

// As [BK][BM]: dy; Bs [BK][BN]: im2col(x)ᵀ (lib/gemm.wgsl).
// For the tile's BN columns r: (c·H·W + ky·W + kx, ky, kx), decoded once.
var<workgroup> taps: array<vec3i, 64>;

@compute @workgroup_size(GEMM_T, GEMM_T)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= P.col_tiles * ((P.k + BM - 1u) / BM)) { return; }
  let row0 = (tile / P.col_tiles) * BM;
  let col0 = (tile % P.col_tiles) * BN;
  let khw = P.kh * P.kw;
  let ckk = P.c * khw;
  let ohw = P.oh * P.ow;
  let begin = wg.z * P.chunk;
  let inner = min(P.n * ohw, begin + P.chunk);
  let out0 = wg.z * P.k * ckk;

  let rc = col0 + li;
  let t = rc % khw;
  let ky = i32(t / P.kw);
  let kx = i32(t % P.kw);
  if (li < 64u) {
    taps[li] = select(vec3i(0, NO_TAP, 0), vec3i(i32((rc / khw) * P.h * P.w) + ky * i32(P.w) + kx, ky, kx), rc < ckk);
  }
  workgroupBarrier();

  // Both loads give thread li the position p = k0 + li % 16 (consecutive threads, consecutive
  // positions) and rows / columns li / 16 + GEMM_LOAD_STRIDE·i.
  let kl = li % BK;
  let ml = li / BK;
  var acc: array<f32, 64>;
  for (var k0 = begin; k0 < inner; k0 += BK) {
    let p = k0 + kl;
    let p_ok = p < inner;
    let pn = p / ohw;
    let pq = p % ohw;
    let dybase = pn * P.k * ohw + pq;
    let iy0 = i32((pq / P.ow) * P.sh) - i32(P.pad_top);
    let ix0 = i32((pq % P.ow) * P.sw) - i32(P.pad_left);
    let xbase = i32(pn * P.c * P.h * P.w) + iy0 * i32(P.w) + ix0;
    for (var i = 0u; i < BM / GEMM_LOAD_STRIDE; i++) {
      let m = ml + i * GEMM_LOAD_STRIDE;
      var av = 0.0;
      if (p_ok && row0 + m < P.k) { av = dy[dybase + (row0 + m) * ohw]; }
      As[kl * BM + m] = av;
    }
    for (var i = 0u; i < BN / GEMM_LOAD_STRIDE; i++) {
      let m = ml + i * GEMM_LOAD_STRIDE;
      let tap = taps[m];
      let iy = iy0 + tap.y;
      let ix = ix0 + tap.z;
      var bv = 0.0;
      if (p_ok && iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w)) { bv = x[u32(xbase + tap.x)]; }
      Bs[kl * BN + m] = bv;
    }
    workgroupBarrier();
    gemm_tile(&acc, lid);
    workgroupBarrier();
  }

  for (var i = 0u; i < BM / GEMM_T; i++) {
    let row = row0 + lid.y + i * GEMM_T;
    if (row >= P.k) { continue; }
    for (var j = 0u; j < BN / GEMM_T; j++) {
      let col = col0 + lid.x + j * GEMM_T;
      if (col < ckk) { dw[out0 + row * ckk + col] = acc[i * 8u + j]; }
    }
  }
}

@compute @workgroup_size(256)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let len = P.k * P.c * P.kh * P.kw;
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= len) { return; }
  var s = 0.0;
  for (var z = 0u; z < P.splits; z++) { s += parts[z * len + i]; }
  dw_sum[i] = s;
}

const WG = 256u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn bias_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) li: u32) {
  let k = wg.x + wg.y * nwg.x;
  if (k >= P.k) { return; }
  let ohw = P.oh * P.ow;
  // Thread li sums positions j = li, li + 256, … < N·OH·OW, j = n·OH·OW + q with (n, q) stepped
  // by subtraction rather than divided (integer division is slow everywhere, scalarized on a CPU).
  var s = 0.0;
  var n = li / ohw;
  var q = li % ohw;
  while (n < P.n) {
    s += dy[(n * P.k + k) * ohw + q];
    q += WG;
    while (q >= ohw) { q -= ohw; n++; }
  }
  partial[li] = s;
  workgroupBarrier();
  for (var span = WG / 2u; span > 0u; span /= 2u) {
    if (li < span) { partial[li] += partial[li + span]; }
    workgroupBarrier();
  }
  if (li == 0u) { db[k] = partial[0]; }
}
