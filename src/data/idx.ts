// The idx format of (Fashion-)MNIST, decoded from bytes (reading and gunzip live in src/node/data.ts
// and web.ts). A file is a big-endian u32 magic (0x0000 0x08=ubyte, then the number of dims), one
// big-endian u32 per dim, then the data: images idx3 = 2051 [n, rows, cols], labels idx1 = 2049 [n].
import { DataError } from '../errors.ts';
import { checkLabels, NUM_CLASSES } from './classes.ts';
import type { Dataset } from './dataset.ts';

export const IDX3_MAGIC = 2051;
export const IDX1_MAGIC = 2049;

function u32be(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** What a wrong magic number most likely means, for the message. */
function magicHint(b: Uint8Array, magic: number): string {
  if (b[0] === 0x1f && b[1] === 0x8b) return ' (the bytes are gzipped: gunzip them first)';
  if (magic === IDX1_MAGIC) return ' (this is an idx1 label file)';
  if (magic === IDX3_MAGIC) return ' (this is an idx3 image file)';
  return '';
}

/**
 * What an idx header announces: `n` items of `item` bytes after `start` header bytes, `need`
 * bytes in all; `what` names the items for messages ("7 images of 28x28", "7 labels").
 */
export interface IdxHeader {
  n: number;
  rows: number;
  cols: number;
  start: number;
  item: number;
  need: number;
  what: string;
}

/**
 * The header of an idx3 image file (magic 2051, then n, rows, cols) from its first bytes: the
 * magic and the image size are checked, not the length (checkIdxLength).
 */
export function idxImagesHeader(bytes: Uint8Array, file: string): IdxHeader {
  if (bytes.length < 16)
    throw new DataError(`${file}: truncated: ${bytes.length} bytes, shorter than the 16-byte idx3 header`);
  const magic = u32be(bytes, 0);
  if (magic !== IDX3_MAGIC)
    throw new DataError(
      `${file}: not an idx3 image file: magic number ${magic}, expected ${IDX3_MAGIC}${magicHint(bytes, magic)}`,
    );
  const n = u32be(bytes, 4),
    rows = u32be(bytes, 8),
    cols = u32be(bytes, 12);
  if (rows === 0 || cols === 0) throw new DataError(`${file}: images of ${rows}x${cols} pixels`);
  return {
    n,
    rows,
    cols,
    start: 16,
    item: rows * cols,
    need: 16 + n * rows * cols,
    what: `${n} images of ${rows}x${cols}`,
  };
}

/** The header of an idx1 label file (magic 2049, then n) from its first bytes. */
export function idxLabelsHeader(bytes: Uint8Array, file: string): IdxHeader {
  if (bytes.length < 8)
    throw new DataError(`${file}: truncated: ${bytes.length} bytes, shorter than the 8-byte idx1 header`);
  const magic = u32be(bytes, 0);
  if (magic !== IDX1_MAGIC)
    throw new DataError(
      `${file}: not an idx1 label file: magic number ${magic}, expected ${IDX1_MAGIC}${magicHint(bytes, magic)}`,
    );
  const n = u32be(bytes, 4);
  return { n, rows: 1, cols: 1, start: 8, item: 1, need: 8 + n, what: `${n} labels` };
}

/** The most an idx file may announce: 2 GiB (Fashion-MNIST's training images are 47 MB). */
export const MAX_IDX_BYTES = 2 ** 31;

/** Refuses a header announcing more than MAX_IDX_BYTES, before anything that large is allocated. */
export function checkIdxSize(h: IdxHeader, file: string): void {
  if (h.need > MAX_IDX_BYTES)
    throw new DataError(
      `${file}: the header announces ${h.what} (${h.need.toLocaleString('en-US')} bytes), ` +
        'more than the 2 GiB fmgpu reads',
    );
}

/** A file of `length` bytes must hold exactly what its header announces. */
export function checkIdxLength(h: IdxHeader, length: number, file: string): void {
  const need = h.need;
  if (length < need) throw new DataError(`${file}: truncated: ${h.what} need ${need} bytes but the file has ${length}`);
  if (length > need)
    throw new DataError(
      `${file}: ${length - need} bytes after the ${h.what} the header announces ` +
        `(expected ${need} bytes, got ${length})`,
    );
}

/** Labels must be classes 0 to `classes` − 1 (Fashion-MNIST's ten unless given); `from` numbers them in messages. */
export function checkIdxLabels(labels: Uint8Array, file: string, from = 0, classes: number = NUM_CLASSES): void {
  checkLabels(labels, classes, file, { from });
}

/** idx3 images: magic 2051, then n, rows, cols, then n·rows·cols pixel bytes. */
export function parseIdxImages(
  bytes: Uint8Array,
  file: string,
): { images: Uint8Array; n: number; rows: number; cols: number } {
  const h = idxImagesHeader(bytes, file);
  checkIdxLength(h, bytes.length, file);
  return { images: bytes.subarray(16, h.need), n: h.n, rows: h.rows, cols: h.cols };
}

/** idx1 labels: magic 2049, then n, then one byte per label, each a class 0–9. */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const h = idxLabelsHeader(bytes, file);
  checkIdxLength(h, bytes.length, file);
  const labels = bytes.subarray(8, h.need);
  checkIdxLabels(labels, file);
  return labels;
}

/** An images file and its labels file as one Dataset; the names are only for messages. */
export function datasetFromIdx(images: Uint8Array, labels: Uint8Array, imageFile: string, labelFile: string): Dataset {
  const im = parseIdxImages(images, imageFile);
  const lb = parseIdxLabels(labels, labelFile);
  if (lb.length !== im.n) throw new DataError(`${labelFile}: ${lb.length} labels but ${imageFile} has ${im.n} images`);
  return { images: im.images, labels: lb, n: im.n, rows: im.rows, cols: im.cols };
}

/** The idx bytes of a dataset (images, labels): for fixtures and exporting subsets. */
export function encodeIdx(ds: Dataset): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(16 + ds.images.length);
  const iv = new DataView(images.buffer);
  for (const [i, v] of [IDX3_MAGIC, ds.n, ds.rows, ds.cols].entries()) iv.setUint32(4 * i, v);
  images.set(ds.images, 16);
  const labels = new Uint8Array(8 + ds.n);
  const lv = new DataView(labels.buffer);
  lv.setUint32(0, IDX1_MAGIC);
  lv.setUint32(4, ds.n);
  labels.set(ds.labels, 8);
  return { images, labels };
}
