// dX's store of the plain conv backward-input kernels (conv2d_backward_input.wgsl and its lanes twin):
// dx[idx] = v, or added to it (ACCUM, the kernel's override: an input that fans out).

fn dx_put(idx: u32, v: f32) {
  var x = v;
  if (ACCUM) { x += dx[idx]; }
  dx[idx] = x;
}
