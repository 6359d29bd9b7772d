// Decoding photos for `fmgpu predict`: PNG (here, with node:zlib: every bit depth and colour type,
// palettes, transparency, Adam7 interlacing) and JPEG (jpeg-js). Output: RGBA bytes as stored, and
// the EXIF orientation that says how to show them (src/node/exif.ts).
import jpeg from 'jpeg-js';
import { DataError } from '../errors.ts';
import { jpegOrientation, tiffOrientation } from './exif.ts';
import { inflateAtMost } from './files.ts';

export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
  /** EXIF orientation, 1–8: 1 when the file has none. */
  orientation: number;
}

/**
 * Larger images are refused from their header, before any decoding: 6144x4096 (a 24-megapixel
 * camera's 6000x4000 fits). A PNG takes up to 12 bytes a pixel to decode (a 16-bit RGBA image's
 * inflated rows, unfiltered in place, then its RGBA) and preprocessing 4 more (one grey level a
 * pixel, levelled and cropped in place: src/data/photo.ts): the worst, with a 64 MiB file, peaks at
 * about 420 MB for `fmgpu predict` in all.
 */
export const MAX_PIXELS = 24 * 1024 * 1024;

/**
 * What jpeg-js may allocate while decoding, by its own count (it checks before allocating). It
 * counts 256 bytes for each 8x8 block of coefficients, which costs about 650 in fact (one typed
 * array each): a crafted JPEG that stays just under 176 MiB by that count peaks at about 520 MB
 * for `fmgpu predict`, 590 MB with a 64 MiB file. By that count a 4:2:0 JPEG takes 14.5 bytes a
 * pixel (coefficients 6, sample rows 1.5, colour 3, RGBA 4): up to 12.7 megapixels decode (a
 * 12.5-megapixel phone photo does); a 4:4:4 one takes 22: 8.4 megapixels.
 */
export const JPEG_MAX_MEMORY_MIB = 176;

/** Larger image files are refused from their size, before they are read. */
export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function decodeImage(bytes: Uint8Array, file: string): Rgba {
  if (PNG_SIG.every((b, i) => bytes[i] === b)) return decodePng(bytes, file);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpeg(bytes, file);
  throw new DataError(`${file}: not a PNG or JPEG image`);
}

function checkSize(w: number, h: number, file: string): void {
  if (w < 1 || h < 1) throw new DataError(`${file}: the image claims ${w}x${h} pixels`);
  if (w * h > MAX_PIXELS)
    throw new DataError(
      `${file}: the image claims ${w}x${h} pixels, more than the ${MAX_PIXELS.toLocaleString('en-US')} fmgpu decodes`,
    );
}

function decodeJpeg(bytes: Uint8Array, file: string): Rgba {
  // The frame header (SOFn) gives the size: check it before decoding.
  for (let i = 2; i + 9 < bytes.length; ) {
    if (bytes[i] !== 0xff) break;
    const marker = bytes[i + 1]!;
    const len = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      checkSize((bytes[i + 7]! << 8) | bytes[i + 8]!, (bytes[i + 5]! << 8) | bytes[i + 6]!, file);
      break;
    }
    i += 2 + len;
  }
  // jpeg-js keeps every comment (COM segment) as a string: up to the file's size again. Renamed
  // APP15 for the decode, which it skips, they cost nothing; the bytes are put back after.
  const comments = commentMarkers(bytes);
  for (const at of comments) bytes[at] = 0xef;
  try {
    // The bytes' own ArrayBuffer when they fill it: jpeg-js copies a Uint8Array but only wraps an ArrayBuffer.
    const whole =
      bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    const img = jpeg.decode(whole ? (bytes.buffer as ArrayBuffer) : bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_PIXELS / 1e6,
      maxMemoryUsageInMB: JPEG_MAX_MEMORY_MIB,
    });
    return { width: img.width, height: img.height, data: img.data, orientation: jpegOrientation(bytes) };
  } catch (e) {
    const message = (e as Error).message;
    if (/maxMemoryUsageInMB/.test(message))
      throw new DataError(
        `${file}: decoding this JPEG takes more than the ${JPEG_MAX_MEMORY_MIB} MiB fmgpu allows an image ` +
          '(fewer pixels, or 4:2:0 chroma subsampling, take less)',
      );
    throw new DataError(`${file}: not a readable JPEG (${message})`);
  } finally {
    for (const at of comments) bytes[at] = 0xfe;
  }
}

