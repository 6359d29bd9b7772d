// Fashion-MNIST decoding and validation: idx files (plain and gzipped, from a temp dir), Kaggle CSV,
// every error's exact message, Keras's validation split, subsets, and the real files when installed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CLASS_NAMES, checkLabels, NUM_CLASSES } from '../src/data/classes.ts';
import { datasetFromIdx, encodeIdx } from '../src/data/idx.ts';
import { parseCsv } from '../src/data/csv.ts';
import { gather, labelHistogram, subset, validationSplit, type Dataset } from '../src/data/dataset.ts';
import { DEFAULT_DATA_DIR, INSTALL_HINT, loadCsv, loadFashionMnist, loadIdxFolder } from '../src/node/data.ts';
import { DataError } from '../src/errors.ts';
import { gzipWithZeros, idx } from './helpers/files.ts';
import { Rng } from '../src/util/rng.ts';

function generated(n: number, seed: number, rows = 28, cols = 28): Dataset {
  const rng = new Rng(seed);
  return {
    images: new Uint8Array(n * rows * cols).map(() => rng.int(256)),
    labels: new Uint8Array(n).map(() => rng.int(10)),
    n,
    rows,
    cols,
  };
}
const plain = (ds: Dataset) => ({
  n: ds.n,
  rows: ds.rows,
  cols: ds.cols,
  images: Array.from(ds.images),
  labels: Array.from(ds.labels),
});

/** f throws a DataError whose whole message is `message`. */
function expectDataError(f: () => unknown, message: string): void {
  let err: unknown = null;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DataError);
  expect((err as Error).message).toBe(message);
}

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'fmgpu-data-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TRAIN = generated(7, 1),
  TEST = generated(3, 2);
/** A data folder: each file gzipped or plain, `edit` may replace a file's bytes or drop it (null). */
function dataDir(name: string, gz: boolean, edit: Record<string, Uint8Array | null> = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const files: Record<string, Uint8Array> = {};
  for (const [prefix, ds] of [
    ['train', TRAIN],
    ['t10k', TEST],
  ] as const) {
    const e = encodeIdx(ds);
    files[`${prefix}-images-idx3-ubyte`] = e.images;
    files[`${prefix}-labels-idx1-ubyte`] = e.labels;
  }
  for (const [base, bytes] of Object.entries(files)) {
    const b = base in edit ? edit[base] : bytes;
    if (b) writeFileSync(join(dir, gz ? `${base}.gz` : base), gz ? gzipSync(b) : b);
  }
  return dir;
}

describe('classes', () => {
  it('ten names in label order, written once', () => {
    expect(CLASS_NAMES).toEqual([
      'T-shirt/top',
      'Trouser',
      'Pullover',
      'Dress',
      'Coat',
      'Sandal',
      'Shirt',
      'Sneaker',
      'Bag',
      'Ankle boot',
    ]);
    expect(NUM_CLASSES).toBe(10);
  });
});

describe('idx files round trip', () => {
  it('in memory: encodeIdx → datasetFromIdx', () => {
    const ds = generated(5, 3, 4, 6);
    const e = encodeIdx(ds);
    expect(e.images.length).toBe(16 + 5 * 24);
    expect(plain(datasetFromIdx(e.images, e.labels, 'i', 'l'))).toEqual(plain(ds));
  });
  it.each([
    ['gzipped (.gz)', true],
    ['plain', false],
  ] as const)('from disk, %s', (_name, gz) => {
    const { train, test } = loadFashionMnist(dataDir(`rt-${gz}`, gz));
    expect(plain(train)).toEqual(plain(TRAIN));
    expect(plain(test)).toEqual(plain(TEST));
  });
  it('gzip is told by its magic bytes, not the name: a plain file named .gz reads too', () => {
    const dir = dataDir('mixed', false);
    const e = encodeIdx(TEST);
    rmSync(join(dir, 't10k-labels-idx1-ubyte'));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), e.labels);
    expect(plain(loadFashionMnist(dir).test)).toEqual(plain(TEST));
  });
  it('subset keeps the first N training images; the test set stays whole', () => {
    const { train, test } = loadFashionMnist(dataDir('rt-true', true), { subset: 4 });
    expect(plain(train)).toEqual(plain(subset(TRAIN, 4)));
    expect(test.n).toBe(3);
  });
});

