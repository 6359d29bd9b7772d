// A photo brought to the form of the images a run was trained on, the same way in the page and in
// `fmgpu predict`. Fashion-MNIST's own conversion trimmed each product photo to the garment, scaled
// its longer side to 28 pixels keeping the aspect ratio, centred it, and negated it: a light garment
// on flat black. A photo gets the same: EXIF orientation applied, the background estimated from the
// border (flat or a gradient; white, grey or dark) and levelled to black, the object cropped to its
// bounding box, scaled and centred; dark objects on light backgrounds come out light. Runs trained
// on other data get the plain path: the whole picture, resized (src/data/image.ts).
import { fitBackground, type Background } from './background.ts';
import type { Dataset } from './dataset.ts';
import {
  SIDE,
  checkRgba,
  fitInto,
  grayOf,
  frameShade,
  lookAt,
  wholeImage,
  type Gray,
  type Preprocessed,
  type Region,
} from './image.ts';

/**
 * How a run's images frame their object: Fashion-MNIST's (a light object on black, its bounding
 * box's longer side `box` pixels, centred) or anything else (`plain`: the whole picture, resized).
 */
export type PhotoForm = { form: 'object'; box: number } | { form: 'plain' };

/** Fashion-MNIST's form: what a run that records none was trained on. */
export const FASHION_MNIST_FORM: PhotoForm = { form: 'object', box: SIDE };

/** What was done to a photo, for the explanation line and `--json`. */
export interface PhotoSteps {
  /** The picture as stored. */
  width: number;
  height: number;
  colour: 'grey' | 'RGB';
  /**
   * Some pixels are not opaque: they were composited over `over` (the frame: the shade of the picture's own
   * opaque frame, a photo with a transparent strip or corner; white or black behind a cut-out object).
   */
  transparent: boolean;
  over: 'white' | 'black' | 'the frame';
  /** EXIF orientation, 1–8 (1: as stored). */
  orientation: number;
  form: PhotoForm['form'];
  /** The background's level where it was estimated (object form), and whether it varies across the picture. */
  background: 'white' | 'grey' | 'dark' | null;
  gradient: boolean;
  /** The object's bounding box in the upright picture; null: the whole picture. */
  crop: Region | null;
  /** Light where the photo was dark: the object was darker than its background. */
  inverted: boolean;
  /** Already in the data's form (28×28 grey, a dark frame, the object centred: a dataset image saved): as it is. */
  asIs?: boolean;
}

export interface Photo extends Preprocessed {
  steps: PhotoSteps;
}

export interface PhotoOptions {
  form?: PhotoForm;
  /** true: dark objects only (light background), false: light objects only; 'auto': decide. */
  invert?: boolean | 'auto';
  /** EXIF orientation of the stored pixels, 1–8; anything else counts as 1. */
  orientation?: number;
}

/** A pixel belongs to the object when it stands out from the background by this much (of the full range). */
const OBJECT_LEVEL = 0.05;
/** A frame whose luma varies more than this (its standard deviation) is not one background's shade. */
const FRAME_SPREAD = 0.1;
/** Noise below this never counts as object, however clean the frame. */
const MIN_NOISE_FLOOR = 0.03;

