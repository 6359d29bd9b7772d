// The stride phases of a conv's dX (the transposed conv), prepended to conv2d_backward_input.wgsl and
// conv2d_backward_input_lanes.wgsl by the loader, reading the including shader's P (lib/conv.wgsl).
// Input rows with (iy + padTop) mod sh = a meet only taps ky = a + sh·u, so phase (a, b) (a < sh, b < sw;
// phase f = a·sw + b) is a stride-1 correlation with no wasted zero terms: with iy = first + sh·j, the
// output row a tap u meets is oy = q + j − u. Stride 1 is one phase: first 0, taps KH, q = padTop.

// One axis of stride phase a: inputs i = first + s·j (j < count), taps a + s·u (u < taps),
// and the output they meet, o = q + j − u.
struct Phase { a: u32, first: u32, count: u32, taps: u32, q: u32 }

fn phase(a: u32, s: u32, pad: u32, size: u32, ksize: u32) -> Phase {
  let first = (a + s - pad % s) % s;
  var count = 0u;
  if (first < size) { count = (size - first + s - 1u) / s; }
  var taps = 0u;
  if (a < ksize) { taps = (ksize - a + s - 1u) / s; }
  // first + pad ≡ a (mod s) and first + pad ≥ a, so q is exact and ≥ 0.
  return Phase(a, first, count, taps, (first + pad - a) / s);
}

fn phase_y(f: u32) -> Phase { return phase(f / P.sw, P.sh, P.pad_top, P.h, P.kh); }
fn phase_x(f: u32) -> Phase { return phase(f % P.sw, P.sw, P.pad_left, P.w, P.kw); }
