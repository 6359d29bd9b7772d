// Small generated datasets in every format fmgpu reads (issue 19), for the page server's and the
// page's tests: idx of any size with classes.txt, CIFAR-100 batches, class folders of PNG and JPEG
// of mixed sizes, CSV with named labels. Each is learnable: class k is bright in its own band
// (grey) or channel (colour).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { Rng } from '../../src/util/rng.ts';
import { encodePng, idxFolder } from './files.ts';

/** side×side grey images of `classes` classes: class c is a bright band at the c-th of `classes` row bands. */
export function bands(n: number, side: number, classes: number, seed: number) {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * side * side);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    labels[i] = c;
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        images[(i * side + y) * side + x] = (Math.floor((y * classes) / side) === c ? 200 : 0) + rng.int(40);
  }
  return { images, labels };
}

/** idx files of side×side bands (images gzipped, labels plain), names in classes.txt. */
export const idxDir = (dir: string, o: { side: number; names: string[]; train: number; test: number }): string =>
  idxFolder(dir, { ...o, plain: 'labels' }, (n, seed) => bands(n, o.side, o.names.length, seed));

/** CIFAR records: `labelBytes` label bytes (CIFAR-100: coarse, then fine), 32×32×3; class c bright in plane c % 3. */
export function cifarRecords(n: number, labelBytes: 1 | 2, classes: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const rec = labelBytes + 3072;
  const out = new Uint8Array(n * rec);
  for (let i = 0; i < n; i++) {
    const c = rng.int(classes);
    out[i * rec] = labelBytes === 2 ? 19 : c;
    out[i * rec + labelBytes - 1] = c;
    for (let p = 0; p < 3072; p++) out[i * rec + labelBytes + p] = (p >> 10 === c % 3 ? 180 : 20) + rng.int(60);
  }
  return out;
}

/** A CIFAR-100 folder: train.bin, test.bin and fine_label_names.txt. */
export function cifar100Dir(dir: string, names: string[], train: number, test: number): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.bin'), cifarRecords(train, 2, names.length, 4));
  writeFileSync(join(dir, 'test.bin'), cifarRecords(test, 2, names.length, 5));
  writeFileSync(join(dir, 'fine_label_names.txt'), `${names.join('\n')}\n`);
  return dir;
}

export const FOLDER_COLOURS: Record<string, [number, number, number]> = {
  blue: [20, 30, 220],
  green: [30, 200, 40],
  red: [210, 20, 30],
};

/** `per` images of each class in `dir`/<class>/: PNG and JPEG alternately, of mixed sizes, flat colours. */
export function classTree(dir: string, per: number): string {
  for (const [name, [r, g, b]] of Object.entries(FOLDER_COLOURS)) {
    mkdirSync(join(dir, name), { recursive: true });
    for (let i = 0; i < per; i++) {
      const w = 12 + ((i * 7) % 30),
        h = 10 + ((i * 5) % 25);
      const rgba = new Uint8Array(w * h * 4);
      for (let p = 0; p < w * h; p++) rgba.set([r, g, b, 255], p * 4);
      if (i % 2 === 0) writeFileSync(join(dir, name, `${i}.png`), encodePng(w, h, rgba));
      else writeFileSync(join(dir, name, `${i}.jpg`), jpeg.encode({ width: w, height: h, data: rgba }, 95).data);
    }
    writeFileSync(join(dir, name, 'notes.txt'), 'not an image');
  }
  return dir;
}

/** A CSV of n lines of a class name and H×W×C pixels (interleaved, as in the file): class k bright in channel k. */
export function namedCsv(n: number, seed: number, shape: { h: number; w: number; c: number }, names: string[]): string {
  const rng = new Rng(seed);
  const px = shape.h * shape.w * shape.c;
  const lines = [`label,${Array.from({ length: px }, (_, i) => `p${i}`).join(',')}`];
  for (let i = 0; i < n; i++) {
    const k = rng.int(names.length);
    const values = Array.from({ length: px }, (_, p) => (p % shape.c === k % shape.c ? 170 : 20) + rng.int(60));
    lines.push(`${names[k]},${values.join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}
