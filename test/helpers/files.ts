// Test fixtures written to disk: tiny Fashion-MNIST-shaped idx files and images.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { constants as zlibConstants, crc32, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { Rng } from '../../src/util/rng.ts';
import { pngFile } from '../../src/report/png.ts';
import { CLASS_NAMES } from '../../src/data/classes.ts';

/** An idx file's bytes: any magic number and dims (big-endian u32s), then the body, well formed or not. */
export function idx(magic: number, dims: number[], body: ArrayLike<number> = []): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const v = new DataView(head.buffer);
  v.setUint32(0, magic);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** Learnable 28×28 images: class c is a bright bar at row band c, plus noise. */
export function syntheticImages(n: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * 784),
    labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(10);
    labels[i] = c;
    for (let p = 0; p < 784; p++) images[i * 784 + p] = rng.int(40);
    for (let y = 2 + c * 2; y < 4 + c * 2; y++)
      for (let x = 4; x < 24; x++) images[i * 784 + y * 28 + x] = 200 + rng.int(55);
  }
  return { images, labels };
}

/**
 * A folder of the four idx files of side×side images: `make(n, seed)` makes each set (the training
 * set seed 1, the test set seed 2); every file gzipped but those `plain` names; `names`, if given,
 * in classes.txt.
 */
export function idxFolder(
  dir: string,
  o: { train: number; test: number; side: number; names?: readonly string[]; plain?: 'images' | 'labels' },
  make: (n: number, seed: number) => { images: Uint8Array; labels: Uint8Array },
): string {
  mkdirSync(dir, { recursive: true });
  const write = (name: string, bytes: Uint8Array, plain: boolean): void =>
    plain ? writeFileSync(join(dir, name), bytes) : writeFileSync(join(dir, `${name}.gz`), gzipSync(bytes));
  for (const [prefix, n, seed] of [
    ['train', o.train, 1],
    ['t10k', o.test, 2],
  ] as const) {
    const { images, labels } = make(n, seed);
    write(`${prefix}-images-idx3-ubyte`, idx(2051, [n, o.side, o.side], images), o.plain === 'images');
    write(`${prefix}-labels-idx1-ubyte`, idx(2049, [n], labels), o.plain === 'labels');
  }
  if (o.names) writeFileSync(join(dir, 'classes.txt'), `${o.names.join('\n')}\n`);
  return dir;
}

/** A folder with the four Fashion-MNIST idx files (gzipped), and Fashion-MNIST's names in classes.txt. */
export const writeIdxDir = (dir: string, nTrain: number, nTest: number): string =>
  idxFolder(dir, { train: nTrain, test: nTest, side: 28, names: CLASS_NAMES }, syntheticImages);

/** A PNG of the given colour type (0 gray, 2 RGB, 6 RGBA) and bit depth (8 or 16), from RGBA pixels. */
export function encodePng(w: number, h: number, rgba: Uint8Array, type: 0 | 2 | 6 = 2, depth: 8 | 16 = 8): Uint8Array {
  const ch = type === 0 ? 1 : type === 2 ? 3 : 4;
  const bpc = depth / 8;
  const raw = new Uint8Array(h * (1 + w * ch * bpc));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + x) * 4;
      const vals =
        type === 0
          ? [Math.round(0.299 * rgba[src]! + 0.587 * rgba[src + 1]! + 0.114 * rgba[src + 2]!)]
          : Array.from(rgba.subarray(src, src + ch));
      vals.forEach((v, c) => {
        const at = y * (1 + w * ch * bpc) + 1 + (x * ch + c) * bpc;
        raw[at] = v;
        if (bpc === 2) raw[at + 1] = v;
      });
    }
  }
  return pngFile(w, h, depth, type, new Uint8Array(deflateSync(raw)));
}

/** RGBA of a dark garment-like blob on a light background (so predict inverts it). */
export function photo(w: number, h: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = Math.abs(x - w / 2) < w / 4 && Math.abs(y - h / 2) < h / 3;
      rgba.set(inside ? [40, 50, 60, 255] : [235, 235, 230, 255], (y * w + x) * 4);
    }
  }
  return rgba;
}

