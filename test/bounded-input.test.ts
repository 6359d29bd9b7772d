// Hostile input files: no file, however crafted, takes `fmgpu predict` or `fmgpu summary` past
// 700 MB of resident memory, or `fmgpu train` past 700 MB beyond what its data announces (tiny
// here). Decompression bombs (a PNG whose IDAT inflates to a gigabyte, idx and CSV .gz files that
// do), /dev/zero, a FIFO, folders and headers announcing absurd sizes are each refused with one
// line naming the file, exit 2, before the GPU is opened (every command names an adapter that does
// not exist: had the GPU been opened first, the error would be about the adapter).
//
// Peak memory is the child's own: a preload script writes process.resourceUsage().maxRSS (getrusage's
// ru_maxrss, in KiB) when it exits. Each child also runs under `ulimit -v` (4 GiB of address space),
// so that a regression fails fast instead of taking the machine's memory.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureBuilt, gzipWithZeros, idx, writeIdxDir, zlibOfZeros } from './helpers/files.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { encodeSafetensors } from '../src/model/safetensors.ts';
import { pngFile } from '../src/report/png.ts';
import { gunzipAtMost, gunzipPrefix, inflateAtMost, readInput } from '../src/node/files.ts';
import { DataError, UsageError } from '../src/errors.ts';

const BIN = resolve('bin/fmgpu.js');
const MB = 1e6;
const GiB = 2 ** 30;
const LIMIT = 700 * MB;
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const NO_GPU = ['--adapter', 'no-such-gpu'];
// Dawn prints these limit notes on lavapipe itself, outside fmgpu's control.
const dawnNoise = (s: string): string =>
  s
    .split('\n')
    .filter((l) => !l.includes('artificially reduced'))
    .join('\n');

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-bounded-'));
const PRELOAD = join(tmp, 'peak-rss.cjs');
const TINY_SRC = 'conv 2 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=1 batch=32 lr=0.01\n';
const TINY = join(tmp, 'tiny.net');
const RUN = join(tmp, 'run');
const DATA = join(tmp, 'data');

interface Result {
  code: number | null;
  err: string;
  out: string;
  /** Peak resident memory of the child, bytes. */
  peak: number;
}

