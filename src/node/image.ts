// Decoding photos for `fmgpu predict`: PNG (here, with node:zlib: every bit depth and colour type,
// palette and transparency; not interlaced) and JPEG (jpeg-js). Output: RGBA bytes.
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
  if (interlace) throw new DataError(`${file}: interlaced PNGs are not supported; save it without interlacing`);
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[type];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) throw new DataError(`${file}: PNG colour type ${type} with bit depth ${depth} is not valid`);
  if (type === 3 && !palette) throw new DataError(`${file}: palette PNG without a palette`);
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(inflateSync(Buffer.concat(idat)));
  } catch (e) {
    throw new DataError(`${file}: truncated or corrupt PNG data (${(e as Error).message})`);
  }
  const bpp = Math.max(1, (channels * depth) >> 3); // bytes per pixel for filtering
  const stride = Math.ceil((width * channels * depth) / 8);
  if (raw.length < height * (stride + 1)) throw new DataError(`${file}: truncated PNG data (${raw.length} of ${height * (stride + 1)} bytes)`);
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
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
  // Samples as 8-bit values (16-bit: the high byte; low depths: scaled up, palettes: indices).
  const sample = (y: number, i: number): number => {
    if (depth === 16) return px[y * stride + i * 2]!;
    if (depth === 8) return px[y * stride + i]!;
    const bit = i * depth, v = (px[y * stride + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
    return type === 3 ? v : Math.round((v * 255) / ((1 << depth) - 1));
  };
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (type === 3) {
        const k = sample(y, x);
        out.set(palette!.subarray(k * 3, k * 3 + 3), o);
        out[o + 3] = trns && k < trns.length ? trns[k]! : 255;
        continue;
      }
      const s = (c: number): number => sample(y, x * channels + c);
      const g = type === 0 || type === 4;
      out[o] = s(0);
      out[o + 1] = g ? s(0) : s(1);
      out[o + 2] = g ? s(0) : s(2);
      out[o + 3] = type === 4 ? s(1) : type === 6 ? s(3) : 255;
    }
  }
  return { width, height, data: out };
}
