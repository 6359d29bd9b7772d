// A first conv that gathers its training batch from the dataset as its GEMM fetches it, so the gather
// has no pass of its own: the values of shaders/batch.wgsl train_batch, computed by the same functions
// (lib/augment.wgsl, prepended with lib/random.wgsl). Prepended to conv2d_forward.wgsl in place of
// lib/conv_in.wgsl, for `main` (the planner gathers in unsplit forwards only).
// - A thread's GEMM column is one output position of one batch row for the whole K loop (im2col fetch
//   order 2), so it draws that row's transform once; each value it fetches is augmented there (without
//   augmentation, GATHER_AUGMENT false, only read and normalised). A value read by KH·KW taps and by
//   every row tile is computed as often: the first conv's C·KH·KW is small.
// - The weight gradient reads x and the loss the labels: the workgroups of row tile 0 write them
//   after their tile. Column tile j writes the j-th of col_tiles shares of the batch's N·C·H·W values,
//   each thread a run of consecutive ones (drawing again only where its run enters a new row), and the
//   label of each row whose first value is in its run.
// Bindings: 1 x (written), 8 G (the gather's settings, struct Gather, bound as storage so the conv
// keeps its own uniform), 9 images, 10 labels, 11 indices, 12 steps (u32, word 0 the global step),
// 13 y_labels (written).

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(8) var<storage, read> G: Gather;
@group(0) @binding(9) var<storage, read> images: array<u32>;
@group(0) @binding(10) var<storage, read> labels: array<u32>;
@group(0) @binding(11) var<storage, read> indices: array<u32>;
@group(0) @binding(12) var<storage, read> steps: array<u32>;
@group(0) @binding(13) var<storage, read_write> y_labels: array<u32>;

/** The gather augments (any of shift, flip, rotate, zoom, erase): false skips the transform per value. */
override GATHER_AUGMENT: bool = true;

/** The transform of this thread's batch row. */
var<private> gi_aug: Aug;

/** Where batch row n's sample starts in the dataset, its transform drawn (`ok`: a column inside the output). */
fn conv_in_sample(n: u32, ok: bool) -> u32 {
  if (!ok) { return 0u; }
  let step = steps[0];
  if (GATHER_AUGMENT) { gi_aug = draw(n, step); }
  return train_sample(n, step) * P.c * P.h * P.w;
}

/** Channel c's augmented, normalised value at (iy, ix) inside the image, the channel's plane at `plane`. */
fn conv_in(plane: u32, c: u32, iy: u32, ix: u32) -> f32 {
  // Without augmentation the value is the pixel's own (augmented's arithmetic, its transform the identity).
  if (!GATHER_AUGMENT) { return normalised(pixel_in(plane, iy, ix), c); }
  return augmented(gi_aug, plane, c, iy, ix);
}

/** After workgroup tile `tile` is stored: row tile 0 writes its share of x and the labels. */
fn conv_in_finish(tile: u32, li: u32) {
  if (tile >= P.col_tiles) { return; }
  let hw = P.h * P.w;
  let chw = P.c * hw;
  let total = P.n * chw;
  let share = (total + P.col_tiles - 1u) / P.col_tiles;
  let run = (share + GEMM_T - 1u) / GEMM_T;
  let start = tile * share + li * run;
  let end = min(min(start + run, (tile + 1u) * share), total);
  let step = steps[0];
  var n = 0xffffffffu;
  var sample = 0u;
  var g: Aug;
  for (var e = start; e < end; e++) {
    let row = e / chw;
    if (row != n) {
      n = row;
      g = draw(n, step);
      sample = train_sample(n, step);
    }
    let q = e - n * chw;
    let c = q / hw;
    let r = q - c * hw;
    x[e] = augmented(g, sample * chw + c * hw, c, r / P.w, r % P.w);
    if (q == 0u) { y_labels[n] = label_at(sample); }
  }
}
