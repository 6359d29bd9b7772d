// The batch gather's per-sample work, shared by shaders/batch.wgsl (the gather as its own pass) and
// lib/conv_in_gather.wgsl (a first conv that gathers its input as it fetches it): the settings, which
// sample a batch row takes, its random transform, and one augmented, normalised value. The includer
// declares G (a Gather: batch.wgsl's uniform, or the conv's storage copy of it) and the dataset's
// images, labels and indices bindings. Uses rand01/rand_u32 from lib/random.wgsl (CPU mirror:
// src/util/hash.ts, reference src/data/batch.ref.ts).
//
// images: n·C·H·W bytes, each sample channel-planar (NCHW, as CIFAR's files), little-endian packed,
//   byte i = (images[i/4] >> 8·(i%4)) & 255; labels: n bytes, likewise; indices: the epoch's order (u32).
// value = (pixel/255 − mean[c]) / std[c]  (mean 0, std 1: plain pixel/255); fields mean0…mean3, inv_std0…3.
// Augmentation per sample, draws rand(seed, step, row·32 + k):
//   k=0 flip (p ½), 1–2 shift x/y (integers in ±shift, zero fill), 3 angle (±rotate degrees),
//   4 scale (1 ± zoom; > 1 enlarges), 5 erase gate (p erase), 6+2i / 7+2i size / position of erase try i.
//   One draw per sample, the same transform for every channel.
//   Inverse map of output (oy, ox): flip, then shift, then rotate+zoom about the centre sampled
//   bilinearly (only when rotate or zoom > 0); outside the image reads pixel 0 (then normalised);
//   erasing sets x itself to 0 (with mean/std: the mean, as torchvision's RandomErasing after Normalize).
//   Random erasing (Zhong et al. 2017) in integers, so every GPU picks the same rectangle: area
//   2–33% of H·W, aspect h/w 0.3–3.33, h < H and w < W, up to 10 tries, else no erasing.

struct Gather {
  batch: u32,
  c: u32,
  h: u32,
  w: u32,
  steps_per_epoch: u32,
  epoch_start: u32,
  offset: u32,
  seed: u32,
  shift: u32,
  flip: u32,
  rotate: f32,
  zoom: f32,
  erase: f32,
  mean0: f32,
  mean1: f32,
  mean2: f32,
  mean3: f32,
  inv_std0: f32,  // 1 / std of channel 0
  inv_std1: f32,
  inv_std2: f32,
  inv_std3: f32,
}

fn label_at(i: u32) -> u32 {
  return (labels[i >> 2u] >> ((i & 3u) * 8u)) & 255u;
}

// Pixel (sy, sx) of a sample in [0, 1], zero outside the image.
fn pixel(base: u32, sy: i32, sx: i32) -> f32 {
  if (sy < 0 || sx < 0 || sy >= i32(G.h) || sx >= i32(G.w)) { return 0.0; }
  return pixel_in(base, u32(sy), u32(sx));
}

// Pixel (sy, sx) inside the image, in [0, 1].
fn pixel_in(base: u32, sy: u32, sx: u32) -> f32 {
  let i = base + sy * G.w + sx;
  return f32((images[i >> 2u] >> ((i & 3u) * 8u)) & 255u) / 255.0;
}

// (v − mean[c]) / std[c].
fn normalised(v: f32, c: u32) -> f32 {
  let mean = vec4f(G.mean0, G.mean1, G.mean2, G.mean3);
  let inv_std = vec4f(G.inv_std0, G.inv_std1, G.inv_std2, G.inv_std3);
  return (v - mean[c]) * inv_std[c];
}

fn bilinear(base: u32, fy: f32, fx: f32) -> f32 {
  let y0 = floor(fy);
  let x0 = floor(fx);
  let ty = fy - y0;
  let tx = fx - x0;
  let iy = i32(y0);
  let ix = i32(x0);
  let top = mix(pixel(base, iy, ix), pixel(base, iy, ix + 1), tx);
  let bottom = mix(pixel(base, iy + 1, ix), pixel(base, iy + 1, ix + 1), tx);
  return mix(top, bottom, ty);
}

