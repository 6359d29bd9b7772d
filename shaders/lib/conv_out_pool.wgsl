// The conv forward with a 2×2, stride-2 max pooling and a dropout in its epilogue (the planner's
// conv+maxpool+dropout fusion, src/graph/fuse.ts), prepended in place of lib/conv_out.wgsl. OH and OW
// are even (src/ops/conv2d.ts checks), PH×PW = (OH/2)×(OW/2) the pooled size.
// GEMM columns go window by window: p = 4·w + cell, window w = (n·PH + py)·PW + px, cell = 2·dy + dx
// at (oy, ox) = (2·py + dy, 2·px + dx). The epilogue takes a window's 4 columns together (CONV_GROUP;
// the GEMM's 4-column blocks start at multiples of 4) and writes
//   y[n, k, oy, ox]   each output (the backward's act' reads it),
//   pool_arg[o]       the window's first maximum, as iy·OW + ix in its plane (shaders/pool.wgsl's),
//   pooled[o]         that maximum · keep(o) / (1 − rate), keep(o) = rand01(seed, counter[0], o) ≥ rate
//                     (DROPOUT; else the maximum), o = (n·K + k)·PH·PW + py·PW + px:
// bit for bit the conv, then shaders/chain.wgsl pool_dropout_forward (or pool.wgsl max_forward).
// Bindings 5 pooled, 6 pool_arg (written), 7 counter (u32, word 0 the step).

const CONV_GROUP = 4u;
override DROPOUT: bool = true;

@group(0) @binding(5) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(6) var<storage, read_write> pool_arg: array<u32>;
@group(0) @binding(7) var<storage, read> counter: array<u32>;

/** GEMM column p as (n, oy, ox). */
fn conv_position(p: u32) -> vec3u {
  let pw = P.ow / 2u;
  let phw = (P.oh / 2u) * pw;
  let w = p / 4u;
  let cell = p % 4u;
  let n = w / phw;
  let r = w - n * phw;
  let py = r / pw;
  return vec3u(n, 2u * py + cell / 2u, 2u * (r - py * pw) + cell % 2u);
}

/** The window of columns col … col + 3 (col a multiple of 4; count 4) of out-channel row. */
fn conv_store4(row: u32, col: u32, a: vec4<f32>, count: u32) {
  if (count < 4u) { return; }
  let pw = P.ow / 2u;
  let phw = (P.oh / 2u) * pw;
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
  var v = best;
  if (DROPOUT) { v = dropout(P.seed, counter[0], o, P.rate, P.scale, best); }
  pooled[o] = v;
  pool_arg[o] = arg;
}