/**
 * Where the second byte of each COM marker (FF FE) is, walking the JPEG's segments as a decoder
 * does: a marker and its length, and after a start of scan (SOS) the entropy-coded data up to the
 * next marker (FF followed by neither 00 nor a restart marker).
 */
function commentMarkers(b: Uint8Array): number[] {
  const found: number[] = [];
  let i = 2;
  while (i + 1 < b.length && b[i] === 0xff) {
    const m = b[i + 1]!;
    if (m === 0xff)
      i++; // a fill byte
    else if (m === 0xd9)
      break; // end of image
    else if ((m >= 0xd0 && m <= 0xd7) || m === 0x01)
      i += 2; // no length
    else {
      if (i + 3 >= b.length) break;
      if (m === 0xfe) found.push(i + 1);
      i += 2 + ((b[i + 2]! << 8) | b[i + 3]!);
      if (m === 0xda)
        while (i + 1 < b.length && !(b[i] === 0xff && b[i + 1] !== 0 && !(b[i + 1]! >= 0xd0 && b[i + 1]! <= 0xd7))) i++;
    }
  }
  return found;
}

function decodePng(bytes: Uint8Array, file: string): Rgba {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0,
    height = 0,
    depth = 0,
    type = 0,
    interlace = 0;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  let orientation = 1;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (at + 8 <= bytes.length) {
    const len = view.getUint32(at);
    const kind = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + len > bytes.length) throw new DataError(`${file}: truncated PNG (chunk ${kind} runs past the end)`);
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (kind === 'IHDR') {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      depth = body[8]!;
      type = body[9]!;
      interlace = body[12]!;
      checkSize(width, height, file);
    } else if (kind === 'PLTE') palette = body;
    else if (kind === 'tRNS') trns = body;
    else if (kind === 'eXIf') orientation = tiffOrientation(body);
    else if (kind === 'IDAT') idat.push(body);
    else if (kind === 'IEND') {
      ended = true;
      break;
    }
    at += 12 + len;
  }
  if (!width) throw new DataError(`${file}: PNG without a header (IHDR)`);
  if (!ended || idat.length === 0) throw new DataError(`${file}: truncated PNG (no image data end)`);
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[type];
  const depths = type === 0 ? [1, 2, 4, 8, 16] : type === 3 ? [1, 2, 4, 8] : [8, 16];
  if (!channels || !depths.includes(depth))
    throw new DataError(`${file}: PNG colour type ${type} with bit depth ${depth} is not valid`);
  if (type === 3 && !palette) throw new DataError(`${file}: palette PNG without a palette`);
  if (interlace > 1) throw new DataError(`${file}: corrupt PNG (interlace method ${interlace})`);
  // Adam7 passes as [x0, y0, dx, dy]; a plain image is one pass over everything. Each pass that
  // has pixels is rows of a filter byte and `stride` bytes: that is all the data the header allows.
  const passes = (interlace ? ADAM7 : WHOLE)
    .map(([x0, y0, dx, dy]) => {
      const pw = Math.ceil((width - x0) / dx),
        ph = Math.ceil((height - y0) / dy);
      return { x0, y0, dx, dy, pw, ph, stride: Math.ceil((pw * channels * depth) / 8) };
    })
    .filter((p) => p.pw > 0 && p.ph > 0); // an empty pass has no bytes at all, not even filter bytes
  const size = passes.reduce((a, p) => a + p.ph * (p.stride + 1), 0);
  // Inflated with that cap: a stream that holds more (a bomb, or corrupt data) is refused after
  // inflating one byte more, instead of materialising what it would expand to.
  let raw: Uint8Array | null;
  try {
    raw = inflateAtMost(idat.length === 1 ? idat[0]! : Buffer.concat(idat), size);
  } catch (e) {
    throw new DataError(`${file}: truncated or corrupt PNG data (${(e as Error).message})`);
  }
  if (!raw)
    throw new DataError(
      `${file}: corrupt PNG: its image data inflates to more than the ${size.toLocaleString('en-US')} bytes ` +
        `its ${width}x${height} header allows`,
    );
  const image = { width, height, depth, type, channels, palette: palette ?? new Uint8Array(0), trns };
  const out = new Uint8Array(width * height * 4);
  let offset = 0;
  for (const { x0, y0, dx, dy, pw, ph, stride } of passes) {
    if (raw.length < offset + ph * (stride + 1))
      throw new DataError(`${file}: truncated PNG data (${raw.length} bytes, more expected)`);
    // Unfiltered in place: each row keeps its filter byte in front, so rows are stride + 1 apart.
    const px = raw.subarray(offset, offset + ph * (stride + 1));
    unfilter(px, stride, ph, Math.max(1, (channels * depth) >> 3), file);
    offset += ph * (stride + 1);
    for (let y = 0; y < ph; y++)
      for (let x = 0; x < pw; x++) rgba(px, stride + 1, x, y, image, out, ((y0 + y * dy) * width + x0 + x * dx) * 4);
  }
  return { width, height, data: out, orientation };
}

