// The conv forward with a 2×2, stride-2 max pooling and a dropout in its epilogue (the planner's
// conv+maxpool+dropout fusion, src/graph/fuse.ts), prepended in place of lib/conv_out.wgsl.
// PH×PW = ⌊OH/2⌋×⌊OW/2⌋ the pooled size (valid windows: an odd OH or OW leaves its last row or column
// outside every window).
// GEMM columns go window by window: p = 4·w + cell, window w = (n·PH + py)·PW + px, cell = 2·dy + dx
// at (oy, ox) = (2·py + dy, 2·px + dx). Then, where OH or OW is odd, the outputs no window covers,
// image by image: the last row (OH odd), then the last column above it (OW odd); conv_uncovered.
// The epilogue takes a window's 4 columns together (CONV_GROUP; the GEMM's 4-column blocks start at
// multiples of 4, and the windows' columns are a multiple of 4) and writes
//   y[n, k, oy, ox]   each output (the backward's act' reads it; an uncovered one only this),
//   pool_arg[o]       the window's first maximum, as iy·OW + ix in its plane (shaders/pool.wgsl's),
//   pooled[o]         that maximum · keep(o) / (1 − rate), keep(o) = rand01(seed, counter[0], o) ≥ rate
//                     (DROPOUT; else the maximum), o = (n·K + k)·PH·PW + py·PW + px:
// bit for bit the conv, then shaders/chain.wgsl pool_dropout_forward (or pool.wgsl max_forward).
// Bindings 5 pooled, 6 pool_arg (written where POOL_ARG), 7 counter (u32, word 0 the step).

const CONV_GROUP = 4u;
override DROPOUT: bool = true;
// pool_arg written (training); false at inference, where nothing reads it (bound to a dummy).
override POOL_ARG: bool = true;

@group(0) @binding(5) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(6) var<storage, read_write> pool_arg: array<u32>;
@group(0) @binding(7) var<storage, read> counter: array<u32>;

/** An image's windows: PH·PW. */
fn conv_windows() -> u32 {
  return (P.oh / 2u) * (P.ow / 2u);
}

/** The columns of all images' windows: 4·N·PH·PW. */
fn conv_window_cols() -> u32 {
  return 4u * P.n * conv_windows();
}

/** The columns before which a tile's columns of one image lie in rows first.y … last.y (lib/conv_in_gather.wgsl). */
fn conv_ordered_cols() -> u32 {
  return conv_window_cols();
}

/** Uncovered output q (counted from the first past the windows) as (n, oy, ox). */
fn conv_uncovered(q: u32) -> vec3u {
  let last_row = select(0u, P.ow, P.oh % 2u == 1u);
  // None where OH and OW are even: only a checked tile's columns past the end come here, never stored.
  let per_image = max(1u, P.oh * P.ow - 4u * conv_windows());
  let n = q / per_image;
  let r = q - n * per_image;
  if (r < last_row) { return vec3u(n, P.oh - 1u, r); }
  return vec3u(n, r - last_row, P.ow - 1u);
}

/** GEMM column p as (n, oy, ox). */
fn conv_position(p: u32) -> vec3u {
  let windows = conv_window_cols();
  if (p >= windows) { return conv_uncovered(p - windows); }
  let pw = P.ow / 2u;
  let phw = conv_windows();
  let w = p / 4u;
  let cell = p % 4u;
  let n = w / phw;
  let r = w - n * phw;
  let py = r / pw;
  return vec3u(n, 2u * py + cell / 2u, 2u * (r - py * pw) + cell % 2u);
}

/**
 * Whether the columns from col0 on are all past what the pass covers (lib/conv.wgsl conv_cover: set, the
 * windows' part): the outputs no window covers, stored 0 (conv_store4), their sums not needed.
 */
fn conv_past_cover(col0: u32) -> bool {
  return (COVER_ROWS > 0u || COVER_COLS > 0u) && col0 >= conv_window_cols();
}

/**
 * Out-channel row's outputs at the `count` columns from col (a multiple of 4), v the sums and their bias,
 * activated: a window's 4, or outputs no window covers, written to y alone (0 where they are past what
 * the pass covers).
 */
fn conv_store4(row: u32, col: u32, v: vec4<f32>, count: u32) {
  let a = vec4(act(v.x), act(v.y), act(v.z), act(v.w));
  let windows = conv_window_cols();
  if (col >= windows) {
    let past = conv_past_cover(col);
    for (var i = 0u; i < 4u; i++) {
      if (i >= count) { break; }
      let at = conv_uncovered(col - windows + i);
      y[((at.x * P.k + row) * P.oh + at.y) * P.ow + at.z] = select(a[i], 0.0, past);
    }
    return;
  }
  if (count < 4u) { return; }
  let pw = P.ow / 2u;
  let phw = conv_windows();
  let w = col / 4u;
  let n = w / phw;
  let r = w - n * phw;
  let py = r / pw;
  let px = r - py * pw;
  let plane = n * P.k + row;
  let k0 = 2u * py * P.ow + 2u * px;
  let y0 = plane * P.oh * P.ow + k0;
  y[y0] = a.x;
  y[y0 + 1u] = a.y;
  y[y0 + P.ow] = a.z;
  y[y0 + P.ow + 1u] = a.w;
  var best = a.x;
  var arg = k0;
  if (a.y > best) { best = a.y; arg = k0 + 1u; }
  if (a.z > best) { best = a.z; arg = k0 + P.ow; }
  if (a.w > best) { best = a.w; arg = k0 + P.ow + 1u; }
  let o = plane * phw + r;
  var out = best;
  if (DROPOUT) { out = dropout(P.seed, counter[0], o, P.rate, P.scale, best); }
  pooled[o] = out;
  if (POOL_ARG) { pool_arg[o] = arg; }
}
