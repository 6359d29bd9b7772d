// Softmax + cross-entropy of one row of logits, and the fixed-order sums of a batch's loss and correct
// count, shared by shaders/softmax_xent.wgsl (the loss pass) and shaders/matmul_xent.wgsl (a dense
// layer's GEMM whose epilogue is the loss). Math as softmax_xent.wgsl's header says. The including
// shader defines xent_z(k) (logit k, row-major [N, C]), xent_put_dlogit(k, v) and xent_put_loss(i, v),
// and its uniform's C, smoothing, scale and grad (through xent_classes(), xent_smoothing(),
// xent_scale(), xent_grad()); the labels are its binding `labels`.

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

// Row i's loss (xent_put_loss) and whether its prediction is right; its dlogits when xent_grad().
fn xent_row(i: u32) -> vec2<f32> {
  let c = xent_classes();
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

// Each 64 rows' fixed tree over row_loss and row_hit's first `slots` (64 or 256; slot u the row within
// them, every slot filled first), by `threads` threads of which this is `t`; [0] (and [64], [128], [192])
// then hold the sums. The same additions in the same order whatever the thread count.
fn xent_trees(t: u32, threads: u32, slots: u32) {
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    for (var u = t; u < slots; u += threads) {
      if (u % 64u < h) {
        row_loss[u] += row_loss[u + h];
        row_hit[u] += row_hit[u + h];
      }
    }
    workgroupBarrier();
  }
}

// 256 rows' totals from their four 64-row sums (after xent_trees), in the totals pass's order
// ((q0 + q2) + (q1 + q3): softmax_xent.wgsl total over four partials), for the stats words.
struct XentTotals { loss: f32, hits: u32 }

fn xent_totals() -> XentTotals {
  let sum = (row_loss[0] + row_loss[128]) + (row_loss[64] + row_loss[192]);
  return XentTotals(sum, (row_hit[0] + row_hit[128]) + (row_hit[64] + row_hit[192]));
}
