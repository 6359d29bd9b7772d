// Softmax + cross-entropy of one row of logits, and the fixed-order sums of a batch's loss and correct
// count, shared by shaders/softmax_xent.wgsl (the loss pass) and shaders/matmul_xent.wgsl (a dense
// layer's GEMM whose epilogue is the loss). Math as softmax_xent.wgsl's header says. The including
// shader defines xent_z(k) (logit k, row-major [N, C]), xent_put_dlogit(k, v) and xent_put_loss(i, v),
// and its uniform's C, smoothing, scale and grad (through xent_classes(), xent_smoothing(),
// xent_scale(), xent_grad()); the labels are its binding `labels`. A row of at most XENT_REG classes is read
// once into registers and walked there; a wider one is walked in memory, once a pass.

var<workgroup> row_loss: array<f32, 256>;
var<workgroup> row_hit: array<u32, 256>;

// Row maximum and the first index holding it.
fn row_max(row: u32) -> vec2<f32> {
  var m = xent_z(row);
  var am = 0u;
  for (var j = 1u; j < xent_classes(); j++) {
    let z = xent_z(row + j);
    if (z > m) { m = z; am = j; }
  }
  return vec2<f32>(m, f32(am)); // am < 2^24: exact as f32
}

// Classes at most of a row read once into registers (XENT_REG independent loads, not a walk a pass).
const XENT_REG = 16u;

// Row i's loss (xent_put_loss) and whether its prediction is right; its dlogits when xent_grad().
fn xent_row(i: u32) -> vec2<f32> {
  let c = xent_classes();
  if (c <= XENT_REG) { return xent_row_held(i, c); }
  let off = xent_smoothing() / f32(c);
  let on = 1.0 - xent_smoothing();
  let row = i * c;
  let mx = row_max(row);
  let m = mx.x;
  var s = 0.0;
  var dsum = 0.0; // Σ_j (z_j − m), for the smoothing term
  for (var j = 0u; j < c; j++) {
    let d = xent_z(row + j) - m;
    s += exp(d);
    dsum += d;
  }
  let y = labels[i];
  var dy = 0.0;
  if (y < c) { dy = xent_z(row + y) - m; }
  // Σ_j target_j·(lse − d_j) with Σ_j target_j = 1.
  let li = log(s) - on * dy - off * dsum;
  xent_put_loss(i, li);
  if (xent_grad()) {
    let inv = 1.0 / s;
    for (var j = 0u; j < c; j++) {
      let p = exp(xent_z(row + j) - m) * inv;
      let tj = off + select(0.0, on, j == y);
      xent_put_dlogit(row + j, (p - tj) * xent_scale());
    }
  }
  return vec2<f32>(li, select(0.0, 1.0, u32(mx.y) == y));
}

// xent_row for c ≤ XENT_REG classes, the row held in registers (loops of constant trip count, guarded by
// c): the same operations in the same order, so the same bits.
fn xent_row_held(i: u32, c: u32) -> vec2<f32> {
  let off = xent_smoothing() / f32(c);
  let on = 1.0 - xent_smoothing();
  let row = i * c;
  var z: array<f32, XENT_REG>;
  for (var j = 0u; j < XENT_REG; j++) {
    if (j < c) { z[j] = xent_z(row + j); }
  }
  var m = z[0];
  var am = 0u;
  for (var j = 1u; j < XENT_REG; j++) {
    if (j < c && z[j] > m) { m = z[j]; am = j; }
  }
  var s = 0.0;
  var dsum = 0.0;
  for (var j = 0u; j < XENT_REG; j++) {
    if (j < c) {
      let d = z[j] - m;
      s += exp(d);
      dsum += d;
    }
  }
  let y = labels[i];
  var dy = 0.0;
  for (var j = 0u; j < XENT_REG; j++) {
    if (j < c && j == y) { dy = z[j] - m; }
  }
  let li = log(s) - on * dy - off * dsum;
  xent_put_loss(i, li);
  if (xent_grad()) {
    let inv = 1.0 / s;
    for (var j = 0u; j < XENT_REG; j++) {
      if (j < c) {
        let p = exp(z[j] - m) * inv;
        let tj = off + select(0.0, on, j == y);
        xent_put_dlogit(row + j, (p - tj) * xent_scale());
      }
    }
  }
  return vec2<f32>(li, select(0.0, 1.0, am == y));
}

// Each 32 rows' fixed tree over row_loss and row_hit's first `slots` (32 or 256; slot u the row within
// them, every slot filled first), by `threads` threads of which this is `t`; [0] (and [32], [64], …, [224])
// then hold the sums. The same additions in the same order whatever the thread count.
fn xent_trees(t: u32, threads: u32, slots: u32) {
  workgroupBarrier();
  for (var h = 16u; h > 0u; h >>= 1u) {
    for (var u = t; u < slots; u += threads) {
      if (u % 32u < h) {
        row_loss[u] += row_loss[u + h];
        row_hit[u] += row_hit[u + h];
      }
    }
    workgroupBarrier();
  }
}

// 256 rows' totals from their eight 32-row sums q0…q7 (after xent_trees), in the totals pass's order
// (lib/loss_totals.wgsl's tree over eight partials: ((q0 + q4) + (q2 + q6)) + ((q1 + q5) + (q3 + q7))).
struct XentTotals { loss: f32, hits: u32 }

fn xent_q(i: u32) -> f32 { return row_loss[32u * i]; }
fn xent_h(i: u32) -> u32 { return row_hit[32u * i]; }

fn xent_totals() -> XentTotals {
  let loss = ((xent_q(0u) + xent_q(4u)) + (xent_q(2u) + xent_q(6u))) +
    ((xent_q(1u) + xent_q(5u)) + (xent_q(3u) + xent_q(7u)));
  let hits = ((xent_h(0u) + xent_h(4u)) + (xent_h(2u) + xent_h(6u))) +
    ((xent_h(1u) + xent_h(5u)) + (xent_h(3u) + xent_h(7u)));
  return XentTotals(loss, hits);
}
