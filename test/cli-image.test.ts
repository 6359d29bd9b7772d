// PNG decoding for `fmgpu predict` (src/node/image.ts): every colour type and bit depth, the five
// row filters, transparency (palette alpha and colour keys), Adam7 interlacing, and refusals. The
// PNGs come from a small encoder below that follows the specification, separate from the decoder.
import { describe, expect, it } from 'vitest';
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { decodeImage } from '../src/node/image.ts';
import { jpegClaiming } from './helpers/files.ts';

type ColourType = 0 | 2 | 3 | 4 | 6;
const CHANNELS: Record<ColourType, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Png {
  w: number;
  h: number;
  type: ColourType;
  depth: number;
  interlace: boolean;
  /** Per pixel, row-major: its samples at the file's depth (palette: the index). */
  samples: number[][];
  palette?: Uint8Array;
  trns?: Uint8Array;
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(kind: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length);
  out.set(new TextEncoder().encode(kind), 4);
  out.set(body, 8);
  v.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};

/** Samples packed MSB first (depths below 8), big-endian (16). */
function packRow(pixels: number[][], depth: number): Uint8Array {
  const bits = pixels.flat();
  const out = new Uint8Array(Math.ceil((bits.length * depth) / 8));
  bits.forEach((v, i) => {
    if (depth === 16) (out[2 * i] = v >> 8), (out[2 * i + 1] = v & 255);
    else if (depth === 8) out[i] = v;
    else out[(i * depth) >> 3]! |= v << (8 - depth - ((i * depth) & 7));
  });
  return out;
}

/** Filter type f applied forward: each byte minus its predictor from the unfiltered bytes. */
function filterRow(row: Uint8Array, prev: Uint8Array, f: number, bpp: number): Uint8Array {
  const out = new Uint8Array(row.length + 1);
  out[0] = f;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp]! : 0,
      b = prev[i]!,
      c = i >= bpp ? prev[i - bpp]! : 0;
    const p = a + b - c,
      pa = Math.abs(p - a),
      pb = Math.abs(p - b),
      pc = Math.abs(p - c);
    const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f]!;
    out[i + 1] = (row[i]! - pred) & 255;
  }
  return out;
}

function encode(png: Png, opts: { interlaceMethod?: number } = {}): Uint8Array {
  const ch = CHANNELS[png.type];
  const bpp = Math.max(1, (ch * png.depth) >> 3);
  const rows: Uint8Array[] = [];
  const passes = png.interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  passes.forEach(([x0, y0, dx, dy], pass) => {
    const pw = Math.ceil((png.w - x0) / dx),
      ph = Math.ceil((png.h - y0) / dy);
    if (pw <= 0 || ph <= 0) return;
    let prev: Uint8Array = new Uint8Array(Math.ceil((pw * ch * png.depth) / 8));
    for (let y = 0; y < ph; y++) {
      const row = packRow(
        Array.from({ length: pw }, (_, x) => png.samples[(y0 + y * dy) * png.w + x0 + x * dx]!),
        png.depth,
      );
      rows.push(filterRow(row, prev, (y + pass) % 5, bpp)); // every filter type, on every kind of row
      prev = row;
    }
  });
  const z = new Uint8Array(deflateSync(concat(rows)));
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, png.w);
  v.setUint32(4, png.h);
  ihdr.set([png.depth, png.type, 0, 0, opts.interlaceMethod ?? (png.interlace ? 1 : 0)], 8);
  const half = z.length >> 1; // two IDAT chunks: the stream continues across them
  return concat([
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(png.palette ? [chunk('PLTE', png.palette)] : []),
    ...(png.trns ? [chunk('tRNS', png.trns)] : []),
    chunk('IDAT', z.subarray(0, half)),
    chunk('IDAT', z.subarray(half)),
    chunk('IEND', new Uint8Array()),
  ]);
}

/** What the decoder must return, from the specification: 8-bit RGBA. */
function expected(png: Png): Uint8Array {
  const to8 = (s: number): number =>
    png.depth === 16 ? s >> 8 : png.depth === 8 ? s : Math.round((s * 255) / ((1 << png.depth) - 1));
  const key =
    png.trns && (png.type === 0 || png.type === 2)
      ? Array.from({ length: png.trns.length / 2 }, (_, i) => (png.trns![2 * i]! << 8) | png.trns![2 * i + 1]!)
      : null;
  const out = new Uint8Array(png.w * png.h * 4);
  png.samples.forEach((s, i) => {
    let px: number[];
    if (png.type === 3)
      px = [
        ...png.palette!.subarray(s[0]! * 3, s[0]! * 3 + 3),
        png.trns && s[0]! < png.trns.length ? png.trns[s[0]!]! : 255,
      ];
    else if (png.type === 0 || png.type === 4)
      px = [to8(s[0]!), to8(s[0]!), to8(s[0]!), png.type === 4 ? to8(s[1]!) : 255];
    else px = [to8(s[0]!), to8(s[1]!), to8(s[2]!), png.type === 6 ? to8(s[3]!) : 255];
    if (key?.every((k, c) => k === s[c])) px[3] = 0;
    out.set(px, i * 4);
  });
  return out;
}