/** Newest modification time under a folder. */
function newest(dir: string): number {
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
    ),
  );
}

/** Runs `npm run build` when dist/ is missing or older than any source it is built from. */
export function ensureBuilt(): void {
  const stale =
    !existsSync('dist/cli.js') ||
    statSync('dist/cli.js').mtimeMs <
      Math.max(newest('src'), newest('dsl'), newest('shaders'), newest('web'), newest('bench'));
  if (!stale) return;
  const r = spawnSync('npm', ['run', 'build'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed: ${r.stderr}`);
}

/** A copy of a baseline JPEG whose frame header (SOF0) claims w×h pixels: for size refusals. */
export function jpegClaiming(jpg: Uint8Array, w: number, h: number): Uint8Array {
  const j = jpg.slice();
  for (let i = 2; i + 9 < j.length; i += 2 + ((j[i + 2]! << 8) | j[i + 3]!)) {
    if (j[i + 1] !== 0xc0) continue;
    new DataView(j.buffer).setUint16(i + 5, h);
    new DataView(j.buffer).setUint16(i + 7, w);
    return j;
  }
  throw new Error('no SOF0 in the JPEG');
}

/**
 * Raw deflate data (not final, byte-aligned) that inflates to `n` zero bytes, made without holding
 * them: one compressed MiB repeated, about n/1000 bytes in all. Each piece refers only to its own
 * output, so the pieces can follow any data.
 */
function deflatedZeros(n: number): Uint8Array[] {
  const piece = (size: number): Uint8Array =>
    new Uint8Array(deflateRawSync(new Uint8Array(size), { level: 9, finishFlush: zlibConstants.Z_SYNC_FLUSH }));
  const whole = piece(1 << 20);
  const out: Uint8Array[] = new Array<Uint8Array>(Math.floor(n / (1 << 20))).fill(whole);
  if (n % (1 << 20)) out.push(piece(n % (1 << 20)));
  return out;
}

const FINAL_EMPTY_BLOCK = Uint8Array.of(0x03, 0x00); // a final fixed-Huffman block holding only its end code

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

/**
 * A valid gzip file of `head` followed by `zeros` zero bytes (checksum and length right): a
 * decompression bomb of about zeros/1000 bytes, e.g. an idx header announcing a few images
 * followed by a gigabyte.
 */
export function gzipWithZeros(head: Uint8Array, zeros: number): Uint8Array {
  let crc = crc32(head);
  const mib = new Uint8Array(1 << 20);
  for (let left = zeros; left > 0; left -= mib.length) crc = crc32(mib.subarray(0, Math.min(left, mib.length)), crc);
  const trailer = new Uint8Array(8);
  const v = new DataView(trailer.buffer);
  v.setUint32(0, crc >>> 0, true);
  v.setUint32(4, (head.length + zeros) % 2 ** 32, true);
  const start = new Uint8Array(deflateRawSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH }));
  return concatBytes([
    Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3),
    start,
    ...deflatedZeros(zeros),
    FINAL_EMPTY_BLOCK,
    trailer,
  ]);
}

/** A valid zlib stream (a PNG's IDAT data) of `n` zero bytes: about n/1000 bytes. */
export function zlibOfZeros(n: number): Uint8Array {
  const adler = new Uint8Array(4);
  new DataView(adler.buffer).setUint32(0, (((n % 65521) << 16) | 1) >>> 0); // s1 stays 1, s2 = n·1
  return concatBytes([Uint8Array.of(0x78, 0x01), ...deflatedZeros(n), FINAL_EMPTY_BLOCK, adler]);
}

/** What a finished run directory holds, sorted: its files and its last checkpoint, nothing else. */
export const FINISHED_RUN = [
  'checkpoint',
  'history.csv',
  'history.json',
  'metrics.json',
  'model.net',
  'report.html',
  'run.json',
  'weights.safetensors',
];
