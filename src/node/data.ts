// Reading image datasets from disk: the four idx files (Fashion-MNIST's, MNIST's, any size and label
// range), each gzipped (NAME.gz) or plain (NAME), and Kaggle's CSV form; a folder of CIFAR batches
// instead is read by src/node/cifar.ts. Decoding is the engine's (src/data/idx.ts, src/data/csv.ts);
// this is only files.
//
// Bounded, whatever the files hold (src/node/files.ts does the reading):
//   - idx: the header is read first (from a gzip file, the first bytes it inflates to), and at most
//     what it announces is ever held: 2 GiB at most (MAX_IDX_BYTES), no more than its gzip could
//     hold. A gzip file that inflates past the announced size is refused after inflating one byte
//     more. With a subset, only the subset's bytes are read or inflated, and what follows them is
//     not checked.
//   - CSV: a plain file (up to CSV_MAX_BYTES) is read twice in chunks, counting the rows, then
//     parsing them, so only the images are held; a gzipped one is inflated whole (up to
//     CSV_GZIP_MAX_BYTES of text), then parsed the same way.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { CLASS_NAMES, checkLabels, isFashionMnist, labelNumbers, labelRange, NUM_CLASSES } from '../data/classes.ts';
import {
  checkIdxLength,
  checkIdxSize,
  idxImagesHeader,
  idxLabelsHeader,
  MAX_IDX_BYTES,
  type IdxHeader,
} from '../data/idx.ts';
import { CsvParser, CsvRowCounter, firstLineLabelled, type CsvShape } from '../data/csv.ts';
import type { Dataset } from '../data/dataset.ts';
import { CLASS_LIST_FILE, dataFormat, loadCifar, loadCifarTest, type DataFormat } from './cifar.ts';
import { loadImageFolders, loadImageFoldersTest, type HoldOut, type Target } from './folders.ts';
import {
  GiB,
  KiB,
  MiB,
  formatBytes,
  gunzipAtMost,
  gunzipPrefix,
  isGzip,
  openInput,
  readClassNames,
  prefixReader,
  type InputFile,
} from './files.ts';

/** Where Debian's dataset-fashion-mnist package puts the idx files: --data's default. */
export const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';
/** How to get the data, for messages that find none. */
export const INSTALL_HINT =
  `install Fashion-MNIST with \`apt-get install dataset-fashion-mnist\` (files in ${DEFAULT_DATA_DIR}) ` +
  'or pass --data DIR';

/** The largest idx file opened at all (plain: it must be exactly what its header announces). */
const IDX_MAX_FILE = 2 * MAX_IDX_BYTES;
/** How far into a gzip file its idx header is looked for (it is the first thing it inflates to). */
const IDX_HEADER_SEARCH = MiB;
/** Deflate inflates one byte to at most 1032 (258-byte matches in 2 bits). */
const DEFLATE_MAX_RATIO = 1032;
/** A plain CSV file is streamed: memory follows its images, not its size. */
export const CSV_MAX_BYTES = GiB;
/** A gzipped CSV is inflated whole (Node has no synchronous streaming gunzip): its text is held while parsing. */
export const CSV_GZIP_MAX_BYTES = 256 * MiB;
const CHUNK = MiB;

function gzipError(path: string, e: unknown): DataError {
  return new DataError(`${path}: not a valid gzip file (${(e as Error).message}); the download may be truncated`);
}

/**
 * An idx file's header and items, plain or gzipped: all of them, or the first `keep`. `check` sees
 * the header before any item is read or inflated.
 */
