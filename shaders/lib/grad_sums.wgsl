// The split-K sums of a training step's weight gradients (src/ops/grad-reduce.ts): the weight-gradient
// GEMMs (conv2d_backward_weights, a dense layer's dW in matmul) leave their partial sums unsummed, each
// in its own range of the partials, and one pass sums them all: shaders/grad_reduce.wgsl, which writes
// the gradients, or the optimizer's update (shaders/optimizer.wgsl adam_sums, sgd_sums), which also
// applies them. The arithmetic is reduce_splits' (lib/gemm.wgsl) exactly, so the gradients are the same
// bits: for a segment of S partial tiles of L values and R = red_y threads per output (a power of two),
// thread (x, y) sums, in z order, its contiguous range of ⌈S/R⌉ partials of output x, then the R sums of
// each output meet in the same fixed tree in workgroup memory.
//
// Segments: gs_count() (≤ 32) of them, three vec4s each, gs_seg(3s), gs_seg(3s + 1), gs_seg(3s + 2):
//   [3s]     (first workgroup, L, S, parts offset)     a segment's workgroups run from its first to the next's
//   [3s + 1] (R, cols, sums, rows)                     the partial tile is rows × cols (sums included)
//   [3s + 2] (dW offset, db offset, dW length, db length)  in floats into the gradients as bound
// Output i of a segment is (row, col) = (i / cols, i % cols) of its partial tile; sums = 0: dW[i];
// 1 (a conv, the sums in the last column): dW[row·(cols − 1) + col], db[row] at col = cols − 1;
// 2 (a dense layer, the sums in the last row): dW[i], db[col] at row = rows − 1.
// The including shader defines gs_count(), gs_seg(k) (its uniform's table) and gs_part(j) (float j of
// the partials). A segment's workgroups are ⌈L / (256 / R)⌉ of 256 threads.

var<workgroup> gs_red: array<f32, 256>;

/** Output `at` of the gradients (in floats), its sum `v`; `ok` for the one thread of an output that holds it. */
struct GradSum { at: u32, v: f32, ok: bool }

/** Where output i of a segment of layout `lay` and offsets `out` goes. */
fn gs_target(i: u32, lay: vec4u, out: vec4u) -> u32 {
  let cols = lay.y;
  let row = i / cols;
  let col = i % cols;
  if (lay.z == 1u && col == cols - 1u) { return out.y + row; }
  if (lay.z == 1u) { return out.x + row * (cols - 1u) + col; }
  if (lay.z == 2u && row == lay.w - 1u) { return out.y + col; }
  return out.x + i;
}

/** Workgroup g's outputs: every thread takes part (barriers), thread (x, 0) of each output gets its sum. */
fn grad_sum(g: u32, li: u32) -> GradSum {
  var s = 0u;
  for (var j = 1u; j < gs_count(); j++) {
    if (g >= gs_seg(3u * j).x) { s = j; }
  }
  let head = gs_seg(3u * s);
  let lay = gs_seg(3u * s + 1u);
  let len = head.y;
  let splits = head.z;
  let red_y = lay.x;
  let rx = 256u / red_y;
  let x = li % rx;
  let y = li / rx;
  let i = (g - head.x) * rx + x;
  let per = (splits + red_y - 1u) / red_y;
  let z0 = min(splits, y * per);
  let z1 = min(splits, z0 + per);
  var v = 0.0;
  if (i < len) {
    for (var z = z0; z < z1; z++) { v += gs_part(head.w + z * len + i); }
  }
  gs_red[li] = v;
  workgroupBarrier();
  for (var half = red_y / 2u; half > 0u; half /= 2u) {
    if (y < half) { gs_red[li] += gs_red[li + half * rx]; }
    workgroupBarrier();
  }
  let ok = y == 0u && i < len;
  return GradSum(select(0u, gs_target(i, lay, gs_seg(3u * s + 2u)), ok), gs_red[x], ok);
}

/** Whether element e of the gradients is one a segment's sums write (its dW, or its db). */
fn gs_written(e: u32) -> bool {
  for (var s = 0u; s < gs_count(); s++) {
    let out = gs_seg(3u * s + 2u);
    if ((e >= out.x && e < out.x + out.z) || (e >= out.y && e < out.y + out.w)) { return true; }
  }
  return false;
}
