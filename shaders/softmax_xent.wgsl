// Fused softmax + categorical cross-entropy from logits (Keras, from_logits=True: no clipping),
// with label smoothing, and plain row softmax for prediction.
// N samples, C classes; logits [N,C] row-major f32, labels [N] u32 in [0, C).
//   target_j = (1 − ε)·[j == label] + ε/C                  (Keras label_smoothing ε)
//   loss_i   = logsumexp(z_i) − Σ_j target_j·z_ij           (max subtracted first: finite for any logits)
//   dL/dlogits = (softmax(z) − target) · scale              (scale = 1/N for a mean loss)
//   stats (u32 words): [0] += Σ_i loss_i, an f32 stored as its bits (bitcast);
//                      [1] += #{i : argmax_j z_ij == label_i}, the first max index on ties.
// A label ≥ C has no one-hot part (its loss is the smoothing term only) and never counts as correct.
//
// Entry xent: ONE workgroup of 256 threads; thread t handles rows t, t+256, … in order, then a fixed
// tree sums the per-thread partials and thread 0 adds them into stats: bit-identical run to run.
//   Bindings: 1 logits (read), 2 labels (read), 3 dlogits (written when P.grad ≠ 0; bind a dummy
//   otherwise), 4 loss [N] (written), 5 stats [2] u32 (read_write, accumulated across steps).
// Entry softmax: probs = softmax(logits) row-wise, one thread per row, 64 per workgroup, 2-D grid
//   (grid() in runtime.ts; row = (wg.x + wg.y·nwg.x)·64 + lid). Bindings: 1 logits, 2 probs [N,C].

struct Params { n: u32, classes: u32, smoothing: f32, scale: f32, grad: u32 }
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<u32>;
// Entry softmax only (WGSL lets entry points that never share a variable reuse its binding).
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

const WG = 256u;
var<workgroup> part_loss: array<f32, 256>;
var<workgroup> part_hit: array<u32, 256>;

// Row maximum and the first index holding it.
fn row_max(row: u32) -> vec2<f32> {
  var m = logits[row];
  var am = 0u;
  for (var j = 1u; j < P.classes; j++) {
    let z = logits[row + j];
    if (z > m) { m = z; am = j; }
  }
  return vec2<f32>(m, f32(am)); // am < 2^24: exact as f32
}

@compute @workgroup_size(256)
fn xent(@builtin(local_invocation_index) t: u32) {
  let c = P.classes;
  let off = P.smoothing / f32(c);
  let on = 1.0 - P.smoothing;
  var lsum = 0.0;
  var hits = 0u;
  for (var i = t; i < P.n; i += WG) {
    let row = i * c;
    let mx = row_max(row);
    let m = mx.x;
    var s = 0.0;
    var dsum = 0.0; // Σ_j (z_j − m), for the smoothing term
    for (var j = 0u; j < c; j++) {
      let d = logits[row + j] - m;
      s += exp(d);
      dsum += d;
    }
    let y = labels[i];
    var dy = 0.0;
    if (y < c) { dy = logits[row + y] - m; }
    // Σ_j target_j·(lse − d_j) with Σ_j target_j = 1.
    let lse = log(s);
    let li = lse - on * dy - off * dsum;
    loss[i] = li;
    lsum += li;
    if (u32(mx.y) == y) { hits += 1u; }
    if (P.grad != 0u) {
      let inv = 1.0 / s;
      for (var j = 0u; j < c; j++) {
        let p = exp(logits[row + j] - m) * inv;
        let tj = off + select(0.0, on, j == y);
        dlogits[row + j] = (p - tj) * P.scale;
      }
    }
  }
  part_loss[t] = lsum;
  part_hit[t] = hits;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) {
      part_loss[t] += part_loss[t + h];
      part_hit[t] += part_hit[t + h];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    stats[0] = bitcast<u32>(bitcast<f32>(stats[0]) + part_loss[0]);
    stats[1] += part_hit[0];
  }
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