/** RGBA pixels (an ImageData's data) → the network's 28×28 input, and what was done. */
export function preparePhoto(rgba: ArrayLike<number>, width: number, height: number, opts: PhotoOptions = {}): Photo {
  checkRgba(rgba, width, height);
  const form = opts.form ?? FASHION_MNIST_FORM;
  const o = opts.orientation ?? 1;
  const orientation = Number.isInteger(o) && o >= 1 && o <= 8 ? o : 1;
  const look = lookAt(rgba, width * height);
  // Transparent parts go behind the object: in the shade of the picture's own background where its frame is
  // mostly opaque and of one shade (a photo with a transparent strip or corner), so they are background too;
  // else, a cut-out object (one cropped to its box may touch the frame), in the shade that sets it off.
  const frame = frameShade(rgba, width, height);
  const framed = look.transparent && frame.opaque >= 0.5 && frame.spread < FRAME_SPREAD;
  const over = framed ? frame.luma : look.transparent && look.opaqueLuma > 0.5 ? 0 : 1;
  const g = grayOf(rgba, width, height, orientation, over);
  const steps: PhotoSteps = {
    width,
    height,
    colour: look.colour,
    transparent: look.transparent,
    over: framed ? 'the frame' : over ? 'white' : 'black',
    orientation,
    form: form.form,
    background: null,
    gradient: false,
    crop: null,
    inverted: false,
  };
  if (form.form === 'plain') {
    const p = wholeImage(g, opts.invert ?? 'auto');
    return { ...p, steps: { ...steps, inverted: p.inverted } };
  }
  // A picture in the data's own form (a Fashion-MNIST image saved as a PNG) is taken as it is: it gets what
  // predict --test gives that image, not a second crop and levelling.
  const upright = orientation === 1 && !look.transparent && look.colour === 'grey' && opts.invert !== true;
  if (upright && g.width === SIDE && g.height === SIDE) {
    const j = judged(g.gray, SIDE, SIDE, 1);
    if (j.dark && j.centred)
      return { pixels: g.gray, inverted: false, steps: { ...steps, background: 'dark', asIs: true } };
  }
  const bg = fitBackground(g.gray, g.width, g.height);
  const inverted = level(g, bg, opts.invert ?? 'auto');
  const crop = objectBox(g);
  const pixels = fitInto(g.gray, g.width, crop ?? { x: 0, y: 0, w: g.width, h: g.height }, form.box);
  const background = bg.mean > 0.7 ? 'white' : bg.mean < 0.3 ? 'dark' : 'grey';
  return { pixels, inverted, steps: { ...steps, background, gradient: bg.high - bg.low > 0.08, crop, inverted } };
}

/**
 * In place: each pixel → how far it stands from the background, 0 (background, and noise within
 * three of the frame's standard deviations) to 1 (black on white, white on black), as a share of
 * the room the background leaves (at least half the range). `invert` true counts only what is
 * darker, false only what is lighter, 'auto' both. Returns whether the object is darker than its
 * background, by the total of each.
 */
function level({ gray, width, height }: Gray, bg: Background, invert: boolean | 'auto'): boolean {
  const floor = Math.max(MIN_NOISE_FLOOR, 3 * bg.noise);
  let darker = 0,
    lighter = 0;
  for (let y = 0; y < height; y++) {
    const [p, q, r] = bg.row(y);
    for (let x = 0; x < width; x++) {
      const u = bg.u(x);
      const d = gray[y * width + x]! - (p + q * u + r * u * u);
      if (d < -floor) darker -= d + floor;
      else if (d > floor) lighter += d - floor;
    }
  }
  const keepDark = invert !== false,
    keepLight = invert !== true;
  for (let y = 0; y < height; y++) {
    const [p, q, r] = bg.row(y);
    for (let x = 0; x < width; x++) {
      const u = bg.u(x);
      const b = Math.min(1, Math.max(0, p + q * u + r * u * u));
      const d = gray[y * width + x]! - b;
      const room = d < 0 ? b : 1 - b;
      const kept = d < 0 ? keepDark : keepLight;
      const v = kept ? (Math.abs(d) - floor) / (Math.max(room, 0.5) - floor) : 0;
      gray[y * width + x] = Math.min(1, Math.max(0, v));
    }
  }
  return invert === 'auto' ? darker > lighter : invert;
}

/**
 * The bounding box of the pixels at OBJECT_LEVEL or above, over rows and columns that hold at
 * least 0.2% of the picture's width (height) of them, so that specks do not widen it; null if none.
 */