/** Deterministic samples in [0, 2^depth), with the colour key hit on some pixels. */
function make(
  w: number,
  h: number,
  type: ColourType,
  depth: number,
  interlace: boolean,
  extra: { colours?: number; trns?: boolean } = {},
): Png {
  let seed = w * 7919 + h * 104729 + type * 31 + depth;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const ch = CHANNELS[type];
  const max = type === 3 ? (extra.colours ?? 1 << depth) : 1 << depth;
  const samples = Array.from({ length: w * h }, () => Array.from({ length: ch }, () => rand(max)));
  const png: Png = { w, h, type, depth, interlace, samples };
  if (type === 3) {
    png.palette = Uint8Array.from({ length: max * 3 }, () => rand(256));
    if (extra.trns) png.trns = Uint8Array.from({ length: Math.max(1, max >> 1) }, () => rand(256));
  } else if (extra.trns) {
    const k = samples[3]!; // pixel 3's colour is the transparent one
    png.trns = new Uint8Array(k.length * 2);
    k.forEach((v, c) => ((png.trns![2 * c] = v >> 8), (png.trns![2 * c + 1] = v & 255)));
  }
  return png;
}

describe('PNG: every colour type and depth, all five filters', () => {
  const cases: [string, Png][] = [];
  for (const interlace of [false, true]) {
    const il = interlace ? ', Adam7' : '';
    for (const d of [1, 2, 4, 8, 16]) cases.push([`gray ${d}-bit${il}`, make(13, 11, 0, d, interlace)]);
    for (const d of [1, 2, 4, 8])
      cases.push([`palette ${d}-bit with alpha${il}`, make(11, 9, 3, d, interlace, { trns: true })]);
    for (const d of [8, 16]) {
      cases.push([`RGB ${d}-bit${il}`, make(10, 7, 2, d, interlace)]);
      cases.push([`gray+alpha ${d}-bit${il}`, make(9, 10, 4, d, interlace)]);
      cases.push([`RGBA ${d}-bit${il}`, make(7, 9, 6, d, interlace)]);
    }
  }
  cases.push(['gray 8-bit, colour key (tRNS)', make(8, 8, 0, 8, false, { trns: true })]);
  cases.push(['RGB 16-bit, colour key (tRNS)', make(6, 5, 2, 16, false, { trns: true })]);
  cases.push(['palette of 3 colours, 2-bit', make(9, 4, 3, 2, false, { colours: 3 })]);
  cases.push(['1x1, Adam7 (six empty passes)', make(1, 1, 2, 8, true)]);
  cases.push(['3x2, Adam7 (empty passes)', make(3, 2, 0, 4, true)]);
  cases.push(['1-pixel-wide column, Adam7', make(1, 17, 6, 8, true)]);

  it.each(cases)('%s', (_, png) => {
    const img = decodeImage(encode(png), 'x.png');
    expect([img.width, img.height]).toEqual([png.w, png.h]);
    const want = expected(png);
    const bad = want.findIndex((v, i) => img.data[i] !== v);
    expect(bad, bad < 0 ? '' : `pixel ${bad >> 2} channel ${bad & 3}: want ${want[bad]}, got ${img.data[bad]}`).toBe(
      -1,
    );
    if (png.trns && png.type !== 3) expect(img.data[3 * 4 + 3]).toBe(0);
  });
});