function readIdx(
  path: string,
  kind: 'images' | 'labels',
  keep: number | undefined,
  check: (h: IdxHeader) => void,
): { h: IdxHeader; items: Uint8Array } {
  const parseHeader = kind === 'images' ? idxImagesHeader : idxLabelsHeader;
  const headerBytes = kind === 'images' ? 16 : 8;
  const f = openInput(path, {
    what: kind === 'images' ? 'an idx image file' : 'an idx label file',
    maxBytes: IDX_MAX_FILE,
  });
  try {
    const gz = isGzip(f.read(0, 2));
    const h = parseHeader(gz ? gzippedHead(f, headerBytes) : f.read(0, headerBytes), path);
    checkIdxSize(h, path);
    check(h);
    const want = keep === undefined ? h.need : Math.min(h.need, h.start + keep * h.item);
    if (!gz) {
      // The size says it all: nothing past what is needed is read.
      if (want === h.need || f.size < want) checkIdxLength(h, f.size, path);
      const bytes = f.read(0, want);
      if (bytes.length < want) checkIdxLength(h, bytes.length, path); // it shrank since it was opened
      return { h, items: bytes.subarray(h.start) };
    }
    if (h.need > f.size * DEFLATE_MAX_RATIO + KiB) {
      throw new DataError(
        `${path}: the header announces ${h.what} (${h.need.toLocaleString('en-US')} bytes), ` +
          `more than ${f.size.toLocaleString('en-US')} bytes of gzip can hold: the file is corrupt`,
      );
    }
    // Incompressible data grows by a few bytes per 64 KiB block under gzip: more is not idx data.
    if (f.size > h.need + h.need / 64 + MiB) {
      throw new DataError(
        `${path}: ${f.size.toLocaleString('en-US')} bytes of gzip for the ${h.need.toLocaleString('en-US')} bytes ` +
          'its header announces: corrupt, or not an idx file',
      );
    }
    if (want < h.need) {
      let part: Uint8Array;
      try {
        part = gunzipPrefix(prefixReader(f), f.size, want);
      } catch (e) {
        throw gzipError(path, e);
      }
      if (part.length === want) return { h, items: part.subarray(h.start) };
      // Cut short: inflating it whole (bounded) says how.
    }
    let all: Uint8Array | null;
    try {
      all = gunzipAtMost(f.readAll(), h.need);
    } catch (e) {
      throw gzipError(path, e);
    }
    if (!all)
      throw new DataError(
        `${path}: data after the ${h.what} the header announces (expected ${h.need} bytes once gunzipped, got more)`,
      );
    checkIdxLength(h, all.length, path);
    return { h, items: all.subarray(h.start, want) };
  } finally {
    f.close();
  }
}

/** The first bytes a gzipped idx file inflates to: its header (fewer when the file is that short). */
function gzippedHead(f: InputFile, headerBytes: number): Uint8Array {
  const first = f.read(0, Math.min(f.size, IDX_HEADER_SEARCH));
  let head: Uint8Array;
  try {
    head = gunzipPrefix((k) => first.subarray(0, k), first.length, headerBytes);
    // Shorter than a header: a whole (tiny) stream, or a cut one, which inflating it whole reports.
    if (head.length < headerBytes && first.length === f.size) head = gunzipAtMost(first, MiB) ?? head;
  } catch (e) {
    throw gzipError(f.path, e);
  }
  if (head.length < headerBytes && first.length < f.size)
    throw new DataError(
      `${f.path}: no idx header in the first ${formatBytes(first.length)} of gzip data: corrupt, or not an idx file`,
    );
  return head;
}

/** NAME.gz when present, else NAME. */
function find(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new DataError(`${join(dir, base)}.gz not found (nor ${base}): ${INSTALL_HINT}`);
}

/** One split's images and labels: prefix 'train' or 't10k'; `keep` reads only the first so many. */
export function loadIdxPair(dir: string, prefix: 'train' | 't10k', keep?: number): Dataset {
  return readIdxPair(dir, prefix, keep).ds;
}

/** One split and the name of its labels file (for messages about its labels). */
function readIdxPair(dir: string, prefix: 'train' | 't10k', keep?: number): { ds: Dataset; labelFile: string } {
  const imageFile = find(dir, `${prefix}-images-idx3-ubyte`);
  const labelFile = find(dir, `${prefix}-labels-idx1-ubyte`);
  const im = readIdx(imageFile, 'images', keep, () => {});
  const lb = readIdx(labelFile, 'labels', keep, (h) => {
    if (h.n !== im.h.n) throw new DataError(`${labelFile}: ${h.n} labels but ${imageFile} has ${im.h.n} images`);
  });
  return {
    ds: { images: im.items, labels: lb.items, n: lb.items.length, rows: im.h.rows, cols: im.h.cols },
    labelFile,
  };
}

/** The most a classes.txt may hold: 256 names of 4 KiB. */
const CLASS_LIST_MAX_BYTES = 256 * 4 * KiB;

/** Class names, and the file that names them. */
export interface ClassList {
  names: string[];
  file: string;
}

/** A folder's classes.txt (one name a line, in label order), or null when it has none. */
export function readClassList(dir: string): ClassList | null {
  const file = join(dir, CLASS_LIST_FILE);
  const names = readClassNames(file, CLASS_LIST_MAX_BYTES);
  return names && { names, file };
}

