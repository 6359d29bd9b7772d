// Batch normalization per channel over N·HW (Keras BatchNormalization on the channel axis), with an
// optional activation fused after it (ACT, lib/activation.wgsl; 0 = none).
// N batch, C channels, HW = H·W spatial (1 for dense [N,F] outputs, with F = C); x, y, dy, dx are
// NCHW row-major f32, element (n, c, p) at (n·C + c)·HW + p; per-channel vectors are [C]; M = N·HW.
// Channel c's M elements, in order j = n·HW + p, are cut into S slices of L (the last may be shorter).
//   train:    mean, var = batch mean and biased variance; y = act(z), z = gamma·(x − mean)·invstd + beta,
//             invstd = 1/sqrt(var + eps); running = momentum·running + (1 − momentum)·batch (Keras)
//   infer:    y = act(z) from the running mean and variance
//   backward: g = dy·act'(z) (z recomputed from x; g = dy without ACT), then
//             dL/dx = (gamma·invstd/M)·(M·g − Σg − xhat·Σ(g·xhat)), dgamma = Σ g·xhat, dbeta = Σ g
// Statistics without serial loops: two dispatches each way over a (S, C) grid of WG-thread workgroups
// (256 on a GPU, 16 on a CPU adapter), each thread walking ⌈L/WG⌉ elements a pass (the host picks S,
// src/ops/batchnorm-slices.ts bnSlices: on a GPU ≤ 64 a pass where it can), each walk stepped without
// dividing (Walk); one dispatch each way where S = 1 (WHOLE, below):
//   stats then forward_train: each slice's count, mean and Σ(x − slice mean)² (two passes over the slice),
//     into partial[(c·S + s)·3 ..]; then every workgroup of channel c combines the S partials in the same
//     fixed tree (Chan et al.'s pairwise update: no E[x²] − E[x]²), so all get the same bits, and
//     normalises its slice; slice 0 writes the saved and running statistics.
//   backward_sums then backward: each slice's Σg and Σg·xhat into partial[(c·S + s)·2 ..]; then every
//     workgroup of c sums the S pairs in a fixed tree and writes dx for its slice; slice 0 writes dgamma
//     and dbeta. Fixed orders throughout: deterministic.
//   WHOLE (where the host cuts each channel into one slice): forward_train, forward_train_add,
//     forward_train_pool and backward make their channel's statistics (or sums) first in the same
//     workgroup, as stats (backward_sums) makes them, and go on: one dispatch each way, the bits of the
//     two passes with S = 1 (whose combine over one partial changes nothing). partial is bound, unused.
//   stats_parts: stats over a conv's forward left as its SRC_SPLITS split-K partials (≤ 16, the
//     conv's activation linear): each element summed (and its bias added) as the conv's reduce pass
//     would, written to the conv's output and counted; forward_train then reads that output as x.
//   forward_train_pool: forward_train with the pooling that reads its output in the same pass, windows
//     apart (stride ≥ window; P.h × P.w = HW pooled to P.oh × P.ow, window P.kh × P.kw, stride P.sh ×
//     P.sw, pads P.pad_top, P.pad_left), workgroup (s, c) over P.windows of channel c's windows: y as
//     forward_train writes it, and pooled (argmax for max pooling, POOL 1; average, POOL 2) as the
//     pooling kernels would from y. Without pooling the pool fields are 1 × HW, unread.
//   forward_train_add: forward_train writing y = act(z + shortcut), the residual add after the batchnorm in
//     its pass (the planner's choice, src/graph/fuse-add.ts); z + shortcut as the add kernel sums them.
//   forward_infer: one thread per element, 64 per workgroup (grid-stride loops where the adapter caps the
//     workgroups, Gpu.spread, each stepping its channel by adding: FlatWalk);
//     forward_infer_add: forward_infer writing act(z + shortcut), as forward_train_add;
//     forward_infer_pool: one per pooled output, its window's cells made as forward_infer makes them.
// Bindings (WGSL lets entry points that never share a variable reuse a binding number):
//   forward: 1 x, 2 gamma, 3 beta, 4 runMean, 5 runVar (read in infer, updated in train), 6 y,
//     7 saveMean, 8 saveInvStd (written), 9 partial. stats binds 1 and 9 only; forward_train_pool also
//     11 pooled and 12 argmax (u32, max pooling); forward_infer_pool 1–6 (y unwritten) and 11; stats_parts 1
//     the conv's partials, 9 partial, 13 the conv's output (written) and 14 its bias; forward_train_add
//     also 15 the shortcut, forward_infer_add 1–6 and 15.
//   backward: 1 x, 2 gamma, 3 beta, 4 dy, 5 saveMean, 6 saveInvStd, 7 dx (+= when P.accumulate ≠ 0),
//     8 dgamma, 9 partial, 10 dbeta. backward_sums binds 1–6 and 9.