/** Runs fmgpu under the address-space limit and reads its peak resident memory. */
function fmgpu(args: string[]): Result {
  const rss = join(tmp, `rss-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync(
    'sh',
    ['-c', 'ulimit -v 4194304 && exec "$@"', 'sh', process.execPath, '--require', PRELOAD, BIN, ...args],
    {
      encoding: 'utf8',
      env: { ...env, FMGPU_PEAK_RSS_FILE: rss },
      timeout: 60_000,
    },
  );
  const peak = existsSync(rss) ? Number(readFileSync(rss, 'utf8')) * 1024 : NaN;
  return { code: r.status, err: dawnNoise(r.stderr ?? ''), out: r.stdout ?? '', peak };
}

/** A refusal: exit 2, one line on stderr that names `file` and says `message`, within the memory limit. */
function expectRefusal(r: Result, file: string, message: string): void {
  const lines = r.err.trim().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toContain(`fmgpu: error: ${file}`);
  expect(lines[0]).toContain(message);
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.peak, `peak RSS ${(r.peak / MB).toFixed(0)} MB`).toBeLessThan(LIMIT);
}

/** A copy of the data folder with some files replaced. */
function dataWith(name: string, files: Record<string, Uint8Array | string>): string {
  const dir = writeIdxDir(join(tmp, name), 64, 16);
  for (const [f, bytes] of Object.entries(files)) writeFileSync(join(dir, f), bytes);
  return dir;
}

const file = (name: string, bytes: Uint8Array | string): string => (
  writeFileSync(join(tmp, name), bytes), join(tmp, name)
);
const train = (...args: string[]): Result =>
  fmgpu(['train', TINY, ...args, '--out', join(tmp, `out-${Math.random().toString(36).slice(2)}`), ...NO_GPU]);

beforeAll(() => {
  ensureBuilt();
  writeFileSync(
    PRELOAD,
    'const peak = () => String(process.resourceUsage().maxRSS);\n' +
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.FMGPU_PEAK_RSS_FILE, peak()));\n",
  );
  writeFileSync(TINY, TINY_SRC);
  mkdirSync(RUN);
  writeFileSync(join(RUN, 'model.net'), TINY_SRC);
  const params = buildGraph(parseNet(TINY_SRC, 'tiny.net'), 1).params;
  writeFileSync(
    join(RUN, 'weights.safetensors'),
    encodeSafetensors(
      new Map(
        params.map((p) => [
          p.name,
          { shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.01) },
        ]),
      ),
    ),
  );
  writeIdxDir(DATA, 64, 16);
}, 120_000);

describe('files that are not regular files, or too large to be what they claim', () => {
  it('summary /dev/zero: refused from fstat, not read forever', () => {
    expectRefusal(fmgpu(['summary', '/dev/zero']), '/dev/zero', 'is not a regular file (a character device)');
  });

  it.skipIf(spawnSync('mkfifo', ['--version']).error !== undefined)(
    'summary on a FIFO: refused without waiting for a writer',
    () => {
      const fifo = join(tmp, 'model-fifo.net');
      spawnSync('mkfifo', [fifo]);
      expectRefusal(fmgpu(['summary', fifo]), fifo, 'is not a regular file (a FIFO)');
    },
  );

  it('summary of a .net file over 1.5 MiB: refused from its size', () => {
    const big = file('big.net', '');
    truncateSync(big, 2 * 2 ** 20); // sparse: no need to write it
    expectRefusal(fmgpu(['summary', big]), big, 'more than the 1.5 MiB fmgpu reads as a .net file');
  });

  it('predict RUN /dev/zero', () => {
    expectRefusal(
      fmgpu(['predict', RUN, '/dev/zero', ...NO_GPU]),
      '/dev/zero',
      'is not a regular file (a character device)',
    );
  });

  it('predict of an image file over 64 MiB: refused from its size', () => {
    const big = file('big.png', pngFile(1, 1, 8, 2, zlibOfZeros(4)));
    truncateSync(big, 65 * 2 ** 20);
    expectRefusal(
      fmgpu(['predict', RUN, big, ...NO_GPU]),
      big,
      'more than the 64 MiB fmgpu reads as a PNG or JPEG image',
    );
  });

  it('predict of a folder: folders inside it named like images (x.png/) are skipped, not read', () => {
    const dir = join(tmp, 'photos');
    mkdirSync(join(dir, 'x.png'), { recursive: true });
    const r = fmgpu(['predict', RUN, dir, ...NO_GPU]);
    expect(r.err.trim()).toBe(`fmgpu: error: no PNG or JPEG images in ${dir}`);
    expect(r.code).toBe(2);
  });

  it('train --csv /dev/zero', () => {
    expectRefusal(
      train('--csv', '/dev/zero', '--test-csv', '/dev/zero'),
      '/dev/zero',
      'is not a regular file (a character device)',
    );
  });
});

describe('decompression bombs: inflated no further than the header allows', () => {
  it('predict: a 1x1 PNG whose image data inflates to 1 GiB', () => {
    const png = file('bomb.png', pngFile(1, 1, 8, 2, zlibOfZeros(GiB)));
    expectRefusal(
      fmgpu(['predict', RUN, png, ...NO_GPU]),
      png,
      'corrupt PNG: its image data inflates to more than the 4 bytes its 1x1 header allows',
    );
  });

  it('train: train-images .gz announcing 64 images, holding 1 GiB more', () => {
    const dir = dataWith('bomb', { 'train-images-idx3-ubyte.gz': gzipWithZeros(idx(2051, [64, 28, 28]), GiB) });
    const images = join(dir, 'train-images-idx3-ubyte.gz');
    expectRefusal(
      train('--data', dir),
      images,
      'data after the 64 images of 28x28 the header announces (expected 50192 bytes once gunzipped, got more)',
    );
  });

  it('train --subset 10: only the subset of a bomb is inflated; the test set, read whole, is refused', () => {
    const bomb = gzipWithZeros(idx(2051, [64, 28, 28]), GiB);
    const dir = dataWith('bomb-subset', { 'train-images-idx3-ubyte.gz': bomb, 't10k-images-idx3-ubyte.gz': bomb });
    expectRefusal(
      train('--data', dir, '--subset', '10'),
      join(dir, 't10k-images-idx3-ubyte.gz'),
      'data after the 64 images of 28x28 the header announces',
    );
  });

  it('train --csv: a .gz CSV that inflates to 1 GiB', () => {
    const csv = file('bomb.csv.gz', gzipWithZeros(new Uint8Array(0), GiB));
    expectRefusal(train('--csv', csv, '--test-csv', csv), csv, 'more than 256 MiB of CSV once gunzipped');
  });

  it('train --csv: 10 MB of blank lines reserve nothing', () => {
    const csv = file('blank.csv', '\n'.repeat(10_000_000));
    expectRefusal(train('--csv', csv, '--test-csv', csv), csv, 'no images (expected lines of a label and 784 pixels)');
  });
});

describe('idx headers that announce absurd sizes: refused before anything that large is allocated', () => {
  it('more than 2 GiB of images', () => {
    const dir = dataWith('absurd', {
      'train-images-idx3-ubyte.gz': gzipWithZeros(idx(2051, [3_000_000, 28, 28]), 1000),
    });
    expectRefusal(
      train('--data', dir),
      join(dir, 'train-images-idx3-ubyte.gz'),
      'the header announces 3000000 images of 28x28 (2,352,000,016 bytes), more than the 2 GiB fmgpu reads',
    );
  });

  it('more than its gzip could hold', () => {
    const dir = dataWith('liar', {
      'train-images-idx3-ubyte.gz': gzipWithZeros(idx(2051, [1_000_000, 28, 28]), 1000),
    });
    expectRefusal(
      train('--data', dir),
      join(dir, 'train-images-idx3-ubyte.gz'),
      'the header announces 1000000 images of 28x28 (784,000,016 bytes), more than',
    );
  });

  it('a gzip file far larger than the data its header announces', () => {
    const dir = dataWith('padded', {
      'train-images-idx3-ubyte.gz': gzipWithZeros(idx(2051, [1, 28, 28]), 2 * GiB),
    });
    expectRefusal(
      train('--data', dir),
      join(dir, 'train-images-idx3-ubyte.gz'),
      'bytes of gzip for the 800 bytes its header announces: corrupt, or not an idx file',
    );
  });

  it('a plain file 1.5 GB longer than its header announces: refused from its size, not read', () => {
    const dir = dataWith('long', { 'train-images-idx3-ubyte.gz': '' });
    rmSync(join(dir, 'train-images-idx3-ubyte.gz'));
    const images = join(dir, 'train-images-idx3-ubyte');
    writeFileSync(images, idx(2051, [64, 28, 28]));
    truncateSync(images, 16 + 64 * 784 + 1.5e9); // sparse
    expectRefusal(train('--data', dir), images, '1500000000 bytes after the 64 images of 28x28 the header announces');
  });

  it('a plain file shorter than its header announces: refused from its size, not read', () => {
    const dir = dataWith('short', { 'train-images-idx3-ubyte.gz': '' });
    rmSync(join(dir, 'train-images-idx3-ubyte.gz'));
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx(2051, [1_000_000, 28, 28]));
    expectRefusal(
      train('--data', dir),
      join(dir, 'train-images-idx3-ubyte'),
      'truncated: 1000000 images of 28x28 need 784000016 bytes but the file has 16',
    );
  });
});

describe('the reader and the bounded inflaters (src/node/files.ts)', () => {
  const refusal = (f: () => unknown): Error => {
    try {
      f();
    } catch (e) {
      return e as Error;
    }
    throw new Error('no refusal');
  };
  it("readInput: one line naming the file, as the caller's error class", () => {
    const what = { what: 'a .net file', maxBytes: 10 };
    expect(refusal(() => readInput(join(tmp, 'none.net'), what)).message).toBe(
      `${join(tmp, 'none.net')}: no such file`,
    );
    expect(refusal(() => readInput(tmp, what)).message).toBe(`${tmp} is a directory, not a .net file`);
    expect(refusal(() => readInput('/dev/zero', what)).message).toBe(
      '/dev/zero is not a regular file (a character device)',
    );
    const eleven = file('eleven.net', 'x'.repeat(11));
    expect(refusal(() => readInput(eleven, what)).message).toBe(
      `${eleven}: 11 bytes, more than the 10 bytes fmgpu reads as a .net file`,
    );
    expect(refusal(() => readInput(eleven, what))).toBeInstanceOf(DataError);
    expect(refusal(() => readInput(eleven, { ...what, error: UsageError }))).toBeInstanceOf(UsageError);
    expect(new TextDecoder().decode(readInput(eleven, { ...what, maxBytes: 11 }))).toBe('x'.repeat(11));
  });
  it('gunzipPrefix: exactly the first bytes of a 1 GiB bomb, inflating little more', () => {
    const head = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    const bomb = gzipWithZeros(head, GiB);
    for (const want of [1, 16, 105, 3 << 20]) {
      const got = gunzipPrefix((k) => bomb.subarray(0, k), bomb.length, want);
      expect(got.length).toBe(want);
      expect(Array.from(got.subarray(0, Math.min(want, 100)))).toEqual(Array.from(head.subarray(0, want)));
      expect(got.subarray(100).every((b) => b === 0)).toBe(true);
    }
    // A stream shorter than asked for: all of it.
    const small = gzipWithZeros(head, 10);
    expect(gunzipPrefix((k) => small.subarray(0, k), small.length, 1000).length).toBe(110);
  });
  it('gunzipAtMost and inflateAtMost: null past the cap, the bytes up to it', () => {
    const bomb = gzipWithZeros(new Uint8Array(0), 64 << 20);
    expect(gunzipAtMost(bomb, 1 << 20)).toBeNull();
    expect(gunzipAtMost(bomb, 64 << 20)?.length).toBe(64 << 20);
    expect(inflateAtMost(zlibOfZeros(1000), 999)).toBeNull();
    expect(inflateAtMost(zlibOfZeros(1000), 1000)?.length).toBe(1000);
  });
});
