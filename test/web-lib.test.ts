// The browser library's own parts, under Node (which has fetch, Blob and DecompressionStream):
// image preprocessing, data over HTTP from the page's server, fit options, weights in and out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startServer, type RunningServer } from '../src/node/server.ts';
import {
  preprocessImage,
  loadFashionMnist,
  fetchBytes,
  fitOptions,
  splitValidation,
  takeFirst,
  imagesOf,
  parseNet,
  Trainer,
  saveWeights,
  loadWeights,
  readWeights,
  sourceOf,
  DataError,
  pageSets,
  channelStats,
  type Dataset,
  type ServedData,
} from '../src/web.ts';
import { holdOut } from '../src/data/split.ts';
import { useGpu } from './helpers/gpu.ts';

/** RGBA from a gray function, fully opaque. */
function rgba(w: number, h: number, gray: (x: number, y: number) => number, alpha = 255): Uint8ClampedArray {
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = gray(x, y);
      out.set([v, v, v, alpha], (y * w + x) * 4);
    }
  return out;
}

describe('preprocessImage (same steps as fmgpu predict)', () => {
  it('28×28 dark background: unchanged, not inverted', () => {
    const p = preprocessImage(
      rgba(28, 28, (x, y) => (x === 5 && y === 7 ? 255 : 0)),
      28,
      28,
    );
    expect(p.inverted).toBe(false);
    expect(p.pixels[7 * 28 + 5]).toBeCloseTo(1, 6);
    expect(p.pixels.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('56×56 halves by 2×2 area means', () => {
    const p = preprocessImage(
      rgba(56, 56, (x, y) => (x < 2 && y < 1 ? 255 : 0)),
      56,
      56,
    );
    expect(p.pixels[0]).toBeCloseTo(0.5, 6);
    expect(p.pixels[1]).toBe(0);
  });

  it('light background is inverted; a 28-tall, 14-wide image is centred with black sides', () => {
    const p = preprocessImage(
      rgba(14, 28, (x) => (x === 7 ? 0 : 255)),
      14,
      28,
    );
    expect(p.inverted).toBe(true);
    for (let y = 0; y < 28; y++) {
      expect(p.pixels[y * 28 + 0]).toBe(0); // padding
      expect(p.pixels[y * 28 + 7 + 7]).toBeCloseTo(1, 6); // the dark column, now light
      expect(p.pixels[y * 28 + 7 + 3]).toBeCloseTo(0, 6);
    }
  });

  it('forced invert overrides the border rule', () => {
    expect(
      preprocessImage(
        rgba(4, 4, () => 0),
        4,
        4,
        true,
      ).pixels[13 * 28 + 13],
    ).toBeCloseTo(1, 6);
    expect(
      preprocessImage(
        rgba(4, 4, () => 255),
        4,
        4,
        false,
      ).inverted,
    ).toBe(false);
  });

  it('transparent pixels count as white (then inverted to black)', () => {
    const p = preprocessImage(
      rgba(28, 28, () => 0, 0),
      28,
      28,
    );
    expect(p.inverted).toBe(true);
    expect(Math.max(...p.pixels)).toBeCloseTo(0, 6);
  });

  it('a wide photo keeps its aspect ratio (100×50 → 28×14, rows 7..20)', () => {
    const p = preprocessImage(
      rgba(100, 50, () => 200),
      100,
      50,
      false,
    );
    expect(p.pixels[6 * 28 + 14]).toBe(0);
    expect(p.pixels[7 * 28 + 14]).toBeCloseTo(200 / 255, 5);
    expect(p.pixels[20 * 28 + 14]).toBeCloseTo(200 / 255, 5);
    expect(p.pixels[21 * 28 + 14]).toBe(0);
  });

  it('too few bytes is a DataError', () => {
    expect(() => preprocessImage(new Uint8Array(10), 4, 4)).toThrow('an image of 4x4 needs 64 RGBA bytes but has 10');
  });
});

function idx(n: number, images = true, magic = images ? 2051 : 2049): Buffer {
  const head = Buffer.alloc(images ? 16 : 8);
  head.writeUInt32BE(magic, 0);
  head.writeUInt32BE(n, 4);
  if (images) {
    head.writeUInt32BE(28, 8);
    head.writeUInt32BE(28, 12);
  }
  const body = Buffer.alloc(images ? n * 784 : n);
  for (let i = 0; i < body.length; i++) body[i] = images ? (i * 31) % 256 : i % 10;
  return Buffer.concat([head, body]);
}

describe("Fashion-MNIST over HTTP (the page's server)", () => {
  let dir: string;
  let srv: RunningServer;
  const url = (sub: string): string => `${srv.url}${sub}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fmgpu-weblib-'));
    mkdirSync(join(dir, 'web'));
    writeFileSync(join(dir, 'web', 'index.html'), '');
    for (const d of ['good', 'bad']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'good', 'train-images-idx3-ubyte.gz'), gzipSync(idx(50)));
    writeFileSync(join(dir, 'good', 'train-labels-idx1-ubyte.gz'), gzipSync(idx(50, false)));
    writeFileSync(join(dir, 'good', 't10k-images-idx3-ubyte'), idx(20)); // plain idx, no .gz
    writeFileSync(join(dir, 'good', 't10k-labels-idx1-ubyte.gz'), gzipSync(idx(20, false)));
    srv = await startServer({ root: dir, dataDir: join(dir, 'good'), port: 0 });
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads .gz and plain idx files, reporting progress', async () => {
    const seen: number[] = [];
    const d = await loadFashionMnist(url('data/'), { onProgress: (got, total) => seen.push(got / total) });
    expect([d.train.n, d.test.n, d.train.rows, d.train.cols]).toEqual([50, 20, 28, 28]);
    expect(d.train.images[784 + 3]).toBe((787 * 31) % 256);
    expect(d.test.labels[13]).toBe(3);
    expect(seen.at(-1)).toBe(1);
  });

  it('a missing file names the URL', async () => {
    await expect(loadFashionMnist(url('nowhere/'))).rejects.toThrow(
      `${url('nowhere/')}train-images-idx3-ubyte.gz: not found (HTTP 404)`,
    );
  });

  it('a malformed file names the URL and what is wrong', async () => {
    writeFileSync(join(dir, 'good', 't10k-labels-idx1-ubyte.gz'), gzipSync(idx(20, false, 2051)));
    await expect(loadFashionMnist(url('data/'))).rejects.toThrow(
      `${url('data/')}t10k-labels-idx1-ubyte.gz: not an idx1 label file: magic number 2051, expected 2049`,
    );
    writeFileSync(join(dir, 'good', 't10k-labels-idx1-ubyte.gz'), gzipSync(idx(19, false)));
    await expect(loadFashionMnist(url('data/'))).rejects.toThrow(
      `${url('data/')}t10k-labels-idx1-ubyte.gz: 19 labels but ${url('data/')}t10k-images-idx3-ubyte has 20 images`,
    );
    writeFileSync(join(dir, 'good', 't10k-labels-idx1-ubyte.gz'), gzipSync(idx(20, false)));
  });

  it('fetchBytes gunzips by content, or not when asked', async () => {
    const raw = await fetchBytes(url('data/train-labels-idx1-ubyte.gz'), { gunzip: false });
    expect([raw[0], raw[1]]).toEqual([0x1f, 0x8b]);
    expect((await fetchBytes(url('data/train-labels-idx1-ubyte.gz'))).length).toBe(58);
    await expect(fetchBytes(url('data/none'))).rejects.toBeInstanceOf(DataError);
  });

  it('subset, validation split and normalised images', async () => {
    const d = await loadFashionMnist(url('data/'));
    const { train, val } = splitValidation(takeFirst(d.train, 40), 0.25);
    expect([train.n, val?.n]).toEqual([30, 10]);
    expect(splitValidation(train, 0).val).toBeNull();
    const x = imagesOf(d.train, [1]);
    expect(x.length).toBe(784);
    expect(x[3]).toBeCloseTo(((787 * 31) % 256) / 255, 6);
  });
});

describe('pageSets: the sets a page run uses, as fmgpu train makes them', () => {
  /** n images of `channels`×2×2, labels sorted by class (a folder tree) or interleaved. */
  const set = (n: number, classes: number, sorted: boolean, channels = 1): Dataset => ({
    images: Uint8Array.from({ length: n * channels * 4 }, (_, i) => (i * 37) % 256),
    labels: Uint8Array.from({ length: n }, (_, i) => (sorted ? Math.floor((i * classes) / n) : i % classes)),
    n,
    rows: 2,
    cols: 2,
    channels,
  });
  const served = (train: Dataset, heldOut: string | null = null): ServedData => ({
    train,
    test: { ...train, n: 8, labels: train.labels.subarray(0, 8), images: train.images.subarray(0, 8 * 4) },
    classes: ['a', 'b', 'c', 'd'],
    name: 'tree',
    heldOut,
  });
  const classesOf = (ds: Dataset): number[] => [...new Set(ds.labels)].sort();

  it('class-sorted data: a spread subset and a seeded share of every class held out (split=auto)', () => {
    const all = set(400, 4, true);
    const s = pageSets(served(all), { keep: 100, fraction: 0.2, split: 'auto', seed: 3 });
    expect([s.train.n, s.val?.n]).toEqual([80, 20]);
    expect(classesOf(s.train)).toEqual([0, 1, 2, 3]);
    expect(classesOf(s.val!)).toEqual([0, 1, 2, 3]);
    expect(s.validation).toBe('a seeded random share of each class (0.2)');
    const kept = { ...all, n: 100, labels: Uint8Array.from({ length: 100 }, (_, i) => all.labels[Math.floor(i * 4)]!) };
    const want = holdOut({ ...kept, images: s.train.images.subarray(0, 0) }, 0.2, 'random', 3);
    expect(s.train.labels).toEqual(want.train.labels);
  });

  it("interleaved data: the first images and Keras's last fraction; split=random asks for the other", () => {
    const all = set(400, 4, false);
    const s = pageSets(served(all), { keep: 100, fraction: 0.2, split: 'auto', seed: 3 });
    expect(s.train.labels).toEqual(all.labels.subarray(0, 80));
    expect(s.val!.labels).toEqual(all.labels.subarray(80, 100));
    expect(s.validation).toBe('the last images (0.2)');
    expect(pageSets(served(all), { keep: 100, fraction: 0.2, split: 'random', seed: 3 }).validation).toMatch(/random/);
    expect(pageSets(served(all), { keep: 100, fraction: 0, split: 'auto', seed: 3 }).val).toBeNull();
  });

  it('validation=test: the test set validates, all the kept images train, as fmgpu train does', () => {
    const all = set(400, 4, false);
    const s = pageSets(served(all), { keep: 100, fraction: 0, split: 'auto', seed: 3, test: true });
    expect(s.train.n).toBe(100);
    expect(s.val?.n).toBe(8);
    expect(s.val!.labels).toEqual(s.test.labels);
    expect(s.validation).toBe('the test set (validation=test)');
  });

  it("a tree's held-out test set validates, as train's does; colour is normalised by the images trained on", () => {
    const all = set(200, 4, true, 3);
    const s = pageSets(served(all, 'a seeded random 20% of each class'), {
      keep: 200,
      fraction: 0.1,
      split: 'auto',
      seed: 1,
    });
    expect(s.train.n).toBe(200);
    expect(s.val?.n).toBe(8);
    expect(s.validation).toBe('the test set (a seeded random 20% of each class)');
    const c = pageSets(served(all), { keep: 120, fraction: 0.25, split: 'auto', seed: 1 });
    const { normalize: _, ...plain } = c.train;
    expect(c.train.normalize).toEqual(channelStats(plain));
    expect(c.train.normalize).not.toEqual(channelStats(all));
    expect(c.val!.normalize).toEqual(c.train.normalize);
    expect(c.test.normalize).toEqual(c.train.normalize);
  });
});

describe('fit options and weights', () => {
  const gpu = useGpu();
  const SOURCE =
    'conv 2 3x3 relu\npool 2\ndense 10 softmax\n' +
    'train epochs=3 batch=16 optimizer=sgd momentum=0.9 lr=0.05 seed=7\naugment shift=2 flip\n';

  it('fitOptions follows the train and augment lines; overrides win', () => {
    const ir = parseNet(SOURCE);
    const o = fitOptions(ir, { epochs: 1 });
    expect(o).toMatchObject({
      epochs: 1,
      batch: 16,
      lr: 0.05,
      seed: 7,
      optimizer: { name: 'sgd', momentum: 0.9, nesterov: false },
      augment: { shift: 2, flip: true },
    });
    expect(fitOptions(parseNet('dense 10 softmax')).augment).toBeUndefined();
  });

  it('weights round-trip through safetensors with the source in the metadata', async () => {
    const ir = parseNet(SOURCE);
    const a = new Trainer(gpu(), ir, 1);
    const b = new Trainer(gpu(), ir, 2);
    try {
      const bytes = await saveWeights(a);
      const { metadata } = await readWeights(bytes);
      expect(sourceOf(metadata)).toBe(SOURCE);
      await loadWeights(b, new Blob([bytes as BlobPart]));
      const wa = await a.params.read(),
        wb = await b.params.read();
      for (const [name, t] of wa) expect(Array.from(wb.get(name)!.data)).toEqual(Array.from(t.data));
      const other = new Trainer(gpu(), parseNet('conv 3 3x3 relu\npool 2\ndense 10 softmax'), 0);
      await expect(loadWeights(other, bytes, 'w.safetensors')).rejects.toThrow(
        'w.safetensors: tensor "conv1.weight" has shape [2, 1, 3, 3] but the model needs [3, 1, 3, 3]',
      );
      other.release();
    } finally {
      a.release();
      b.release();
    }
  });
});
