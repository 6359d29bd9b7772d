// Reading Fashion-MNIST from disk: the four idx files, each gzipped (NAME.gz) or plain (NAME), and
// Kaggle's CSV form. Decoding is the engine's (src/data/idx.ts, src/data/csv.ts); this is only files.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import { datasetFromIdx } from '../data/idx.ts';
import { parseCsv } from '../data/csv.ts';
import { DEFAULT_DATA_DIR, INSTALL_HINT, subset, type Dataset } from '../data/dataset.ts';

export { DEFAULT_DATA_DIR };

function read(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The file's bytes, gunzipped when they start with gzip's magic (1f 8b), whatever the name. */
export function readMaybeGzip(path: string): Uint8Array {
  const raw = read(path);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return new Uint8Array(gunzipSync(raw));
    } catch (e) {
      throw new DataError(`${path}: not a valid gzip file (${(e as Error).message}); the download may be truncated`);
    }
  }
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** NAME.gz when present, else NAME. */
function find(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new DataError(`${join(dir, base)}.gz not found (nor ${base}): ${INSTALL_HINT}`);
}

/** One split's images and labels: prefix 'train' or 't10k'. */
export function loadIdxPair(dir: string, prefix: 'train' | 't10k'): Dataset {
  const images = find(dir, `${prefix}-images-idx3-ubyte`);
  const labels = find(dir, `${prefix}-labels-idx1-ubyte`);
  const ds = datasetFromIdx(readMaybeGzip(images), readMaybeGzip(labels), images, labels);
  if (ds.rows !== 28 || ds.cols !== 28) throw new DataError(`${images}: images of ${ds.rows}x${ds.cols}, expected Fashion-MNIST's 28x28`);
  return ds;
}

/**
 * Fashion-MNIST's train (60,000) and test (10,000) sets from `dir`. `subset` keeps the first N
 * training images (the test set stays whole).
 */
export function loadFashionMnist(dir = DEFAULT_DATA_DIR, opts: { subset?: number } = {}): { train: Dataset; test: Dataset } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`data directory ${dir} not found: ${INSTALL_HINT}`);
  const train = loadIdxPair(dir, 'train');
  const test = loadIdxPair(dir, 't10k');
  return { train: opts.subset !== undefined ? subset(train, opts.subset) : train, test };
}

/** A Kaggle-style CSV file (label,pixel1,…,pixel784), plain or gzipped. */
export function loadCsv(file: string): Dataset {
  if (!existsSync(file)) throw new DataError(`${file}: no such file`);
  return parseCsv(new TextDecoder().decode(readMaybeGzip(file)), file);
}