describe('idx errors: DataError, one line naming the file', () => {
  const im = encodeIdx(TRAIN).images,
    lb = encodeIdx(TRAIN).labels;
  const cases: [string, () => unknown, string][] = [
    [
      'image file with the label magic',
      () => datasetFromIdx(idx(2049, [7, 28, 28]), lb, 'img', 'lbl'),
      'img: not an idx3 image file: magic number 2049, expected 2051 (this is an idx1 label file)',
    ],
    [
      'label file with the image magic',
      () => datasetFromIdx(im, idx(2051, [7]), 'img', 'lbl'),
      'lbl: not an idx1 label file: magic number 2051, expected 2049 (this is an idx3 image file)',
    ],
    [
      'other magic',
      () => datasetFromIdx(idx(1234, [7, 28, 28]), lb, 'img', 'lbl'),
      'img: not an idx3 image file: magic number 1234, expected 2051',
    ],
    [
      'still gzipped',
      () => datasetFromIdx(gzipSync(im), lb, 'img', 'lbl'),
      'img: not an idx3 image file: magic number 529205248, expected 2051 (the bytes are gzipped: gunzip them first)',
    ],
    [
      'truncated header',
      () => datasetFromIdx(im.subarray(0, 10), lb, 'img', 'lbl'),
      'img: truncated: 10 bytes, shorter than the 16-byte idx3 header',
    ],
    [
      'truncated images',
      () => datasetFromIdx(im.subarray(0, 1000), lb, 'img', 'lbl'),
      'img: truncated: 7 images of 28x28 need 5504 bytes but the file has 1000',
    ],
    [
      'trailing image bytes',
      () => datasetFromIdx(Uint8Array.from([...im, 0, 0]), lb, 'img', 'lbl'),
      'img: 2 bytes after the 7 images of 28x28 the header announces (expected 5504 bytes, got 5506)',
    ],
    [
      'truncated labels',
      () => datasetFromIdx(im, lb.subarray(0, 12), 'img', 'lbl'),
      'lbl: truncated: 7 labels need 15 bytes but the file has 12',
    ],
    [
      'label header short',
      () => datasetFromIdx(im, lb.subarray(0, 5), 'img', 'lbl'),
      'lbl: truncated: 5 bytes, shorter than the 8-byte idx1 header',
    ],
    [
      'label count ≠ image count',
      () => datasetFromIdx(im, idx(2049, [6], [1, 2, 3, 4, 5, 6]), 'img', 'lbl'),
      'lbl: 6 labels but img has 7 images',
    ],
    [
      'label outside 0–9',
      () => datasetFromIdx(im, idx(2049, [7], [1, 2, 3, 4, 10, 6, 7]), 'img', 'lbl'),
      'lbl: label 10 at index 4 is outside 0–9',
    ],
    [
      '0 columns',
      () => datasetFromIdx(idx(2051, [1, 28, 0]), idx(2049, [1], [0]), 'img', 'lbl'),
      'img: images of 28x0 pixels',
    ],
  ];
  it.each(cases)('%s', (_name, f, message) => {
    expectDataError(f, message);
  });
});

