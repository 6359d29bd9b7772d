// The conv forward's input as it is, x [N,C,H,W] f32 at binding 1, prepended to conv2d_forward.wgsl
// by the loader. lib/conv_in_gather.wgsl is its twin, a first conv that gathers the batch from the
// dataset; both define conv_in_stage, conv_in_sample, conv_in and conv_in_finish.

@group(0) @binding(1) var<storage, read> x: array<f32>;

/** Before workgroup tile `tile`'s GEMM: nothing to stage. */
fn conv_in_stage(tile: u32, li: u32) {}

/** Where batch row n's C·H·W values start, for the thread's column `run` (`ok`: inside the output). */
fn conv_in_sample(run: u32, n: u32, ok: bool) -> u32 {
  return n * P.c * P.h * P.w;
}

/** Channel c's value at (iy, ix) inside the image, the channel's plane starting at `plane` (column `run`). */
fn conv_in(run: u32, plane: u32, c: u32, iy: u32, ix: u32) -> f32 {
  return x[plane + iy * P.w + ix];
}

/** After workgroup tile `tile` is stored: nothing more to write. */
fn conv_in_finish(tile: u32, li: u32) {}
