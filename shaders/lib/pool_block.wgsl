// A window of a pooling whose windows do not overlap, pooled over its block of the input as the cells are
// made: the including shader's block_cell(i) computes the cell at flat index i, writes it where it
// belongs and returns it (the conv output its partials sum to, shaders/chain.wgsl; a batch
// normalisation's output, batchnorm.wgsl). Prepended by the loader after lib/pool_window.wgsl (block_of,
// window); POOL is the including shader's override: 1 max, 2 average.
// The pooled value is window_max's or window_mean's (lib/pool_reduce.wgsl) over the same values: the
// window's cells in row-major order, the first maximum winning ties; the cells of the block outside
// the window (no window covers them) are made and written too.

struct Pooled { value: f32, arg: u32 }

// Output (oy, ox) of the plane at flat index `base`: every cell of its block made (block_cell), and the
// window's max and its argmax (iy·W + ix within the plane), or its mean (arg 0).
fn pool_block(base: u32, oy: u32, ox: u32) -> Pooled {
  let blk = block_of(oy, ox);
  let r = window(oy, ox);
  let first = r.x * P.w + r.z;
  var best = 0.0;
  var arg = first;
  var sum = 0.0;
  for (var iy = blk.x; iy < blk.y; iy++) {
    for (var ix = blk.z; ix < blk.w; ix++) {
      let k = iy * P.w + ix;
      let v = block_cell(base + k);
      if (iy < r.x || iy >= r.y || ix < r.z || ix >= r.w) { continue; }
      if (k == first) { best = v; } else if (v > best) { best = v; arg = k; }
      sum += v;
    }
  }
  if (POOL == 1u) { return Pooled(best, arg); }
  return Pooled(sum / f32((r.y - r.x) * (r.w - r.z)), 0u);
}