describe('loading errors: DataError naming the path (and how to install)', () => {
  const truncatedGz = (() => {
    const z = gzipSync(encodeIdx(TRAIN).images);
    return z.subarray(0, z.length - 100);
  })();
  const cases: [string, () => string, (dir: string) => string][] = [
    ['missing directory', () => join(tmp, 'nope'), (d) => `data directory ${d} not found: ${INSTALL_HINT}`],
    [
      'missing file',
      () => dataDir('missing', true, { 't10k-labels-idx1-ubyte': null }),
      (d) => `${d}/t10k-labels-idx1-ubyte.gz not found (nor t10k-labels-idx1-ubyte): ${INSTALL_HINT}`,
    ],
    [
      'truncated gzip',
      () => dataDir('trunc', false, { 'train-images-idx3-ubyte': truncatedGz }),
      (d) =>
        `${d}/train-images-idx3-ubyte: not a valid gzip file (unexpected end of file); the download may be truncated`,
    ],
    [
      'wrong magic inside gzip',
      () => dataDir('magic', true, { 'train-labels-idx1-ubyte': idx(2051, [7], new Uint8Array(7)) }),
      (d) =>
        `${d}/train-labels-idx1-ubyte.gz: not an idx1 label file: ` +
        'magic number 2051, expected 2049 (this is an idx3 image file)',
    ],
    [
      'test images of another size than the training images',
      () => dataDir('small', false, { 't10k-images-idx3-ubyte': encodeIdx(generated(3, 2, 4, 4)).images }),
      (d) => `${d}/t10k-images-idx3-ubyte: images of 4x4 but the training images are 28x28`,
    ],
    [
      'test images of another size, gzipped: the file that is there named',
      () => dataDir('small-gz', true, { 't10k-images-idx3-ubyte': encodeIdx(generated(3, 2, 4, 4)).images }),
      (d) => `${d}/t10k-images-idx3-ubyte.gz: images of 4x4 but the training images are 28x28`,
    ],
    [
      'a file, not a folder',
      () => {
        writeFileSync(join(tmp, 'model.net'), 'dense 10\n');
        return join(tmp, 'model.net');
      },
      (d) => `${d} is a file, not a data folder (of idx files, CIFAR batches or class folders)`,
    ],
  ];
  it.each(cases)('%s', (_name, make, message) => {
    const dir = make();
    expectDataError(() => loadFashionMnist(dir), message(dir));
  });
  it('a validation set of its own is read from idx files: another format is named', () => {
    const cifar = join(tmp, 'cifar-val');
    mkdirSync(cifar, { recursive: true });
    writeFileSync(join(cifar, 'test_batch.bin'), new Uint8Array(3073));
    expectDataError(
      () => loadIdxFolder(cifar),
      `${cifar}: a validation set of its own is read from idx files, but this folder holds CIFAR-10 batches`,
    );
  });
  it('the install hint names the package', () =>
    expect(INSTALL_HINT).toContain('apt-get install dataset-fashion-mnist'));
});

