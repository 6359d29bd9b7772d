// The fixed-order sum of a loss's partial totals: G partial pairs (the loss sum as f32 bits, the correct
// count), one a 32 rows, as the loss pass (shaders/softmax_xent.wgsl) or a dense layer's GEMM with the loss
// in its epilogue (shaders/matmul_xent.wgsl) leaves them. Used by the loss's totals pass (softmax_xent.wgsl
// total) and by a training step's update, which adds them up as it ends the step (shaders/optimizer.wgsl):
// the same additions in the same order, so the totals are the same bits whichever adds them.
// Slot u of 256 sums pairs u, u + 256, … in order; a fixed tree sums the 256 slots; one thread adds the
// result in. The including shader defines lt_pair(g) (pair g as vec2u) and lt_add(loss, hits).

var<workgroup> lt_loss: array<f32, 256>;
var<workgroup> lt_hit: array<u32, 256>;

// By `threads` threads of a workgroup, of which this is `t` (every thread takes part: barriers).
fn loss_totals(t: u32, threads: u32, groups: u32) {
  for (var u = t; u < 256u; u += threads) {
    var l = 0.0;
    var h = 0u;
    for (var g = u; g < groups; g += 256u) {
      let q = lt_pair(g);
      l += bitcast<f32>(q.x);
      h += q.y;
    }
    lt_loss[u] = l;
    lt_hit[u] = h;
  }
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    for (var u = t; u < k; u += threads) {
      lt_loss[u] += lt_loss[u + k];
      lt_hit[u] += lt_hit[u + k];
    }
    workgroupBarrier();
  }
  if (t == 0u) { lt_add(lt_loss[0], lt_hit[0]); }
}
