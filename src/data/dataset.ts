// Datasets as bytes: Fashion-MNIST's idx files (decoded from bytes here; reading files is src/node/),
// subsets and Keras-style validation splits.
import { DataError } from '../errors.ts';
import { NUM_CLASSES } from './classes.ts';

export interface Dataset {
  /** n·rows·cols pixels, 0–255, row-major per image. */
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

export const INSTALL_HINT = 'install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist) or pass --data DIR';

function u32be(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** idx3 images: magic 2051, then n, rows, cols (big-endian u32), then the pixels. */
export function parseIdxImages(bytes: Uint8Array, file: string): { images: Uint8Array; n: number; rows: number; cols: number } {
  if (bytes.length < 16) throw new DataError(`${file}: truncated: ${bytes.length} bytes, shorter than an idx3 header (16)`);
  const magic = u32be(bytes, 0);
  if (magic !== 2051) throw new DataError(`${file}: not an idx3 image file: magic number ${magic}, expected 2051`);
  const n = u32be(bytes, 4), rows = u32be(bytes, 8), cols = u32be(bytes, 12);
  const need = 16 + n * rows * cols;
  if (bytes.length < need) throw new DataError(`${file}: truncated: ${n} images of ${rows}x${cols} need ${need} bytes but the file has ${bytes.length}`);
  return { images: bytes.subarray(16, need), n, rows, cols };
}

/** idx1 labels: magic 2049, then n, then one byte per label. */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  if (bytes.length < 8) throw new DataError(`${file}: truncated: ${bytes.length} bytes, shorter than an idx1 header (8)`);
  const magic = u32be(bytes, 0);
  if (magic !== 2049) throw new DataError(`${file}: not an idx1 label file: magic number ${magic}, expected 2049`);
  const n = u32be(bytes, 4);
  if (bytes.length < 8 + n) throw new DataError(`${file}: truncated: ${n} labels need ${8 + n} bytes but the file has ${bytes.length}`);
  const labels = bytes.subarray(8, 8 + n);
  const bad = labels.findIndex((l) => l >= NUM_CLASSES);
  if (bad >= 0) throw new DataError(`${file}: label ${labels[bad]} at index ${bad} is outside 0–${NUM_CLASSES - 1}`);
  return labels;
}

export function datasetFromIdx(images: Uint8Array, labels: Uint8Array, imageFile: string, labelFile: string): Dataset {
  const im = parseIdxImages(images, imageFile);
  const lb = parseIdxLabels(labels, labelFile);
  if (lb.length !== im.n) throw new DataError(`${labelFile}: ${lb.length} labels but ${imageFile} has ${im.n} images`);
  return { images: im.images, labels: lb, n: im.n, rows: im.rows, cols: im.cols };
}

/** The first n samples. */
export function subset(ds: Dataset, n: number): Dataset {
  const k = Math.min(n, ds.n);
  const px = ds.rows * ds.cols;
  return { ...ds, images: ds.images.subarray(0, k * px), labels: ds.labels.subarray(0, k), n: k };
}

/** Keras's validation_split: the LAST fraction of the samples, taken before any shuffling. */
export function validationSplit(ds: Dataset, fraction: number): { train: Dataset; val: Dataset } {
  const nVal = Math.floor(ds.n * fraction);
  const nTrain = ds.n - nVal;
  const px = ds.rows * ds.cols;
  return {
    train: { ...ds, images: ds.images.subarray(0, nTrain * px), labels: ds.labels.subarray(0, nTrain), n: nTrain },
    val: { ...ds, images: ds.images.subarray(nTrain * px), labels: ds.labels.subarray(nTrain), n: nVal },
  };
}