struct Params {
  n: u32, c: u32, hw: u32, eps: f32, momentum: f32, accumulate: u32,
  slices: u32, len: u32, tree: u32,
  h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, pad_top: u32, pad_left: u32, windows: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> save_invstd: array<f32>;
@group(0) @binding(9) var<storage, read_write> partial: array<f32>;
// backward only
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> mean_in: array<f32>;
@group(0) @binding(6) var<storage, read> invstd_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(10) var<storage, read_write> dbeta: array<f32>;
// forward_train_pool only.
@group(0) @binding(11) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(12) var<storage, read_write> argmax: array<u32>;
override POOL: u32 = 1u;
// stats_parts only: the conv's output written (the partials at binding 1), and its bias.
@group(0) @binding(13) var<storage, read_write> conv_out: array<f32>;
@group(0) @binding(14) var<storage, read> conv_bias: array<f32>;
override SRC_SPLITS: u32 = 2u;
override HAS_BIAS: bool = false;
// One slice per channel, its statistics (backward: sums) made in the pass that uses them (the header's WHOLE).
override WHOLE: bool = false;
// forward_train_add and forward_infer_add only: a residual add's other input, added to z before the activation.
@group(0) @binding(15) var<storage, read> shortcut: array<f32>;

// Threads of a slice pass's workgroup (src/ops/batchnorm.ts sliceConstants), at most the trees' 256 slots.
override WG: u32 = 256u;
var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;
var<workgroup> red_c: array<f32, 256>;

// Flat index of the j-th element (j < M) of channel c.
fn at(c: u32, j: u32) -> u32 {
  let n = j / P.hw;
  return (n * P.c + c) * P.hw + (j - n * P.hw);
}

// A thread's walk over channel c's elements j, j + WG, j + 2·WG, …: i = at(c, j) and j's position p in its
// image's plane, stepped by adding, not dividing (a CPU adapter divides lane by lane). WG = dn·HW + dp
// elements on is dn images and dp positions on (di = dn·C·HW + dp), one image more where p passes HW.
struct Walk { i: u32, p: u32, di: u32, dp: u32 }

fn walk(c: u32, j: u32) -> Walk {
  let dn = WG / P.hw;
  let dp = WG - dn * P.hw;
  return Walk(at(c, j), j % P.hw, dn * P.c * P.hw + dp, dp);
}

fn walk_next(w: ptr<function, Walk>) {
  (*w).i += (*w).di;
  (*w).p += (*w).dp;
  if ((*w).p >= P.hw) {
    (*w).p -= P.hw;
    (*w).i += (P.c - 1u) * P.hw;
  }
}

// Slice s of channel c: elements [lo, hi).
fn slice(s: u32) -> vec2u {
  let lo = s * P.len;
  return vec2u(lo, min(lo + P.len, P.n * P.hw));
}

// Sums red_a and red_b over the first `size` (a power of two) slots in a fixed tree into [0]. Every
// thread calls it with the same size; [0] is read before a barrier precedes the next writes.
fn tree(t: u32, size: u32) {
  workgroupBarrier();
  for (var h = size / 2u; h > 0u; h >>= 1u) {
    if (t < h) {
      red_a[t] += red_a[t + h];
      red_b[t] += red_b[t + h];
    }
    workgroupBarrier();
  }
}

// Combines (count, mean, M2) in red_a, red_b, red_c over the first P.tree slots in a fixed tree into [0]:
// n = na + nb, δ = mb − ma, mean = ma + δ·nb/n, M2 = M2a + M2b + δ²·na·nb/n (empty slots have n = 0).
fn chan_tree(t: u32) {
  workgroupBarrier();
  for (var h = P.tree / 2u; h > 0u; h >>= 1u) {
    if (t < h && red_a[t + h] > 0.0) {
      let na = red_a[t];
      let nb = red_a[t + h];
      let n = na + nb;
      let d = red_b[t + h] - red_b[t];
      red_b[t] += d * (nb / n);
      red_c[t] += red_c[t + h] + d * d * (na * nb / n);
      red_a[t] = n;
    }
    workgroupBarrier();
  }
}

// Slice s of channel c's mean from each thread's sum of its elements (a fixed tree over the workgroup).
fn slice_mean(t: u32, s: u32, sum: f32) -> f32 {
  red_a[t] = sum;
  red_b[t] = 0.0;
  tree(t, WG);
  let r = slice(s);
  let mean = red_a[0] / f32(r.y - r.x);
  workgroupBarrier();
  return mean;
}

// Slice s of channel c's count, mean and Σ(x − mean)² (each thread's share of the last given) into partial.
fn slice_partial(t: u32, s: u32, c: u32, mean: f32, squares: f32) {
  red_a[t] = squares;
  tree(t, WG);
  if (t == 0u) {
    let r = slice(s);
    let o = (c * P.slices + s) * 3u;
    partial[o] = f32(r.y - r.x);
    partial[o + 1u] = mean;
    partial[o + 2u] = red_a[0];
  }
}

// Slice s of channel c's mean and each thread's share of Σ(x − mean)²: two walks over x.
fn slice_moments(s: u32, c: u32, t: u32) -> vec2<f32> {
  let r = slice(s);
  var sum = 0.0;
  var w = walk(c, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    sum += x[w.i];
    walk_next(&w);
  }
  let mean = slice_mean(t, s, sum);
  var v = 0.0;
  w = walk(c, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    let d = x[w.i] - mean;
    v += d * d;
    walk_next(&w);
  }
  return vec2<f32>(mean, v);
}

@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let m = slice_moments(wg.x, wg.y, t);
  slice_partial(t, wg.x, wg.y, m.x, m.y);
}

