// Real-looking product photos, drawn in the tests: a garment-like silhouette in a box on a
// background (white, a grey gradient, dark, transparent), with texture and grain; EXIF orientations
// undone the way a camera stores them; and measurements of a 28×28 result.
import jpeg from 'jpeg-js';
import { Rng } from '../../src/util/rng.ts';

export type Rgba4 = [number, number, number, number];

/**
 * A T-shirt in the unit square, touching all four sides, with no symmetry (the left sleeve is
 * longer), so that a turn or a mirror shows: body, neckline, slanted sleeves.
 */
export function tshirt(u: number, v: number): boolean {
  if ((u - 0.5) ** 2 + v ** 2 < 0.12 ** 2) return false; // neckline
  if (u >= 0.25 && u <= 0.75) return true; // body
  const out = u < 0.25 ? (0.25 - u) / 0.25 : (u - 0.75) / 0.25; // 0 at the shoulder, 1 at the cuff
  const bottom = u < 0.25 ? 0.55 : 0.4;
  return v >= 0.3 * out && v <= bottom - 0.1 * out;
}

export interface Scene {
  w: number;
  h: number;
  /** Where the garment's box is: it touches each side of it. */
  box: { x: number; y: number; w: number; h: number };
  shape?: (u: number, v: number) => boolean;
  /** The garment's colour (and alpha). */
  ink?: Rgba4;
  background?: (x: number, y: number) => Rgba4;
  /** ± this much uniform noise on every channel (grain, JPEG noise). */
  grain?: number;
  seed?: number;
}

export const white = (): Rgba4 => [250, 250, 248, 255];
export const dark = (): Rgba4 => [18, 20, 22, 255];
export const clear = (): Rgba4 => [0, 0, 0, 0];

/** A grey gradient from about 0.3 to 0.8, diagonal. */
export function greyGradient(w: number, h: number): (x: number, y: number) => Rgba4 {
  return (x, y) => {
    const g = Math.round(255 * (0.3 + (0.35 * x) / w + (0.15 * y) / h));
    return [g, g, g, 255];
  };
}

/** The scene's RGBA pixels: the garment with soft stripes, its background, grain. */
export function render(s: Scene): Uint8Array {
  const { w, h, box } = s;
  const shape = s.shape ?? tshirt;
  const ink = s.ink ?? [40, 55, 95, 255];
  const bg = s.background ?? white;
  const rng = new Rng(s.seed ?? 1);
  const grain = s.grain ?? 0;
  const out = new Uint8ClampedArray(w * h * 4); // rounds and clamps as it stores
  for (let y = 0; y < h; y++) {
    const v = (y - box.y + 0.5) / box.h;
    const stripe = 1 + 0.08 * Math.sin(v * 40);
    for (let x = 0; x < w; x++) {
      const u = (x - box.x + 0.5) / box.w;
      const inside = u >= 0 && u < 1 && v >= 0 && v < 1 && shape(u, v);
      const px = inside ? ink : bg(x, y);
      const k = inside ? stripe : 1;
      const at = 4 * (y * w + x);
      for (let c = 0; c < 3; c++) out[at + c] = px[c]! * k + (grain ? (rng.next() * 2 - 1) * grain : 0);
      out[at + 3] = px[3];
    }
  }
  return new Uint8Array(out.buffer);
}

/** The same garment, tightly cropped: the picture is its box, on a white background. */
export function tight(s: Scene): Uint8Array {
  return render({ ...s, w: s.box.w, h: s.box.h, box: { ...s.box, x: 0, y: 0 } });
}

/**
 * How a camera stores an upright w×h picture for EXIF orientation o: the inverse of what the tag
 * asks a viewer to do. Returns the stored pixels and size. Written from the tag's meaning (turns
 * and mirrors of the picture), independently of the code under test.
 */
export function storeForOrientation(rgba: Uint8Array, w: number, h: number, o: number) {
  type Img = { data: Uint8Array; w: number; h: number };
  const map = (img: Img, nw: number, nh: number, from: (x: number, y: number) => [number, number]): Img => {
    const data = new Uint8Array(nw * nh * 4);
    for (let y = 0; y < nh; y++)
      for (let x = 0; x < nw; x++) {
        const [sx, sy] = from(x, y);
        data.set(img.data.subarray(4 * (sy * img.w + sx), 4 * (sy * img.w + sx) + 4), 4 * (y * nw + x));
      }
    return { data, w: nw, h: nh };
  };
  const mirror = (i: Img): Img => map(i, i.w, i.h, (x, y) => [i.w - 1 - x, y]);
  const clockwise = (i: Img): Img => map(i, i.h, i.w, (x, y) => [y, i.h - 1 - x]);
  const anticlockwise = (i: Img): Img => map(i, i.h, i.w, (x, y) => [i.w - 1 - y, x]);
  const upright: Img = { data: rgba, w, h };
  // A viewer shows orientation o as: 2 mirror, 3 turn 180°, 4 mirror then 180°, 5 mirror then 90°
  // anticlockwise … (EXIF 2.32, tag 0x0112); stored = that undone.
  const undo: Record<number, (i: Img) => Img> = {
    1: (i) => i,
    2: mirror,
    3: (i) => clockwise(clockwise(i)),
    4: (i) => mirror(clockwise(clockwise(i))),
    5: (i) => mirror(clockwise(i)),
    6: anticlockwise,
    7: (i) => mirror(anticlockwise(i)),
    8: clockwise,
  };
  return undo[o]!(upright);
}

/** An APP1 EXIF segment holding only the orientation tag, in either byte order. */
export function exifSegment(orientation: number, little: boolean): Uint8Array {
  const tiff = new Uint8Array(8 + 2 + 12 + 4);
  const v = new DataView(tiff.buffer);
  tiff.set(little ? [0x49, 0x49] : [0x4d, 0x4d]);
  v.setUint16(2, 42, little);
  v.setUint32(4, 8, little);
  v.setUint16(8, 1, little); // one entry
  v.setUint16(10, 0x0112, little);
  v.setUint16(12, 3, little); // SHORT
  v.setUint32(14, 1, little);
  v.setUint16(18, orientation, little);
  const body = [...new TextEncoder().encode('Exif'), 0, 0, ...tiff];
  return Uint8Array.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 255, ...body]);
}

/** A JPEG of the RGBA pixels with an EXIF orientation written right after its start (SOI). */
export function jpegWithOrientation(rgba: Uint8Array, w: number, h: number, o: number, little = true): Uint8Array {
  const plain = new Uint8Array(jpeg.encode({ data: rgba, width: w, height: h }, 92).data);
  const app1 = exifSegment(o, little);
  const out = new Uint8Array(plain.length + app1.length);
  out.set(plain.subarray(0, 2));
  out.set(app1, 2);
  out.set(plain.subarray(2), 2 + app1.length);
  return out;
}

/** The bounding box of the 28×28 values over `level`: [x0, y0, x1, y1], or null. */
export function boxOf(p: Float32Array, level = 0.2, side = 28): [number, number, number, number] | null {
  let [x0, y0, x1, y1] = [side, side, -1, -1];
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++)
      if (p[y * side + x]! > level)
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  return x1 < 0 ? null : [x0, y0, x1, y1];
}

/** The intersection over union of the pixels over `level` in two 28×28 images. */
export function overlap(a: Float32Array, b: Float32Array, level = 0.3): number {
  let both = 0,
    either = 0;
  for (let i = 0; i < a.length; i++) {
    const [p, q] = [a[i]! > level, b[i]! > level];
    if (p && q) both++;
    if (p || q) either++;
  }
  return either ? both / either : 1;
}
