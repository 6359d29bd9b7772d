// Conv2d backward to the weights for CPU adapters: the implicit GEMM dw = dy · im2col(x)ᵀ of
// conv2d_backward_weights.wgsl (main), tiled for SIMD lanes (lib/lanes.wgsl) instead of a GPU
// workgroup; with SUMS the bias gradient db = Σ dy[·,k,·,·] too, from the dy values the GEMM loads
// anyway (the workgroups of column tile 0 keep a running sum of each row's), so no pass of its own.
// The split-K partial sums have the layout of that file's, so its reduce_splits adds them.
// dL/dw[k,c,ky,kx] = Σ_{n,oy,ox} dy[n,k,oy,ox] · x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft]
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: dy [N,K,OH,OW], x [N,C,H,W], dw [K,C,KH,KW], db [K].
// GEMM rows: out-channels k (shuffled from the lane that loaded them); columns:
// r = (c·KH + ky)·KW + kx (one per lane); inner: positions p = (n·CH + oy)·CW + ox of the CH×CW part of
// each output that lib/conv.wgsl conv_cover says (OH×OW unless dY is 0 past it).
// Bindings: 0 params (P: lib/conv.wgsl), 1 dy, 2 x, 3 out: dw, or the partial sums when split,
// 4 db (any buffer without SUMS or when split).
// Dispatch: (grid(rowTiles · colTiles), splits) workgroups of LANES, rowTiles = ceil(K / (ROW_GROUPS·LANES)),
// colTiles = ceil(C·KH·KW / (COLS·LANES)); tile t = wg.x + wg.y·nwg.x is row tile t / colTiles,
// column tile t % colTiles. Workgroup z sums positions [z·chunk, (z+1)·chunk). With one split, out
// is dw and db is db; with more, workgroup z writes row k of its partial sums at
// out[(z·K + k)·L .. +L), L = C·KH·KW + SUMS, the last of them db's.
// Uses lib/lanes.wgsl, prepended by the loader, and lanes_step() (src/gpu/lane-step.ts), appended.

override SUMS: u32 = 0u;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let origin = lanes_origin(wg, nwg, P.col_tiles, P.k);
  if (origin.x >= P.k) { return; }
  let row0 = origin.x;
  let col0 = origin.y + lane;
  let khw = P.kh * P.kw;
  let hw = P.h * P.w;
  let ohw = P.oh * P.ow;
  let ckk = P.c * khw;
  let cover = conv_cover();
  let chw = cover.x * cover.y;
  let begin = wg.z * P.chunk;
  let end = min(P.n * chw, begin + P.chunk);

  // Each column's channel offset and tap, computed once. A column past the end repeats the last
  // one and is never stored.
  var coff: array<u32, 8>;
  var tky: array<i32, 8>;
  var tkx: array<i32, 8>;
  for (var j = 0u; j < COLS; j++) {
    let r = min(col0 + j * LANES, ckk - 1u);
    let t = r % khw;
    coff[j] = (r / khw) * hw;
    tky[j] = i32(t / P.kw) - i32(P.pad_top);
    tkx[j] = i32(t % P.kw) - i32(P.pad_left);
  }
  // This lane's dy rows (clamped: a row past K is computed and never stored).
  var dyrow: array<u32, 8>;
  for (var g = 0u; g < ROW_GROUPS; g++) { dyrow[g] = min(row0 + g * LANES + lane, P.k - 1u) * ohw; }

  // p decoded as (n, oy, ox), advanced by one per index instead of divided; LANE_DEPTH indices a step
  // (lib/lanes.wgsl), zeros past the end (selected: a `break` there gave wrong sums on lavapipe).
  var n = begin / chw;
  var oy = (begin % chw) / cover.y;
  var ox = begin % cover.y;
  var acc: array<f32, LANE_ACC>;
  var sums: array<f32, 8>;
  for (var p0 = begin; p0 < end; p0 += LANE_DEPTH) {
    var ag: array<f32, 8 * LANE_DEPTH>;
    var bv: array<f32, 8 * LANE_DEPTH>;
    for (var d = 0u; d < LANE_DEPTH; d++) {
      let live = p0 + d < end;
      let dyb = select(0u, n * P.k * ohw + oy * P.ow + ox, live);
      for (var g = 0u; g < ROW_GROUPS; g++) { ag[8u * d + g] = select(0.0, dy[dyb + dyrow[g]], live); }
      if (SUMS == 1u) {
        for (var g = 0u; g < ROW_GROUPS; g++) { sums[g] += ag[8u * d + g]; }
      }
      let xb = n * P.c * hw;
      let iyb = i32(oy * P.sh);
      let ixb = i32(ox * P.sw);
      for (var j = 0u; j < COLS; j++) {
        let iy = iyb + tky[j];
        let ix = ixb + tkx[j];
        let ok = live && iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w);
        let v = x[select(0u, xb + coff[j] + u32(iy) * P.w + u32(ix), ok)];
        bv[8u * d + j] = select(0.0, v, ok);
      }
      ox++;
      if (ox == cover.y) {
        ox = 0u;
        oy++;
        if (oy == cover.x) { oy = 0u; n++; }
      }
    }
    lanes_step(&acc, &ag, &bv);
  }

  let split = P.splits > 1u;
  let stride = ckk + select(0u, SUMS, split);
  let out0 = wg.z * P.k * stride;
  for (var i = 0u; i < ROW_GROUPS * LANES; i++) {
    let row = row0 + i;
    if (row >= P.k) { break; }
    for (var j = 0u; j < COLS; j++) {
      let col = col0 + j * LANES;
      if (col < ckk) { dw[out0 + row * stride + col] = acc[i * COLS + j]; }
    }
  }
  // Row row0 + g·LANES + lane's sum is this lane's own: written by the workgroups of column tile 0.
  if (SUMS == 1u && origin.y == 0u) {
    for (var g = 0u; g < ROW_GROUPS; g++) {
      let row = row0 + g * LANES + lane;
      if (row < P.k) {
        if (split) { dw[out0 + row * stride + ckk] = sums[g]; } else { db[row] = sums[g]; }
      }
    }
  }
}
