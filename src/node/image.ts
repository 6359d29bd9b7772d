// Decoding photos for `fmgpu predict`: PNG (here, with node:zlib: every bit depth and colour type,
// palettes, transparency, Adam7 interlacing) and JPEG (jpeg-js). Output: RGBA bytes.
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { DataError } from '../errors.ts';

export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Larger images are refused from their header, before any decoding. */
export const MAX_PIXELS = 64 * 1024 * 1024;

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function decodeImage(bytes: Uint8Array, file: string): Rgba {
  if (PNG_SIG.every((b, i) => bytes[i] === b)) return decodePng(bytes, file);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpeg(bytes, file);
  throw new DataError(`${file}: not a PNG or JPEG image`);
}

function checkSize(w: number, h: number, file: string): void {
  if (w < 1 || h < 1) throw new DataError(`${file}: the image claims ${w}x${h} pixels`);
  if (w * h > MAX_PIXELS) throw new DataError(`${file}: the image claims ${w}x${h} pixels, more than the ${MAX_PIXELS.toLocaleString('en-US')} fmgpu decodes`);
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
  try {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new DataError(`${file}: not a readable JPEG (${(e as Error).message})`);
  }
}

function decodePng(bytes: Uint8Array, file: string): Rgba {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0, height = 0, depth = 0, type = 0, interlace = 0;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
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
  if (!channels || !depths.includes(depth)) throw new DataError(`${file}: PNG colour type ${type} with bit depth ${depth} is not valid`);
  if (type === 3 && !palette) throw new DataError(`${file}: palette PNG without a palette`);
  if (interlace > 1) throw new DataError(`${file}: corrupt PNG (interlace method ${interlace})`);
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(inflateSync(Buffer.concat(idat)));
  } catch (e) {
    throw new DataError(`${file}: truncated or corrupt PNG data (${(e as Error).message})`);
  }
  const image = { width, height, depth, type, channels, palette, trns };
  const out = new Uint8Array(width * height * 4);
  // Adam7 passes as [x0, y0, dx, dy]; a plain image is one pass over everything.
  const passes = interlace ? ADAM7 : [[0, 0, 1, 1]];
  let offset = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0!) / dx!), ph = Math.ceil((height - y0!) / dy!);
    if (pw <= 0 || ph <= 0) continue; // an empty pass has no bytes at all, not even filter bytes
    const stride = Math.ceil((pw * channels * depth) / 8);
    if (raw.length < offset + ph * (stride + 1)) throw new DataError(`${file}: truncated PNG data (${raw.length} bytes, more expected)`);
    const px = unfilter(raw.subarray(offset, offset + ph * (stride + 1)), stride, ph, Math.max(1, (channels * depth) >> 3), file);
    offset += ph * (stride + 1);
    for (let y = 0; y < ph; y++) for (let x = 0; x < pw; x++) rgba(px, stride, x, y, image, out, ((y0! + y * dy!) * width + x0! + x * dx!) * 4);
  }
  return { width, height, data: out };
}

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth); `bpp` bytes per pixel, at least 1. */
function unfilter(raw: Uint8Array, stride: number, rows: number, bpp: number, file: string): Uint8Array {
  const px = new Uint8Array(rows * stride);
  for (let y = 0; y < rows; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp]! : 0, b = up ? up[i]! : 0, c = up && i >= bpp ? up[i - bpp]! : 0;
      let v = src[i]!;
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new DataError(`${file}: corrupt PNG (filter type ${f} on row ${y})`);
      row[i] = v & 255;
    }
  }
  return px;
}

interface PngInfo {
  depth: number;
  type: number;
  channels: number;
  palette: Uint8Array | null;
  trns: Uint8Array | null;
}

/** Pixel (x, y) of unfiltered rows → 8-bit RGBA at out[o…o+3]. */
function rgba(px: Uint8Array, stride: number, x: number, y: number, p: PngInfo, out: Uint8Array, o: number): void {
  const { depth, type, channels, palette, trns } = p;
  // Sample c of the pixel at its own depth (palette: the index).
  const raw = (c: number): number => {
    const i = x * channels + c;
    if (depth === 16) return (px[y * stride + i * 2]! << 8) | px[y * stride + i * 2 + 1]!;
    if (depth === 8) return px[y * stride + i]!;
    const bit = i * depth;
    return (px[y * stride + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const to8 = (v: number): number => (depth === 16 ? v >> 8 : depth === 8 ? v : Math.round((v * 255) / ((1 << depth) - 1)));
  if (type === 3) {
    const k = raw(0);
    if (k * 3 + 2 >= palette!.length) out.set([0, 0, 0], o); // an index past the palette: black, as libpng
    else out.set(palette!.subarray(k * 3, k * 3 + 3), o);
    out[o + 3] = trns && k < trns.length ? trns[k]! : 255;
    return;
  }
  const gray = type === 0 || type === 4;
  const s = [raw(0), gray ? raw(0) : raw(1), gray ? raw(0) : raw(2)];
  out[o] = to8(s[0]!);
  out[o + 1] = to8(s[1]!);
  out[o + 2] = to8(s[2]!);
  if (type === 4 || type === 6) out[o + 3] = to8(raw(type === 4 ? 1 : 3));
  else {
    // tRNS for gray and RGB names one colour (16-bit big-endian samples) that is fully transparent.
    const key = trns && trns.length >= (gray ? 2 : 6) ? [0, 1, 2].map((c) => (gray ? (trns[0]! << 8) | trns[1]! : (trns[2 * c]! << 8) | trns[2 * c + 1]!)) : null;
    out[o + 3] = key && key[0] === s[0] && key[1] === s[1] && key[2] === s[2] ? 0 : 255;
  }
}
