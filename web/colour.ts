// Colour datasets on the page (CIFAR-10 from `fmgpu serve --data`): samples drawn from their bytes,
// grey or RGB, and an uploaded photo brought to a colour network's input shape by resizePhoto (the
// CLI's steps), then normalised as the training set was. The drawing pad stays grey-only.
import {
  CLASS_NAMES,
  describeResize,
  imagesOf,
  resizePhoto,
  type Dataset,
  type ImageShape,
  type ServedData,
  type Trainer,
} from '../src/web.ts';
import { context2d } from './dom.ts';

/** The class names to show: the served dataset's, else Fashion-MNIST's. */
export const namesOf = (data: ServedData | null): readonly string[] => data?.classes ?? CLASS_NAMES;

/** A network that takes colour: its input shape and the set whose normalisation photos take. */
export interface ColourModel {
  shape: ImageShape;
  train: Dataset | null;
}

/** The trainer's model when it takes more than one channel; null for grey models and no model. */
export function colourModel(trainer: Trainer | null, data: ServedData | null): ColourModel | null {
  const s = trainer?.ir.input;
  return s && s.c !== 1 ? { shape: { h: s.h, w: s.w, c: s.c }, train: data?.train ?? null } : null;
}

/** channels·h·w bytes (NCHW) drawn on `canvas` at h×w: grey for one channel, RGB for three. */
export function drawBytes(canvas: HTMLCanvasElement, bytes: Uint8Array, shape: ImageShape): void {
  const { w, h, c } = shape;
  canvas.width = w;
  canvas.height = h;
  const g = context2d(canvas);
  const img = g.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = bytes[(c === 3 ? k : 0) * w * h + i]!;
    img.data[4 * i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

/** Sample `index` of `ds` as it is stored. */
export function drawSample(canvas: HTMLCanvasElement, ds: Dataset, index: number): void {
  const shape = { h: ds.rows, w: ds.cols, c: ds.channels ?? 1 };
  const px = shape.c * shape.h * shape.w;
  drawBytes(canvas, ds.images.subarray(index * px, (index + 1) * px), shape);
}

/**
 * RGBA pixels as the colour model's input: resized (src/data/resize.ts), then pixel/255 and the
 * training set's per-channel normalisation. `bytes` is the resized image, `title` what was done.
 */
export function colourInput(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  m: ColourModel,
): { pixels: Float32Array; bytes: Uint8Array; title: string } {
  const r = resizePhoto(rgba, width, height, m.shape);
  const one: Dataset = {
    images: r.bytes,
    labels: new Uint8Array(1),
    n: 1,
    rows: m.shape.h,
    cols: m.shape.w,
    channels: m.shape.c,
    ...(m.train?.normalize ? { normalize: m.train.normalize } : {}),
  };
  return { pixels: imagesOf(one, [0]), bytes: r.bytes, title: describeResize(r.steps) };
}
