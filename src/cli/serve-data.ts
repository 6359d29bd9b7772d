// The dataset `fmgpu serve` offers the page, read once at start by `fmgpu train`'s own loaders
// (train-data.ts trainAndTest: the same format detection, one-line errors, decoders and memory
// bounds), then held in memory and served under /dataset/ (src/node/server.ts): manifest.json (name,
// format, class names, image shape, counts) and each set's images (uint8, NCHW per image, as a
// Dataset holds them) and labels. The page reads those instead of decoding files itself, so
// whatever the CLI trains on, the page trains on.
import { basename } from 'node:path';
import { DEFAULT_INPUT, MAX_INPUT, shapeText, trainDefaults, type SpatialShape } from '../../dsl/index.ts';
import { CLASS_NAMES } from '../data/classes.ts';
import { channelsOf, type Dataset } from '../data/dataset.ts';
import type { Manifest } from '../data/served.ts';
import type { MemoryFile } from '../node/mounts.ts';
import { UsageError, type Flags } from './args.ts';
import { trainAndTest } from './train-data.ts';

/** What a folder of images is resized to without --input: small colour photos, as CIFAR's. */
export const FOLDER_INPUT: SpatialShape = { h: 32, w: 32, c: 3 };
/** A CSV file's images without --input: Fashion-MNIST's, as `fmgpu train` reads one without an input line. */
export const CSV_INPUT: SpatialShape = DEFAULT_INPUT;
/** A tree of class folders (no train/ and test/) keeps back this fraction as its test set. */
export const TREE_HOLD_OUT = 0.2;

/** Where the data comes from: serve's --data, --csv, --test-csv and --input. */
export interface ServeSource {
  dataDir: string;
  /** --data was given: bad data is refused (exit 2) rather than warned about. */
  dataGiven: boolean;
  csv: string | null;
  testCsv: string | null;
  input: SpatialShape | null;
}

export interface ServedData {
  manifest: Manifest;
  train: Dataset;
  test: Dataset;
}

/** `--input HxWxC` (C defaults to 1), within the language's bounds for an `input` line. */
export function parseInputFlag(v: string): SpatialShape {
  const m = /^(\d+)x(\d+)(?:x(\d+))?$/.exec(v);
  const [h, w, c] = m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 1)] : [0, 0, 0];
  const { side, channels } = MAX_INPUT;
  if (!m || h < 1 || h > side || w < 1 || w > side || c < 1 || c > channels)
    throw new UsageError(
      `--input takes HxWxC (sides 1 to ${side}, channels 1 to ${channels}), such as 32x32x3, not "${v}"`,
    );
  return { h, w, c };
}

/** The sets and the manifest; DataError or UsageError (exit 2) when the data cannot be read. */
export function readServedData(s: ServeSource): ServedData {
  const csv = s.csv !== null || s.testCsv !== null;
  // Only a folder of images and a CSV file take the input's size: idx and CIFAR data have their own.
  const input = s.input ?? (csv ? CSV_INPUT : FOLDER_INPUT);
  // serve's flags as train's: their mistakes (--csv without --test-csv, --data with --csv) refused as train's are.
  const flags: Flags = {
    csv: s.csv ?? undefined,
    'test-csv': s.testCsv ?? undefined,
    data: s.dataGiven || !csv ? s.dataDir : undefined,
  };
  const hold = { validation: TREE_HOLD_OUT, seed: trainDefaults().seed };
  const inputWhat = `--input ${shapeText(input)}${s.input ? '' : ' (the default)'}`;
  const { train, test, classes, heldOut, format } = trainAndTest(flags, { input, train: hold, inputWhat });
  const sized = format === 'folders' || format === 'csv';
  const shape = { h: train.rows, w: train.cols, c: channelsOf(train) };
  if (!sized && s.input && shapeText(s.input) !== shapeText(shape))
    throw new UsageError(
      `--input ${shapeText(s.input)}: ${s.dataDir} holds ${format} images of ${shapeText(shape)} ` +
        '(--input sizes a folder of images or a CSV file)',
    );
  if (train.n === 0) throw new UsageError(`no training images (${s.dataDir})`);
  if (test.n === 0) throw new UsageError(`the test set has no images (${s.dataDir})`);
  const source = csv ? `${s.csv}, ${s.testCsv}` : s.dataDir;
  const set = (ds: Dataset, name: string) => ({
    n: ds.n,
    images: `${name}-images.bin`,
    labels: `${name}-labels.bin`,
  });
  const manifest: Manifest = {
    name: datasetName(format, classes, csv ? String(s.csv) : s.dataDir),
    source,
    format,
    classes,
    rows: shape.h,
    cols: shape.w,
    channels: shape.c,
    train: set(train, 'train'),
    test: set(test, 'test'),
    heldOut: heldOut ?? null,
  };
  return { manifest, train, test };
}

function datasetName(format: Manifest['format'], classes: readonly string[], from: string): string {
  if (format === 'cifar10') return 'CIFAR-10';
  if (format === 'cifar100') return 'CIFAR-100';
  const fashion = classes.length === CLASS_NAMES.length && classes.every((c, i) => c === CLASS_NAMES[i]);
  if (fashion && (format === 'idx' || format === 'csv')) return 'Fashion-MNIST';
  return basename(from.replace(/[/\\]+$/, '')) || from;
}

/** The files under /dataset/, by name: the manifest and the four arrays of bytes. */
export function datasetFiles(d: ServedData): Map<string, MemoryFile> {
  const m = d.manifest;
  const bin = (bytes: Uint8Array): MemoryFile => ({ bytes, type: 'application/octet-stream' });
  return new Map([
    ['manifest.json', { bytes: Buffer.from(`${JSON.stringify(m)}\n`), type: 'application/json; charset=utf-8' }],
    [m.train.images, bin(d.train.images)],
    [m.train.labels, bin(d.train.labels)],
    [m.test.images, bin(d.test.images)],
    [m.test.labels, bin(d.test.labels)],
  ]);
}

/** What the terminal says of the data served: its size and classes, how a tree's test set was chosen. */
export function servedLines(d: ServedData): string[] {
  const m = d.manifest;
  const shape = `${m.rows}x${m.cols}x${m.channels}`;
  const resized = m.format === 'folders' ? ` (images resized to ${shape}: --input HxWxC)` : '';
  const lines = [
    `fmgpu: the page trains on ${m.name} (${m.format}, ${m.source}): ${m.train.n.toLocaleString('en-US')} ` +
      `training and ${m.test.n.toLocaleString('en-US')} test images of ${shape}, ${m.classes.length} classes${resized}`,
  ];
  if (m.heldOut)
    lines.push(
      `fmgpu: one tree of class folders (no train/ and test/): the test set is ${m.heldOut}, ` +
        `as fmgpu train holds it out with validation=${TREE_HOLD_OUT} seed=${trainDefaults().seed}`,
    );
  return lines;
}
