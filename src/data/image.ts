// Photos and drawings → the network's 28×28 input, the same way in the page and in `fmgpu predict`.
import { DataError } from '../errors.ts';
export interface Preprocessed {
  /** 28×28 values in [0, 1], light item on a dark background (Fashion-MNIST's convention). */
  pixels: Float32Array;
  inverted: boolean;
}

/**
 * RGBA pixels (an ImageData's data) → the network's input: grayscale (ITU-R 601 luma, transparent
 * parts over white), inverted when the background is light (the mean of the 1-pixel frame is above
 * one half) unless `invert` says otherwise, then fitted to 28×28 keeping the aspect ratio: the
 * longer side becomes 28 by area averaging, the item centred, the rest filled with black.
 */
export function preprocessImage(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  invert: boolean | 'auto' = 'auto',
): Preprocessed {
  if (width < 1 || height < 1 || rgba.length < width * height * 4)
    throw new DataError(`an image of ${width}x${height} needs ${width * height * 4} RGBA bytes but has ${rgba.length}`);
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const a = rgba[4 * i + 3]! / 255;
    const y = (0.299 * rgba[4 * i]! + 0.587 * rgba[4 * i + 1]! + 0.114 * rgba[4 * i + 2]!) / 255;
    gray[i] = y * a + (1 - a);
  }
  let frame = 0,
    count = 0;
  for (let x = 0; x < width; x++) {
    frame += gray[x]! + gray[(height - 1) * width + x]!;
    count += 2;
  }
  for (let y = 0; y < height; y++) {
    frame += gray[y * width]! + gray[y * width + width - 1]!;
    count += 2;
  }
  const inverted = invert === 'auto' ? frame / count > 0.5 : invert;
  if (inverted) for (let i = 0; i < gray.length; i++) gray[i] = 1 - gray[i]!;
  const scale = 28 / Math.max(width, height);
  const tw = Math.max(1, Math.min(28, Math.round(width * scale)));
  const th = Math.max(1, Math.min(28, Math.round(height * scale)));
  const small = resample(resample(gray, width, height, tw, true), tw, height, th, false);
  const pixels = new Float32Array(28 * 28);
  const ox = (28 - tw) >> 1,
    oy = (28 - th) >> 1;
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) pixels[(oy + y) * 28 + ox + x] = small[y * tw + x]!;
  return { pixels, inverted };
}

/** Area-averaging resize along one axis (x when `horizontal`), from `w`×`h` to `to` samples. */
function resample(src: Float32Array, w: number, h: number, to: number, horizontal: boolean): Float32Array {
  const from = horizontal ? w : h;
  const other = horizontal ? h : w;
  const out = new Float32Array(horizontal ? to * h : w * to);
  const step = from / to;
  for (let o = 0; o < other; o++) {
    for (let t = 0; t < to; t++) {
      const lo = t * step,
        hi = (t + 1) * step;
      let sum = 0;
      for (let s = Math.floor(lo); s < Math.min(from, Math.ceil(hi)); s++) {
        const weight = Math.min(hi, s + 1) - Math.max(lo, s);
        sum += weight * src[horizontal ? o * w + s : s * w + o]!;
      }
      out[horizontal ? o * to + t : t * w + o] = sum / step;
    }
  }
  return out;
}
