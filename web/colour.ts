// Images of any shape on the page: samples drawn from a dataset's bytes, grey or RGB, and a photo or
// drawing brought to a network's own input shape when that is not Fashion-MNIST's 28×28×1 (colour,
// or grey of another size) by resizePhoto, the steps `fmgpu predict` takes for such runs, then
// normalised as the training set was. Class names are the data's wherever they are shown.
import {
  describeResize,
  imagesOf,
  namesForOutputs,
  NUM_CLASSES,
  resizePhoto,
  type Dataset,
  type ImageShape,
  type ModelIR,
  type ServedData,
} from '../src/web.ts';
import { isDefaultInput } from './data.ts';
import { context2d } from './dom.ts';

/**
 * The names of `outputs` classes: the data's when it has that many, else (no data, or weights for
 * other data) Fashion-MNIST's for ten and the label numbers otherwise.
 */
export const namesOf = (data: ServedData | null, outputs = data?.classes.length ?? NUM_CLASSES): readonly string[] =>
  data && data.classes.length === outputs ? data.classes : namesForOutputs(outputs);

/** A network's input shape other than 28×28×1, and the set whose normalisation its inputs take. */
export interface ShapedInput {
  shape: ImageShape;
  train: Dataset | null;
}

/** `ir`'s input when photos and drawings are resized whole to it; null for 28×28×1 and for no model. */
export function shapedInput(ir: ModelIR | null, data: ServedData | null): ShapedInput | null {
  const s = ir?.input;
  if (!s || isDefaultInput(s)) return null;
  return { shape: { h: s.h, w: s.w, c: s.c }, train: data?.train ?? null };
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
 * RGBA pixels as the model's input: resized (src/data/resize.ts), then pixel/255 and the training
 * set's per-channel normalisation when it has one. `bytes` is the resized image, `title` what was done.
 */
export function shapedPixels(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  m: ShapedInput,
): { pixels: Float32Array; bytes: Uint8Array; title: string; inverted: boolean } {
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
  return { pixels: imagesOf(one, [0]), bytes: r.bytes, title: describeResize(r.steps), inverted: r.steps.inverted };
}
