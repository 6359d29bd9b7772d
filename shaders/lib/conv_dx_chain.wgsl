// dX's store of a conv whose dX runs the backward chain of the layers below it (src/graph/fuse.ts),
// prepended in place of lib/conv_dx_out.wgsl after lib/chain_store.wgsl: the value at dX element idx
// (NCHW) is the chain's output gradient there, and dx (binding 3) is the chain's input gradient, which
// chain_store writes. No accumulation.

fn dx_put(idx: u32, v: f32) {
  chain_store(idx, v);
}

// dx_put of element idx at (plane, y, x) of the dX: the chain's pooled output is the conv's input, so that is
// its pooled position.
fn dx_put_at(idx: u32, plane: u32, y: u32, x: u32, v: f32) {
  chain_store_at(idx, plane, y, x, v);
}

fn chain_put(k: u32, v: f32) {
  dx[k] = v;
}
