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
// sgd_sums, adam_sums: the same update, where some of the gradients are split-K partial sums the update
// adds up on its way (src/graph/deferred.ts: the weight gradients' sums, lib/grad_sums.wgsl; its segment
// table in U.seg, U.segs segments, offsets relative to the bound ranges). The first U.reduce_groups
// workgroups sum their segments' outputs in grad_reduce's order (so the same gradient bits), write each
// into grad and update its element with it; the others update every element no segment writes, from grad.
// sgd_sums_totals, adam_sums_totals: the same, where the step's loss left its totals as partials (a batch of
// many 32-row groups: src/ops/softmax_xent.ts, a loss in the logits' GEMM: src/ops/matmul.ts matmulXent):
// workgroup 0 first adds them into stats, in the totals pass's order (lib/loss_totals.wgsl), so the
// stats are the same bits as that pass's, with no dispatch of its own.
//
// Bindings (entries reuse numbers; shared ones mean the same thing):
//   sgd:  0 U, 1 counter (rw), 2 lr_table, 3 param (rw), 4 grad, 5 avg (rw; a dummy without ema),
//         6 velocity (rw; a dummy when μ = 0)
//   adam: 0 U, 1 counter (rw), 2 lr_table, 3 param (rw), 4 grad, 5 avg (rw; a dummy without ema),
//         6 m (rw), 7 v (rw)
//   sgd_sums, adam_sums: as sgd, adam, with 4 grad (rw) and 8 parts (the partial sums, read)
//   sgd_sums_totals, adam_sums_totals: as those, with 9 the loss's partials (u32 [2·U.loss_groups], read)
//         and 10 stats (u32 [2], rw)
//   advance_counter: 0 counter (rw)
// Dispatch: sgd/adam 64 threads per workgroup, Gpu.spread(count) workgroups, grid-stride loops
// over i (lib/stride.wgsl, prepended by the loader); sgd_sums/adam_sums 256 threads per workgroup, the
// segments' workgroups then the rest's, grid-stride (the _totals entries alike); advance_counter one
// workgroup of one thread.

// One uniform for both optimizers (each reads its own fields; the other's are 0), and the segment table.
struct Params {
  count: u32, weight_decay: f32, ema: u32, ema_decay: f32,
  momentum: f32, nesterov: u32,
  beta1: f32, beta2: f32, eps: f32, decoupled: u32, ln_beta1: f32, ln_beta2: f32,
  segs: u32, reduce_groups: u32, loss_groups: u32,
  seg: array<vec4<u32>, 96>,
}
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(0) var<storage, read_write> counter_rw: array<u32>;

@group(0) @binding(1) var<storage, read_write> counter: array<u32>;
override ENDS_STEP: bool = false;
@group(0) @binding(2) var<storage, read> lr_table: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_rw: array<f32>; // the _sums entries write the sums
@group(0) @binding(8) var<storage, read> parts: array<f32>;
@group(0) @binding(9) var<storage, read> loss_parts: array<u32>;
@group(0) @binding(10) var<storage, read_write> loss_stats: array<u32>;
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

// Element i's SGD step from its gradient g at rate lr.
fn sgd_element(i: u32, g: f32, lr: f32) {
  var p = param[i];
  p -= lr * U.weight_decay * p;
  if (U.momentum == 0.0) {
    p -= lr * g;
  } else {
    let vel = U.momentum * state1[i] - lr * g;
    state1[i] = vel;
    if (U.nesterov != 0u) { p += U.momentum * vel - lr * g; } else { p += vel; }
  }
  store(i, p, U.ema, U.ema_decay);
}

// Element i's Adam step from its gradient g at rate lr, alpha the step's bias-corrected rate.
fn adam_element(i: u32, g0: f32, lr: f32, alpha: f32) {
  var g = g0;
  var p = param[i];
  if (U.decoupled != 0u) { p -= lr * U.weight_decay * p; } else { g += U.weight_decay * p; }
  let m = state1[i] + (g - state1[i]) * (1.0 - U.beta1);
  let v = state2[i] + (g * g - state2[i]) * (1.0 - U.beta2);
  state1[i] = m;
  state2[i] = v;
  store(i, p - alpha * m / (sqrt(v) + U.eps), U.ema, U.ema_decay);
}

// The step's bias-corrected Adam rate, from the running step and lr.
fn adam_alpha(lr: f32) -> f32 {
  let t = f32(running_step() + 1u);
  return lr * sqrt(one_minus_pow(t * U.ln_beta2)) / one_minus_pow(t * U.ln_beta1);
}