// stats_parts: the conv's output at element j of channel c, its SRC_SPLITS split-K partials (binding 1,
// [z][c][n·HW + p], the conv forward's main_split layout) summed from 0 in z order, as reduce_splits sums
// them for S ≤ 16, plus its bias (HAS_BIAS); the conv's reduce pass computes the same bits (its
// activation linear).
fn conv_value(c: u32, j: u32) -> f32 {
  let m = P.n * P.hw;
  var v = 0.0;
  for (var z = 0u; z < SRC_SPLITS; z++) { v += x[(z * P.c + c) * m + j]; }
  var b = 0.0;
  if (HAS_BIAS) { b = conv_bias[c]; }
  return v + b;
}

// stats over a conv's unsummed output: each element summed from its partials, written to conv_out (the
// batchnorm's input, which forward_train then reads) and counted, as stats counts x.
@compute @workgroup_size(WG)
fn stats_parts(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let s = wg.x;
  let c = wg.y;
  let r = slice(s);
  var sum = 0.0;
  var w = walk(c, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    let v = conv_value(c, j);
    conv_out[w.i] = v;
    sum += v;
    walk_next(&w);
  }
  let mean = slice_mean(t, s, sum);
  var v = 0.0;
  w = walk(c, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    let d = conv_out[w.i] - mean;
    v += d * d;
    walk_next(&w);
  }
  slice_partial(t, s, c, mean, v);
}

// Channel c's batch mean and 1/sqrt(var + eps), from the stats pass's S partials combined in the fixed
// tree (every workgroup of c gets the same bits); workgroup (0, c)'s thread 0 writes the saved and
// running statistics.
fn channel_stats(s: u32, c: u32, t: u32) -> vec2<f32> {
  var mean: f32;
  var squares: f32;
  if (WHOLE) {
    // The whole channel is slice 0: its moments as stats makes them, its squares summed in the same tree.
    let m = slice_moments(0u, c, t);
    red_a[t] = m.y;
    tree(t, WG);
    mean = m.x;
    squares = red_a[0];
  } else {
    red_a[t] = 0.0;
    red_b[t] = 0.0;
    red_c[t] = 0.0;
    if (t < P.slices) {
      let o = (c * P.slices + t) * 3u;
      red_a[t] = partial[o];
      red_b[t] = partial[o + 1u];
      red_c[t] = partial[o + 2u];
    }
    chan_tree(t);
    mean = red_b[0];
    squares = red_c[0];
  }
  let variance = squares / f32(P.n * P.hw);
  let invstd = inverseSqrt(variance + P.eps);
  if (s == 0u && t == 0u) {
    save_mean[c] = mean;
    save_invstd[c] = invstd;
    run_mean[c] = P.momentum * run_mean[c] + (1.0 - P.momentum) * mean;
    run_var[c] = P.momentum * run_var[c] + (1.0 - P.momentum) * variance;
  }
  return vec2<f32>(mean, invstd);
}

