// Batch gather: images stay on the GPU as bytes; each step builds its batch from them.
// B batch, H×W image (C = 1); x is [B,1,H,W] f32 = pixel/255; labels [B] u32.
// images: n·H·W bytes packed little-endian into u32 words; labels: n bytes, likewise.
// train_batch: sample b is indices[(counter[0] mod steps_per_epoch)·B + b], augmented with draws
//   from (seed, counter[0], b) — the counter is the GPU-side step count, so steps recorded into
//   one submit each take their own slice of the epoch's order and their own random draws.
// eval_batch: sample b is offset + b, never augmented.
// Dispatch: (ceil(H·W/64), B) workgroups of 64 threads; one thread per output pixel.
// Uses rand01 from lib/random.wgsl, prepended by the loader.

struct Params {
  batch: u32,
  h: u32,
  w: u32,
  steps_per_epoch: u32,
  offset: u32,
  seed: u32,
  shift: u32,     // random translation, up to ±shift pixels (zero fill)
  flip: u32,      // 1: horizontal flip with probability 1/2
  rotate: f32,    // degrees, uniform in ±rotate
  zoom: f32,      // scale uniform in 1 ± zoom
  erase: f32,     // probability of erasing one random rectangle
}

@group(0) @binding(0) var<uniform> P: Params;
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

fn byte_at(i: u32) -> u32 {
  return (images[i >> 2u] >> ((i & 3u) * 8u)) & 255u;
}

fn label_at(i: u32) -> u32 {
  return (labels[i >> 2u] >> ((i & 3u) * 8u)) & 255u;
}

// Pixel (sy, sx) of a sample in [0, 1], zero outside the image.
fn pixel(sample: u32, sy: i32, sx: i32) -> f32 {
  if (sy < 0 || sx < 0 || sy >= i32(P.h) || sx >= i32(P.w)) { return 0.0; }
  return f32(byte_at(sample * P.h * P.w + u32(sy) * P.w + u32(sx))) / 255.0;
}

fn bilinear(sample: u32, fy: f32, fx: f32) -> f32 {
  let y0 = floor(fy);
  let x0 = floor(fx);
  let ty = fy - y0;
  let tx = fx - x0;
  let iy = i32(y0);
  let ix = i32(x0);
  let top = mix(pixel(sample, iy, ix), pixel(sample, iy, ix + 1), tx);
  let bottom = mix(pixel(sample, iy + 1, ix), pixel(sample, iy + 1, ix + 1), tx);
  return mix(top, bottom, ty);
}

// The augmented value of output pixel (oy, ox) of batch row b; draws are keyed (seed, step, b·8 + k).
fn augmented(sample: u32, b: u32, step: u32, oy: u32, ox: u32) -> f32 {
  let key = b * 8u;
  var fx = f32(ox);
  var fy = f32(oy);
  if (P.flip == 1u && rand01(P.seed, step, key) < 0.5) { fx = f32(P.w - 1u) - fx; }
  if (P.shift > 0u) {
    let span = f32(2u * P.shift + 1u);
    fx -= floor(rand01(P.seed, step, key + 1u) * span) - f32(P.shift);
    fy -= floor(rand01(P.seed, step, key + 2u) * span) - f32(P.shift);
  }
  var v: f32;
  if (P.rotate > 0.0 || P.zoom > 0.0) {
    // Inverse map of a rotation by θ and a scale by s about the centre, sampled bilinearly.
    let theta = radians((rand01(P.seed, step, key + 3u) * 2.0 - 1.0) * P.rotate);
    let s = 1.0 + (rand01(P.seed, step, key + 4u) * 2.0 - 1.0) * P.zoom;
    let cy = f32(P.h - 1u) * 0.5;
    let cx = f32(P.w - 1u) * 0.5;
    let dy = fy - cy;
    let dx = fx - cx;
    let c = cos(theta);
    let si = sin(theta);
    v = bilinear(sample, (si * dx + c * dy) / s + cy, (c * dx - si * dy) / s + cx);
  } else {
    v = pixel(sample, i32(fy), i32(fx));
  }
  if (P.erase > 0.0 && rand01(P.seed, step, key + 5u) < P.erase) {
    // Random erasing (Zhong et al.): area 2–33% of the image, aspect ratio 0.3–3.3 (log-uniform).
    let r = rand_u32(P.seed, step, key + 6u);
    let area = (0.02 + 0.31 * f32(r & 0xffffu) / 65536.0) * f32(P.h * P.w);
    let aspect = exp(log(0.3) + (log(3.3) - log(0.3)) * f32(r >> 16u) / 65536.0);
    let eh = min(u32(sqrt(area * aspect)), P.h);
    let ew = min(u32(sqrt(area / aspect)), P.w);
    let pos = rand_u32(P.seed, step, key + 7u);
    let top = (pos & 0xffffu) % (P.h - eh + 1u);
    let left = (pos >> 16u) % (P.w - ew + 1u);
    if (oy >= top && oy < top + eh && ox >= left && ox < left + ew) { v = 0.0; }
  }
  return v;
}

@compute @workgroup_size(64)
fn train_batch(@builtin(global_invocation_id) gid: vec3u) {
  let b = gid.y;
  let p = gid.x;
  if (b >= P.batch || p >= P.h * P.w) { return; }
  let step = counter[0];
  let sample = indices[(step % P.steps_per_epoch) * P.batch + b];
  x_train[b * P.h * P.w + p] = augmented(sample, b, step, p / P.w, p % P.w);
  if (p == 0u) { y_train[b] = label_at(sample); }
}

@compute @workgroup_size(64)
fn eval_batch(@builtin(global_invocation_id) gid: vec3u) {
  let b = gid.y;
  let p = gid.x;
  if (b >= P.batch || p >= P.h * P.w) { return; }
  let sample = P.offset + b;
  x_eval[b * P.h * P.w + p] = f32(byte_at(sample * P.h * P.w + p)) / 255.0;
  if (p == 0u) { y_eval[b] = label_at(sample); }
}