// (sin t, cos t) by Taylor series to t¹⁷/t¹⁶, |error| < 2e-7 on [−π, π], from ULP-accurate + · /:
// WGSL's own sin/cos may be off by 2⁻¹¹, which would move the sampling grid by ~0.01 pixel.
fn sin_cos(t: f32) -> vec2f {
  let u = t * t;
  let s = t * (1.0 - u / 6.0 * (1.0 - u / 20.0 * (1.0 - u / 42.0 * (1.0 - u / 72.0 * (1.0 - u / 110.0
            * (1.0 - u / 156.0 * (1.0 - u / 210.0 * (1.0 - u / 272.0))))))));
  let c = 1.0 - u / 2.0 * (1.0 - u / 12.0 * (1.0 - u / 30.0 * (1.0 - u / 56.0 * (1.0 - u / 90.0
            * (1.0 - u / 132.0 * (1.0 - u / 182.0 * (1.0 - u / 240.0)))))));
  return vec2f(s, c);
}

fn isqrt(n: u32) -> u32 {
  var r = u32(sqrt(f32(n)));
  while (r * r > n) { r -= 1u; }
  while ((r + 1u) * (r + 1u) <= n) { r += 1u; }
  return r;
}

// One sample's random transform, drawn once per thread.
struct Aug {
  flip: bool,
  dx: i32,
  dy: i32,
  geo: bool,
  a: f32,        // cos θ / scale
  b: f32,        // sin θ / scale
  erase: bool,
  top: u32,
  left: u32,
  eh: u32,
  ew: u32,
}

fn draw(row: u32, step: u32) -> Aug {
  let key = row * 32u;
  var g: Aug;
  g.flip = G.flip == 1u && rand01(G.seed, step, key) < 0.5;
  let span = 2u * G.shift + 1u;
  g.dx = i32(rand_u32(G.seed, step, key + 1u) % span) - i32(G.shift);
  g.dy = i32(rand_u32(G.seed, step, key + 2u) % span) - i32(G.shift);
  g.geo = G.rotate > 0.0 || G.zoom > 0.0;
  if (g.geo) {
    let theta = (rand01(G.seed, step, key + 3u) * 2.0 - 1.0) * G.rotate * 0.017453292519943295;
    let scale = 1.0 + (rand01(G.seed, step, key + 4u) * 2.0 - 1.0) * G.zoom;
    let sc = sin_cos(theta);
    g.a = sc.y / scale;
    g.b = sc.x / scale;
  }
  g.erase = false;
  if (G.erase > 0.0 && rand01(G.seed, step, key + 5u) < G.erase) {
    let area = G.h * G.w;
    for (var i = 0u; i < 10u; i++) {
      let r = rand_u32(G.seed, step, key + 6u + 2u * i);
      let area8 = (area * (1311u + ((20316u * (r & 0xffffu)) >> 16u))) >> 8u;  // area·256, 0.02–0.33 of H·W
      let aspect8 = 77u + ((776u * (r >> 16u)) >> 16u);                         // (h/w)·256, 0.30–3.33
      let eh = isqrt((area8 * aspect8) >> 16u);
      let ew = isqrt(area8 / aspect8);
      if (eh < G.h && ew < G.w) {
        let pos = rand_u32(G.seed, step, key + 7u + 2u * i);
        g.erase = true;
        g.eh = eh;
        g.ew = ew;
        g.top = (pos & 0xffffu) % (G.h - eh + 1u);
        g.left = (pos >> 16u) % (G.w - ew + 1u);
        break;
      }
    }
  }
  return g;
}

fn augmented(g: Aug, base: u32, c: u32, oy: u32, ox: u32) -> f32 {
  if (g.erase && oy >= g.top && oy < g.top + g.eh && ox >= g.left && ox < g.left + g.ew) { return 0.0; }
  var fx = i32(ox);
  if (g.flip) { fx = i32(G.w) - 1 - fx; }
  fx -= g.dx;
  let fy = i32(oy) - g.dy;
  var v: f32;
  if (g.geo) {
    let cy = f32(G.h - 1u) * 0.5;
    let cx = f32(G.w - 1u) * 0.5;
    let dy = f32(fy) - cy;
    let dx = f32(fx) - cx;
    v = bilinear(base, g.b * dx + g.a * dy + cy, g.a * dx - g.b * dy + cx);
  } else {
    v = pixel(base, fy, fx);
  }
  return normalised(v, c);
}

// Batch row `row`'s sample at global step `step`: slot t = (step − epoch_start) mod steps_per_epoch of
// the epoch's order.
fn train_sample(row: u32, step: u32) -> u32 {
  let t = (step - G.epoch_start) % G.steps_per_epoch;
  return indices[t * G.batch + row];
}
