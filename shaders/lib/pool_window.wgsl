// A pooling window's real cells and, when windows do not overlap, the block of the input each output
// owns, for the pooling the including shader's uniform P describes: shared by shaders/pool.wgsl,
// chain.wgsl and batchnorm.wgsl (prepended by the loader after lib/pool_geom.wgsl, which has the
// geometry). P's fields: h, w (input), oh, ow (output), kh, kw (window), sh, sw (stride), pad_top,
// pad_left. lib/pool_reduce.wgsl pools a window of the including shader's src; lib/pool_block.wgsl a
// block whose cells the shader computes.

fn pool_geom() -> PoolGeom {
  return PoolGeom(P.h, P.w, P.oh, P.ow, P.kh, P.kw, P.sh, P.sw, P.pad_top, P.pad_left);
}

// Real cells of output (oy, ox)'s window: rows [r.x, r.y), columns [r.z, r.w).
fn window(oy: u32, ox: u32) -> vec4u { return geom_window(pool_geom(), oy, ox); }

// Output (oy, ox)'s block of the input when windows do not overlap: rows [b.x, b.y), columns [b.z, b.w).
fn block_of(oy: u32, ox: u32) -> vec4u { return geom_block(pool_geom(), oy, ox); }
