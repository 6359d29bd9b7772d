// CIFAR-10 and CIFAR-100's binary batches (https://www.cs.toronto.edu/~kriz/cifar.html): records of
// label byte(s) then 3072 pixel bytes, 32×32 R plane, G plane, B plane (channel-planar: NCHW as the
// engine's datasets are). CIFAR-10: 1 label byte (3073-byte records); CIFAR-100: a coarse and a
// fine label byte (3074), of which the fine one is kept. Files: src/node/cifar.ts.
import { DataError } from '../errors.ts';
import type { Dataset } from './dataset.ts';

export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
const IMAGE = CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE;

export type CifarKind = 'cifar10' | 'cifar100';

/** Bytes of one record: the label byte(s) and the image. */
export const recordBytes = (kind: CifarKind): number => (kind === 'cifar10' ? 1 : 2) + IMAGE;

/** The records of one batch file. A length not a whole number of records is refused. */
export function decodeCifar(bytes: Uint8Array, kind: CifarKind, file: string): Dataset {
  const rec = recordBytes(kind);
  if (bytes.length === 0 || bytes.length % rec !== 0)
    throw new DataError(
      `${file}: ${bytes.length.toLocaleString('en-US')} bytes is not a whole number of ${rec}-byte ` +
        `${kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} records (label${kind === 'cifar10' ? '' : 's'} + 32x32x3)`,
    );
  const n = bytes.length / rec;
  const labelAt = rec - IMAGE - 1; // CIFAR-100: the fine label, after the coarse one
  const images = new Uint8Array(n * IMAGE);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = bytes[i * rec + labelAt] as number;
    images.set(bytes.subarray(i * rec + rec - IMAGE, (i + 1) * rec), i * IMAGE);
  }
  return { images, labels, n, rows: CIFAR_SIDE, cols: CIFAR_SIDE, channels: CIFAR_CHANNELS };
}

/** Datasets of one shape, one after the other. */
export function concatDatasets(parts: readonly Dataset[]): Dataset {
  const [first] = parts;
  if (!first) throw new RangeError('no datasets to join');
  const n = parts.reduce((s, p) => s + p.n, 0);
  const images = new Uint8Array(parts.reduce((s, p) => s + p.images.length, 0));
  const labels = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * IMAGE);
    labels.set(p.labels, at);
    at += p.n;
  }
  return { ...first, images, labels, n };
}

/**
 * Per-channel mean and standard deviation of pixel/255 over a set (torchvision's
 * Normalize(mean, std) as computed from CIFAR's training images): the normalisation a colour run keeps.
 */
export function channelStats(ds: Dataset): { mean: number[]; std: number[] } {
  const c = ds.channels ?? 1;
  const px = ds.rows * ds.cols;
  const sum = new Float64Array(c),
    sq = new Float64Array(c);
  for (let i = 0; i < ds.n; i++)
    for (let k = 0; k < c; k++) {
      const plane = ds.images.subarray((i * c + k) * px, (i * c + k + 1) * px);
      let s = 0,
        s2 = 0;
      for (const v of plane) {
        s += v;
        s2 += v * v;
      }
      sum[k] = (sum[k] as number) + s;
      sq[k] = (sq[k] as number) + s2;
    }
  const count = Math.max(1, ds.n * px);
  const mean = Array.from(sum, (s) => s / count / 255);
  const std = Array.from(sq, (s2, k) => {
    const m = mean[k] as number;
    return Math.sqrt(Math.max(s2 / count / (255 * 255) - m * m, 0)) || 1; // a flat channel: divide by 1
  });
  const round = (v: number): number => Number(v.toFixed(6));
  return { mean: mean.map(round), std: std.map(round) };
}