function objectBox({ gray, width, height }: Gray): Region | null {
  const rows = new Uint32Array(height),
    cols = new Uint32Array(width);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (gray[y * width + x]! >= OBJECT_LEVEL) {
        rows[y]!++;
        cols[x]!++;
      }
  const span = (counts: Uint32Array, least: number): [number, number] | null => {
    const first = counts.findIndex((c) => c >= least);
    let last = counts.length - 1;
    while (last > first && counts[last]! < least) last--;
    return first < 0 ? null : [first, last];
  };
  const ys = span(rows, Math.max(1, Math.floor(0.002 * width)));
  const xs = span(cols, Math.max(1, Math.floor(0.002 * height)));
  if (!ys || !xs) return null;
  return { x: xs[0], y: ys[0], w: xs[1] - xs[0] + 1, h: ys[1] - ys[0] + 1 };
}

/** `photo 420×340 RGB, EXIF rotated, background white → cropped 310×280 → 28×28, inverted`. */
export function describePhoto(s: PhotoSteps): string {
  const colour = s.transparent ? (s.colour === 'RGB' ? 'RGBA' : 'grey+alpha') : s.colour;
  const head = [`photo ${s.width}×${s.height} ${colour}`];
  const turn = [0, 2, 1, 2, 3, 1, 3, 1][s.orientation - 1] ?? 0; // 1 rotated, 2 mirrored, 3 both
  if (turn) head.push(`EXIF ${['', 'rotated', 'mirrored', 'rotated and mirrored'][turn]}`);
  if (s.asIs) return `${head.join(', ')}, dark frame, object centred → as it is (the data's own form)`;
  if (s.form === 'object') {
    const kind = `${s.background}${s.gradient ? ' gradient' : ''}`;
    const clear = s.over === 'the frame' ? `${kind}, transparent parts in its shade` : `transparent, over ${s.over}`;
    head.push(`background ${s.transparent ? clear : kind}`);
  }
  const middle =
    s.form === 'plain'
      ? 'whole picture'
      : s.crop
        ? `cropped ${s.crop.w}×${s.crop.h}`
        : 'no object found: whole picture';
  return `${head.join(', ')} → ${middle} → ${SIDE}×${SIDE}${s.inverted ? ', inverted' : ''}`;
}

/**
 * The form of a training set's images, measured on up to `sample` of them: Fashion-MNIST's when
 * nearly all have a dark frame (1-pixel border mean under 15%) and most a centred bounding box (of
 * the pixels over 20%; within 2.5 pixels), its longer side the median over the images; else plain.
 */
export function inputForm(ds: Dataset, sample = 1000): PhotoForm {
  const n = Math.min(ds.n, sample);
  const { rows: h, cols: w } = ds;
  const sides: number[] = [];
  let dark = 0,
    centred = 0;
  for (let i = 0; i < n; i++) {
    const j = judged(ds.images.subarray(i * w * h, (i + 1) * w * h), w, h, 255);
    if (j.dark) dark++;
    if (j.side === null) continue;
    sides.push(j.side);
    if (j.centred) centred++;
  }
  if (n === 0 || dark < 0.9 * n || centred < 0.8 * n) return { form: 'plain' };
  sides.sort((a, b) => a - b);
  return { form: 'object', box: sides[sides.length >> 1] ?? SIDE };
}

/**
 * One image as inputForm judges a training image (pixels 0 to `unit`): its 1-pixel frame dark (mean under 15%),
 * the box of its pixels over 20% centred (within 2.5 pixels) and that box's longer side (null: no such pixel).
 */
function judged(img: ArrayLike<number>, w: number, h: number, unit: number) {
  let frame = 0;
  let [x0, y0, x1, y1] = [w, h, -1, -1];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const p = img[y * w + x]!;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) frame += p;
      if (p > 0.2 * unit) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  const dark = frame / (2 * (w + h) - 4) < 0.15 * unit;
  if (x1 < 0) return { dark, centred: false, side: null };
  const centred = Math.abs(x0 + x1 + 1 - w) <= 5 && Math.abs(y0 + y1 + 1 - h) <= 5;
  return { dark, centred, side: Math.max(x1 - x0 + 1, y1 - y0 + 1) };
}
