// The dataset as `fmgpu serve` hands it to the page (src/cli/serve-data.ts writes it, src/web.ts
// reads it): /dataset/manifest.json says what the sets are, and each set is two files of bytes, its
// images (n·C·H·W, NCHW per image, as a Dataset holds them) and its labels (n bytes).
import { DataError } from '../errors.ts';
import { MAX_INPUT } from '../../dsl/ir.ts';
import { checkLabels, MAX_CLASSES } from './classes.ts';
import { imageBytes, type Dataset } from './dataset.ts';

/** Where the data came from: what the CLI detected (src/node/cifar.ts dataFormat), or CSV files. */
export type ServedFormat = 'idx' | 'cifar10' | 'cifar100' | 'folders' | 'csv';

/** One set's size and its two files, named relative to the manifest. */
export interface ServedSet {
  n: number;
  images: string;
  labels: string;
}

export interface Manifest {
  /** "Fashion-MNIST", "CIFAR-10", or the folder's or file's name. */
  name: string;
  /** As given on the command line: a folder, or the two CSV files. */
  source: string;
  format: ServedFormat;
  /** In label order: as many as the network's outputs must be. */
  classes: string[];
  rows: number;
  cols: number;
  channels: number;
  train: ServedSet;
  test: ServedSet;
  /** A tree of class folders' held-out part: how its test set was chosen; null otherwise. */
  heldOut: string | null;
}

const FORMATS: readonly ServedFormat[] = ['idx', 'cifar10', 'cifar100', 'folders', 'csv'];

const whole = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
/** A file name beside the manifest: no folders, nothing hidden. */
const fileName = (v: unknown): v is string => typeof v === 'string' && /^[\w-][\w.-]*$/.test(v);

/** manifest.json's text, every field checked: a DataError naming the first that is wrong. */
export function readManifest(text: string, url: string): Manifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new DataError(`${url}: not JSON`);
  }
  const bad = (what: string): DataError => new DataError(`${url}: ${what}`);
  if (typeof m !== 'object' || m === null) throw bad('not a JSON object');
  if (typeof m.name !== 'string' || typeof m.source !== 'string') throw bad('"name" and "source" must be strings');
  if (!FORMATS.includes(m.format as ServedFormat)) throw bad(`"format" must be one of ${FORMATS.join(', ')}`);
  const classes = m.classes;
  if (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string') || !whole(classes.length, 1, MAX_CLASSES))
    throw bad(`"classes" must be a list of 1 to ${MAX_CLASSES} names`);
  const { side, channels } = MAX_INPUT;
  for (const k of ['rows', 'cols'] as const) if (!whole(m[k], 1, side)) throw bad(`"${k}" must be 1 to ${side}`);
  if (!whole(m.channels, 1, channels)) throw bad(`"channels" must be 1 to ${channels}`);
  for (const k of ['train', 'test'] as const) {
    const s = m[k] as Record<string, unknown> | null | undefined;
    if (typeof s !== 'object' || s === null || !whole(s.n, 0, 2 ** 32) || !fileName(s.images) || !fileName(s.labels))
      throw bad(`"${k}" must be {"n": count, "images": file, "labels": file}`);
  }
  if (m.heldOut !== null && typeof m.heldOut !== 'string') throw bad('"heldOut" must be a string or null');
  return m as unknown as Manifest;
}

/**
 * One set from its two files' bytes: their lengths must be what the manifest announces, and the
 * labels among its classes. `where` names the files in messages.
 */
export function servedSet(
  m: Manifest,
  set: 'train' | 'test',
  images: Uint8Array,
  labels: Uint8Array,
  where: { images: string; labels: string; manifest: string },
): Dataset {
  const n = m[set].n;
  const ds: Dataset = {
    images,
    labels,
    n,
    rows: m.rows,
    cols: m.cols,
    ...(m.channels > 1 ? { channels: m.channels } : {}),
  };
  const want = n * imageBytes(ds);
  if (images.length !== want)
    throw new DataError(`${where.images}: ${images.length} bytes, not the ${want} ${where.manifest} announces`);
  if (labels.length !== n)
    throw new DataError(`${where.labels}: ${labels.length} labels, not the ${n} ${where.manifest} announces`);
  checkLabels(labels, m.classes.length, `${where.labels} (${where.manifest} names ${m.classes.length} classes)`);
  return ds;
}
