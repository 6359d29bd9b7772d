// Batch gather: the dataset stays on the GPU as bytes; every step builds its batch from it.
// B batch, C channels (1–4: grey, RGB, RGBA), H×W image. Out: x [B,C,H,W] f32 (NCHW), y [B] u32 class.
// The layouts, the normalisation and the augmentation: lib/augment.wgsl, prepended by the loader with
// lib/random.wgsl.
//
// train_batch: sample b = indices[t·B + b], t = (counter[0] − epoch_start) mod steps_per_epoch.
//   counter[0] is the global step, advanced on the GPU after each step, so many steps recorded into
//   one submit each read their own slice of the epoch's shuffled order (indices, whole epoch, u32).
//   Each sample augmented by its own random transform (lib/augment.wgsl draw). A first conv may run
//   this gather as it fetches its input instead (lib/conv_in_gather.wgsl), value for value.
// eval_batch: sample b = offset + b, no augmentation; flip = 1 mirrors every image (test-time
//   augmentation averages the predictions for both).
// Bindings: 0 params (struct Gather); train: 1 images, 2 labels, 3 indices, 4 counter, 5 x, 6 y;
//   eval: 1 images, 2 labels, 3 x, 4 y.
// Dispatch: B workgroups of 64 (one per batch row); each thread does values lid, lid+64, … of C·H·W.

@group(0) @binding(0) var<uniform> G: Gather;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
// train_batch
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> counter: array<u32>;
@group(0) @binding(5) var<storage, read_write> x_train: array<f32>;
@group(0) @binding(6) var<storage, read_write> y_train: array<u32>;
// eval_batch
@group(0) @binding(3) var<storage, read_write> x_eval: array<f32>;
@group(0) @binding(4) var<storage, read_write> y_eval: array<u32>;

@compute @workgroup_size(64)
fn train_batch(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  if (row >= G.batch) { return; }
  let step = counter[0];
  let sample = train_sample(row, step);
  let hw = G.h * G.w;
  let chw = G.c * hw;
  let g = draw(row, step);
  for (var p = lid; p < chw; p += 64u) {
    let c = p / hw;
    let q = p % hw;
    x_train[row * chw + p] = augmented(g, sample * chw + c * hw, c, q / G.w, q % G.w);
  }
  if (lid == 0u) { y_train[row] = label_at(sample); }
}

@compute @workgroup_size(64)
fn eval_batch(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  if (row >= G.batch) { return; }
  let sample = G.offset + row;
  let hw = G.h * G.w;
  let chw = G.c * hw;
  for (var p = lid; p < chw; p += 64u) {
    // flip = 1 mirrors every image (test-time augmentation), not a random draw as in training.
    let c = p / hw;
    let q = p % hw;
    let ox = q % G.w;
    let sx = select(ox, G.w - 1u - ox, G.flip != 0u);
    x_eval[row * chw + p] = normalised(pixel(sample * chw + c * hw, i32(q / G.w), i32(sx)), c);
  }
  if (lid == 0u) { y_eval[row] = label_at(sample); }
}
