// A dataset as bytes (the form it has on disk and on the GPU), and the ways to cut one: the first n
// samples, samples picked by index, and Keras's validation_split (split.ts: a random one).
// Decoders: idx.ts (idx files), csv.ts (Kaggle CSV).
import { labelRange } from './classes.ts';

export interface Dataset {
  /** n·channels·rows·cols pixels, 0–255, image after image, each NCHW (channel-planar, rows row-major). */
  images: Uint8Array;
  /** n class indices, 0 to the class count − 1. */
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
  /** Colour channels (absent: 1, grey). */
  channels?: number;
  /** How its pixels become the network's input (absent: pixel/255); see src/data/batch.ts. */
  normalize?: { mean: number | readonly number[]; std: number | readonly number[] };
  /** Each image's line in its CSV file (1-based), for messages; absent for other files. */
  lines?: Uint32Array;
}

export const channelsOf = (ds: Dataset): number => ds.channels ?? 1;

/** Bytes per image: channels·rows·cols. */
export const imageBytes = (ds: Dataset): number => channelsOf(ds) * ds.rows * ds.cols;

function count(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what} must be a whole number ≥ 0, got ${n}`);
}

/** Samples [from, to) as views of the same bytes (no copy). */
export function slice(ds: Dataset, from: number, to: number): Dataset {
  const px = imageBytes(ds);
  const part = {
    ...ds,
    images: ds.images.subarray(from * px, to * px),
    labels: ds.labels.subarray(from, to),
    n: to - from,
  };
  return ds.lines ? { ...part, lines: ds.lines.subarray(from, to) } : part;
}

/** Samples at `indices` (in that order) as a new dataset. */
export function gather(ds: Dataset, indices: readonly number[]): Dataset {
  const px = imageBytes(ds);
  const images = new Uint8Array(indices.length * px);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, i) => {
    images.set(ds.images.subarray(src * px, (src + 1) * px), i * px);
    labels[i] = ds.labels[src] as number;
  });
  const picked = { ...ds, images, labels, n: indices.length };
  return ds.lines ? { ...picked, lines: Uint32Array.from(indices, (i) => ds.lines?.[i] ?? 0) } : picked;
}

/** `keep` of the items, evenly spaced through them (so each class of sorted data keeps its share); all when absent. */
export function spread<T>(items: readonly T[], keep: number | undefined): T[] {
  if (keep === undefined || keep >= items.length) return [...items];
  return Array.from({ length: keep }, (_, i) => items[Math.floor((i * items.length) / keep)] as T);
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

/** How many samples of each class (by default, of as many classes as the labels reach). */
export function labelHistogram(ds: Dataset, classes = labelRange(ds.labels)): number[] {
  const h = new Array<number>(classes).fill(0);
  for (const l of ds.labels) h[l]!++;
  return h;
}
