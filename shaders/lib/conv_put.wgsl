// How a conv forward's output value is stored where it is written one at a time (the lane and Winograd
// kernels), prepended after lib/conv_out.wgsl or lib/conv_out_pool.wgsl: y[i] = act(v), v the sum and its
// bias. lib/conv_put_add.wgsl is its twin with a residual add.

fn conv_put(i: u32, v: f32) {
  y[i] = act(v);
}