/**
 * The class names of a folder of idx files, every label checked against them: its classes.txt, or
 * as many classes as the labels reach, named by Fashion-MNIST for its files and by number otherwise.
 */
function idxClasses(
  dir: string,
  train: { ds: Dataset; labelFile: string } | null,
  test: { ds: Dataset; labelFile: string },
): string[] {
  const sets = train ? [train, test] : [test];
  const list = readClassList(dir);
  const n = list ? list.names.length : labelRange(...sets.map((s) => s.ds.labels));
  const names =
    list?.names ??
    (n === NUM_CLASSES && isFashionMnist(train?.ds.labels ?? null, test.ds.labels)
      ? [...CLASS_NAMES]
      : labelNumbers(n));
  const why = list ? ` (${list.file} names ${n})` : '';
  for (const s of sets) {
    try {
      checkLabels(s.ds.labels, n, s.labelFile);
    } catch (e) {
      throw new DataError(`${(e as Error).message}${why}`);
    }
  }
  return names;
}

/** The training and test images must be of one size. */
function checkSameSize(train: Dataset, test: Dataset, dir: string): void {
  if (train.rows !== test.rows || train.cols !== test.cols)
    throw new DataError(
      `${find(dir, 't10k-images-idx3-ubyte')}: images of ${test.rows}x${test.cols} but the training images ` +
        `are ${train.rows}x${train.cols}`,
    );
}

function checkSubset(n: number | undefined): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 0))
    throw new RangeError(`subset size must be a whole number ≥ 0, got ${n}`);
}

/**
 * The train and test sets of a folder of idx files (Fashion-MNIST's 60,000 and 10,000 by default)
 * and their class names (idxClasses). `subset` keeps the first N training images, and only those
 * are read (the test set stays whole). `format` is what the folder was found to hold (dataFormat).
 */
export function loadFashionMnist(
  dir = DEFAULT_DATA_DIR,
  opts: { subset?: number; images?: FolderOptions } = {},
): { train: Dataset; test: Dataset; classes: string[]; heldOut?: string | null; format: DataFormat } {
  checkSubset(opts.subset);
  checkDir(dir);
  const format = dataFormat(dir);
  if (format === 'folders')
    return { ...loadImageFolders(dir, ...folderOptions(dir, opts.images), opts.subset), format };
  if (format !== 'idx') return { ...loadCifar(dir, format, opts.subset), format };
  const train = readIdxPair(dir, 'train', opts.subset);
  const test = readIdxPair(dir, 't10k');
  checkSameSize(train.ds, test.ds, dir);
  return { train: train.ds, test: test.ds, classes: idxClasses(dir, train, test), format };
}

function checkDir(dir: string): void {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return;
  if (stat) throw new DataError(`${dir} is a file, not a data folder (of idx files, CIFAR batches or class folders)`);
  throw new DataError(`data directory ${dir} not found: ${INSTALL_HINT}`);
}

/** Only the test set, for eval and report: the training files are not read. */
export function loadFashionMnistTest(dir = DEFAULT_DATA_DIR, images?: FolderOptions): Dataset {
  return loadIdxTest(dir, images).ds;
}

/** A folder of images needs the network's input (the size images are resized to) and its hold-out. */
export type FolderOptions = { input: Target } & HoldOut;

function folderOptions(dir: string, o: FolderOptions | undefined): [Target, HoldOut] {
  if (!o) throw new DataError(`${dir}: a folder of images is read only for a network (its input size)`);
  return [o.input, o];
}

/** The test set of a folder of idx files and its class names. */
export function loadIdxTest(dir = DEFAULT_DATA_DIR, images?: FolderOptions): { ds: Dataset; classes: string[] } {
  checkDir(dir);
  const format = dataFormat(dir);
  if (format === 'folders') return loadImageFoldersTest(dir, ...folderOptions(dir, images));
  if (format !== 'idx') return loadCifarTest(dir, format);
  const test = readIdxPair(dir, 't10k');
  return { ds: test.ds, classes: idxClasses(dir, null, test) };
}

/**
 * A validation set from a folder of idx files named as --data's: its t10k pair, or, when it has
 * none, its train pair. `from` names the images file.
 */
