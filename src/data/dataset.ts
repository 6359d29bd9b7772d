// A dataset as bytes (the form it has on disk and on the GPU), and the two ways to cut one:
// the first n samples, and Keras's validation_split. Decoders: idx.ts (idx files), csv.ts (Kaggle CSV).
import { NUM_CLASSES } from './classes.ts';

export interface Dataset {
  /** n·rows·cols pixels, 0–255, image after image, each row-major. */
  images: Uint8Array;
  /** n class indices, 0–9. */
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

function count(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what} must be a whole number ≥ 0, got ${n}`);
}

/** Samples [from, to) as views of the same bytes (no copy). */
export function slice(ds: Dataset, from: number, to: number): Dataset {
  const px = ds.rows * ds.cols;
  return { ...ds, images: ds.images.subarray(from * px, to * px), labels: ds.labels.subarray(from, to), n: to - from };
}

/** The first n samples (all of them when n ≥ ds.n). */
export function subset(ds: Dataset, n: number): Dataset {
  count(n, 'subset size');
  return slice(ds, 0, Math.min(n, ds.n));
}

/**
 * Keras's validation_split: the LAST fraction of the samples, in file order, taken before any
 * shuffling; train = [0, split), val = [split, n) with split = floor(n·(1 − fraction)), exactly as
 * keras.src.trainers.data_adapters.array_slicing.train_validation_split. Either part may be empty
 * (Keras raises then): callers say what that means for them.
 */
export function validationSplit(ds: Dataset, fraction: number): { train: Dataset; val: Dataset } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const split = Math.floor(ds.n * (1 - fraction));
  return { train: slice(ds, 0, split), val: slice(ds, split, ds.n) };
}

/** How many samples of each class. */
export function labelHistogram(ds: Dataset): number[] {
  const h = new Array<number>(NUM_CLASSES).fill(0);
  for (const l of ds.labels) h[l]!++;
  return h;
}
