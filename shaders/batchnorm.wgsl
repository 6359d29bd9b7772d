// Batch normalization per channel over N·HW (Keras BatchNormalization on the channel axis).
// N batch, C channels, HW = H·W spatial (1 for dense [N,F] outputs, with F = C); x, y, dy, dx are
// NCHW row-major f32, element (n, c, p) at (n·C + c)·HW + p; per-channel vectors are [C]; M = N·HW.
//   train:    mean, var = batch mean and biased variance, in two passes (Σx, then Σ(x − mean)²)
//             y = gamma·(x − mean)·invstd + beta,  invstd = 1/sqrt(var + eps)
//             running = momentum·running + (1 − momentum)·batch, for mean and var (Keras)
//   infer:    the same y from the running mean and variance
//   backward: dL/dx = (gamma·invstd/M)·(M·dy − Σdy − xhat·Σ(dy·xhat)), dgamma = Σ dy·xhat, dbeta = Σ dy
// Entries (WGSL lets entry points that never share a variable reuse a binding number):
//   forward_train: one workgroup of 256 per channel, workgroups (C). Bindings 1 x, 2 gamma, 3 beta,
//     4 runMean, 5 runVar (both updated in place), 6 y, 7 saveMean, 8 saveInvStd (written).
//   forward_infer: one thread per element, 64 per workgroup, 2-D grid (grid() in runtime.ts).
//     Bindings 1 x, 2 gamma, 3 beta, 4 runMean, 5 runVar (read), 6 y.
//   backward: one workgroup of 256 per channel, workgroups (C). Bindings 1 x, 2 gamma, 3 dy,
//     4 saveMean, 5 saveInvStd, 6 dx (+= when P.accumulate ≠ 0), 7 dgamma, 8 dbeta (written).
// Reductions: thread t sums elements t, t+256, … in order, then a fixed tree: deterministic.

struct Params { n: u32, c: u32, hw: u32, eps: f32, momentum: f32, accumulate: u32 }
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> save_invstd: array<f32>;
// backward only
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> mean_in: array<f32>;
@group(0) @binding(5) var<storage, read> invstd_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> dbeta: array<f32>;

const WG = 256u;
var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

// Flat index of the j-th element (j < M) of channel c.
fn at(c: u32, j: u32) -> u32 {
  let n = j / P.hw;
  return (n * P.c + c) * P.hw + (j - n * P.hw);
}

// Sums red_a and red_b over the workgroup in a fixed tree into [0]. Every thread must call it, and
// read [0] before a barrier precedes the next writes.
fn tree(t: u32) {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) {
      red_a[t] += red_a[t + h];
      red_b[t] += red_b[t + h];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn forward_train(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.x;
  let m = P.n * P.hw;
  var s = 0.0;
  for (var j = t; j < m; j += WG) { s += x[at(c, j)]; }
  red_a[t] = s;
  red_b[t] = 0.0;
  tree(t);
  let mean = red_a[0] / f32(m);
  workgroupBarrier();
  var v = 0.0;
  for (var j = t; j < m; j += WG) {
    let d = x[at(c, j)] - mean;
    v += d * d;
  }
  red_a[t] = v;
  tree(t);
  let variance = red_a[0] / f32(m);
  let invstd = inverseSqrt(variance + P.eps);
  if (t == 0u) {
    save_mean[c] = mean;
    save_invstd[c] = invstd;
    run_mean[c] = P.momentum * run_mean[c] + (1.0 - P.momentum) * mean;
    run_var[c] = P.momentum * run_var[c] + (1.0 - P.momentum) * variance;
  }
  let g = gamma[c] * invstd;
  let b = beta[c];
  for (var j = t; j < m; j += WG) {
    let i = at(c, j);
    y[i] = (x[i] - mean) * g + b;
  }
}

@compute @workgroup_size(64)
fn forward_infer(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * nwg.x) * 64u + li;
  if (i >= P.n * P.c * P.hw) { return; }
  let c = (i / P.hw) % P.c;
  let g = gamma[c] * inverseSqrt(run_var[c] + P.eps);
  y[i] = (x[i] - run_mean[c]) * g + beta[c];
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.x;
  let m = P.n * P.hw;
  let mean = mean_in[c];
  let istd = invstd_in[c];
  var sd = 0.0;
  var sdx = 0.0;
  for (var j = t; j < m; j += WG) {
    let i = at(c, j);
    let d = dy[i];
    sd += d;
    sdx += d * (x[i] - mean) * istd;
  }
  red_a[t] = sd;
  red_b[t] = sdx;
  tree(t);
  let sum_dy = red_a[0];
  let sum_dyx = red_b[0];
  if (t == 0u) {
    dgamma[c] = sum_dyx;
    dbeta[c] = sum_dy;
  }
  let mf = f32(m);
  let k = gamma[c] * istd / mf;
  for (var j = t; j < m; j += WG) {
    let i = at(c, j);
    let xhat = (x[i] - mean) * istd;
    var v = k * (mf * dy[i] - sum_dy - xhat * sum_dyx);
    if (P.accumulate != 0u) { v += dx[i]; }
    dx[i] = v;
  }
}
