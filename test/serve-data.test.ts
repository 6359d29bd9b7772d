// `fmgpu serve` offers the page whatever `fmgpu train` reads (issue 19): the dataset is read at start
// by the CLI's loaders and served from memory under /dataset/ (manifest.json and each set's bytes).
// On small generated sets in every format, the manifest and the bytes are what the CLI loaders give;
// bad flags and malformed data are refused at start, exit 2, in one line.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from '../src/cli/serve.ts';
import { startServer } from '../src/node/server.ts';
import { loadCsv, loadFashionMnist } from '../src/node/data.ts';
import { LabelNames } from '../src/data/csv.ts';
import { readManifest, servedSet, type Manifest } from '../src/data/served.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { makeSite, send, sendBytes } from './helpers/site.ts';
import { cifar100Dir, classTree, idxDir, namedCsv } from './helpers/datasets.ts';

const site = makeSite('fmgpu-serve-data-');
const tmp = site.dir;
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Served {
  out: string[];
  err: string[];
  manifest: Manifest;
  train: Dataset;
  test: Dataset;
}

/** Runs `fmgpu serve ARGS --port 0`, reads /dataset/ as the page does, stops the server. */
async function served(...args: string[]): Promise<Served> {
  const out: string[] = [];
  const err: string[] = [];
  const stop = new AbortController();
  const done = serve([...args, '--port', '0'], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    root: site.root,
    stop: stop.signal,
  });
  for (let i = 0; i < 500 && !out.some((l) => l.includes('http://')); i++) await new Promise((r) => setTimeout(r, 20));
  const port = Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(out.join('\n'))?.[1]);
  try {
    expect(port, [...out, ...err].join('\n')).toBeGreaterThan(0);
    const m = await send(port, '/dataset/manifest.json');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(String(m.headers['content-security-policy'])).toContain("default-src 'self'");
    const manifest = readManifest(m.body, 'manifest.json');
    const get = async (f: string): Promise<Uint8Array> => {
      const r = await sendBytes(port, `/dataset/${f}`);
      expect(r.status).toBe(200);
      expect(Number(r.headers['content-length'])).toBe(r.body.length);
      return new Uint8Array(r.body);
    };
    const set = async (s: 'train' | 'test'): Promise<Dataset> => {
      const { images, labels } = manifest[s];
      return servedSet(manifest, s, await get(images), await get(labels), { images, labels, manifest: 'm' });
    };
    return { out, err, manifest, train: await set('train'), test: await set('test') };
  } finally {
    stop.abort();
    expect(await done).toBe(0);
  }
}

/** What the page gets is what the loader gave: same shape, same bytes, same labels. */
function expectSame(got: Dataset, want: Dataset): void {
  expect([got.n, got.rows, got.cols, got.channels ?? 1]).toEqual([want.n, want.rows, want.cols, want.channels ?? 1]);
  expect(Buffer.from(got.images).equals(Buffer.from(want.images))).toBe(true);
  expect(Array.from(got.labels)).toEqual(Array.from(want.labels));
}

