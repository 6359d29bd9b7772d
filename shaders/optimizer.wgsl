// Optimizer updates, in place, one thread per parameter element (Keras 3 formulas).
// count elements; param, grad, m, v, velocity, avg are [count] f32 in one layout: a whole pack of
// tensors (src/gpu/packed.ts: every trainable tensor of a model at its aligned offset, zero padding
// between them, which every update below keeps at zero) or one tensor, bound as byte ranges.
// Per-step values come from GPU buffers so that many steps can be recorded into one submit:
//   counter u32[≥2]: counter[0] = steps completed before this one (s); t = s + 1
//   lr_table f32[L]:  lr = lr_table[min(s, L − 1)]  (L = 1: a constant rate)
// ENDS_STEP (a training step's update, the step's last pass): s is read from counter[1], the snapshot of
// counter[0] the step's loss pass took (shaders/softmax_xent.wgsl), and one thread ends the step with
// counter[0] = counter[1] + 1; no thread of the pass reads counter[0], so none sees it change.
// Decoupled weight decay (Keras 3 `weight_decay`, PyTorch AdamW), from the pre-update p:
//   p ← p − lr·wd·p
// sgd (Keras SGD; velocity holds −lr-scaled steps, not PyTorch's momentum buffer of gradients):
//   momentum μ = 0:   p ← p − lr·g
//   else:             vel ← μ·vel − lr·g;  p ← p + vel              (nesterov: p ← p + μ·vel − lr·g)
// adam (Keras Adam: ε added to sqrt(v) before bias correction is applied to the step size):
//   L2 mode (decoupled = 0, wd > 0): g ← g + wd·p   (PyTorch Adam weight_decay)
//   m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
//   p ← p − lr·sqrt(1 − β2^t)/(1 − β1^t) · m/(sqrt(v) + ε)
//   1 − β^t = −expm1(t·ln β), with ln β computed on the host in float64: exact enough at t = 1.
// Both, when ema ≠ 0: the weight average (Keras use_ema) from the updated weight, in the same pass:
//   avg ← avg + (1 − ema_decay)·(p − avg)
// advance_counter: counter[0] += 1, for a step whose update does not end it (no trainable tensor).
//
// Bindings (entries reuse numbers; shared ones mean the same thing):
//   sgd:  0 S, 1 counter (rw), 2 lr_table, 3 param (rw), 4 grad, 5 avg (rw; a dummy without ema),
//         6 velocity (rw; a dummy when μ = 0)
//   adam: 0 A, 1 counter (rw), 2 lr_table, 3 param (rw), 4 grad, 5 avg (rw; a dummy without ema),
//         6 m (rw), 7 v (rw)
//   advance_counter: 0 counter (rw)
// Dispatch: sgd/adam 64 threads per workgroup, Gpu.spread(count) workgroups, grid-stride loops
// over i (lib/stride.wgsl, prepended by the loader); advance_counter one workgroup of one thread.

struct SgdParams { count: u32, momentum: f32, weight_decay: f32, nesterov: u32, ema: u32, ema_decay: f32 }
struct AdamParams {
  count: u32, beta1: f32, beta2: f32, eps: f32,
  weight_decay: f32, decoupled: u32, ln_beta1: f32, ln_beta2: f32,
  ema: u32, ema_decay: f32,
}
@group(0) @binding(0) var<uniform> S: SgdParams;
@group(0) @binding(0) var<uniform> A: AdamParams;
@group(0) @binding(0) var<storage, read_write> counter_rw: array<u32>;

@group(0) @binding(1) var<storage, read_write> counter: array<u32>;
override ENDS_STEP: bool = false;
@group(0) @binding(2) var<storage, read> lr_table: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> avg: array<f32>;
@group(0) @binding(6) var<storage, read_write> state1: array<f32>; // sgd velocity, adam m
@group(0) @binding(7) var<storage, read_write> state2: array<f32>; // adam v

// The running step s: counter[0], or with ENDS_STEP its snapshot counter[1].
fn running_step() -> u32 {
  if (ENDS_STEP) { return counter[1]; }
  return counter[0];
}

fn learning_rate() -> f32 {
  return lr_table[min(running_step(), arrayLength(&lr_table) - 1u)];
}

// With ENDS_STEP, thread 0 of workgroup 0 ends the step: counter[0] = s + 1.
fn end_step(wg: vec3u, li: u32) {
  if (ENDS_STEP && wg.x == 0u && wg.y == 0u && wg.z == 0u && li == 0u) { counter[0] = counter[1] + 1u; }
}

// 1 − β^t from x = t·ln β ≤ 0: a Taylor series of −expm1(x) where 1 − exp(x) would cancel.
fn one_minus_pow(x: f32) -> f32 {
  if (x < -0.5) { return 1.0 - exp(x); }
  var s = 1.0;
  for (var k = 9.0; k >= 2.0; k -= 1.0) { s = 1.0 + s * x / k; }
  return -x * s;
}

// The new weight p of element i stored, and averaged in when `on`.
fn store(i: u32, p: f32, on: u32, decay: f32) {
  param[i] = p;
  if (on != 0u) { avg[i] += (1.0 - decay) * (p - avg[i]); }
}

@compute @workgroup_size(64)
fn sgd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) li: u32) {
  let lr = learning_rate();
  end_step(wg, li);
  for (var i = element0(wg, nwg, li); i < S.count; i += stride(nwg)) {
    let g = grad[i];
    var p = param[i];
    p -= lr * S.weight_decay * p;
    if (S.momentum == 0.0) {
      p -= lr * g;
    } else {
      let vel = S.momentum * state1[i] - lr * g;
      state1[i] = vel;
      if (S.nesterov != 0u) { p += S.momentum * vel - lr * g; } else { p += vel; }
    }
    store(i, p, S.ema, S.ema_decay);
  }
}

@compute @workgroup_size(64)
fn adam(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  // The step's rate and bias correction, once per thread (a grid-stride thread updates many elements).
  let t = f32(running_step() + 1u);
  let lr = learning_rate();
  end_step(wg, li);
  let alpha = lr * sqrt(one_minus_pow(t * A.ln_beta2)) / one_minus_pow(t * A.ln_beta1);
  for (var i = element0(wg, nwg, li); i < A.count; i += stride(nwg)) {
    var g = grad[i];
    var p = param[i];
    if (A.decoupled != 0u) { p -= lr * A.weight_decay * p; } else { g += A.weight_decay * p; }
    let m = state1[i] + (g - state1[i]) * (1.0 - A.beta1);
    let v = state2[i] + (g * g - state2[i]) * (1.0 - A.beta2);
    state1[i] = m;
    state2[i] = v;
    store(i, p - alpha * m / (sqrt(v) + A.eps), A.ema, A.ema_decay);
  }
}

@compute @workgroup_size(1)
fn advance_counter() {
  counter_rw[0] += 1u;
}
