// `fmgpu predict RUN photo` for a colour run (issue 19): a small generated CIFAR-10 folder trained in
// colour, then photos of any size brought to 32×32 RGB and normalised as the run's test set is. A
// photo made from a test image (exact, or scaled up ×20) gets what `predict --test` gives that image;
// --save-input writes the RGB image the network saw; --json carries the steps; grey runs of other
// sizes get the whole picture in grey. The resizer itself is checked against a direct area average.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { ensureBuilt } from './helpers/files.ts';
import { Rng } from '../src/util/rng.ts';
import { decodeCifar } from '../src/data/cifar.ts';
import { describeResize, resizePhoto } from '../src/data/resize.ts';
import { grayOf, planeOf } from '../src/data/image.ts';
import { decodeImage } from '../src/node/image.ts';
import { rgbPng } from '../src/report/png.ts';
import { fmgpu } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-colour-'));
const NAMES = ['red', 'green', 'blue'];

/** n CIFAR-10 records: class c is bright in colour plane c, with noise. */
function records(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(n * 3073);
  for (let i = 0; i < n; i++) {
    const c = rng.int(3);
    out[i * 3073] = c;
    for (let p = 0; p < 3072; p++) out[i * 3073 + 1 + p] = (Math.floor(p / 1024) === c ? 160 : 40) + rng.int(60);
  }
  return out;
}

/** RGBA of a planar RGB image, each pixel repeated s×s times. */
function rgbaOf(planes: Uint8Array, w: number, h: number, s: number): Uint8Array {
  const out = new Uint8Array(w * s * h * s * 4);
  for (let y = 0; y < h * s; y++)
    for (let x = 0; x < w * s; x++) {
      const src = Math.floor(y / s) * w + Math.floor(x / s);
      for (let c = 0; c < 3; c++) out[4 * (y * w * s + x) + c] = planes[c * w * h + src]!;
      out[4 * (y * w * s + x) + 3] = 255;
    }
  return out;
}

/** RGBA → planar RGB (the PNG writer's layout). */
function planarOf(rgba: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = rgba[4 * i + c]!;
  return out;
}

describe('planeOf: decoded RGBA to one upright plane (photos, folders, the page)', () => {
  // Stored 3 wide, 2 tall: p0 p1 p2 / p3 p4 p5; pixel i is R 10i, G 10i+1, B 10i+2, p0 transparent.
  const rgba = Uint8Array.from({ length: 24 }, (_, j) => (j % 4 === 3 ? (j === 3 ? 0 : 255) : 10 * (j >> 2) + (j % 4)));
  // EXIF 6 (turned 90° clockwise to show): 2 wide, 3 tall, rows p3 p0 / p4 p1 / p5 p2.
  const shown = [3, 0, 4, 1, 5, 2];

  it('bytes as they are with alpha ignored (a folder of images), turned as EXIF says', () => {
    const p = planeOf(rgba, 3, 2, { orientation: 6, channel: 1, unit: 1, over: null });
    expect([p.width, p.height]).toEqual([2, 3]);
    expect(Array.from(p.gray)).toEqual(shown.map((i) => 10 * i + 1));
  });

  it('in [0, 1], transparent parts over the level given (a photo), into the array given', () => {
    const into = new Float32Array(6);
    const p = planeOf(rgba, 3, 2, { orientation: 6, channel: 0, unit: 255, over: 1 }, into);
    expect(p.gray).toBe(into);
    shown.forEach((i, k) => expect(into[k]).toBeCloseTo(i === 0 ? 1 : (10 * i) / 255, 6));
    const luma = (i: number): number => (0.299 * 10 * i + 0.587 * (10 * i + 1) + 0.114 * (10 * i + 2)) / 255;
    const dark = planeOf(rgba, 3, 2, { orientation: 1, channel: 'luma', unit: 255, over: 0 });
    [0, 1, 2, 3, 4, 5].forEach((i) => expect(dark.gray[i]).toBeCloseTo(i === 0 ? 0 : luma(i), 6));
    const grey = grayOf(rgba, 3, 2, 6).gray; // luma over white
    shown.forEach((i, k) => expect(grey[k]).toBeCloseTo(i === 0 ? 1 : luma(i), 6));
  });
});

