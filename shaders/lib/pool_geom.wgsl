// A pooling's window geometry from explicit sizes (no uniform): shared by lib/pool_window.wgsl (the
// geometry of the including shader's uniform P) and lib/chain_store.wgsl (a pooling below a layer's dX,
// from its uniform's pool_* fields). Sizes: h×w the pool's input, oh×ow its output, kh×kw the window,
// sh×sw the stride, pad_top/pad_left the padding before (TF 'same': the smaller half first; 'valid': 0).

struct PoolGeom { h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, pad_top: u32, pad_left: u32 }

// Outputs along one axis whose window holds input i: [lo, hi), from o·s − pad ≤ i < o·s − pad + k.
fn span(i: u32, pad: u32, k: u32, s: u32, out: u32) -> vec2u {
  let t = i + pad;
  var lo = 0u;
  if (t + 1u > k) { lo = (t + 1u - k + s - 1u) / s; }
  return vec2u(lo, min(t / s + 1u, out));
}

// Real cells of output (oy, ox)'s window: rows [r.x, r.y), columns [r.z, r.w).
fn geom_window(g: PoolGeom, oy: u32, ox: u32) -> vec4u {
  let ty = i32(oy * g.sh) - i32(g.pad_top);
  let tx = i32(ox * g.sw) - i32(g.pad_left);
  return vec4u(u32(max(ty, 0)), u32(min(ty + i32(g.kh), i32(g.h))),
               u32(max(tx, 0)), u32(min(tx + i32(g.kw), i32(g.w))));
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
fn geom_block(g: PoolGeom, oy: u32, ox: u32) -> vec4u {
  var y1 = g.h;
  if (oy + 1u < g.oh) { y1 = block_start(oy + 1u, g.sh, g.pad_top); }
  var x1 = g.w;
  if (ox + 1u < g.ow) { x1 = block_start(ox + 1u, g.sw, g.pad_left); }
  return vec4u(block_start(oy, g.sh, g.pad_top), y1, block_start(ox, g.sw, g.pad_left), x1);
}
