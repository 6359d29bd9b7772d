// C's store of the plain matmul kernels (matmul.wgsl, matmul_lanes.wgsl); lib/matmul_out_fused.wgsl
// (a dense layer's dropout), lib/matmul_out_add.wgsl (a residual add) or lib/matmul_out_chain.wgsl (the
// chain below a dX) takes its place in the kernels with a fused epilogue.

fn mm_store(i: u32, col: u32, v: f32) {
  c[i] = mm_value(i, col, v);
}
