// Photos and drawings → the network's 28×28 input, the same way in the page and in `fmgpu predict`.
// The pieces: grey levels (EXIF orientation applied while reading, transparency composited) and a
// region fitted into the 28×28 square. `preprocessImage` is the plain path (the whole picture);
// src/data/photo.ts is the Fashion-MNIST path (background levelled, the object cropped).
import { DataError } from '../errors.ts';

/** The network's input side: Fashion-MNIST's 28×28. */
export const SIDE = 28;

export interface Preprocessed {
  /** 28×28 values in [0, 1], light item on a dark background (Fashion-MNIST's convention). */
  pixels: Float32Array;
  inverted: boolean;
}

/** Grey levels in [0, 1], row-major, `width` × `height` (after orientation). */
export interface Gray {
  gray: Float32Array;
  width: number;
  height: number;
}

/** A rectangle of pixels: from column x and row y, w wide and h tall. */
export interface Region {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function checkRgba(rgba: ArrayLike<number>, width: number, height: number): void {
  if (width < 1 || height < 1 || rgba.length < width * height * 4)
    throw new DataError(`an image of ${width}x${height} needs ${width * height * 4} RGBA bytes but has ${rgba.length}`);
}

/**
 * Where the pixel shown at (x, y) is stored, for EXIF orientations 1–8 of a stored w×h image (5–8
 * show it h wide and w tall): 2 mirrored, 3 turned 180°, 4 flipped, 5 transposed, 6 turned 90°
 * clockwise to show, 7 transversed, 8 turned 90° anticlockwise. Returns the stored index.
 */
export function storedIndex(orientation: number, x: number, y: number, w: number, h: number): number {
  switch (orientation) {
    case 2:
      return y * w + (w - 1 - x);
    case 3:
      return (h - 1 - y) * w + (w - 1 - x);
    case 4:
      return (h - 1 - y) * w + x;
    case 5:
      return x * w + y;
    case 6:
      return (h - 1 - x) * w + y;
    case 7:
      return (h - 1 - x) * w + (w - 1 - y);
    case 8:
      return x * w + (w - 1 - y);
    default:
      return y * w + x;
  }
}

/**
 * One plane of RGBA pixels (4 bytes a pixel, as decoded), shown the way EXIF `orientation` says:
 * grey (ITU-R 601 luma), or channel 0–3 (R, G, B, A). A value is its byte / `unit` (255: in [0, 1];
 * 1: the byte), transparent parts composited over the level `over` (in those units), or alpha
 * ignored where `over` is null. Written into `into` when given (a plane at a time keeps a large
 * photo's memory to one). The one loop from decoded pixels to planes: photos, folders, the page.
 */
export function planeOf(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  o: { orientation: number; channel: 'luma' | number; unit: number; over: number | null },
  into?: Float32Array,
): Gray {
  const { orientation, channel, unit, over } = o;
  const turned = orientation >= 5 && orientation <= 8;
  const [w, h] = turned ? [height, width] : [width, height];
  const gray = into ?? new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const s = 4 * storedIndex(orientation, x, y, width, height);
      const a = over === null ? 1 : rgba[s + 3]! / 255;
      const v =
        channel === 'luma' ? 0.299 * rgba[s]! + 0.587 * rgba[s + 1]! + 0.114 * rgba[s + 2]! : rgba[s + channel]!;
      gray[y * w + x] = over === null ? v / unit : (v / unit) * a + over * (1 - a);
    }
  return { gray, width: w, height: h };
}

/**
 * RGBA → grey (ITU-R 601 luma) in [0, 1], shown the way EXIF `orientation` says, transparent parts
 * composited over the grey level `over` (1 white, 0 black). One Float32Array: 4 bytes a pixel.
 */
export function grayOf(rgba: ArrayLike<number>, width: number, height: number, orientation = 1, over = 1): Gray {
  return planeOf(rgba, width, height, { orientation, channel: 'luma', unit: 255, over });
}

/**
 * RGBA pixels (an ImageData's data) → the network's input: grayscale (transparent parts over
 * white), inverted when the background is light (the mean of the 1-pixel frame is above one half)
 * unless `invert` says otherwise, then fitted to 28×28 keeping the aspect ratio: the longer side
 * becomes 28 by area averaging, the item centred, the rest filled with black.
 */
export function preprocessImage(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  invert: boolean | 'auto' = 'auto',
  orientation = 1,
): Preprocessed {
  checkRgba(rgba, width, height);
  return wholeImage(grayOf(rgba, width, height, orientation), invert);
}

/** The plain path from grey levels (inverted in place where it applies): the whole picture in 28×28. */
export function wholeImage(g: Gray, invert: boolean | 'auto'): Preprocessed {
  const inverted = invert === 'auto' ? frameMean(g) > 0.5 : invert;
  if (inverted) for (let i = 0; i < g.gray.length; i++) g.gray[i] = 1 - g.gray[i]!;
  return { pixels: fitInto(g.gray, g.width, { x: 0, y: 0, w: g.width, h: g.height }, SIDE), inverted };
}