export function loadIdxFolder(dir: string): { ds: Dataset; from: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`data directory ${dir} not found`);
  const format = dataFormat(dir);
  if (format !== 'idx')
    throw new DataError(
      `${dir}: a validation set of its own is read from idx files, but this folder holds ${FORMAT_NAMES[format]}`,
    );
  const has = (prefix: string): boolean =>
    [`${prefix}-images-idx3-ubyte.gz`, `${prefix}-images-idx3-ubyte`].some((f) => existsSync(join(dir, f)));
  const prefix = has('t10k') || !has('train') ? 't10k' : 'train';
  const ds = loadIdxPair(dir, prefix);
  return { ds, from: find(dir, `${prefix}-images-idx3-ubyte`) };
}

/** What dataFormat found, in words. */
const FORMAT_NAMES: Record<DataFormat, string> = {
  idx: 'idx files',
  cifar10: 'CIFAR-10 batches',
  cifar100: 'CIFAR-100 batches',
  folders: 'class folders of images',
};

/** A CSV file's image shape (absent: 28×28×1) and where its label names go (src/data/csv.ts). */
export type CsvForm = Pick<CsvShape, 'rows' | 'cols' | 'channels' | 'what' | 'names'>;

/**
 * A Kaggle-style CSV file (label,pixel1,…,pixel784, or of `form`'s size), plain or gzipped;
 * `subset` stops after the first N images (lines after them are not read).
 */
export function loadCsv(file: string, opts: { subset?: number; form?: CsvForm } = {}): Dataset {
  return readCsv(file, opts).ds;
}

/**
 * A CSV file of images to predict: lines of a label and 784 pixels, or of the pixels alone (the
 * first line that is not blank decides), plain or gzipped.
 */
export function loadCsvImages(file: string, form?: CsvForm): { ds: Dataset; labelled: boolean } {
  return readCsv(file, { detect: true, form });
}

function readCsv(
  file: string,
  opts: { subset?: number; detect?: boolean; form?: CsvForm | undefined },
): { ds: Dataset; labelled: boolean } {
  checkSubset(opts.subset);
  const f = openInput(file, { what: 'a CSV file', maxBytes: CSV_MAX_BYTES });
  const form = opts.form ?? { rows: 28, cols: 28 };
  const shapeOf = (first: Uint8Array): CsvShape => ({
    ...form,
    labelled: !opts.detect || firstLineLabelled(first, form) !== false,
  });
  try {
    if (isGzip(f.read(0, 2))) {
      const text = gunzippedCsv(f);
      const shape = shapeOf(text.subarray(0, CHUNK));
      const counter = new CsvRowCounter(shape);
      counter.push(text);
      const parser = new CsvParser(file, counter.count, shape, opts.subset);
      parser.push(text);
      return { ds: parser.end(), labelled: shape.labelled !== false };
    }
    // Plain: counted, then parsed, a chunk at a time.
    const chunk = new Uint8Array(Math.min(CHUNK, Math.max(1, f.size)));
    const shape = shapeOf(f.read(0, CHUNK).slice());
    const counter = new CsvRowCounter(shape);
    const enough = opts.subset === undefined ? Infinity : opts.subset + 1; // one more: a header
    for (let at = 0; at < f.size && counter.count < enough; at += CHUNK) counter.push(f.read(at, CHUNK, chunk));
    const parser = new CsvParser(file, counter.count, shape, opts.subset);
    for (let at = 0; at < f.size; at += CHUNK) if (!parser.push(f.read(at, CHUNK, chunk))) break;
    return { ds: parser.end(), labelled: shape.labelled !== false };
  } finally {
    f.close();
  }
}

/** A gzipped CSV file's text, inflated whole (bounded by CSV_GZIP_MAX_BYTES). */
function gunzippedCsv(f: InputFile): Uint8Array {
  const file = f.path;
  const hint = `gunzip it: a plain CSV file is read as it is parsed, up to ${formatBytes(CSV_MAX_BYTES)}`;
  if (f.size > CSV_GZIP_MAX_BYTES)
    throw new DataError(
      `${file}: ${f.size.toLocaleString('en-US')} bytes of gzip, ` +
        `more than the ${formatBytes(CSV_GZIP_MAX_BYTES)} fmgpu inflates for a CSV file (${hint})`,
    );
  let text: Uint8Array | null;
  try {
    text = gunzipAtMost(f.readAll(), CSV_GZIP_MAX_BYTES);
  } catch (e) {
    throw gzipError(file, e);
  }
  if (!text)
    throw new DataError(
      `${file}: more than ${formatBytes(CSV_GZIP_MAX_BYTES)} of CSV once gunzipped, more than fmgpu inflates (${hint})`,
    );
  return text;
}
