// The split-K reductions of a training step's weight gradients in one pass (src/ops/grad-reduce.ts):
// the weight-gradient GEMMs (conv2d_backward_weights, a dense layer's dW in matmul) leave their
// partial sums unsummed, each in its own range of `parts`, and this kernel sums them all and writes
// dW and db into the gradient buffer, in place of one reduce_splits pass per layer.
// The arithmetic is reduce_splits' (lib/gemm.wgsl) exactly, so the gradients are the same bits: for
// a segment of S partial tiles of L values and R = red_y threads per output (a power of two), thread
// (x, y) sums, in z order, its contiguous range of ⌈S/R⌉ partials of output x, then the R sums of each
// output meet in the same fixed tree in workgroup memory.
//
// Segments: P.count (≤ 8) of them, three vec4s each in P.seg:
//   [3s]     (first workgroup, L, S, parts offset)     a segment's workgroups run from its first to the next's
//   [3s + 1] (R, cols, sums, rows)                     the partial tile is rows × cols (sums included)
//   [3s + 2] (dW offset, db offset, 0, 0)              offsets in floats into `grads`
// Output i of a segment is (row, col) = (i / cols, i % cols) of its partial tile; sums = 0: dW[i];
// 1 (a conv, the sums in the last column): dW[row·(cols − 1) + col], db[row] at col = cols − 1;
// 2 (a dense layer, the sums in the last row): dW[i], db[col] at row = rows − 1.
// Bindings: 0 P, 1 parts (read), 2 grads (read_write; the plan's gradient buffer, whole).
// Dispatch: grid(total workgroups), 256 threads each, a segment's workgroups ⌈L / (256 / R)⌉.

struct Params { count: u32, seg: array<vec4<u32>, 24> }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

var<workgroup> red: array<f32, 256>;

fn store(i: u32, v: f32, lay: vec4u, out: vec4u) {
  let cols = lay.y;
  let row = i / cols;
  let col = i % cols;
  if (lay.z == 1u && col == cols - 1u) {
    grads[out.y + row] = v;
  } else if (lay.z == 1u) {
    grads[out.x + row * (cols - 1u) + col] = v;
  } else if (lay.z == 2u && row == lay.w - 1u) {
    grads[out.y + col] = v;
  } else {
    grads[out.x + i] = v;
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let g = wg.x + wg.y * nwg.x;
  var s = 0u;
  for (var j = 1u; j < P.count; j++) {
    if (g >= P.seg[3u * j].x) { s = j; }
  }
  let head = P.seg[3u * s];
  let lay = P.seg[3u * s + 1u];
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
    for (var z = z0; z < z1; z++) { v += parts[head.w + z * len + i]; }
  }
  red[li] = v;
  workgroupBarrier();
  for (var span = red_y / 2u; span > 0u; span /= 2u) {
    if (y < span) { red[li] += red[li + span * rx]; }
    workgroupBarrier();
  }
  if (y == 0u && i < len) { store(i, red[x], lay, P.seg[3u * s + 2u]); }
}
