// A dense layer's GEMM whose epilogue is the softmax-xent loss (src/ops/matmul.ts matmulXent, the planner's
// choice for a training step's logits, src/graph/plan.ts lossStep): each workgroup holds whole rows of the
// [N, C] output (C ≤ 128 columns; the whole output, or a band of whole 32-row groups), stores the logits as
// main does, then gives each of its rows its loss and dlogits (lib/xent.wgsl, the loss pass's math) and sums
// each 32 rows in the loss pass's tree. One workgroup adds the batch's loss sum and correct count into stats
// itself, in the loss pass's order; more leave each 32 rows' sums in partials, as the loss pass of N > 256
// rows does, for the totals pass or the step's update to add (lib/loss_totals.wgsl). Workgroup 0 copies the
// step counter (word 1 = word 0) as the loss pass does. The same bits as this matmul then
// shaders/softmax_xent.wgsl and its totals.
// Entry main_xent. Bindings: matmul's 1 a, 2 b, 3 bias, 4 c (the logits, written); 6 labels [N] u32,
// 7 dlogits [N, C] (written when P.grad ≠ 0; else any buffer), 8 stats [2] u32, 9 counter u32 [≥ 2],
// 10 partials u32 [2·⌈N/32⌉] (written when the dispatch is more than one workgroup; else any buffer).
// Uniform: matmul's P with the loss's smoothing, loss_scale (dlogits = (softmax − target)·loss_scale)
// and grad. Dispatch: one workgroup a band of rows (1 × ⌈N/BM⌉).

@group(0) @binding(6) var<storage, read> labels: array<u32>;
@group(0) @binding(7) var<storage, read_write> xent_dlogits: array<f32>;
@group(0) @binding(8) var<storage, read_write> xent_stats: array<u32>;
@group(0) @binding(9) var<storage, read_write> xent_counter: array<u32>;
@group(0) @binding(10) var<storage, read_write> xent_partials: array<u32>;

// lib/xent.wgsl's view of this GEMM: the logits it stored, the classes its columns.
fn xent_z(k: u32) -> f32 { return c[k]; }
fn xent_put_dlogit(k: u32, v: f32) { xent_dlogits[k] = v; }
fn xent_put_loss(i: u32, v: f32) {}
fn xent_classes() -> u32 { return P.n; }
fn xent_smoothing() -> f32 { return P.smoothing; }
fn xent_scale() -> f32 { return P.loss_scale; }
fn xent_grad() -> bool { return P.grad != 0u; }

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main_xent(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = tile_of(wg);
  gemm_run(t, 0u, P.k, lid, li);
  gemm_emit_store(t, lid, li);
  // Every thread's stored logits visible to the workgroup before any row reads them.
  storageBarrier();
  // Slot u is row row0 + u of this band (BM ≤ 128 rows: the 256 slots hold them, the rest 0).
  let rows = min(GEMM_BM, P.m - t.row0);
  for (var u = li; u < 256u; u += GEMM_T) {
    var r = vec2<f32>(0.0, 0.0);
    if (u < rows) { r = xent_row(t.row0 + u); }
    row_loss[u] = r.x;
    row_hit[u] = u32(r.y);
  }
  xent_trees(li, GEMM_T, 256u);
  if (li != 0u) { return; }
  if (nwg.y == 1u) {
    let q = xent_totals();
    xent_stats[0] = bitcast<u32>(bitcast<f32>(xent_stats[0]) + q.loss);
    xent_stats[1] += q.hits;
  } else {
    // BM a multiple of 32: this band's 32-row groups are groups row0/32 onwards.
    for (var q = 0u; q < (rows + 31u) / 32u; q++) {
      let g = t.row0 / 32u + q;
      xent_partials[2u * g] = bitcast<u32>(xent_q(q));
      xent_partials[2u * g + 1u] = xent_h(q);
    }
  }
  if (wg.y == 0u) { xent_counter[1] = xent_counter[0]; }
}