describe('PNG and JPEG refusals: a DataError naming the file', () => {
  const good = encode(make(6, 6, 2, 8, false));
  const withIhdr = (edit: (ihdr: DataView) => void): Uint8Array => {
    const b = good.slice();
    edit(new DataView(b.buffer, 16, 13));
    return b; // the CRC no longer matches; the decoder does not check CRCs, so the edit is what it sees
  };
  const badFilter = (): Uint8Array => {
    const png = make(4, 3, 0, 8, false);
    const rows = Array.from({ length: 3 }, (_, y) => [y === 1 ? 9 : 0, ...png.samples.slice(y * 4, y * 4 + 4).flat()]);
    const ihdr = new Uint8Array(13);
    new DataView(ihdr.buffer).setUint32(0, 4);
    new DataView(ihdr.buffer).setUint32(4, 3);
    ihdr.set([8, 0, 0, 0, 0], 8);
    return concat([
      good.subarray(0, 8),
      chunk('IHDR', ihdr),
      chunk('IDAT', new Uint8Array(deflateSync(Uint8Array.from(rows.flat())))),
      chunk('IEND', new Uint8Array()),
    ]);
  };
  const realJpeg = new Uint8Array(
    jpeg.encode({ data: new Uint8Array(16 * 16 * 4).fill(128), width: 16, height: 16 }, 90).data,
  );
  const rows: [string, () => Uint8Array, string][] = [
    ['text', () => new TextEncoder().encode('hello'), 'x.png: not a PNG or JPEG image'],
    ['cut short', () => good.subarray(0, good.length - 20), 'x.png: truncated PNG'],
    [
      'no IHDR',
      () => concat([good.subarray(0, 8), chunk('IEND', new Uint8Array())]),
      'x.png: PNG without a header (IHDR)',
    ],
    [
      'RGB at 4 bits',
      () => withIhdr((v) => v.setUint8(8, 4)),
      'x.png: PNG colour type 2 with bit depth 4 is not valid',
    ],
    ['interlace method 2', () => withIhdr((v) => v.setUint8(12, 2)), 'x.png: corrupt PNG (interlace method 2)'],
    [
      'huge',
      () => withIhdr((v) => (v.setUint32(0, 100_000), v.setUint32(4, 100_000))),
      'x.png: the image claims 100000x100000 pixels, more than the 25,165,824 fmgpu decodes',
    ],
    // The header fixes how many bytes the image data inflates to: more is refused, not inflated.
    [
      'more image data than the header allows',
      () =>
        concat([
          good.subarray(0, 33),
          chunk('IDAT', new Uint8Array(deflateSync(new Uint8Array(6 * 19 + 1)))),
          chunk('IEND', new Uint8Array()),
        ]),
      'x.png: corrupt PNG: its image data inflates to more than the 114 bytes its 6x6 header allows',
    ],
    [
      'a 1x1 image whose data inflates to 64 MiB',
      () =>
        concat([
          good.subarray(0, 8),
          chunk('IHDR', Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0)),
          chunk('IDAT', new Uint8Array(deflateSync(new Uint8Array(64 << 20)))),
          chunk('IEND', new Uint8Array()),
        ]),
      'x.png: corrupt PNG: its image data inflates to more than the 4 bytes its 1x1 header allows',
    ],
    ['bad filter type', badFilter, 'x.png: corrupt PNG (filter type 9 on row 1)'],
    [
      'palette without PLTE',
      () => encode({ ...make(4, 4, 3, 8, false), palette: undefined }),
      'x.png: palette PNG without a palette',
    ],
    ['JPEG cut short', () => Uint8Array.from([0xff, 0xd8, 0xff, 0xdb, 0x00]), 'x.png: not a readable JPEG'],
    ['JPEG cut in half', () => realJpeg.subarray(0, realJpeg.length >> 1), 'x.png: not a readable JPEG'],
    // jpeg-js would refuse it too, but only after parsing; the frame header is read first.
    [
      'JPEG claiming 65535x65535',
      () => jpegClaiming(realJpeg, 65535, 65535),
      'x.png: the image claims 65535x65535 pixels, more than the 25,165,824 fmgpu decodes',
    ],
    // Within MAX_PIXELS, but jpeg-js would allocate ~190 MiB of coefficient blocks (~500 MB in fact).
    [
      'JPEG (4:4:4) claiming 4096x4000',
      () => jpegClaiming(realJpeg, 4096, 4000),
      'x.png: decoding this JPEG takes more than the 176 MiB fmgpu allows an image',
    ],
    ['JPEG claiming 0 rows', () => jpegClaiming(realJpeg, 16, 0), 'x.png: the image claims 16x0 pixels'],
  ];
  it.each(rows)('%s', (_, bytes, message) => {
    expect(() => decodeImage(bytes(), 'x.png')).toThrow(message);
  });
  it('a JPEG with comments decodes, and its bytes are left as they were', () => {
    // jpeg-js would keep each comment as a string; they are hidden from it during the decode.
    const comment = Uint8Array.from([0xff, 0xfe, 0x00, 0x07, ...new TextEncoder().encode('hello')]);
    const withComment = concat([realJpeg.subarray(0, 2), comment, realJpeg.subarray(2)]);
    const before = withComment.slice();
    const img = decodeImage(withComment, 'x.jpg');
    expect([img.width, img.height]).toEqual([16, 16]);
    expect(Array.from(img.data)).toEqual(Array.from(decodeImage(realJpeg, 'x.jpg').data));
    expect(withComment).toEqual(before);
  });
});