/** The mean of the 1-pixel frame. */
export function frameMean({ gray, width, height }: Gray): number {
  let sum = 0;
  for (let x = 0; x < width; x++) sum += gray[x]! + gray[(height - 1) * width + x]!;
  for (let y = 0; y < height; y++) sum += gray[y * width]! + gray[y * width + width - 1]!;
  return sum / (2 * (width + height));
}

/**
 * A region of a grey image (rows `stride` apart) → 28×28: its longer side scaled to `box` pixels by
 * area averaging, the shorter in proportion (at least 1), centred, the rest black.
 */
export function fitInto(src: Float32Array, stride: number, r: Region, box: number): Float32Array {
  const scale = box / Math.max(r.w, r.h);
  const tw = Math.max(1, Math.min(box, Math.round(r.w * scale)));
  const th = Math.max(1, Math.min(box, Math.round(r.h * scale)));
  const small = resample(resample(src, stride, r, tw, true), tw, { x: 0, y: 0, w: tw, h: r.h }, th, false);
  const pixels = new Float32Array(SIDE * SIDE);
  const ox = (SIDE - tw) >> 1,
    oy = (SIDE - th) >> 1;
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) pixels[(oy + y) * SIDE + ox + x] = small[y * tw + x]!;
  return pixels;
}

/** A w×h plane resized to tw×th by area averaging along each axis (the aspect ratio is not kept). */
export function resizePlane(src: Float32Array, w: number, h: number, tw: number, th: number): Float32Array {
  return resample(resample(src, w, { x: 0, y: 0, w, h }, tw, true), tw, { x: 0, y: 0, w: tw, h }, th, false);
}

/**
 * Area-averaging resize of region `r` of `src` (rows `stride` apart) along one axis (x when
 * `horizontal`) to `to` samples: the result is to × r.h (or r.w × to), packed.
 */
function resample(src: Float32Array, stride: number, r: Region, to: number, horizontal: boolean): Float32Array {
  const from = horizontal ? r.w : r.h;
  const other = horizontal ? r.h : r.w;
  const out = new Float32Array(to * other);
  const step = from / to;
  const at = (o: number, s: number): number =>
    horizontal ? (r.y + o) * stride + r.x + s : (r.y + s) * stride + r.x + o;
  for (let o = 0; o < other; o++) {
    for (let t = 0; t < to; t++) {
      const lo = t * step,
        hi = (t + 1) * step;
      let sum = 0;
      for (let s = Math.floor(lo); s < Math.min(from, Math.ceil(hi)); s++)
        sum += (Math.min(hi, s + 1) - Math.max(lo, s)) * src[at(o, s)]!;
      out[horizontal ? o * to + t : t * r.w + o] = sum / step;
    }
  }
  return out;
}

/**
 * The frame of RGBA pixels (the first and last rows and columns): how opaque it is (0–1, alpha's mean), and
 * its luma's mean and standard deviation (0–1) weighted by alpha (0 where it is all transparent).
 */
export function frameShade(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
): { opaque: number; luma: number; spread: number } {
  let alpha = 0,
    luma = 0,
    squares = 0,
    count = 0;
  const add = (x: number, y: number): void => {
    const i = 4 * (y * width + x);
    const a = rgba[i + 3]! / 255;
    const l = (0.299 * rgba[i]! + 0.587 * rgba[i + 1]! + 0.114 * rgba[i + 2]!) / 255;
    alpha += a;
    luma += a * l;
    squares += a * l * l;
    count++;
  };
  const [rows, cols] = [new Set([0, height - 1]), new Set([0, width - 1])];
  for (let x = 0; x < width; x++) for (const y of rows) add(x, y);
  for (let y = 1; y < height - 1; y++) for (const x of cols) add(x, y);
  const mean = alpha > 0 ? luma / alpha : 0;
  const spread = alpha > 0 ? Math.sqrt(Math.max(0, squares / alpha - mean * mean)) : 0;
  return { opaque: count > 0 ? alpha / count : 0, luma: mean, spread };
}

/** Grey or colour, whether any pixel is not opaque, and the mean luma of the opaque-weighted pixels. */
export function lookAt(
  rgba: ArrayLike<number>,
  n: number,
): { colour: 'grey' | 'RGB'; transparent: boolean; opaqueLuma: number } {
  let colour = false,
    transparent = false,
    luma = 0,
    weight = 0;
  for (let i = 0; i < 4 * n; i += 4) {
    const r = rgba[i]!,
      g = rgba[i + 1]!,
      b = rgba[i + 2]!,
      a = rgba[i + 3]!;
    if (r !== g || g !== b) colour = true;
    if (a !== 255) transparent = true;
    luma += (a / 255) * (0.299 * r + 0.587 * g + 0.114 * b);
    weight += a;
  }
  return { colour: colour ? 'RGB' : 'grey', transparent, opaqueLuma: weight > 0 ? luma / weight : 0 };
}
