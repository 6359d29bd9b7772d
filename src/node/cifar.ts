// What a --data folder holds, and CIFAR's binary batches read from one (decoding: src/data/cifar.ts):
//   - idx:      train-images-idx3-ubyte[.gz] … t10k-labels-idx1-ubyte[.gz] (src/node/data.ts);
//   - cifar10:  data_batch_1.bin … data_batch_5.bin (any of them) and test_batch.bin, names from batches.meta.txt;
//   - cifar100: train.bin and test.bin, names from fine_label_names.txt;
//   - folders:  class folders of PNG/JPEG images (src/node/folders.ts).
// Without a names file the classes are numbered.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { checkLabels, labelNumbers, labelRange } from '../data/classes.ts';
import { concatDatasets, decodeCifar, recordBytes, type CifarKind } from '../data/cifar.ts';
import type { Dataset } from '../data/dataset.ts';
import { KiB, MiB, openInput, readClassNames } from './files.ts';
import { folderLayout } from './folders.ts';

export type DataFormat = 'idx' | CifarKind | 'folders';

/** The largest batch file read: CIFAR-100's train.bin is 153 MB. */
const BATCH_MAX_BYTES = 256 * MiB;
const NAMES_MAX_BYTES = 64 * KiB;

const IDX_FILES = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
];
const LOOKED_FOR =
  'idx files (train-images-idx3-ubyte[.gz] and the other three), ' +
  'CIFAR-10 batches (data_batch_*.bin, test_batch.bin), CIFAR-100 batches (train.bin, test.bin) ' +
  'or class folders of PNG/JPEG images (train/<class>/, test/<class>/ or <class>/)';

const TRAIN_BATCH = /^data_batch_\d+\.bin$/;
const trainBatches = (names: readonly string[]): string[] =>
  names.filter((n) => TRAIN_BATCH.test(n)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));

/** An idx folder's class names, one a line in label order (src/node/data.ts readClassList). */
export const CLASS_LIST_FILE = 'classes.txt';

/** CIFAR's files besides the training batches: batches, and class names (CIFAR-100's coarse ones too). */
const CIFAR_FILES = new Set([
  'test_batch.bin',
  'train.bin',
  'test.bin',
  'batches.meta.txt',
  'fine_label_names.txt',
  'coarse_label_names.txt',
]);

/**
 * A file of a dataset this module reads: idx files (gzipped or not), CIFAR-10 and CIFAR-100 batches,
 * and the class names beside them. What the page server's /data/ serves of a data folder.
 */
export const isDatasetFile = (name: string): boolean =>
  IDX_FILES.some((f) => name === f || name === `${f}.gz`) ||
  TRAIN_BATCH.test(name) ||
  CIFAR_FILES.has(name) ||
  name === CLASS_LIST_FILE;

/** What the folder holds; when none of the three, one line naming what was looked for and what is there. */
export function dataFormat(dir: string): DataFormat {
  const names = existsSync(dir) && statSync(dir).isDirectory() ? readdirSync(dir) : [];
  const has = (n: string): boolean => names.includes(n);
  if (IDX_FILES.some((f) => has(f) || has(`${f}.gz`))) return 'idx';
  if (has('test_batch.bin') || trainBatches(names).length > 0) return 'cifar10';
  if (has('train.bin') || has('test.bin')) return 'cifar100';
  if (folderLayout(dir)) return 'folders';
  const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? `, … (${names.length} in all)` : '');
  throw new DataError(`${dir}: no dataset found: looked for ${LOOKED_FOR}; the folder holds ${shown || 'nothing'}`);
}

function readBatch(dir: string, name: string, kind: CifarKind, keep?: number): Dataset {
  const file = join(dir, name);
  if (!existsSync(file))
    throw new DataError(`${file} not found (a ${kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} folder holds it)`);
  const f = openInput(file, { what: 'a CIFAR batch file', maxBytes: BATCH_MAX_BYTES });
  try {
    // With `keep`, only the records kept are read; the length is still checked whole.
    const rec = recordBytes(kind);
    if (f.size % rec !== 0 || f.size === 0) return decodeCifar(f.read(0, f.size), kind, file);
    return decodeCifar(f.read(0, Math.min(f.size, (keep ?? Infinity) * rec)), kind, file);
  } finally {
    f.close();
  }
}

function namesFile(dir: string, kind: CifarKind): string {
  return join(dir, kind === 'cifar10' ? 'batches.meta.txt' : 'fine_label_names.txt');
}

/** The class names: the meta file's (every label checked against them), else numbers. */
function cifarClasses(dir: string, kind: CifarKind, sets: { ds: Dataset; file: string }[]): string[] {
  const file = namesFile(dir, kind);
  const names = readClassNames(file, NAMES_MAX_BYTES);
  const n = names?.length ?? labelRange(...sets.map((s) => s.ds.labels));
  for (const s of sets) checkLabels(s.ds.labels, n, names ? `${s.file} (${file} names ${n})` : s.file);
  return names ?? labelNumbers(n);
}

function testOf(dir: string, kind: CifarKind): { ds: Dataset; file: string } {
  const name = kind === 'cifar10' ? 'test_batch.bin' : 'test.bin';
  return { ds: readBatch(dir, name, kind), file: join(dir, name) };
}

/** A CIFAR folder's training set (only `keep`'s first images read), test set and class names. */
export function loadCifar(
  dir: string,
  kind: CifarKind,
  keep?: number,
): { train: Dataset; test: Dataset; classes: string[] } {
  const names = kind === 'cifar10' ? trainBatches(readdirSync(dir)) : ['train.bin'];
  if (names.length === 0) throw new DataError(`${dir}: no data_batch_*.bin (CIFAR-10's training batches)`);
  const parts: { ds: Dataset; file: string }[] = [];
  let left = keep ?? Infinity;
  for (const name of names) {
    if (left <= 0) break;
    const ds = readBatch(dir, name, kind, left);
    parts.push({ ds, file: join(dir, name) });
    left -= ds.n;
  }
  const test = testOf(dir, kind);
  const classes = cifarClasses(dir, kind, [...parts, test]);
  const train = concatDatasets(parts.map((p) => p.ds));
  return { train, test: test.ds, classes }; // readBatch read no more than `keep` records
}

/** Only a CIFAR folder's test set and its class names. */
export function loadCifarTest(dir: string, kind: CifarKind): { ds: Dataset; classes: string[] } {
  const test = testOf(dir, kind);
  return { ds: test.ds, classes: cifarClasses(dir, kind, [test]) };
}