/** A pass over the pixels: from column x0 and row y0, every dx-th column of every dy-th row. */
type Pass = readonly [x0: number, y0: number, dx: number, dy: number];
const WHOLE: readonly Pass[] = [[0, 0, 1, 1]];
const ADAM7: readonly Pass[] = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/**
 * Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth) in place: row y is its filter byte
 * at y·(stride + 1), then its `stride` bytes, which become the unfiltered ones; `bpp` bytes per
 * pixel, at least 1.
 */
function unfilter(raw: Uint8Array, stride: number, rows: number, bpp: number, file: string): void {
  for (let y = 0; y < rows; y++) {
    const f = raw[y * (stride + 1)]!;
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const up = y > 0 ? raw.subarray((y - 1) * (stride + 1) + 1, y * (stride + 1)) : null;
    if (f === 0) continue;
    if (f > 4) throw new DataError(`${file}: corrupt PNG (filter type ${f} on row ${y})`);
    for (let i = 0; i < stride; i++) {
      // row[i - bpp] is already unfiltered (left to right), and so is the row above.
      const a = i >= bpp ? row[i - bpp]! : 0,
        b = up ? up[i]! : 0,
        c = up && i >= bpp ? up[i - bpp]! : 0;
      let v = row[i]!;
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else {
        const p = a + b - c,
          pa = Math.abs(p - a),
          pb = Math.abs(p - b),
          pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[i] = v & 255;
    }
  }
}

interface PngInfo {
  depth: number;
  type: number;
  channels: number;
  /** Empty when the image has none (only colour type 3 needs one, and decodePng checks it has). */
  palette: Uint8Array;
  trns: Uint8Array | null;
}

/** Pixel (x, y) of unfiltered rows (row y's bytes from y·pitch + 1) → 8-bit RGBA at out[o…o+3]. */
function rgba(px: Uint8Array, pitch: number, x: number, y: number, p: PngInfo, out: Uint8Array, o: number): void {
  const { depth, type, channels, palette, trns } = p;
  // Sample c of the pixel at its own depth (palette: the index).
  const raw = (c: number): number => {
    const i = x * channels + c;
    const at = y * pitch + 1;
    if (depth === 16) return (px[at + i * 2]! << 8) | px[at + i * 2 + 1]!;
    if (depth === 8) return px[at + i]!;
    const bit = i * depth;
    return (px[at + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const to8 = (v: number): number =>
    depth === 16 ? v >> 8 : depth === 8 ? v : Math.round((v * 255) / ((1 << depth) - 1));
  if (type === 3) {
    const k = raw(0);
    if (k * 3 + 2 >= palette.length)
      out.set([0, 0, 0], o); // an index past the palette: black, as libpng
    else out.set(palette.subarray(k * 3, k * 3 + 3), o);
    out[o + 3] = trns && k < trns.length ? trns[k]! : 255;
    return;
  }
  const gray = type === 0 || type === 4;
  const s: readonly [number, number, number] = [raw(0), gray ? raw(0) : raw(1), gray ? raw(0) : raw(2)];
  out[o] = to8(s[0]);
  out[o + 1] = to8(s[1]);
  out[o + 2] = to8(s[2]);
  if (type === 4 || type === 6) out[o + 3] = to8(raw(type === 4 ? 1 : 3));
  else {
    // tRNS for gray and RGB names one colour (16-bit big-endian samples) that is fully transparent.
    const key =
      trns && trns.length >= (gray ? 2 : 6)
        ? [0, 1, 2].map((c) => (gray ? (trns[0]! << 8) | trns[1]! : (trns[2 * c]! << 8) | trns[2 * c + 1]!))
        : null;
    out[o + 3] = key && key[0] === s[0] && key[1] === s[1] && key[2] === s[2] ? 0 : 255;
  }
}
