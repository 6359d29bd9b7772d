// Reading Fashion-MNIST from disk: the four idx files, gzipped or plain.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import { datasetFromIdx, INSTALL_HINT, subset, type Dataset } from '../data/dataset.ts';

export const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';

/** The file's bytes, gunzipped when they start with gzip's magic (1f 8b). */
export function readMaybeGzip(path: string): Uint8Array {
  const raw = readFileSync(path);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return new Uint8Array(gunzipSync(raw));
    } catch (e) {
      throw new DataError(`${path}: not a valid gzip file (${(e as Error).message}); the download may be truncated`);
    }
  }
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

function find(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new DataError(`${join(dir, base)}(.gz) not found: ${INSTALL_HINT}`);
}

export function loadIdxPair(dir: string, prefix: 'train' | 't10k'): Dataset {
  const images = find(dir, `${prefix}-images-idx3-ubyte`);
  const labels = find(dir, `${prefix}-labels-idx1-ubyte`);
  return datasetFromIdx(readMaybeGzip(images), readMaybeGzip(labels), images, labels);
}

export function loadFashionMnist(dir = DEFAULT_DATA_DIR, opts: { subset?: number } = {}): { train: Dataset; test: Dataset } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`data directory ${dir} not found: ${INSTALL_HINT}`);
  const train = loadIdxPair(dir, 'train');
  const test = loadIdxPair(dir, 't10k');
  return { train: opts.subset ? subset(train, opts.subset) : train, test };
}