@compute @workgroup_size(64)
fn sgd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) li: u32) {
  let lr = learning_rate();
  end_step(wg, li);
  for (var i = element0(wg, nwg, li); i < U.count; i += stride(nwg)) { sgd_element(i, grad[i], lr); }
}

@compute @workgroup_size(64)
fn adam(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  // The step's rate and bias correction, once per thread (a grid-stride thread updates many elements).
  let lr = learning_rate();
  end_step(wg, li);
  let alpha = adam_alpha(lr);
  for (var i = element0(wg, nwg, li); i < U.count; i += stride(nwg)) { adam_element(i, grad[i], lr, alpha); }
}

fn gs_count() -> u32 { return U.segs; }
fn gs_seg(k: u32) -> vec4u { return U.seg[k]; }
fn gs_part(j: u32) -> f32 { return parts[j]; }

// The _sums entries. Workgroup g below U.reduce_groups sums its segments' outputs (grad_sum: every thread
// takes part) and writes each into grad; `ok` for the thread that then updates that element.
fn sum_in(g: u32, li: u32) -> GradSum {
  let r = grad_sum(g, li);
  if (r.ok) { grad_rw[r.at] = r.v; }
  return r;
}

// The other workgroups visit every element from (g − U.reduce_groups)·256 + li in strides of theirs.
fn rest_span(nwg: vec3u) -> u32 { return (nwg.x * nwg.y - U.reduce_groups) * 256u; }

// Two entries alike rather than one with a flag: an entry binds every buffer any function it calls names,
// so sgd_sums must not call adam_element (Adam's v would need a buffer an SGD update does not have).

fn sgd_sums_update(wg: vec3u, nwg: vec3u, li: u32) {
  let lr = learning_rate();
  end_step(wg, li);
  let g = wg.x + wg.y * nwg.x;
  if (g < U.reduce_groups) {
    let r = sum_in(g, li);
    if (r.ok) { sgd_element(r.at, r.v, lr); }
    return;
  }
  for (var i = (g - U.reduce_groups) * 256u + li; i < U.count; i += rest_span(nwg)) {
    if (!gs_written(i)) { sgd_element(i, grad_rw[i], lr); }
  }
}

fn adam_sums_update(wg: vec3u, nwg: vec3u, li: u32) {
  let lr = learning_rate();
  end_step(wg, li);
  let alpha = adam_alpha(lr);
  let g = wg.x + wg.y * nwg.x;
  if (g < U.reduce_groups) {
    let r = sum_in(g, li);
    if (r.ok) { adam_element(r.at, r.v, lr, alpha); }
    return;
  }
  for (var i = (g - U.reduce_groups) * 256u + li; i < U.count; i += rest_span(nwg)) {
    if (!gs_written(i)) { adam_element(i, grad_rw[i], lr, alpha); }
  }
}

// The _sums_totals entries: the _sums entries whose workgroup 0 first adds the loss's partial totals
// (U.loss_groups pairs in loss_parts) into loss_stats, in the totals pass's order (lib/loss_totals.wgsl).
fn lt_pair(g: u32) -> vec2u { return vec2u(loss_parts[2u * g], loss_parts[2u * g + 1u]); }
fn lt_add(l: f32, h: u32) {
  loss_stats[0] = bitcast<u32>(bitcast<f32>(loss_stats[0]) + l);
  loss_stats[1] += h;
}

fn add_loss_totals(wg: vec3u, li: u32) {
  if (wg.x == 0u && wg.y == 0u) { loss_totals(li, 256u, U.loss_groups); }
}

@compute @workgroup_size(256)
fn sgd_sums(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) li: u32) {
  sgd_sums_update(wg, nwg, li);
}

@compute @workgroup_size(256)
fn adam_sums(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) li: u32) {
  adam_sums_update(wg, nwg, li);
}

@compute @workgroup_size(256)
fn sgd_sums_totals(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) li: u32) {
  add_loss_totals(wg, li);
  sgd_sums_update(wg, nwg, li);
}

@compute @workgroup_size(256)
fn adam_sums_totals(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) li: u32) {
  add_loss_totals(wg, li);
  adam_sums_update(wg, nwg, li);
}

@compute @workgroup_size(1)
fn advance_counter() {
  counter_rw[0] += 1u;
}
