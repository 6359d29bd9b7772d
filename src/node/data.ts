// Reading Fashion-MNIST from disk: the four idx files, each gzipped (NAME.gz) or plain (NAME), and
// Kaggle's CSV form. Decoding is the engine's (src/data/idx.ts, src/data/csv.ts); this is only files.
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
import {
  checkIdxLabels,
  checkIdxLength,
  checkIdxSize,
  idxImagesHeader,
  idxLabelsHeader,
  MAX_IDX_BYTES,
  type IdxHeader,
} from '../data/idx.ts';
import { CsvParser, CsvRowCounter } from '../data/csv.ts';
import type { Dataset } from '../data/dataset.ts';
import {
  GiB,
  KiB,
  MiB,
  formatBytes,
  gunzipAtMost,
  gunzipPrefix,
  isGzip,
  openInput,
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
  const imageFile = find(dir, `${prefix}-images-idx3-ubyte`);
  const labelFile = find(dir, `${prefix}-labels-idx1-ubyte`);
  const im = readIdx(imageFile, 'images', keep, (h) => {
    if (h.rows !== 28 || h.cols !== 28)
      throw new DataError(`${imageFile}: images of ${h.rows}x${h.cols}, expected Fashion-MNIST's 28x28`);
  });
  const lb = readIdx(labelFile, 'labels', keep, (h) => {
    if (h.n !== im.h.n) throw new DataError(`${labelFile}: ${h.n} labels but ${imageFile} has ${im.h.n} images`);
  });
  checkIdxLabels(lb.items, labelFile);
  return { images: im.items, labels: lb.items, n: lb.items.length, rows: im.h.rows, cols: im.h.cols };
}

function checkSubset(n: number | undefined): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 0))
    throw new RangeError(`subset size must be a whole number ≥ 0, got ${n}`);
}

/**
 * Fashion-MNIST's train (60,000) and test (10,000) sets from `dir`. `subset` keeps the first N
 * training images, and only those are read (the test set stays whole).
 */
export function loadFashionMnist(
  dir = DEFAULT_DATA_DIR,
  opts: { subset?: number } = {},
): { train: Dataset; test: Dataset } {
  checkSubset(opts.subset);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new DataError(`data directory ${dir} not found: ${INSTALL_HINT}`);
  const train = loadIdxPair(dir, 'train', opts.subset);
  const test = loadIdxPair(dir, 't10k');
  return { train, test };
}

/** Only the test set (10,000 images), for eval and report: the training files are not read. */
export function loadFashionMnistTest(dir = DEFAULT_DATA_DIR): Dataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new DataError(`data directory ${dir} not found: ${INSTALL_HINT}`);
  return loadIdxPair(dir, 't10k');
}

/**
 * A Kaggle-style CSV file (label,pixel1,…,pixel784), plain or gzipped; `subset` stops after the
 * first N images (lines after them are not read).
 */
export function loadCsv(file: string, opts: { subset?: number } = {}): Dataset {
  checkSubset(opts.subset);
  const f = openInput(file, { what: 'a CSV file', maxBytes: CSV_MAX_BYTES });
  try {
    if (isGzip(f.read(0, 2))) {
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
          `${file}: more than ${formatBytes(CSV_GZIP_MAX_BYTES)} of CSV once gunzipped, ` +
            `more than fmgpu inflates (${hint})`,
        );
      const counter = new CsvRowCounter();
      counter.push(text);
      const parser = new CsvParser(file, counter.count, undefined, opts.subset);
      parser.push(text);
      return parser.end();
    }
    // Plain: counted, then parsed, a chunk at a time.
    const chunk = new Uint8Array(Math.min(CHUNK, Math.max(1, f.size)));
    const counter = new CsvRowCounter();
    const enough = opts.subset === undefined ? Infinity : opts.subset + 1; // one more: a header
    for (let at = 0; at < f.size && counter.count < enough; at += CHUNK) counter.push(f.read(at, CHUNK, chunk));
    const parser = new CsvParser(file, counter.count, undefined, opts.subset);
    for (let at = 0; at < f.size; at += CHUNK) if (!parser.push(f.read(at, CHUNK, chunk))) break;
    return parser.end();
  } finally {
    f.close();
  }
}
