// A pooling window's real cells and, when windows do not overlap, the block of the input each output
// owns: shared by shaders/pool.wgsl, chain.wgsl and batchnorm.wgsl (prepended by the loader). It reads
// the including shader's uniform P: h, w (input), oh, ow (output), kh, kw (window), sh, sw (stride),
// pad_top, pad_left (TF 'same': the smaller half first; 'valid': 0). lib/pool_reduce.wgsl pools a
// window of the including shader's src; lib/pool_block.wgsl a block whose cells the shader computes.

// Outputs along one axis whose window holds input i: [lo, hi), from o·s − pad ≤ i < o·s − pad + k.
fn span(i: u32, pad: u32, k: u32, s: u32, out: u32) -> vec2u {
  let t = i + pad;
  var lo = 0u;
  if (t + 1u > k) { lo = (t + 1u - k + s - 1u) / s; }
  return vec2u(lo, min(t / s + 1u, out));
}

// Real cells of output (oy, ox)'s window: rows [r.x, r.y), columns [r.z, r.w).
fn window(oy: u32, ox: u32) -> vec4u {
  let ty = i32(oy * P.sh) - i32(P.pad_top);
  let tx = i32(ox * P.sw) - i32(P.pad_left);
  return vec4u(u32(max(ty, 0)), u32(min(ty + i32(P.kh), i32(P.h))),
               u32(max(tx, 0)), u32(min(tx + i32(P.kw), i32(P.w))));
}

// First input row (or column) of output o's block along one axis, when windows do not overlap
// (stride ≥ window): 0 for the first output, else where its window starts; the block ends where the
// next one starts (the input's size for the last output), so the blocks partition the plane.
// o·s ≥ pad: with stride ≥ window, TF 'same' pads pad ≤ (window − 1)/2 < s before, 'valid' 0.
fn block_start(o: u32, s: u32, pad: u32) -> u32 {
  if (o == 0u) { return 0u; }
  return o * s - pad;
}

// Output (oy, ox)'s block of the input when windows do not overlap: rows [b.x, b.y), columns [b.z, b.w).
fn block_of(oy: u32, ox: u32) -> vec4u {
  var y1 = P.h;
  if (oy + 1u < P.oh) { y1 = block_start(oy + 1u, P.sh, P.pad_top); }
  var x1 = P.w;
  if (ox + 1u < P.ow) { x1 = block_start(ox + 1u, P.sw, P.pad_left); }
  return vec4u(block_start(oy, P.sh, P.pad_top), y1, block_start(ox, P.sw, P.pad_left), x1);
}
