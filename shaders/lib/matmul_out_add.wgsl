// C's store of a dense layer whose output only a residual add reads (src/graph/fuse-add.ts), prepended in place
// of lib/matmul_out.wgsl: the add's other input, the shortcut (binding 6), added before the add's activation,
// C[i] = act(op(A)·op(B) + bias + shortcut[i]), as the add kernel sums the layer's output (its own activation
// linear) and the shortcut. No accumulation (src/ops/matmul.ts refuses it).

@group(0) @binding(6) var<storage, read> shortcut: array<f32>;

fn mm_store(i: u32, col: u32, v: f32) {
  var x = v;
  if (HAS_BIAS) { x += bias[col]; }
  c[i] = act(x + shortcut[i]);
}
