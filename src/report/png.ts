// Grayscale PNGs as data: URIs, with no compression library: zlib "stored" blocks are valid deflate,
// and 28×28 images are small enough that compression would save little. Browser- and Node-safe.

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
  let a = 1,
    b = 0;
  for (const x of bytes) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** A zlib stream of stored (uncompressed) deflate blocks of at most 65,535 bytes each. */
export function zlibStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / 65535));
  const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
  const v = new DataView(out.buffer);
  out[0] = 0x78;
  out[1] = 0x01;
  let at = 2;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * 65535, Math.min(data.length, (i + 1) * 65535));
    out[at] = i === blocks - 1 ? 1 : 0; // BFINAL, BTYPE 00 (stored)
    v.setUint16(at + 1, chunk.length, true);
    v.setUint16(at + 3, ~chunk.length & 0xffff, true);
    out.set(chunk, at + 5);
    at += 5 + chunk.length;
  }
  v.setUint32(at, adler32(data));
  return out;
}

function chunk(kind: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = kind.charCodeAt(i);
  out.set(body, 8);
  v.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** An 8-bit grayscale PNG of w×h row-major pixels. */
export function grayPng(pixels: Uint8Array, w: number, h: number): Uint8Array {
  const raw = new Uint8Array(h * (w + 1));
  for (let y = 0; y < h; y++) raw.set(pixels.subarray(y * w, (y + 1) * w), y * (w + 1) + 1); // filter byte 0: none
  return pngFile(w, h, 8, 0, zlibStored(raw));
}

/** An 8-bit RGB PNG of w×h pixels given as three planes (R, G, B), each row-major: NCHW's layout. */
export function rgbPng(planes: Uint8Array, w: number, h: number): Uint8Array {
  const raw = new Uint8Array(h * (3 * w + 1));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) raw[y * (3 * w + 1) + 1 + 3 * x + c] = planes[(c * h + y) * w + x]!;
  return pngFile(w, h, 8, 2, zlibStored(raw));
}

/** A PNG file from its header fields and its zlib-compressed, filtered scanlines (one IDAT). */
export function pngFile(w: number, h: number, depth: number, colourType: number, idat: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr.set([depth, colourType, 0, 0, 0], 8);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!,
      b = bytes[i + 1] ?? 0,
      c = bytes[i + 2] ?? 0;
    s +=
      B64.charAt(a >> 2) +
      B64.charAt(((a & 3) << 4) | (b >> 4)) +
      (i + 1 < bytes.length ? B64.charAt(((b & 15) << 2) | (c >> 6)) : '=') +
      (i + 2 < bytes.length ? B64.charAt(c & 63) : '=');
  }
  return s;
}

export function pngDataUri(pixels: Uint8Array, w: number, h: number): string {
  return `data:image/png;base64,${base64(grayPng(pixels, w, h))}`;
}
