// Photos for `fmgpu predict`: read and decoded (src/node/image.ts), brought to the form of the run's
// training images (src/data/photo.ts, the page's own steps), explained in one line, and written as
// the PNG the network sees (--save-input). Runs of another shape (colour, or grey of another size)
// get the whole picture resized to their H×W×C (src/data/resize.ts), as bytes their test set's
// normalisation applies to.
import { existsSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import { describePhoto, FASHION_MNIST_FORM, preparePhoto, type PhotoForm, type PhotoSteps } from '../data/photo.ts';
import { SIDE } from '../data/image.ts';
import { describeResize, resizePhoto, type ImageShape, type ResizeSteps } from '../data/resize.ts';
import { grayPng, rgbPng } from '../report/png.ts';
import { decodeImage, MAX_IMAGE_BYTES } from '../node/image.ts';
import { readInput } from '../node/files.ts';
import { makeDir, writeFileAtomic } from '../node/write.ts';
import type { OpenRun } from './common.ts';

export interface PreparedPhoto {
  file: string;
  /** 28×28 in [0, 1]: what the network sees. */
  pixels: Float32Array;
  inverted: boolean;
  steps: PhotoSteps;
  /** `photo 420×340 RGB, EXIF rotated, background white → cropped 310×280 → 28×28, inverted` */
  explanation: string;
}

/** A photo resized to a run's own input shape: bytes, NCHW, not yet normalised. */
export interface ResizedPhotoFile {
  file: string;
  bytes: Uint8Array;
  shape: ImageShape;
  inverted: boolean;
  steps: ResizeSteps;
  /** `photo 640×480 RGB → 32×32 RGB` */
  explanation: string;
}

/**
 * The form of a run's training images, as `fmgpu train` records it in run.json (`input`). Runs
 * from before that record, and runs without a run.json, were trained on Fashion-MNIST's form.
 */
export function runForm(run: Pick<OpenRun, 'dir' | 'json'>): PhotoForm {
  const { input } = run.json;
  if (input === undefined) return FASHION_MNIST_FORM;
  const f = input as { form?: unknown; box?: unknown };
  if (f.form === 'plain') return { form: 'plain' };
  if (f.form === 'object' && Number.isInteger(f.box) && (f.box as number) >= 1 && (f.box as number) <= SIDE)
    return { form: 'object', box: f.box as number };
  throw new DataError(
    `${join(run.dir, 'run.json')}: "input" must be {"form": "object", "box": 1 to ${SIDE}} or {"form": "plain"}, ` +
      `not ${JSON.stringify(input).slice(0, 80)}`,
  );
}

/** One image file → the network's input and what was done to it. */
export function preparePhotoFile(file: string, form: PhotoForm, invert: boolean | 'auto'): PreparedPhoto {
  const img = decodeImage(readInput(file, { what: 'a PNG or JPEG image', maxBytes: MAX_IMAGE_BYTES }), file);
  const p = preparePhoto(img.data, img.width, img.height, { form, invert, orientation: img.orientation });
  return { file, pixels: p.pixels, inverted: p.inverted, steps: p.steps, explanation: describePhoto(p.steps) };
}

/** One image file → a run's input shape (not 28×28×1) and what was done to it. */
export function resizePhotoFile(file: string, shape: ImageShape, invert: boolean | 'auto'): ResizedPhotoFile {
  const img = decodeImage(readInput(file, { what: 'a PNG or JPEG image', maxBytes: MAX_IMAGE_BYTES }), file);
  const r = resizePhoto(img.data, img.width, img.height, shape, { orientation: img.orientation, invert });
  return {
    file,
    bytes: r.bytes,
    shape,
    inverted: r.steps.inverted,
    steps: r.steps,
    explanation: describeResize(r.steps),
  };
}

/** What `--json` says of a photo besides its classes. */
export function photoJson(p: PreparedPhoto | ResizedPhotoFile): Record<string, unknown> {
  if ('bytes' in p) return { inverted: p.inverted, steps: p.steps, explanation: p.explanation };
  const { crop, ...steps } = p.steps;
  return {
    inverted: p.inverted,
    steps: { ...steps, crop: crop && [crop.x, crop.y, crop.w, crop.h] },
    explanation: p.explanation,
  };
}

/** The PNG of what the network sees: 28×28 grey, or the run's own shape (RGB for colour runs). */
function inputPng(p: PreparedPhoto | ResizedPhotoFile): Uint8Array {
  if (!('bytes' in p)) {
    const bytes = Uint8Array.from(p.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
    return grayPng(bytes, SIDE, SIDE);
  }
  return p.shape.c === 3 ? rgbPng(p.bytes, p.shape.w, p.shape.h) : grayPng(p.bytes, p.shape.w, p.shape.h);
}

/**
 * --save-input DIR: each photo's input as an 8-bit PNG (grey, or RGB for colour runs), named after the photo
 * (shirt.jpg → DIR/shirt.png; a second shirt.*, or a photo of that name in DIR, → shirt-2.png).
 * Returns the paths, in order.
 */
export function saveInputs(dir: string, photos: readonly (PreparedPhoto | ResizedPhotoFile)[]): string[] {
  const inputs = photos.map((p) => ({ stem: basename(p.file, extname(p.file)), png: () => inputPng(p) }));
  return savePngs(
    dir,
    inputs,
    photos.map((p) => p.file),
  );
}

/**
 * --save-input DIR: PNG files named `stem.png` in DIR, made first; never written over a file already there, one
 * saved before in this call, or one of `inputs` (the photos being classified): then `stem-2.png`, and so on.
 */
export function savePngs(dir: string, pngs: readonly { stem: string; png: () => Uint8Array }[], inputs: string[] = []) {
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false)
    throw new UsageError(`--save-input ${dir} is a file: give the folder to write the inputs into`);
  try {
    makeDir(dir);
  } catch (e) {
    throw new DataError(`--save-input ${dir}: cannot make the folder (${(e as Error).message.split('\n')[0]})`);
  }
  const taken = new Set(inputs.map((f) => resolve(f)));
  const free = (name: string): boolean => !taken.has(resolve(dir, name)) && !existsSync(join(dir, name));
  return pngs.map(({ stem, png }) => {
    let name = `${stem}.png`;
    for (let k = 2; !free(name); k++) name = `${stem}-${k}.png`;
    taken.add(resolve(dir, name));
    writeFileAtomic(join(dir, name), png());
    return join(dir, name);
  });
}

/** A photo's top classes: `shirt.jpg: Shirt 71.0%, …` and its explanation below; with --json one object. */
export function photoLines(
  p: PreparedPhoto | ResizedPhotoFile,
  top: readonly { class: string; probability: number }[],
  json: boolean,
) {
  if (json) return [JSON.stringify({ file: p.file, top, ...photoJson(p) })];
  const classes = top.map((c) => `${c.class} ${(c.probability * 100).toFixed(1)}%`).join(', ');
  return [`${p.file}: ${classes}`, `  ${p.explanation}`];
}