describe('fmgpu serve reads the data as fmgpu train does and serves it under /dataset/', () => {
  it('idx files of 16x16 with 3 classes named by classes.txt', async () => {
    const dir = idxDir(join(tmp, 'bands'), { side: 16, names: ['low', 'mid', 'high'], train: 60, test: 24 });
    const s = await served('--data', dir);
    expect(s.manifest).toMatchObject({ name: 'bands', source: dir, format: 'idx', rows: 16, cols: 16, channels: 1 });
    expect(s.manifest.classes).toEqual(['low', 'mid', 'high']);
    expect([s.manifest.train.n, s.manifest.test.n, s.manifest.heldOut]).toEqual([60, 24, null]);
    const want = loadFashionMnist(dir);
    expectSame(s.train, want.train);
    expectSame(s.test, want.test);
    expect(s.out[0]).toBe(
      `fmgpu: the page trains on bands (idx, ${dir}): 60 training and 24 test images of 16x16x1, 3 classes`,
    );
    expect(s.err).toEqual([]);
  });

  it('CIFAR-100: train.bin, test.bin and fine_label_names.txt', async () => {
    const names = ['apple', 'bee', 'car', 'dolphin'];
    const dir = cifar100Dir(join(tmp, 'c100'), names, 40, 12);
    const s = await served('--data', dir);
    expect(s.manifest).toMatchObject({ name: 'CIFAR-100', format: 'cifar100', rows: 32, cols: 32, channels: 3 });
    expect(s.manifest.classes).toEqual(names);
    const want = loadFashionMnist(dir);
    expectSame(s.train, want.train);
    expectSame(s.test, want.test);
  });

  it('class folders of PNG and JPEG of mixed sizes: resized to --input, or 32x32x3 by default', async () => {
    const dir = join(tmp, 'photos');
    classTree(join(dir, 'train'), 6);
    classTree(join(dir, 'test'), 2);
    const s = await served('--data', dir);
    expect(s.manifest).toMatchObject({ format: 'folders', rows: 32, cols: 32, channels: 3, heldOut: null });
    expect(s.manifest.classes).toEqual(['blue', 'green', 'red']);
    const want = loadFashionMnist(dir, { images: { input: { h: 32, w: 32, c: 3 }, validation: 0.2, seed: 0 } });
    expectSame(s.train, want.train);
    expectSame(s.test, want.test);
    expect(s.out[0]).toContain('18 training and 6 test images of 32x32x3, 3 classes (images resized to 32x32x3');
    const grey = await served('--data', dir, '--input', '12x10x1');
    expect([grey.manifest.rows, grey.manifest.cols, grey.manifest.channels]).toEqual([12, 10, 1]);
    const greyWant = loadFashionMnist(dir, { images: { input: { h: 12, w: 10, c: 1 }, validation: 0, seed: 0 } });
    expectSame(grey.train, greyWant.train);
  });

  it('one tree of class folders: its test set held out as train does with validation=0.2, said so', async () => {
    const dir = classTree(join(tmp, 'tree'), 5);
    const s = await served('--data', dir, '--input', '8x8x3');
    const want = loadFashionMnist(dir, { images: { input: { h: 8, w: 8, c: 3 }, validation: 0.2, seed: 0 } });
    expect([s.manifest.train.n, s.manifest.test.n]).toEqual([12, 3]);
    expectSame(s.train, want.train);
    expectSame(s.test, want.test);
    expect(s.manifest.heldOut).toBe(want.heldOut);
    expect(s.out[1]).toBe(
      `fmgpu: one tree of class folders (no train/ and test/): the test set is ${want.heldOut}, ` +
        'as fmgpu train holds it out with validation=0.2 seed=0',
    );
  });

  it('CSV with named labels, of the --input shape', async () => {
    const names = ['cat', 'dog', 'eel'];
    const shape = { h: 4, w: 5, c: 3 };
    const train = join(tmp, 'pets-train.csv');
    const test = join(tmp, 'pets-test.csv');
    writeFileSync(train, namedCsv(30, 1, shape, names));
    writeFileSync(test, namedCsv(9, 2, shape, names));
    const s = await served('--csv', train, '--test-csv', test, '--input', '4x5x3');
    expect(s.manifest).toMatchObject({ name: 'pets-train.csv', format: 'csv', rows: 4, cols: 5, channels: 3 });
    expect(s.manifest.source).toBe(`${train}, ${test}`);
    const labels = new LabelNames();
    const form = { rows: 4, cols: 5, channels: 3, names: labels };
    const wantTrain = loadCsv(train, { form });
    labels.fixed = true;
    expectSame(s.train, wantTrain);
    expectSame(s.test, loadCsv(test, { form }));
    expect(s.manifest.classes).toEqual(labels.list);
    expect([...s.manifest.classes].sort()).toEqual(names);
  });

  it('serves nothing else under /dataset/, and no /dataset/ without data', async () => {
    const dir = idxDir(join(tmp, 'small'), { side: 8, names: ['a', 'b'], train: 4, test: 2 });
    const out: string[] = [];
    const stop = new AbortController();
    const done = serve(['--data', dir, '--port', '0'], {
      out: (l) => out.push(l),
      err: () => {},
      root: site.root,
      stop: stop.signal,
    });
    for (let i = 0; i < 200 && !out.some((l) => l.includes('http://')); i++)
      await new Promise((r) => setTimeout(r, 20));
    const port = Number(/:(\d+)\//.exec(out.join('\n'))?.[1]);
    for (const path of [
      '/dataset/',
      '/dataset/../dataset/manifest.json',
      '/dataset/classes.txt',
      '/dataset/train-images-idx3-ubyte.gz',
      '/dataset/manifest.json/x',
      '/dataset/__proto__',
      '/dataset/%2e%2e%2fmanifest.json',
    ])
      expect((await send(port, path)).status, path).toBe(404);
    const head = await send(port, '/dataset/train-images.bin', 'HEAD');
    expect([head.status, head.body, head.headers['content-length']]).toEqual([200, '', String(4 * 64)]);
    // Of the folder the data was read from, /data/ serves its dataset files only (--data may be a
    // folder of one's own).
    writeFileSync(join(dir, 'notes.txt'), 'private\n');
    expect((await send(port, '/data/notes.txt')).status).toBe(404);
    expect((await send(port, '/data/classes.txt')).status).toBe(200);
    stop.abort();
    expect(await done).toBe(0);
    // A server given no dataset has no /dataset/, and the same /data/.
    const bare = await startServer({ root: site.root, dataDir: dir, port: 0 });
    try {
      expect((await send(bare.port, '/dataset/manifest.json')).status).toBe(404);
      expect((await send(bare.port, '/data/classes.txt')).status).toBe(200);
      expect((await send(bare.port, '/data/notes.txt')).status).toBe(404);
    } finally {
      await bare.close();
    }
  });
});

describe('bad data and flags are refused at start: exit 2, one line', () => {
  const refused = async (args: string[]): Promise<string[]> => {
    const err: string[] = [];
    const code = await serve(['--port', '0', ...args], { out: () => {}, err: (l) => err.push(l), root: site.root });
    expect(code).toBe(2);
    expect(err).toHaveLength(1);
    return err;
  };

  it.each([
    [['--input', '32x32x'], '--input takes HxWxC (sides 1 to 128, channels 1 to 4), such as 32x32x3, not "32x32x"'],
    [['--input', '0x4'], '--input takes HxWxC (sides 1 to 128, channels 1 to 4), such as 32x32x3, not "0x4"'],
    [['--input'], '--input needs a value'],
    // An empty value names nothing: refused as train refuses it (it read the default folder and called it CSV).
    [['--csv=', '--test-csv='], '--csv needs a value'],
    [['--data', ''], '--data needs a value'],
    [['--csv', 'a.csv'], '--csv and --test-csv go together'],
    [
      ['--data', '/tmp', '--csv', 'a.csv', '--test-csv', 'b.csv'],
      '--data and --csv are two sources of training data: give one',
    ],
  ])('%j', async (args, message) => {
    expect(await refused(args)).toEqual([`fmgpu: error: ${message}`]);
  });

  it('a folder that is not there, or holds no dataset', async () => {
    const missing = join(tmp, 'nowhere');
    expect((await refused(['--data', missing]))[0]).toMatch(
      new RegExp(`^fmgpu: error: data directory ${missing} not found: install Fashion-MNIST`),
    );
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.md'), 'hello');
    expect((await refused(['--data', empty]))[0]).toMatch(
      new RegExp(`^fmgpu: error: ${empty}: no dataset found: looked for idx files .* the folder holds readme.md$`),
    );
  });

  it('malformed data in every format, named with what is wrong', async () => {
    const idx = idxDir(join(tmp, 'bad-idx'), { side: 16, names: ['a', 'b', 'c'], train: 12, test: 6 });
    writeFileSync(join(idx, 'classes.txt'), 'a\nb\n');
    expect((await refused(['--data', idx]))[0]).toMatch(
      new RegExp(
        `^fmgpu: error: ${idx}/train-labels-idx1-ubyte: label 2 at index \\d+ is outside 0–1 \\(.*names 2\\)$`,
      ),
    );
    const c100 = cifar100Dir(join(tmp, 'bad-c100'), ['x', 'y'], 4, 2);
    writeFileSync(join(c100, 'test.bin'), new Uint8Array(3074 + 100));
    expect((await refused(['--data', c100]))[0]).toContain(`${c100}/test.bin`);
    const photos = classTree(join(tmp, 'bad-photos'), 3);
    writeFileSync(join(photos, 'red', '9.png'), 'not a png at all');
    expect((await refused(['--data', photos]))[0]).toContain(join(photos, 'red', '9.png'));
    const csv = join(tmp, 'wide.csv');
    writeFileSync(csv, namedCsv(3, 1, { h: 2, w: 2, c: 3 }, ['p', 'q']));
    expect(await refused(['--csv', csv, '--test-csv', csv])).toEqual([
      `fmgpu: error: ${csv}:1: 13 columns, expected 785 (a label and 784 pixels of --input 28x28x1 (the default))`,
    ]);
  });

  it('--input for idx or CIFAR data of another size: the data has its own', async () => {
    const dir = idxDir(join(tmp, 'sized'), { side: 16, names: ['a', 'b'], train: 4, test: 2 });
    expect(await refused(['--data', dir, '--input', '32x32x3'])).toEqual([
      `fmgpu: error: --input 32x32x3: ${dir} holds idx images of 16x16x1 ` +
        '(--input sizes a folder of images or a CSV file)',
    ]);
  });
});