describe('bounded reading: at most what the header announces, only what a subset needs', () => {
  const trainImages = (dir: string, gz = true): string => join(dir, `train-images-idx3-ubyte${gz ? '.gz' : ''}`);
  const DATA_AFTER =
    'data after the 7 images of 28x28 the header announces (expected 5504 bytes once gunzipped, got more)';
  it('a gzip that inflates past what its header announces is refused without inflating it all', () => {
    const dir = dataDir('bomb', true, { 'train-images-idx3-ubyte': null });
    writeFileSync(trainImages(dir), gzipWithZeros(encodeIdx(TRAIN).images, 100 << 20));
    expectDataError(() => loadFashionMnist(dir), `${trainImages(dir)}: ${DATA_AFTER}`);
  });
  it.each([true, false])('subset: only the subset is read (gzipped %s), so data after it is not seen', (gz) => {
    const dir = dataDir(`subset-tail-${gz}`, gz, { 'train-images-idx3-ubyte': null });
    const e = encodeIdx(TRAIN).images;
    if (gz) writeFileSync(trainImages(dir), gzipWithZeros(e, 100 << 20));
    else writeFileSync(trainImages(dir, false), e), truncateSync(trainImages(dir, false), e.length + 100);
    const { train, test } = loadFashionMnist(dir, { subset: 3 });
    expect(plain(train)).toEqual(plain(subset(TRAIN, 3)));
    expect(test.n).toBe(3);
    expectDataError(
      () => loadFashionMnist(dir),
      gz
        ? `${trainImages(dir)}: ${DATA_AFTER}`
        : `${trainImages(dir, false)}: 100 bytes after the 7 images of 28x28 the header announces ` +
            '(expected 5504 bytes, got 5604)',
    );
  });
  it('subset: a gzip cut short before the subset still says so', () => {
    const z = gzipSync(encodeIdx(TRAIN).images);
    const dir = dataDir('subset-trunc', true, { 'train-images-idx3-ubyte': null });
    writeFileSync(trainImages(dir), z.subarray(0, 2000)); // about 2.5 of the 6 images
    expectDataError(
      () => loadFashionMnist(dir, { subset: 6 }),
      `${trainImages(dir)}: not a valid gzip file (unexpected end of file); the download may be truncated`,
    );
  });
  it('subset: labels past the subset are not read; within it they are checked', () => {
    const bad = encodeIdx(TRAIN).labels.slice();
    bad[8 + 5] = 12;
    const dir = dataDir('subset-labels', true, { 'train-labels-idx1-ubyte': bad });
    writeFileSync(join(dir, 'classes.txt'), `${CLASS_NAMES.join('\n')}\n`);
    expect(loadFashionMnist(dir, { subset: 5 }).train.n).toBe(5);
    expectDataError(
      () => loadFashionMnist(dir, { subset: 6 }),
      `${join(dir, 'train-labels-idx1-ubyte.gz')}: label 12 at index 5 is outside 0–9 ` +
        `(${join(dir, 'classes.txt')} names 10)`,
    );
  });
  it.each([
    ['gzipped', true],
    ['plain', false],
  ] as const)('a header announcing more than 2 GiB (%s)', (_name, gz) => {
    const dir = dataDir(`absurd-${gz}`, gz, { 'train-images-idx3-ubyte': idx(2051, [3_000_000, 28, 28]) });
    expectDataError(
      () => loadFashionMnist(dir),
      `${trainImages(dir, gz)}: the header announces 3000000 images of 28x28 (2,352,000,016 bytes), ` +
        'more than the 2 GiB fmgpu reads',
    );
  });
  it('a header announcing more than its gzip can hold', () => {
    const dir = dataDir('liar', true, { 'train-images-idx3-ubyte': idx(2051, [100_000, 28, 28]) });
    const size = gzipSync(idx(2051, [100_000, 28, 28])).length;
    expectDataError(
      () => loadFashionMnist(dir),
      `${trainImages(dir)}: the header announces 100000 images of 28x28 (78,400,016 bytes), ` +
        `more than ${size} bytes of gzip can hold: the file is corrupt`,
    );
  });
  it('no idx header within the first MiB of a gzip file (a gzip header with a 2 MB file name)', () => {
    const z = gzipSync(encodeIdx(TRAIN).images);
    const named = new Uint8Array(z.length + 2e6 + 1);
    named.set(z.subarray(0, 10));
    named[3] = 0x08; // FNAME: a zero-terminated name follows the header
    named.fill(0x61, 10, 10 + 2e6);
    named.set(z.subarray(10), 10 + 2e6 + 1);
    const dir = dataDir('long-name', true, { 'train-images-idx3-ubyte': null });
    writeFileSync(trainImages(dir), named);
    expectDataError(
      () => loadFashionMnist(dir),
      `${trainImages(dir)}: no idx header in the first 1 MiB of gzip data: corrupt, or not an idx file`,
    );
  });
  it('a data file that is a directory or a device is refused by name', () => {
    const dir = dataDir('dir-file', false, { 'train-images-idx3-ubyte': null });
    mkdirSync(trainImages(dir, false));
    expectDataError(() => loadFashionMnist(dir), `${trainImages(dir, false)} is a directory, not an idx image file`);
  });
});

