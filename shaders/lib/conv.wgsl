// The uniform of every conv2d shader (params() in src/ops/conv2d.ts): N batch, C in-channels, H×W
// input, K out-channels, KH×KW kernel, sh×sw stride, padding before (TF 'same' or 0), OH×OW output;
// the GEMM's column tiles; and the weight gradient's split-K, `chunk` positions in each of `splits`
// partial sums (0 in the other passes); the dropout of a pooled forward (lib/conv_out_pool.wgsl:
// its seed, rate and 1 / (1 − rate); 0, 0, 1 elsewhere), or of the backward chain below a dX
// (lib/chain_store.wgsl), with that chain's pooling window (pool_*; all 1 and 0 elsewhere).
struct Params {
  n: u32, c: u32, h: u32, w: u32,
  k: u32, kh: u32, kw: u32, sh: u32,
  sw: u32, pad_top: u32, pad_left: u32, oh: u32,
  ow: u32, col_tiles: u32, chunk: u32, splits: u32,
  seed: u32, rate: f32, scale: f32,
  pool_h: u32, pool_w: u32, pool_oh: u32, pool_ow: u32, pool_kh: u32, pool_kw: u32,
  pool_sh: u32, pool_sw: u32, pool_pad_top: u32, pool_pad_left: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

// The output rows and columns from the top left that a pass covers (0: all): a conv whose only reader, a
// pooling, leaves the rest unread (src/ops/conv2d_plan.ts Conv2dShape.covered). The Winograd and the
// pooled lane forwards write 0 past them (their gradient is 0: no window unpools there); no weight
// gradient reads dY there.
override COVER_ROWS: u32 = 0u;
override COVER_COLS: u32 = 0u;

/** The part of the OH×OW output a pass covers: COVER_ROWS × COVER_COLS, or all of it. */
fn conv_cover() -> vec2u {
  return vec2u(select(P.oh, COVER_ROWS, COVER_ROWS > 0u), select(P.ow, COVER_COLS, COVER_COLS > 0u));
}
