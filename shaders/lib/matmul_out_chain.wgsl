// C's store of a dense layer's dX that runs the backward chain of the layers below it (src/graph/fuse.ts),
// prepended in place of lib/matmul_out.wgsl after lib/chain_store.wgsl: the GEMM's value at element
// i = m·N + n is the chain's output gradient at i, and C (binding 4) is the chain's input gradient, which
// chain_store writes (bigger than M·N where the chain unpools). No bias, activation or accumulation.

fn mm_store(i: u32, col: u32, v: f32) {
  chain_store(i, v);
}

fn chain_put(k: u32, v: f32) {
  c[k] = v;
}
