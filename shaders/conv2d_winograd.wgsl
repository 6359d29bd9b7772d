// Conv2d forward of a 3×3, stride-1 conv by Winograd's F(2×2, 3×3), fused whole (lib/winograd_conv.wgsl):
// y = act(conv(x, w) + b), x [N,C,H,W], w [K,C,3,3], b [K], y [N,K,OH,OW], NCHW row-major f32; the
// correlation of x (CIN = C) with the filters w (COUT = K), padding as the conv's (lib/conv.wgsl P).
// Each tile's 2×2 outputs get the bias, and are activated as they are stored through lib/conv_put.wgsl's
// conv_put (plain) or lib/conv_out_pool.wgsl's conv_store4 (a tile is a 2×2 pooling window: pooled, argmax and
// dropout as the direct conv's epilogue; the outputs of odd sizes' last row and column, in no window,
// go to y alone). Where the tiles cover less than the output (lib/conv.wgsl conv_cover), the outputs
// past them are written 0.
// Entry main: 0 params (lib/conv.wgsl), 1 x, 2 w, 3 b (any buffer when !HAS_BIAS), 4 y; pooled, 5–7 as
// lib/conv_out_pool.wgsl lists; with a residual add (module conv2d_winograd_add), 5 the shortcut, added before
// the activation as each output is stored (lib/conv_put_add.wgsl). Dispatch: lib/winograd_conv.wgsl's, COUT = K.

override HAS_BIAS: bool = false;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn wino_geom() -> WinoGeom {
  let cover = conv_cover();
  return WinoGeom(P.c, P.k, P.h, P.w, cover.x, cover.y, P.pad_top, P.pad_left);
}

fn wino_in(i: u32) -> f32 {
  return x[i];
}

fn wino_filter_row(co: u32, ci: u32, ky: u32) -> vec3<f32> {
  let base = (co * P.c + ci) * 9u + 3u * ky;
  return vec3(wt[base], wt[base + 1u], wt[base + 2u]);
}

/**
 * 0 into the outputs of plane `plane` past the covered part beside the tile at (oy, ox): below it where it
 * is in the last row of tiles, right of it where in the last column (and the corner), none twice. The
 * tile stores only what is covered.
 */
fn wino_clear_uncovered(plane: u32, oy: u32, ox: u32) {
  let cover = conv_cover();
  let last_col = ox + 2u >= cover.y;
  if (oy + 2u >= cover.x) {
    let right = select(min(ox + 2u, P.ow), P.ow, last_col);
    for (var r = cover.x; r < P.oh; r++) {
      for (var c = ox; c < right; c++) { y[(plane + r) * P.ow + c] = 0.0; }
    }
  }
  if (last_col) {
    for (var r = oy; r < min(oy + 2u, cover.x); r++) {
      for (var c = cover.y; c < P.ow; c++) { y[(plane + r) * P.ow + c] = 0.0; }
    }
  }
}

fn wino_store(co: u32, n: u32, oy: u32, ox: u32, v: vec4<f32>) {
  let plane = (n * P.k + co) * P.oh;
  let cover = conv_cover();
  if (COVER_ROWS > 0u || COVER_COLS > 0u) { wino_clear_uncovered(plane, oy, ox); }
  var b = 0.0;
  if (HAS_BIAS) { b = bias[co]; }
  if (CONV_GROUP == 4u && oy + 1u < cover.x && ox + 1u < cover.y) {
    // A whole pooling window: its 4 GEMM columns in lib/conv_out_pool.wgsl's order.
    conv_store4(co, 4u * ((n * (P.oh / 2u) + oy / 2u) * (P.ow / 2u) + ox / 2u), v + vec4(b), 4u);
    return;
  }
  for (var dy = 0u; dy < 2u; dy++) {
    for (var dx = 0u; dx < 2u; dx++) {
      if (oy + dy < cover.x && ox + dx < cover.y) { conv_put((plane + oy + dy) * P.ow + ox + dx, v[2u * dy + dx] + b); }
    }
  }
}

@compute @workgroup_size(WINO_THREADS)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  wino_main(wg, nwg, li);
}