// Channel c's normalisation in slice s's workgroup (the statistics combined first): mean, gamma·invstd, beta.
fn channel_norm(s: u32, c: u32, t: u32) -> vec3<f32> {
  let st = channel_stats(s, c, t);
  return vec3<f32>(st.x, gamma[c] * st.y, beta[c]);
}

@compute @workgroup_size(WG)
fn forward_train(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let q = channel_norm(wg.x, wg.y, t);
  let r = slice(wg.x);
  var w = walk(wg.y, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    y[w.i] = act((x[w.i] - q.x) * q.y + q.z);
    walk_next(&w);
  }
}

@compute @workgroup_size(WG)
fn forward_train_add(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let q = channel_norm(wg.x, wg.y, t);
  let r = slice(wg.x);
  var w = walk(wg.y, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    y[w.i] = act((x[w.i] - q.x) * q.y + q.z + shortcut[w.i]);
    walk_next(&w);
  }
}

// forward_train_pool's normalisation of the current channel (set before pool_block makes its cells).
var<private> cell_mean: f32;
var<private> cell_scale: f32;
var<private> cell_shift: f32;

// Whether block_cell writes y (not at inference, where nothing reads it).
var<private> cell_keep: bool = true;

// Element i normalised and activated as forward_train (forward_infer) computes it, written to y
// (lib/pool_block.wgsl).
fn block_cell(i: u32) -> f32 {
  let v = act((x[i] - cell_mean) * cell_scale + cell_shift);
  if (cell_keep) { y[i] = v; }
  return v;
}

// forward_train with the pooling after its activation (windows apart: lib/pool_block.wgsl) in the same
// pass: workgroup (s, c) takes windows [s·P.windows, (s + 1)·P.windows) of channel c's N·OH·OW, each
// thread a window at a time, writing its block of y and the pooled value (and argmax for max pooling,
// iy·W + ix within the plane) at (n·C + c)·OH·OW + oy·OW + ox: bit for bit forward_train, then the pooling.
@compute @workgroup_size(WG)
fn forward_train_pool(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let s = wg.x;
  let c = wg.y;
  let q = channel_norm(s, c, t);
  cell_mean = q.x;
  cell_scale = q.y;
  cell_shift = q.z;
  let ohw = P.oh * P.ow;
  let lo = s * P.windows;
  let hi = min(lo + P.windows, P.n * ohw);
  for (var o = lo + t; o < hi; o += WG) {
    let n = o / ohw;
    let q = o - n * ohw;
    let oy = q / P.ow;
    let m = pool_block((n * P.c + c) * P.hw, oy, q - oy * P.ow);
    let po = (n * P.c + c) * ohw + q;
    pooled[po] = m.value;
    if (POOL == 1u) { argmax[po] = m.arg; }
  }
}

// Channel c's normalisation from the running statistics: mean, gamma / sqrt(var + eps), beta.
fn infer_norm(c: u32) -> vec3<f32> {
  return vec3<f32>(run_mean[c], gamma[c] * inverseSqrt(run_var[c] + P.eps), beta[c]);
}

// A thread's grid-stride walk over the flat elements i, i + step, … (lib/stride.wgsl): i's channel c and its
// position p in its plane, stepped by adding as Walk is (step = dn planes and dp positions on, dc = dn mod C).
struct FlatWalk { i: u32, p: u32, c: u32, dp: u32, dc: u32 }

fn flat_walk(i: u32, step: u32) -> FlatWalk {
  let plane = i / P.hw;
  let dn = step / P.hw;
  return FlatWalk(i, i - plane * P.hw, plane % P.c, step - dn * P.hw, dn % P.c);
}

fn flat_next(w: ptr<function, FlatWalk>, step: u32) {
  (*w).i += step;
  (*w).p += (*w).dp;
  (*w).c += (*w).dc;
  if ((*w).p >= P.hw) {
    (*w).p -= P.hw;
    (*w).c += 1u;
  }
  if ((*w).c >= P.c) { (*w).c -= P.c; }
}

