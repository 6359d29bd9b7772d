// Where the conv forward's GEMM columns lie and how its outputs are written, prepended to
// conv2d_forward.wgsl and conv2d_forward_lanes.wgsl by the loader: here the plain layout, column
// p = (n·OH + oy)·OW + ox, each output y[n, k, oy, ox] written as it is. lib/conv_out_pool.wgsl is its
// pooled twin (a 2×2 max pooling and dropout in the epilogue); both define CONV_GROUP (columns the
// epilogue takes together), conv_position, conv_ordered_cols, conv_past_cover and conv_store4, reading the
// including shader's P (lib/conv.wgsl) and writing its y. Here each output goes through conv_put
// (lib/conv_put.wgsl: the activation, or the residual add and then the activation).

const CONV_GROUP = 1u;

/** GEMM column p as (n, oy, ox). */
fn conv_position(p: u32) -> vec3u {
  let ohw = P.oh * P.ow;
  let n = p / ohw;
  let q = p - n * ohw;
  return vec3u(n, q / P.ow, q % P.ow);
}

/** The columns before which a tile's columns of one image lie in rows first.y … last.y: all of them. */
fn conv_ordered_cols() -> u32 {
  return P.n * P.oh * P.ow;
}

/** Whether the columns from col0 on are all past what the pass covers (lib/conv.wgsl conv_cover): never here. */
fn conv_past_cover(col0: u32) -> bool {
  return false;
}

/** Outputs of out-channel `row` at the `count` consecutive columns from col: v, the sums and their bias. */
fn conv_store4(row: u32, col: u32, v: vec4<f32>, count: u32) {
  let ohw = P.oh * P.ow;
  var n = col / ohw;
  var q = col % ohw;
  for (var i = 0u; i < 4u; i++) {
    if (i < count) { conv_put((n * P.k + row) * ohw + q, v[i]); }
    q++;
    if (q == ohw) { q = 0u; n++; }
  }
}
