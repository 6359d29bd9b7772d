// CPU reference of the batch gather (shaders/batch.wgsl, its per-sample work in shaders/lib/augment.wgsl,
// which a first conv gathering its batch runs too) in float64: the same random draws (src/util/hash.ts), the same
// integer choices (flip, shift, erase rectangle), the geometry with Math.sin/cos. For tests only.
import { rand01, randU32 } from '../util/hash.ts';
import { channelsOf, imageBytes, type Dataset } from './dataset.ts';
import { channelNorm, type AugmentParams, type Normalize, type TrainGather } from './batch.ts';

const f = Math.fround;

/** One sample's transform, as draw() in the shader. */
export interface SampleAug {
  flip: boolean;
  dx: number;
  dy: number;
  /** Rotation (radians) and scale; null when rotate and zoom are both 0. */
  geo: { theta: number; scale: number } | null;
  erase: { top: number; left: number; eh: number; ew: number } | null;
}

const isqrt = (n: number): number => Math.floor(Math.sqrt(n));

export function drawAug(a: AugmentParams, h: number, w: number, seed: number, step: number, row: number): SampleAug {
  const key = row * 32;
  const r = (k: number): number => rand01(seed, step, key + k);
  const u = (k: number): number => randU32(seed, step, key + k);
  const shift = a.shift ?? 0,
    span = 2 * shift + 1;
  const rotate = f(a.rotate ?? 0),
    zoom = f(a.zoom ?? 0);
  const out: SampleAug = {
    flip: !!a.flip && r(0) < 0.5,
    dx: (u(1) % span) - shift,
    dy: (u(2) % span) - shift,
    geo:
      rotate > 0 || zoom > 0
        ? { theta: ((r(3) * 2 - 1) * rotate * Math.PI) / 180, scale: 1 + (r(4) * 2 - 1) * zoom }
        : null,
    erase: null,
  };
  if (f(a.erase ?? 0) > 0 && r(5) < f(a.erase ?? 0)) {
    // Zhong et al.: area 0.02–0.33 of h·w, aspect 0.3–3.33, in integer steps of 1/256.
    for (let i = 0; i < 10; i++) {
      const v = u(6 + 2 * i);
      const area8 = Math.floor((h * w * (1311 + Math.floor((20316 * (v & 0xffff)) / 65536))) / 256);
      const aspect8 = 77 + Math.floor((776 * (v >>> 16)) / 65536);
      const eh = isqrt(Math.floor((area8 * aspect8) / 65536));
      const ew = isqrt(Math.floor(area8 / aspect8));
      if (eh < h && ew < w) {
        const pos = u(7 + 2 * i);
        out.erase = { eh, ew, top: (pos & 0xffff) % (h - eh + 1), left: (pos >>> 16) % (w - ew + 1) };
        break;
      }
    }
  }
  return out;
}

/** One sample, every channel through the same transform: [C,H,W]. */
function sampleImage(ds: Dataset, sample: number, g: SampleAug | null, norm: Normalize): Float64Array {
  const { rows: h, cols: w } = ds;
  const out = new Float64Array(imageBytes(ds));
  for (let c = 0; c < channelsOf(ds); c++)
    out.set(sampleChannel(ds, (sample * channelsOf(ds) + c) * h * w, g, channelNorm(norm, c)), c * h * w);
  return out;
}

function sampleChannel(
  ds: Dataset,
  base: number,
  g: SampleAug | null,
  norm: { mean: number; std: number },
): Float64Array {
  const { rows: h, cols: w } = ds;
  const pixel = (sy: number, sx: number): number =>
    sy < 0 || sx < 0 || sy >= h || sx >= w ? 0 : ds.images[base + sy * w + sx]! / 255;
  const out = new Float64Array(h * w);
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const e = g?.erase;
      if (e && oy >= e.top && oy < e.top + e.eh && ox >= e.left && ox < e.left + e.ew) continue; // stays 0
      const fx = (g?.flip ? w - 1 - ox : ox) - (g?.dx ?? 0);
      const fy = oy - (g?.dy ?? 0);
      let v: number;
      if (g?.geo) {
        // Inverse map: rotate by θ and divide by the scale about the centre, then bilinear.
        const cy = (h - 1) / 2,
          cx = (w - 1) / 2,
          dy = fy - cy,
          dx = fx - cx;
        const c = Math.cos(g.geo.theta) / g.geo.scale,
          s = Math.sin(g.geo.theta) / g.geo.scale;
        const py = s * dx + c * dy + cy,
          px = c * dx - s * dy + cx;
        const y0 = Math.floor(py),
          x0 = Math.floor(px),
          ty = py - y0,
          tx = px - x0;
        const top = pixel(y0, x0) * (1 - tx) + pixel(y0, x0 + 1) * tx;
        const bottom = pixel(y0 + 1, x0) * (1 - tx) + pixel(y0 + 1, x0 + 1) * tx;
        v = top * (1 - ty) + bottom * ty;
      } else v = pixel(fy, fx);
      out[oy * w + ox] = (v - f(norm.mean)) / f(norm.std);
    }
  }
  return out;
}

/** The training batch the GPU builds when counter[0] = step: x [B,C,H,W] and labels [B]. */
export function gatherTrainRef(
  ds: Dataset,
  indices: ArrayLike<number>,
  step: number,
  s: TrainGather,
): { x: Float64Array; labels: Uint32Array } {
  const px = imageBytes(ds);
  const norm = s.normalize ?? ds.normalize ?? { mean: 0, std: 1 };
  const t = ((step - (s.epochStartStep ?? 0)) >>> 0) % s.stepsPerEpoch;
  const x = new Float64Array(s.batch * px);
  const labels = new Uint32Array(s.batch);
  for (let b = 0; b < s.batch; b++) {
    const sample = indices[t * s.batch + b]!;
    labels[b] = ds.labels[sample]!;
    x.set(
      sampleImage(ds, sample, drawAug(s.augment ?? {}, ds.rows, ds.cols, s.seed >>> 0, step >>> 0, b), norm),
      b * px,
    );
  }
  return { x, labels };
}

/** The evaluation batch: samples offset … offset+B−1, normalised. */
export function gatherEvalRef(
  ds: Dataset,
  s: { batch: number; offset: number; normalize?: Normalize; flip?: boolean },
): { x: Float64Array; labels: Uint32Array } {
  const px = imageBytes(ds);
  const x = new Float64Array(s.batch * px);
  const mirror: SampleAug | null = s.flip ? { flip: true, dx: 0, dy: 0, geo: null, erase: null } : null;
  for (let b = 0; b < s.batch; b++)
    x.set(sampleImage(ds, s.offset + b, mirror, s.normalize ?? ds.normalize ?? { mean: 0, std: 1 }), b * px);
  return { x, labels: Uint32Array.from(ds.labels.subarray(s.offset, s.offset + s.batch)) };
}
