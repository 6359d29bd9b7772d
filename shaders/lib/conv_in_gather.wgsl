// A first conv that gathers its training batch from the dataset as its GEMM fetches it, so the gather
// has no pass of its own: the values of shaders/batch.wgsl train_batch, computed by the same functions
// (lib/augment.wgsl, prepended with lib/random.wgsl). Prepended to conv2d_forward.wgsl in place of
// lib/conv_in.wgsl, for `main` (the planner gathers in unsplit forwards only).
// - Before its GEMM a workgroup whose columns are all one batch row's decodes the input rows they read
//   (every channel, full width) once into workgroup memory (gi_patch, at most GATHER_PATCH values), so
//   the KH·KW taps and the neighbouring columns that read a value read it there.
// - Otherwise (a tile spanning two rows, or rows too wide) each value is decoded where it is fetched: a
//   thread's GEMM columns (one or two) are each one output position of one batch row for the whole K
//   loop (im2col fetch order 2), so it draws each one's row transform once.
// - Decoding a value: read, augmented and normalised (without augmentation, GATHER_AUGMENT false, only
//   read and normalised). Every row tile decodes its own.
// - The weight gradient reads x and the loss the labels: the workgroups of row tile 0 write them
//   after their tile. Column tile j writes the j-th of col_tiles shares of the batch's N·C·H·W values,
//   each thread a run of consecutive ones (drawing again only where its run enters a new row), and the
//   label of each row whose first value is in its run.
// Bindings: 1 x (written), 8 G (the gather's settings, struct Gather, bound as storage so the conv
// keeps its own uniform), 9 images, 10 labels, 11 indices, 12 step_counter (u32, word 0 the global step),
// 13 y_labels (written).

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(8) var<storage, read> G: Gather;
@group(0) @binding(9) var<storage, read> images: array<u32>;
@group(0) @binding(10) var<storage, read> labels: array<u32>;
@group(0) @binding(11) var<storage, read> indices: array<u32>;
@group(0) @binding(12) var<storage, read> step_counter: array<u32>;
@group(0) @binding(13) var<storage, read_write> y_labels: array<u32>;

/** The gather augments (any of shift, flip, rotate, zoom, erase): false skips the transform per value. */
override GATHER_AUGMENT: bool = true;

/** The input values a workgroup stages at most (src/ops/conv2d_gather.ts GATHER_PATCH sets it). */
override GATHER_PATCH: u32 = 1024u;

var<workgroup> gi_patch: array<f32, GATHER_PATCH>;
/** The staged input rows gi_row0 … gi_row0 + gi_rows − 1 (gi_rows 0: none, values decoded where fetched). */
var<private> gi_row0: u32;
var<private> gi_rows: u32;
/** The transform of each of this thread's columns' batch rows, where values are decoded as fetched. */
var<private> gi_aug: array<Aug, 2>;

/** Channel c's value at (iy, ix) inside the image, the channel's plane at `plane`: read, augmented, normalised. */
fn gather_value(g: Aug, plane: u32, c: u32, iy: u32, ix: u32) -> f32 {
  // Without augmentation the value is the pixel's own (augmented's arithmetic, its transform the identity).
  if (!GATHER_AUGMENT) { return normalised(pixel_in(plane, iy, ix), c); }
  return augmented(g, plane, c, iy, ix);
}

/**
 * Before workgroup tile `tile`'s GEMM: where its columns are one batch row's and the input rows they read
 * fit gi_patch, those rows decoded into it. Every thread of the workgroup calls it (it ends in a barrier).
 */
fn conv_in_stage(tile: u32, li: u32) {
  let col0 = (tile % P.col_tiles) * GEMM_BN;
  let col_end = min(col0 + GEMM_BN, P.n * P.oh * P.ow);
  let first = conv_position(col0);
  let last = conv_position(col_end - 1u);
  let row0 = u32(max(i32(first.y * P.sh) - i32(P.pad_top), 0));
  let end = u32(min(i32(last.y * P.sh) - i32(P.pad_top) + i32(P.kh), i32(P.h)));
  // One batch row's columns, in rows first.y … last.y (else `end` may lie above row0: in the next row's
  // image, or among a pooled conv's outputs outside every window, lib/conv_out_pool.wgsl).
  let one = first.x == last.x && col_end <= conv_ordered_cols();
  let width = select(0u, (end - row0) * P.w, one);
  if (one && P.c * width <= GATHER_PATCH) {
    gi_row0 = row0;
    gi_rows = end - row0;
    let step = step_counter[0];
    let base = train_sample(first.x, step) * P.c * P.h * P.w;
    var g: Aug;
    if (GATHER_AUGMENT) { g = draw(first.x, step); }
    for (var e = li; e < P.c * width; e += GEMM_T) {
      let c = e / width;
      let r = e - c * width;
      gi_patch[e] = gather_value(g, base + c * P.h * P.w, c, row0 + r / P.w, r % P.w);
    }
  }
  workgroupBarrier();
}

/** Where batch row n's sample starts in the dataset, its transform drawn for column `run` (`ok`: inside the output). */
fn conv_in_sample(run: u32, n: u32, ok: bool) -> u32 {
  if (!ok || gi_rows > 0u) { return 0u; }
  let step = step_counter[0];
  if (GATHER_AUGMENT) { gi_aug[run] = draw(n, step); }
  return train_sample(n, step) * P.c * P.h * P.w;
}

/** Channel c's value at (iy, ix) inside the image, the channel's plane at `plane`: staged, or decoded here. */
fn conv_in(run: u32, plane: u32, c: u32, iy: u32, ix: u32) -> f32 {
  if (gi_rows > 0u) { return gi_patch[(c * gi_rows + iy - gi_row0) * P.w + ix]; }
  return gather_value(gi_aug[run], plane, c, iy, ix);
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
  let step = step_counter[0];
  var n = 0xffffffffu;
  var sample = 0u;
  var g: Aug;
  for (var e = start; e < end; e++) {
    let row = e / chw;
    if (row != n) {
      n = row;
      if (GATHER_AUGMENT) { g = draw(n, step); }
      sample = train_sample(n, step);
    }
    let q = e - n * chw;
    let c = q / hw;
    let r = q - c * hw;
    x[e] = gather_value(g, sample * chw + c * hw, c, r / P.w, r % P.w);
    if (q == 0u) { y_labels[n] = label_at(sample); }
  }
}
