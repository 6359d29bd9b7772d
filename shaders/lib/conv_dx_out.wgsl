// dX's store of the plain conv backward-input kernels (conv2d_backward_input.wgsl and its lanes twin):
// dx[idx] = v, or added to it (ACCUM, the kernel's override: an input that fans out).

fn dx_put(idx: u32, v: f32) {
  var x = v;
  if (ACCUM) { x += dx[idx]; }
  dx[idx] = x;
}

// dx_put of element idx at (plane, y, x) of the dX (the chain's store reads them).
fn dx_put_at(idx: u32, plane: u32, y: u32, x: u32, v: f32) {
  dx_put(idx, v);
}