@compute @workgroup_size(64)
fn forward_infer(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) li: u32) {
  let step = stride(nwg);
  for (var w = flat_walk(element0(wg, nwg, li), step); w.i < P.n * P.c * P.hw; flat_next(&w, step)) {
    let q = infer_norm(w.c);
    y[w.i] = act((x[w.i] - q.x) * q.y + q.z);
  }
}

// forward_infer writing y = act(z + shortcut), the residual add after the batchnorm (as forward_train_add).
@compute @workgroup_size(64)
fn forward_infer_add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) li: u32) {
  let step = stride(nwg);
  for (var w = flat_walk(element0(wg, nwg, li), step); w.i < P.n * P.c * P.hw; flat_next(&w, step)) {
    let q = infer_norm(w.c);
    y[w.i] = act((x[w.i] - q.x) * q.y + q.z + shortcut[w.i]);
  }
}

// forward_infer with the pooling after its activation (windows apart) in the same pass: a thread a pooled
// output (n, c, oy, ox), 64 per workgroup, 2-D grid; the pooled value only (y is not written: nothing reads
// it at inference; no argmax): bit for bit forward_infer, then the pooling.
@compute @workgroup_size(64)
fn forward_infer_pool(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) li: u32) {
  let o = (wg.x + wg.y * nwg.x) * 64u + li;
  let ohw = P.oh * P.ow;
  if (o >= P.n * P.c * ohw) { return; }
  let plane = o / ohw;
  let c = plane % P.c;
  let norm = infer_norm(c);
  cell_mean = norm.x;
  cell_scale = norm.y;
  cell_shift = norm.z;
  cell_keep = false;
  let q = o - plane * ohw;
  let oy = q / P.ow;
  pooled[o] = pool_block(plane * P.hw, oy, q - oy * P.ow).value;
}

// The output gradient at element i, through the fused activation's derivative at z (recomputed as
// the forward computed it).
fn grad_in(i: u32, mean: f32, g: f32, b: f32) -> f32 {
  if (ACT == 0u) { return dy[i]; }
  return dy[i] * act_grad_x((x[i] - mean) * g + b);
}

// Slice s of channel c's Σg and Σg·xhat, each summed over the workgroup in a fixed tree into red_a[0], red_b[0].
fn slice_sums(s: u32, c: u32, t: u32) {
  let mean = mean_in[c];
  let istd = invstd_in[c];
  let g = gamma[c] * istd;
  let b = beta[c];
  let r = slice(s);
  var sd = 0.0;
  var sdx = 0.0;
  var w = walk(c, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    let d = grad_in(w.i, mean, g, b);
    sd += d;
    sdx += d * (x[w.i] - mean) * istd;
    walk_next(&w);
  }
  red_a[t] = sd;
  red_b[t] = sdx;
  tree(t, WG);
}

@compute @workgroup_size(WG)
fn backward_sums(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let s = wg.x;
  let c = wg.y;
  slice_sums(s, c, t);
  if (t == 0u) {
    let o = (c * P.slices + s) * 2u;
    partial[o] = red_a[0];
    partial[o + 1u] = red_b[0];
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let s = wg.x;
  let c = wg.y;
  if (WHOLE) {
    slice_sums(0u, c, t);
  } else {
    red_a[t] = 0.0;
    red_b[t] = 0.0;
    if (t < P.slices) {
      let o = (c * P.slices + t) * 2u;
      red_a[t] = partial[o];
      red_b[t] = partial[o + 1u];
    }
    tree(t, P.tree);
  }
  let sum_dy = red_a[0];
  let sum_dyx = red_b[0];
  if (s == 0u && t == 0u) {
    dgamma[c] = sum_dyx;
    dbeta[c] = sum_dy;
  }
  let mean = mean_in[c];
  let istd = invstd_in[c];
  let gi = gamma[c] * istd;
  let b = beta[c];
  let mf = f32(P.n * P.hw);
  let k = gamma[c] * istd / mf;
  let r = slice(s);
  var w = walk(c, r.x + t);
  for (var j = r.x + t; j < r.y; j += WG) {
    let i = w.i;
    let xhat = (x[i] - mean) * istd;
    var v = k * (mf * grad_in(i, mean, gi, b) - sum_dy - xhat * sum_dyx);
    if (P.accumulate != 0u) { v += dx[i]; }
    dx[i] = v;
    walk_next(&w);
  }
}