describe("Kaggle's CSV form", () => {
  const row = (label: number | string, px: (i: number) => number | string, cols = 784) =>
    [label, ...Array.from({ length: cols }, (_, i) => px(i))].join(',');
  const header = ['label', ...Array.from({ length: 784 }, (_, i) => `pixel${i + 1}`)].join(',');
  it.each([
    [
      'with a header, CRLF, trailing blank line',
      `${header}\r\n${row(3, (i) => i % 256)}\r\n${row(9, () => 255)}\r\n\r\n`,
    ],
    ['without a header', `${row(3, (i) => i % 256)}\n${row(9, () => 255)}`],
    // The header is the first line that is not blank, not line 1.
    ['blank lines before a header', `\n\r\n${header}\n${row(3, (i) => i % 256)}\n${row(9, () => 255)}`],
    [
      "pandas' header: the columns numbered from 0",
      `${row('label', (i) => i)}\n${row(3, (i) => i % 256)}\n${row(9, () => 255)}`,
    ],
    ["pandas' header from 1", `${row('label', (i) => i + 1)}\n${row(3, (i) => i % 256)}\n${row(9, () => 255)}`],
    [
      'blank lines between, spaces around cells, 12.0',
      `\n${row(3, (i) => (i === 0 ? ' 0 ' : i % 256))}\n\n${row('9.0', () => '255.0')}\n`,
    ],
  ])('%s', (_name, text) => {
    const ds = parseCsv(text, 'f.csv');
    expect([ds.n, ds.rows, ds.cols, Array.from(ds.labels)]).toEqual([2, 28, 28, [3, 9]]);
    expect(Array.from(ds.images.subarray(0, 784))).toEqual(Array.from({ length: 784 }, (_, i) => i % 256));
    expect(ds.images.subarray(784).every((v) => v === 255)).toBe(true);
  });
  it('other image sizes', () => {
    const ds = parseCsv('1,0,1,2,3,4,5\n2,6,7,8,9,10,11', 'f.csv', { rows: 2, cols: 3 });
    expect([ds.n, Array.from(ds.labels), Array.from(ds.images)]).toEqual([
      2,
      [1, 2],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ]);
    // pandas' header over a 16x16 image (256 pixels: numbers that could be pixels, under a word label).
    const header = ['label', ...Array.from({ length: 256 }, (_, i) => i)].join(',');
    const small = parseCsv(`${header}\n${['4', ...Array(256).fill(7)].join(',')}`, 'f.csv', { rows: 16, cols: 16 });
    expect([small.n, Array.from(small.labels)]).toEqual([1, [4]]);
  });
  const good = row(1, () => 0);
  const bad: [string, string, string][] = [
    [
      'too few columns',
      `${good}\n${row(1, () => 0, 783)}`,
      'f.csv:2: 784 columns, expected 785 (a label and 784 pixels)',
    ],
    [
      'too many columns',
      `${header}\n${good}\n${good}\n${good},7`,
      'f.csv:4: 786 columns, expected 785 (a label and 784 pixels)',
    ],
    ['header of the wrong width', `label,pixel1\n${good}`, 'f.csv:1: 2 columns, expected 785 (a label and 784 pixels)'],
    [
      'non-numeric pixel',
      `${good}\n${row(2, (i) => (i === 9 ? 'abc' : 0))}`,
      'f.csv:2: column 11 (pixel10) is not a number: "abc"',
    ],
    ['empty cell', row(2, (i) => (i === 0 ? '' : 0)), 'f.csv:1: column 2 (pixel1) is not a number: ""'],
    ['non-numeric label', `${header}\n${good}\n${row('x', () => 0)}`, 'f.csv:3: column 1 (label) is not a number: "x"'],
    ['pixel above 255', row(2, (i) => (i === 783 ? 256 : 0)), 'f.csv:1: pixel784 is 256, outside 0–255'],
    ['negative pixel', `${good}\n\n${row(2, (i) => (i === 4 ? -1 : 0))}`, 'f.csv:3: pixel5 is -1, outside 0–255'],
    ['fractional pixel', row(2, (i) => (i === 1 ? 12.5 : 0)), 'f.csv:1: pixel2 is 12.5, not a whole number'],
    ['label 256', row(256, () => 0), 'f.csv:1: label 256 is outside 0–255'],
    ['label -1', `${good}\n${row(-1, () => 0)}`, 'f.csv:2: label -1 is outside 0–255'],
    ['fractional label', row(2.5, () => 0), 'f.csv:1: label is 2.5, not a whole number'],
    ['no rows', `${header}\n\n`, 'f.csv: no images (expected lines of a label and 784 pixels)'],
    // Rows are reserved as they are found, not 784 bytes per line up front (7.8 GB here).
    ['10 MB of blank lines', '\n'.repeat(10_000_000), 'f.csv: no images (expected lines of a label and 784 pixels)'],
  ];
  it.each(bad)('error: %s', (_name, text, message) => {
    expectDataError(() => parseCsv(text, 'f.csv'), message);
  });
  it("each image keeps its line, through a split and a pick, so a label's error names it", () => {
    const ds = parseCsv(`${header}\n${row(1, () => 0)}\n\n${row(2, () => 0)}\n${row(3, () => 0)}\n`, 'f.csv');
    expect([...(ds.lines ?? [])]).toEqual([2, 4, 5]);
    const { val } = validationSplit(ds, 0.5);
    expect([...(val.lines ?? [])]).toEqual([4, 5]);
    expect([...(gather(ds, [2, 0]).lines ?? [])]).toEqual([5, 2]);
    expect(() => checkLabels(gather(ds, [2, 0]).labels, 3, 'f.csv', { lines: gather(ds, [2, 0]).lines })).toThrow(
      'f.csv:5: label 3 is outside 0–2',
    );
  });
  it('loadCsv reads plain and gzipped files; a missing one is a DataError', () => {
    const text = `${header}\n${row(4, (i) => i % 7)}\n`;
    writeFileSync(join(tmp, 'a.csv'), text);
    writeFileSync(join(tmp, 'a.csv.gz'), gzipSync(text));
    expect(plain(loadCsv(join(tmp, 'a.csv')))).toEqual(plain(loadCsv(join(tmp, 'a.csv.gz'))));
    expect(loadCsv(join(tmp, 'a.csv')).labels[0]).toBe(4);
    expectDataError(() => loadCsv(join(tmp, 'none.csv')), `${join(tmp, 'none.csv')}: no such file`);
  });
  it('loadCsv streams a plain file in chunks: the same images as parsing the whole text', () => {
    // About 5 MB: lines cross the 1 MiB chunks; CRLF, blank lines and a header on the way.
    const rows = Array.from({ length: 2000 }, (_, r) => row(r % 10, (i) => (i * 7 + r) % 256));
    const text = `\uFEFF${header}\r\n${rows.slice(0, 1000).join('\r\n')}\n\n\n${rows.slice(1000).join('\n')}`;
    writeFileSync(join(tmp, 'big.csv'), text);
    const ds = loadCsv(join(tmp, 'big.csv'));
    expect(ds.n).toBe(2000);
    expect(plain(ds)).toEqual(plain(parseCsv(text, 'big.csv')));
    const text2 = rows.join('\n');
    writeFileSync(join(tmp, 'big.csv.gz'), gzipSync(text2));
    expect(plain(loadCsv(join(tmp, 'big.csv.gz')))).toEqual(plain(parseCsv(text2, 'big.csv.gz')));
  });
  it('loadCsv with a subset reads only the first N images: lines after them are not read', () => {
    const text = `${header}\n${row(1, () => 5)}\n${row(2, () => 6)}\n${row(3, () => 7)}\nnot a row\n`;
    writeFileSync(join(tmp, 's.csv'), text);
    const ds = loadCsv(join(tmp, 's.csv'), { subset: 2 });
    expect([ds.n, Array.from(ds.labels)]).toEqual([2, [1, 2]]);
    expectDataError(
      () => loadCsv(join(tmp, 's.csv')),
      `${join(tmp, 's.csv')}:5: 1 columns, expected 785 (a label and 784 pixels)`,
    );
  });
  it('loadCsv refuses a line longer than 1 MiB without holding more of it', () => {
    writeFileSync(join(tmp, 'long.csv'), `${row(1, () => 0)}\n${' '.repeat(3 * 2 ** 20)}`);
    expectDataError(
      () => loadCsv(join(tmp, 'long.csv')),
      `${join(tmp, 'long.csv')}:2: a line longer than 1048576 bytes (expected a label and 784 pixels)`,
    );
  });
  it('loadCsv refuses a directory and a device by name', () => {
    expectDataError(() => loadCsv(tmp), `${tmp} is a directory, not a CSV file`);
    expectDataError(() => loadCsv('/dev/zero'), '/dev/zero is not a regular file (a character device)');
  });
  it('a gzipped CSV that inflates past 256 MiB is refused after inflating that much', () => {
    writeFileSync(join(tmp, 'bomb.csv.gz'), gzipWithZeros(new Uint8Array(0), 300 << 20));
    expectDataError(
      () => loadCsv(join(tmp, 'bomb.csv.gz')),
      `${join(tmp, 'bomb.csv.gz')}: more than 256 MiB of CSV once gunzipped, more than fmgpu inflates ` +
        '(gunzip it: a plain CSV file is read as it is parsed, up to 1 GiB)',
    );
  });
});

