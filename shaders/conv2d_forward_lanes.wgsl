// Conv2d forward for CPU adapters: the implicit GEMM of conv2d_forward.wgsl, y = act(W · im2col(x) + b),
// tiled for SIMD lanes (lib/lanes.wgsl) instead of a GPU workgroup.
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: x [N,C,H,W], w [K,C,KH,KW], b [K], y [N,K,OH,OW].
// GEMM rows: out-channels k (shuffled from the lane that loaded them); columns: positions
// p = (n·OH + oy)·OW + ox (one per lane); inner: r = (c·KH + ky)·KW + kx, with
// im2col(x)[r,p] = x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft], 0 outside the input.
// Bindings: 0 params (P: lib/conv.wgsl), 1 x, 2 w, 3 b (any buffer when !HAS_BIAS), 4 y (overwritten); 5 a
// residual add's shortcut (module conv2d_forward_lanes_add, lib/conv_put_add.wgsl).
// Dispatch: grid(rowTiles · colTiles) workgroups of LANES, rowTiles = ceil(K / (ROW_GROUPS·LANES)),
// colTiles = ceil(N·OH·OW / (COLS·LANES)); tile t = wg.x + wg.y·nwg.x is row tile t / colTiles,
// column tile t % colTiles.
// Columns and outputs: lib/conv_out.wgsl (plain; module conv2d_forward_lanes) or
// lib/conv_out_pool.wgsl (a 2×2 max pooling and dropout in the epilogue, CONV_GROUP 4: module
// conv2d_forward_lanes_pool, COLS 4 or 8); each value stored alone through lib/conv_put.wgsl's conv_put, or
// lib/conv_put_add.wgsl's (the shortcut added before the activation). Uses act() from lib/activation.wgsl
// and lib/lanes.wgsl, prepended by the loader, and lanes_step() (src/gpu/lane-step.ts), appended.

override HAS_BIAS: bool = false;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let origin = lanes_origin(wg, nwg, P.col_tiles, P.k);
  if (origin.x >= P.k) { return; }
  let row0 = origin.x;
  let khw = P.kh * P.kw;
  let hw = P.h * P.w;
  let inner = P.c * khw;
  let ohw = P.oh * P.ow;
  let cols = P.n * ohw;

  // Each column's window origin (negative inside the padding) and image, computed once. A column
  // past the end repeats the last one and is never stored.
  var iy0: array<i32, 8>;
  var ix0: array<i32, 8>;
  var xbase: array<u32, 8>;
  var ybase: array<u32, 8>;
  for (var j = 0u; j < COLS; j++) {
    let p = min(lane_column(origin.y, lane, j), cols - 1u);
    let at = conv_position(p);
    iy0[j] = i32(at.y * P.sh) - i32(P.pad_top);
    ix0[j] = i32(at.z * P.sw) - i32(P.pad_left);
    xbase[j] = at.x * P.c * hw;
    ybase[j] = at.x * P.k * ohw + at.y * P.ow + at.z;
  }
  // This lane's weight rows (clamped: a row past K is computed and never stored).
  var wrow: array<u32, 8>;
  for (var g = 0u; g < ROW_GROUPS; g++) { wrow[g] = min(row0 + g * LANES + lane, P.k - 1u) * inner; }

  // r decoded as (c·H·W, ky, kx), advanced by one per index instead of divided; LANE_DEPTH indices a
  // step (lib/lanes.wgsl), zeros past the end (selected: a `break` there gave wrong sums on lavapipe).
  var coff = 0u;
  var ky = 0u;
  var kx = 0u;
  var acc: array<f32, LANE_ACC>;
  // A tile of outputs past what the pass covers (lib/conv_out_pool.wgsl conv_past_cover) sums nothing.
  let steps = select(inner, 0u, conv_past_cover(origin.y));
  for (var r0 = 0u; r0 < steps; r0 += LANE_DEPTH) {
    var ag: array<f32, 8 * LANE_DEPTH>;
    var bv: array<f32, 8 * LANE_DEPTH>;
    for (var d = 0u; d < LANE_DEPTH; d++) {
      let r = r0 + d;
      let live = r < inner;
      for (var g = 0u; g < ROW_GROUPS; g++) { ag[8u * d + g] = select(0.0, wt[wrow[g] + min(r, inner - 1u)], live); }
      for (var j = 0u; j < COLS; j++) {
        let iy = iy0[j] + i32(ky);
        let ix = ix0[j] + i32(kx);
        let ok = live && iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w);
        let v = x[select(0u, xbase[j] + coff + u32(iy) * P.w + u32(ix), ok)];
        bv[8u * d + j] = select(0.0, v, ok);
      }
      if (lanes_next_tap(&ky, &kx, P.kh, P.kw)) { coff += hw; }
    }
    lanes_step(&acc, &ag, &bv);
  }

  for (var i = 0u; i < ROW_GROUPS * LANES; i++) {
    let row = row0 + i;
    if (row >= P.k) { break; }
    var b = 0.0;
    if (HAS_BIAS) { b = bias[row]; }
    if (CONV_GROUP == 1u) {
      for (var j = 0u; j < COLS; j++) {
        if (lane_column(origin.y, lane, j) < cols) { conv_put(ybase[j] + row * ohw, acc[i * COLS + j] + b); }
      }
    } else {
      // A window's 4 columns together (lib/conv_out_pool.wgsl).
      for (var j = 0u; j < COLS; j += 4u) {
        let v = vec4(acc[i * COLS + j], acc[i * COLS + j + 1u], acc[i * COLS + j + 2u], acc[i * COLS + j + 3u]);
        let col = lane_column(origin.y, lane, j);
        if (col < cols) { conv_store4(row, col, v + vec4(b), min(4u, cols - col)); }
      }
    }
  }
}

// The lane's j-th column in the tile starting at column col0: neighbouring lanes own neighbouring
// columns (CONV_GROUP 1: col0 + lane + j·LANES), or neighbouring groups of CONV_GROUP columns.
fn lane_column(col0: u32, lane: u32, j: u32) -> u32 {
  return col0 + CONV_GROUP * (lane + LANES * (j / CONV_GROUP)) + j % CONV_GROUP;
}