describe('resizing a photo to a network shape (no GPU)', () => {
  it('area averages each colour plane, whole picture stretched; grey is luma; EXIF turns it', () => {
    const rng = new Rng(4);
    const w = 12,
      h = 8;
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i % 4 === 3 ? 255 : rng.int(256)));
    const r = resizePhoto(rgba, w, h, { h: 4, w: 3, c: 3 });
    // Each output pixel averages a 4×2 block (12/3 across, 8/4 down).
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 4; y++)
        for (let x = 0; x < 3; x++) {
          let sum = 0;
          for (let dy = 0; dy < 2; dy++)
            for (let dx = 0; dx < 4; dx++) sum += rgba[4 * ((2 * y + dy) * w + 4 * x + dx) + c]!;
          expect(Math.abs(r.bytes[(c * 4 + y) * 3 + x]! - sum / 8)).toBeLessThanOrEqual(0.5 + 1e-3);
        }
    expect(describeResize(r.steps)).toBe('photo 12×8 RGB → 3×4 RGB');
    const grey = resizePhoto(rgba, w, h, { h: 8, w: 12, c: 1 }, { invert: false });
    const luma = (i: number): number => 0.299 * rgba[4 * i]! + 0.587 * rgba[4 * i + 1]! + 0.114 * rgba[4 * i + 2]!;
    for (let i = 0; i < w * h; i++) expect(Math.abs(grey.bytes[i]! - luma(i))).toBeLessThanOrEqual(0.5 + 1e-3);
    // EXIF 6: stored 12×8, shown 8×12: the shown (0, 0) is the stored bottom-left.
    const turned = resizePhoto(rgba, w, h, { h: 12, w: 8, c: 3 }, { orientation: 6 });
    expect(turned.bytes[0]).toBe(rgba[4 * (h - 1) * w]);
    expect(describeResize(turned.steps)).toBe('photo 12×8 RGB, EXIF rotated → 8×12 RGB');
  });

  it('transparent parts over white; light grey photos inverted for grey networks', () => {
    const rgba = new Uint8Array(4 * 4 * 4); // all transparent black
    const r = resizePhoto(rgba, 4, 4, { h: 2, w: 2, c: 3 });
    expect(Array.from(r.bytes)).toEqual(new Array(12).fill(255));
    const g = resizePhoto(rgba, 4, 4, { h: 2, w: 2, c: 1 });
    expect(Array.from(g.bytes)).toEqual([0, 0, 0, 0]);
    expect(describeResize(g.steps)).toBe('photo 4×4 grey+alpha → 2×2 grey, inverted');
    expect(() => resizePhoto(rgba, 4, 4, { h: 2, w: 2, c: 2 })).toThrow(/1 \(grey\) or 3 \(RGB\) channels, not 2/);
  });
});

describe('fmgpu predict on photos, a colour run (CIFAR-10, 32×32×3)', () => {
  const data = join(tmp, 'c10');
  const run = join(tmp, 'run');
  const photos = join(tmp, 'photos');
  let test: ReturnType<typeof decodeCifar>;
  beforeAll(() => {
    ensureBuilt();
    mkdirSync(data, { recursive: true });
    mkdirSync(photos, { recursive: true });
    writeFileSync(join(data, 'data_batch_1.bin'), records(200, 1));
    writeFileSync(join(data, 'test_batch.bin'), records(40, 2));
    writeFileSync(join(data, 'batches.meta.txt'), `${NAMES.join('\n')}\n`);
    test = decodeCifar(readFileSync(join(data, 'test_batch.bin')), 'cifar10', 'test_batch.bin');
    const net = join(tmp, 'c10.net');
    writeFileSync(
      net,
      'input 32x32x3\nconv 4 3x3 same relu\npool 4\nflatten\ndense 3 softmax\ntrain epochs=2 batch=25\n',
    );
    const r = fmgpu('train', net, '--data', data, '--out', run);
    expect(r.err).toBe('');
    for (let i = 0; i < 4; i++) {
      const planes = test.images.subarray(i * 3072, (i + 1) * 3072);
      writeFileSync(join(photos, `test${i}.png`), rgbPng(planes, 32, 32));
      const big = rgbaOf(planes, 32, 32, 20); // 640×640, each pixel a 20×20 block
      writeFileSync(join(photos, `big${i}.png`), rgbPng(planarOf(big, 640 * 640), 640, 640));
    }
  }, 300_000);

  it('a photo of a test image, exact or ×20, gets the class and probabilities of predict --test', () => {
    const files = [0, 1, 2, 3].flatMap((i) => [join(photos, `test${i}.png`), join(photos, `big${i}.png`)]);
    const r = fmgpu('predict', run, ...files, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const t = fmgpu('predict', run, '--test', '0-3', '--json');
    expect(t.code).toBe(0);
    const truth = t.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (let i = 0; i < 8; i++) {
      const want = truth[i >> 1].top;
      expect(rows[i].top.map((c: { class: string }) => c.class)).toEqual(want.map((c: { class: string }) => c.class));
      for (let k = 0; k < 3; k++) expect(rows[i].top[k].probability).toBeCloseTo(want[k].probability, 5);
    }
    expect(rows[1].explanation).toBe('photo 640×640 RGB → 32×32 RGB');
    expect(rows[1].steps.to).toEqual({ h: 32, w: 32, c: 3 });
    expect(NAMES).toContain(rows[0].top[0].class);
  });

  it('says what it did to a 640×480 JPEG; --save-input writes the RGB image the network saw', () => {
    const rgba = new Uint8Array(640 * 480 * 4);
    for (let i = 0; i < 640 * 480; i++) rgba.set([200, 30 + (i % 640) / 10, 40, 255], 4 * i);
    const file = join(photos, 'red.jpg');
    writeFileSync(file, jpeg.encode({ data: rgba, width: 640, height: 480 }, 95).data);
    const saved = join(tmp, 'saved');
    const r = fmgpu('predict', run, file, join(photos, 'test2.png'), '--save-input', saved);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (red|green|blue) `));
    expect(lines[1]).toBe('  photo 640×480 RGB → 32×32 RGB');
    const red = decodeImage(readFileSync(join(saved, 'red.png')), 'red.png');
    expect([red.width, red.height]).toEqual([32, 32]);
    expect(red.data[0]).toBeGreaterThan(180); // red stays red: colour kept
    expect(red.data[2]).toBeLessThan(70);
    const exact = decodeImage(readFileSync(join(saved, 'test2.png')), 'test2.png');
    expect(planarOf(exact.data, 1024)).toEqual(test.images.slice(2 * 3072, 3 * 3072));
  });

  it('--invert is refused for a colour run (exit 2)', () => {
    const r = fmgpu('predict', run, join(photos, 'test0.png'), '--invert');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--invert is for grey models');
  });
});