describe('splits', () => {
  const ds = generated(10, 4, 2, 3);
  it.each([
    [10, 0.3, 7],
    [10, 0.1, 9],
    [7, 0.5, 3], // floor(7·0.5) = 3 train: Keras floors the TRAIN count, so val gets 4
    [60000, 0.1, 54000],
    [10, 0, 10],
  ])('n=%i, validation %f → %i train (Keras: floor(n·(1 − f)))', (n, f, nTrain) => {
    const d = n === 10 ? ds : generated(n, 5, 1, 1);
    const { train, val } = validationSplit(d, f);
    expect([train.n, val.n]).toEqual([nTrain, n - nTrain]);
    // The LAST samples, in file order, before any shuffling; views of the same bytes.
    expect(Array.from(val.labels)).toEqual(Array.from(d.labels.subarray(nTrain)));
    expect(Array.from(val.images)).toEqual(Array.from(d.images.subarray(nTrain * d.rows * d.cols)));
    expect(Array.from(train.images)).toEqual(Array.from(d.images.subarray(0, nTrain * d.rows * d.cols)));
    expect(val.images.buffer).toBe(d.images.buffer);
  });
  it('a fraction outside [0, 1) is a RangeError', () => {
    expect(() => validationSplit(ds, 1)).toThrow('validation fraction must be in [0, 1), got 1');
    expect(() => validationSplit(ds, -0.1)).toThrow(RangeError);
  });
  it('subset keeps the first n (all when n ≥ size)', () => {
    expect(plain(subset(ds, 4))).toEqual({
      ...plain(ds),
      n: 4,
      images: Array.from(ds.images.subarray(0, 24)),
      labels: Array.from(ds.labels.subarray(0, 4)),
    });
    expect(subset(ds, 99).n).toBe(10);
    expect(subset(ds, 0).n).toBe(0);
    expect(() => subset(ds, -1)).toThrow('subset size must be a whole number ≥ 0, got -1');
  });
});

const HAVE_DATA = existsSync(DEFAULT_DATA_DIR);
const REAL = HAVE_DATA
  ? `${DEFAULT_DATA_DIR}: 60000 train and 10000 test images, 6000 of each class in train`
  : `skipped: ${DEFAULT_DATA_DIR} is absent (apt-get install dataset-fashion-mnist), ` +
    'so the real counts and class histogram are not checked';
describe('the real Fashion-MNIST', () => {
  it.skipIf(!HAVE_DATA)(REAL, () => {
    const { train, test } = loadFashionMnist();
    expect([train.n, train.rows, train.cols, test.n]).toEqual([60000, 28, 28, 10000]);
    expect(labelHistogram(train)).toEqual(new Array(10).fill(6000));
    expect(labelHistogram(test)).toEqual(new Array(10).fill(1000));
  });
});
