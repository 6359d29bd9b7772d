// How a conv forward's output value is stored where it is written alone (lib/conv_out.wgsl's conv_store4,
// and the lane and Winograd kernels' plain stores): y[i] = act(v), v the sum and its bias. Prepended by
// the loader; lib/conv_put_add.wgsl is its twin with a residual add.

fn conv_put(i: u32, v: f32) {
  y[i] = act(v);
}
