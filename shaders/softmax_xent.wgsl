// Fused softmax + categorical cross-entropy from logits (Keras, from_logits=True: no clipping),
// with label smoothing, and plain row softmax for prediction.
// N samples, C classes; logits [N,C] row-major f32, labels [N] u32 in [0, C).
//   target_j = (1 − ε)·[j == label] + ε/C                  (Keras label_smoothing ε)
//   loss_i   = logsumexp(z_i) − Σ_j target_j·z_ij           (max subtracted first: finite for any logits)
//   dL/dlogits = (softmax(z) − target) · scale              (scale = 1/N for a mean loss)
//   stats (u32 words): [0] += Σ_i loss_i, an f32 stored as its bits (bitcast);
//                      [1] += #{i : argmax_j z_ij == label_i}, the first max index on ties.
// A label ≥ C has no one-hot part (its loss is the smoothing term only) and never counts as correct.
// The totals are fixed-order sums (one pass up to 256 rows, two above, the same bits either way), so
// they are bit-identical run to run (no float atomics):
//
// Entry xent: one thread per row, XENT_WG rows per workgroup on a 2-D grid (grid() in runtime.ts;
//   group = wg.x + wg.y·nwg.x, row = group·XENT_WG + lid). Each writes its row's loss (and dlogits),
//   then a fixed tree sums each 32 rows. XENT_WG = 32 (N > 256): G = ⌈N/32⌉ workgroups each leave
//   their partials for the total pass: partials[2g] = the loss sum (f32 bits), partials[2g + 1] = the
//   correct count. XENT_WG = 256 (N ≤ 256, P.inline_total ≠ 0): one workgroup adds its eight 32-row
//   sums into stats itself in the total pass's tree over eight partials (lib/xent.wgsl xent_totals), so
//   the totals are the same bits either way.
//   With P.snapshot ≠ 0 (a training step's loss pass) thread 0 of group 0 also copies the step counter:
//   counter[1] = counter[0], the running step the step's update reads when it ends the step
//   (shaders/optimizer.wgsl ENDS_STEP).
//   Bindings: 1 logits (read), 2 labels (read), 3 dlogits (written when P.grad ≠ 0; bind a dummy
//   otherwise), 4 loss [N] (written), 5 partials u32 [2G] (written), 6 stats [2] u32 (read_write), 7
//   counter u32 [≥ 2] (read_write); unused ones bound to a dummy.
// Entry total: ONE workgroup of 256 threads adds the partials into stats in lib/loss_totals.wgsl's fixed
//   order (a training step's update may add them instead, in the same order: shaders/optimizer.wgsl).
//   Bindings: 1 partials u32 [2G] (read), 2 stats [2] u32 (read_write, accumulated across steps).
// The row math and the 32-row trees are lib/xent.wgsl's (prepended by the loader), shared with a dense
// layer whose GEMM ends in this loss (shaders/matmul_xent.wgsl); the totals' sum lib/loss_totals.wgsl's.
// Entry softmax: probs = softmax(logits) row-wise, one thread per row, 64 per workgroup, 2-D grid
//   (row = (wg.x + wg.y·nwg.x)·64 + lid). Bindings: 1 logits, 2 probs [N,C].

struct Params { n: u32, classes: u32, smoothing: f32, scale: f32, grad: u32, inline_total: u32, snapshot: u32 }
struct TotalParams { groups: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(0) var<uniform> T: TotalParams;

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<u32>;
@group(0) @binding(6) var<storage, read_write> xent_stats: array<u32>;
@group(0) @binding(7) var<storage, read_write> xent_counter: array<u32>;
// Entries total and softmax only (WGSL lets entry points that never share a variable reuse its binding).
@group(0) @binding(1) var<storage, read> group_totals: array<u32>;
@group(0) @binding(2) var<storage, read_write> stats: array<u32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

override XENT_WG: u32 = 32u;

// lib/xent.wgsl's view of this pass: the logits, dlogits and loss bindings, the uniform's fields.
fn xent_z(k: u32) -> f32 { return logits[k]; }
fn xent_put_dlogit(k: u32, v: f32) { dlogits[k] = v; }
fn xent_put_loss(i: u32, v: f32) { loss[i] = v; }
fn xent_classes() -> u32 { return P.classes; }
fn xent_smoothing() -> f32 { return P.smoothing; }
fn xent_scale() -> f32 { return P.scale; }
fn xent_grad() -> bool { return P.grad != 0u; }

@compute @workgroup_size(XENT_WG)
fn xent(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let group = wg.x + wg.y * nwg.x;
  let i = group * XENT_WG + t;
  var r = vec2<f32>(0.0, 0.0);
  if (i < P.n) { r = xent_row(i); }
  row_loss[t] = r.x;
  row_hit[t] = u32(r.y);
  xent_trees(t, XENT_WG, XENT_WG);
  if (t != 0u) { return; }
  if (P.inline_total != 0u) {
    let q = xent_totals();
    xent_stats[0] = bitcast<u32>(bitcast<f32>(xent_stats[0]) + q.loss);
    xent_stats[1] += q.hits;
  } else if (group < (P.n + 31u) / 32u) {
    // Workgroups past the last group (the 2-D grid's rounding) have no partials to write.
    partials[2u * group] = bitcast<u32>(row_loss[0]);
    partials[2u * group + 1u] = row_hit[0];
  }
  if (P.snapshot != 0u && group == 0u) { xent_counter[1] = xent_counter[0]; }
}

fn lt_pair(g: u32) -> vec2u { return vec2u(group_totals[2u * g], group_totals[2u * g + 1u]); }
fn lt_add(l: f32, h: u32) {
  stats[0] = bitcast<u32>(bitcast<f32>(stats[0]) + l);
  stats[1] += h;
}

@compute @workgroup_size(256)
fn total(@builtin(local_invocation_index) t: u32) {
  loss_totals(t, 256u, T.groups);
}

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * nwg.x) * 64u + li;
  if (i >= P.n) { return; }
  let row = i * P.classes;
  let m = row_max(row).x;
  var s = 0.0;
  for (var j = 0u; j < P.classes; j++) { s += exp(logits[row + j] - m); }
  let inv = 1.0 / s;
  for (var j = 0u; j < P.classes; j++) { probs[row + j] = exp(logits[row + j] - m) * inv; }
}
