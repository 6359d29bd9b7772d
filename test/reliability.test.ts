// Reliability (issue 8): bad input is refused in one line before anything is printed, written or
// the GPU opened; buffers over the adapter's limits are refused before training; running out of
// GPU memory is explained; a diverged loss and a lost device stop the run with a line that names
// the step, keeping the last checkpoint, which --resume continues; fifty epochs keep memory flat.
// SIGKILL is in crash.test.ts, Ctrl-C in cli-errors.test.ts, data decoding in data.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import jpeg from 'jpeg-js';
import { encodePng, ensureBuilt, jpegClaiming, photo, syntheticImages, writeIdxDir } from './helpers/files.ts';
import { useGpu } from './helpers/gpu.ts';
import { opts, synthetic, SMALL } from './helpers/train.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph, fittingBatch } from '../src/model/build.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../src/model/safetensors.ts';
import { readCheckpoint } from '../src/node/rundir.ts';
import { openNodeGpu } from '../src/node/gpu.ts';
import { Gpu } from '../src/gpu/runtime.ts';
import { plan } from '../src/graph/plan.ts';
import { Trainer } from '../src/train/trainer.ts';
import { DataError, GpuError, ShapeError } from '../src/errors.ts';
import { train, type TrainHooks } from '../src/cli/train.ts';
import { reportError } from '../src/cli/common.ts';
import type { Out } from '../src/cli/progress.ts';

const BIN = resolve('bin/fmgpu.js');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (args: string[]) => {
  const r = spawnSync('node', [BIN, ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const oneLine = (err: string): string => {
  const lines = err.trim().split('\n');
  expect(lines, err).toHaveLength(1);
  return lines[0]!;
};

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-reliability-'));
const data = join(tmp, 'data');
const TINY_SRC = 'conv 2 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=2 batch=32 lr=0.01\n';
const TINY = join(tmp, 'tiny.net');
const OTHER = join(tmp, 'other.net'); // the same layers, three filters: weights of TINY do not fit it

/** The model's parameters as named tensors, every value `v`. */
function weightsOf(source: string, v = 0.01): Map<string, NamedTensor> {
  const params = buildGraph(parseNet(source, 'm.net'), 1).params;
  return new Map(
    params.map((p) => [p.name, { shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(v) }]),
  );
}

/** A run directory as fmgpu train leaves it (model.net, weights.safetensors), made without a GPU. */
function runDir(name: string, weights: Uint8Array, source = TINY_SRC): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.net'), source);
  writeFileSync(join(dir, 'weights.safetensors'), weights);
  return dir;
}

/** A safetensors file whose JSON header is `header` and whose data is `dataBytes` zero bytes. */
function rawSafetensors(header: unknown, dataBytes: number): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  return out;
}

let good: Uint8Array; // valid weights for TINY

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(data, 256, 64);
  writeFileSync(TINY, TINY_SRC);
  writeFileSync(OTHER, TINY_SRC.replace('conv 2', 'conv 3'));
  good = encodeSafetensors(weightsOf(TINY_SRC));
}, 120_000);

describe('weights files: truncated or inconsistent safetensors are refused, naming the file', () => {
  const t = (shape: number[]): NamedTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const two = encodeSafetensors(
    new Map([
      ['a', t([2, 3])],
      ['b', t([4])],
    ]),
  );
  const rows: [string, () => Uint8Array, string][] = [
    ['fewer than 8 bytes', () => two.subarray(0, 5), 'w.safetensors: truncated: 5 bytes, not even a header length'],
    [
      'cut inside the header',
      () => two.subarray(0, 40),
      `w.safetensors: truncated: the header claims ${new DataView(two.buffer).getBigUint64(0, true)} bytes ` +
        'but the file has 32 after the length',
    ],
    [
      'cut inside the data',
      () => two.subarray(0, two.length - 4),
      'w.safetensors: tensor "b" has data offsets [24, 40] outside the 36 data bytes',
    ],
    [
      'offsets past the end',
      () => rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 999999] } }, 8),
      'w.safetensors: tensor "a" has data offsets [0, 999999] outside the 8 data bytes',
    ],
    [
      'negative offset',
      () => rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, 8),
      'w.safetensors: tensor "a" has data offsets [-8, 0] outside the 8 data bytes',
    ],
    [
      'offsets reversed',
      () => rawSafetensors({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8),
      'w.safetensors: tensor "a" has data offsets [8, 0] outside the 8 data bytes',
    ],
    [
      'fractional offsets',
      () => rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, 8),
      'w.safetensors: tensor "a" has data offsets [0.5, 4.5] outside the 8 data bytes',
    ],
    [
      'shape and byte count disagree',
      () => rawSafetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      'w.safetensors: tensor "a" has shape [3] (12 bytes) but 8 bytes of data',
    ],
    [
      'a negative dimension',
      () => rawSafetensors({ a: { dtype: 'F32', shape: [-1, -2], data_offsets: [0, 8] } }, 8),
      'w.safetensors: tensor "a" has an invalid shape [-1,-2]',
    ],
    [
      'another dtype',
      () => rawSafetensors({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, 4),
      'w.safetensors: tensor "a" has dtype F16; only F32 is supported',
    ],
    [
      'a header that is not JSON',
      () => rawSafetensors({}, 0).map((b, i) => (i === 8 ? 0x7b : i === 9 ? 0x7b : b)),
      'w.safetensors: the header is not valid JSON',
    ],
    [
      'a header that is a list',
      () => rawSafetensors([1, 2], 0),
      'w.safetensors: the header is not a JSON object of tensors',
    ],
    [
      'a tensor described by a number',
      () => rawSafetensors({ a: 5 }, 0),
      'w.safetensors: tensor "a" is not described by an object',
    ],
  ];
  it.each(rows)('%s', (_, bytes, message) => {
    let err: unknown = null;
    try {
      decodeSafetensors(bytes(), 'w.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toBe(message);
  });

  it('a whole file still reads back', () => {
    const r = decodeSafetensors(two, 'w.safetensors');
    expect([...r.tensors.keys()]).toEqual(['a', 'b']);
    expect(r.tensors.get('a')!.shape).toEqual([2, 3]);
  });
});

describe('bad input: one line on stderr, exit 2, nothing on stdout or disk, the GPU never opened', () => {
  // Every row also names an adapter that does not exist: had fmgpu opened the GPU before checking
  // its input, the error would be about the adapter.
  const NO_GPU = ['--adapter', 'no-such-gpu'];
  const dataWith = (name: string, edit: (dir: string) => void): string => {
    const dir = join(tmp, name);
    cpSync(data, dir, { recursive: true });
    edit(dir);
    return dir;
  };
  const idx = (magic: number, dims: number[], body: Uint8Array): Uint8Array => {
    const head = new Uint8Array(4 + 4 * dims.length);
    const v = new DataView(head.buffer);
    [magic, ...dims].forEach((d, i) => v.setUint32(4 * i, d));
    return Uint8Array.from([...head, ...body]);
  };
  const csv = (name: string, n: number, edit: (rows: string[]) => void = () => undefined): string => {
    const { images, labels } = syntheticImages(n, 3);
    const rows = Array.from({ length: n }, (_, i) => [labels[i], ...images.subarray(i * 784, (i + 1) * 784)].join(','));
    edit(rows);
    const f = join(tmp, `${name}.csv`);
    writeFileSync(f, `${rows.join('\n')}\n`);
    return f;
  };
  const image = (name: string, bytes: Uint8Array): string => (writeFileSync(join(tmp, name), bytes), join(tmp, name));
  /** A real JPEG with its frame header (SOF0) claiming w×h. */
  const png = encodePng(40, 60, photo(40, 60), 2, 8);
  const hugePng = (): Uint8Array => {
    const b = png.slice();
    new DataView(b.buffer).setUint32(16, 100_000); // IHDR width and height; the CRC is not checked
    new DataView(b.buffer).setUint32(20, 100_000);
    return b;
  };
  const realJpeg = new Uint8Array(jpeg.encode({ data: photo(40, 60), width: 40, height: 60 }, 90).data);

  const rows: [string, () => string[], string][] = [
    // Data
    [
      'train: missing data directory',
      () => ['train', TINY, '--data', join(tmp, 'nope')],
      `data directory ${join(tmp, 'nope')} not found`,
    ],
    [
      'train: wrong idx magic',
      () => [
        'train',
        TINY,
        '--data',
        dataWith('magic', (d) =>
          writeFileSync(join(d, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(2051, [256], new Uint8Array(256)))),
        ),
      ],
      `${join(tmp, 'magic', 'train-labels-idx1-ubyte.gz')}: not an idx1 label file: magic number 2051, expected 2049`,
    ],
    [
      'train: image/label count mismatch',
      () => [
        'train',
        TINY,
        '--data',
        dataWith('count', (d) =>
          writeFileSync(join(d, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx(2049, [63], new Uint8Array(63)))),
        ),
      ],
      `${join(tmp, 'count', 't10k-labels-idx1-ubyte.gz')}: 63 labels but`,
    ],
    [
      'train: truncated .gz',
      () => [
        'train',
        TINY,
        '--data',
        dataWith('trunc', (d) =>
          writeFileSync(
            join(d, 'train-images-idx3-ubyte.gz'),
            readFileSync(join(d, 'train-images-idx3-ubyte.gz')).subarray(0, 500),
          ),
        ),
      ],
      `${join(tmp, 'trunc', 'train-images-idx3-ubyte.gz')}: not a valid gzip file`,
    ],
    [
      'train: CSV with a non-numeric cell',
      () => [
        'train',
        TINY,
        '--csv',
        csv('cell', 4, (r) => (r[2] = r[2]!.replace(/,(\d+),/, ',x,'))),
        '--test-csv',
        csv('t1', 4),
      ],
      `${join(tmp, 'cell.csv')}:3: column 2 (pixel1) is not a number: "x"`,
    ],
    [
      'train: CSV pixel outside 0–255',
      () => [
        'train',
        TINY,
        '--csv',
        csv('pixel', 4, (r) => (r[1] = `${r[1]!.split(',')[0]},300${r[1]!.slice(r[1]!.indexOf(',', 2))}`)),
        '--test-csv',
        csv('t2', 4),
      ],
      `${join(tmp, 'pixel.csv')}:2: pixel1 is 300, outside 0–255`,
    ],
    [
      'train: CSV label outside 0–255',
      () => [
        'train',
        TINY,
        '--csv',
        csv('label', 4, (r) => (r[0] = `256${r[0]!.slice(r[0]!.indexOf(','))}`)),
        '--test-csv',
        csv('t3', 4),
      ],
      `${join(tmp, 'label.csv')}:1: label 256 is outside 0–255`,
    ],
    // Weights and run directories
    [
      'train --init: missing run directory',
      () => ['train', TINY, '--data', data, '--init', join(tmp, 'no-run')],
      `run directory ${join(tmp, 'no-run')} not found`,
    ],
    [
      'train --init: truncated weights',
      () => ['train', TINY, '--data', data, '--init', runDir('init-trunc', good.subarray(0, good.length - 100))],
      `${join(tmp, 'init-trunc', 'weights.safetensors')}: tensor `,
    ],
    [
      'train --init: shapes that disagree with the .net file',
      () => ['train', OTHER, '--data', data, '--init', runDir('init-shape', good)],
      `${join(tmp, 'init-shape', 'weights.safetensors')}: ` +
        'tensor "conv1.weight" has shape [2, 1, 3, 3] but the model needs [3, 1, 3, 3]',
    ],
    [
      'train --resume: missing run directory',
      () => ['train', '--resume', join(tmp, 'no-run')],
      `run directory ${join(tmp, 'no-run')} not found`,
    ],
    [
      'eval: missing run directory',
      () => ['eval', join(tmp, 'no-run'), '--data', data],
      `run directory ${join(tmp, 'no-run')} not found`,
    ],
    [
      'eval: truncated weights',
      () => ['eval', runDir('ev-trunc', good.subarray(0, 7)), '--data', data],
      `${join(tmp, 'ev-trunc', 'weights.safetensors')}: truncated: 7 bytes, not even a header length`,
    ],
    [
      'eval: offsets outside the file',
      () => [
        'eval',
        runDir(
          'ev-offsets',
          rawSafetensors({ 'conv1.weight': { dtype: 'F32', shape: [2, 1, 3, 3], data_offsets: [0, 72] } }, 40),
        ),
        '--data',
        data,
      ],
      `${join(tmp, 'ev-offsets', 'weights.safetensors')}: ` +
        'tensor "conv1.weight" has data offsets [0, 72] outside the 40 data bytes',
    ],
    [
      'eval: shapes that disagree with the .net file',
      () => ['eval', runDir('ev-shape', good, TINY_SRC.replace('dense 10', 'dense 20 relu\ndense 10')), '--data', data],
      `${join(tmp, 'ev-shape', 'weights.safetensors')}: ` +
        'tensor "dense1.weight" has shape [338, 10] but the model needs [338, 20]',
    ],
    [
      'eval: a tensor missing',
      () => [
        'eval',
        runDir('ev-missing', encodeSafetensors(new Map([...weightsOf(TINY_SRC)].filter(([n]) => n !== 'dense1.bias')))),
        '--data',
        data,
      ],
      `${join(tmp, 'ev-missing', 'weights.safetensors')}: no tensor "dense1.bias" (the model needs [10])`,
    ],
    [
      'predict: missing run directory',
      () => ['predict', join(tmp, 'no-run'), image('ok.png', png)],
      `run directory ${join(tmp, 'no-run')} not found`,
    ],
    [
      'predict: truncated weights',
      () => ['predict', runDir('pr-trunc', good.subarray(0, 60)), image('ok.png', png)],
      `${join(tmp, 'pr-trunc', 'weights.safetensors')}: truncated: the header claims`,
    ],
    // Images
    [
      'predict: a non-image file',
      () => ['predict', runDir('pr', good), image('notes.png', new TextEncoder().encode('not an image'))],
      `${join(tmp, 'notes.png')}: not a PNG or JPEG image`,
    ],
    [
      'predict: a truncated PNG',
      () => ['predict', runDir('pr', good), image('cut.png', png.subarray(0, png.length >> 1))],
      `${join(tmp, 'cut.png')}: truncated PNG (chunk IDAT runs past the end)`,
    ],
    [
      'predict: a truncated JPEG',
      () => ['predict', runDir('pr', good), image('cut.jpg', realJpeg.subarray(0, realJpeg.length >> 1))],
      `${join(tmp, 'cut.jpg')}: not a readable JPEG`,
    ],
    [
      'predict: a PNG claiming 100000x100000',
      () => ['predict', runDir('pr', good), image('huge.png', hugePng())],
      `${join(tmp, 'huge.png')}: the image claims 100000x100000 pixels, more than the 25,165,824 fmgpu decodes`,
    ],
    [
      'predict: a JPEG claiming 65535x65535',
      () => [
        'predict',
        runDir('pr', good),
        image(
          'huge.jpg',
          jpegClaiming(
            new Uint8Array(jpeg.encode({ data: photo(16, 16), width: 16, height: 16 }, 90).data),
            65535,
            65535,
          ),
        ),
      ],
      `${join(tmp, 'huge.jpg')}: the image claims 65535x65535 pixels, more than the 25,165,824 fmgpu decodes`,
    ],
  ];
  it.each(rows)('%s', (_, args, message) => {
    const out = join(tmp, `out-${Math.random().toString(36).slice(2)}`);
    const a = args();
    const r = fmgpu([...a, ...NO_GPU, ...(a[0] === 'train' && !a.includes('--resume') ? ['--out', out] : [])]);
    expect(oneLine(r.err)).toContain(`fmgpu: error: ${message}`);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('a valid run and image pass the same checks: the adapter is what fails then', () => {
    const r = fmgpu(['predict', runDir('pr', good), image('ok.png', png), ...NO_GPU]);
    expect(oneLine(r.err)).toContain('fmgpu: error: --adapter no-such-gpu: no WebGPU adapter');
    expect(r.code).toBe(2);
  });
});

describe("buffers over the adapter's limits are refused before training, naming the buffer and the limit", () => {
  const gpu = useGpu();
  const LIMIT = /needs ([\d,]+) bytes but this adapter's (maxBufferSize|maxStorageBufferBindingSize) is ([\d,]+)/;
  const big = (s: string): number => Number(s.replace(/,/g, ''));

  it.each([
    // Activations over 4 GiB: beyond any adapter's binding size, each parameter small.
    [
      'a wide layer at batch 512',
      'conv 4096 3x3 same relu\nglobalavgpool\ndense 10 softmax\n',
      ['--batch', '512'],
      'the output of conv1 (conv2d) [512, 4096, 28, 28] needs 6,576,668,672 bytes',
      'use a smaller batch or smaller layers',
    ],
    // One weight matrix of 13 GB.
    [
      'a huge dense layer',
      'conv 64 3x3 same relu\ndense 65536 relu\ndense 10 softmax\n',
      [],
      'parameter "dense1.weight" [50176, 65536] needs 13,153,337,344 bytes',
      'use a smaller layer',
    ],
  ])('%s: exit 2 before anything is printed or the run directory made', (_, source, flags, what, advice) => {
    const file = join(tmp, `limits-${flags.length}.net`);
    writeFileSync(file, source);
    const dataDir = join(tmp, 'data512');
    if (!existsSync(dataDir)) writeIdxDir(dataDir, 512, 16);
    const out = join(tmp, `limits-out-${flags.length}`);
    const r = fmgpu(['train', file, '--data', dataDir, '--out', out, ...flags]);
    const line = oneLine(r.err);
    expect(line).toContain(`fmgpu: error: ${what} but this adapter's`);
    expect(line).toMatch(new RegExp(`: ${advice}$`));
    const m = LIMIT.exec(line)!;
    expect(big(m[1]!)).toBeGreaterThan(big(m[3]!));
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('a validation set wider than one binding trains: its evaluation is chunked to fit', () => {
    // Filters enough that 1000 images of the first layer's output do not bind, while a training batch of 32 does.
    const limits = gpu().limits;
    const filters = Math.ceil(limits.maxStorageBufferBindingSize / (1000 * 28 * 28 * 4)) + 1;
    const source = `conv ${filters} 3x3 same relu\nglobalavgpool\ndense 10 softmax\ntrain batch=32 epochs=1\n`;
    const file = join(tmp, 'val-wide.net');
    writeFileSync(file, source);
    // 1000 validation images do not fit one evaluation chunk: fit() must take them in several.
    expect(fittingBatch(parseNet(source, file), 1000, limits)).toBeLessThan(1000);
    const dataDir = join(tmp, 'data1032');
    writeIdxDir(dataDir, 1032, 16);
    const out = join(tmp, 'val-wide-out');
    const r = fmgpu(['train', file, '--data', dataDir, '--out', out, '--validation', String(1000 / 1032), '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const events = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ event: 'start', train: 32, validation: 1000 });
    const epoch = events.find((e) => e.event === 'epoch');
    expect(Number.isFinite(epoch.val_loss)).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: 'test', n: 16 });
  });

  it('plan() refuses before it allocates anything', () => {
    const g = gpu();
    const limit = g.limits.maxStorageBufferBindingSize;
    const ir = parseNet('conv 64 3x3 same relu\nglobalavgpool\ndense 10 softmax', 'wide.net');
    const batch = Math.floor(limit / (64 * 28 * 28 * 4)) + 1; // the first batch whose conv output does not bind
    const t = new Trainer(g, ir, 0);
    const built = buildGraph(ir, batch);
    const before = g.liveBytes;
    const counter = t.counter,
      stats = t.stats;
    expect(() =>
      plan(g, built.graph, {
        training: true,
        logits: built.logits,
        labels: built.labels,
        persistent: t.params.buffers,
        counter,
        stats,
      }),
    ).toThrow(ShapeError);
    expect(() =>
      plan(g, built.graph, {
        training: true,
        logits: built.logits,
        labels: built.labels,
        persistent: t.params.buffers,
        counter,
        stats,
      }),
    ).toThrow(`the output of conv1 (conv2d) [${batch}, 64, 28, 28] needs`);
    expect(g.liveBytes).toBe(before);
    // One image fewer per batch binds: the check is at the limit, not below it.
    const fits = buildGraph(ir, batch - 1);
    plan(g, fits.graph, {
      training: false,
      logits: fits.logits,
      labels: null,
      persistent: t.params.buffers,
      counter,
      stats,
    }).release();
    t.release();
  });
});

/**
 * A Gpu over a real device whose out-of-memory error scope reports the `nth` allocation after
 * arm() as failed. Lavapipe's memory is the host's and its allocations are lazy, so a real
 * out-of-memory error cannot be forced here; the scope, the wait for it, the message and its
 * precedence over later errors are fmgpu's real code.
 */
async function gpuWithOutOfMemory(nth: number): Promise<{ gpu: Gpu; arm(): void }> {
  const base = await openNodeGpu();
  let armed = false,
    pops = 0;
  const device = new Proxy(base.device, {
    get(target, key) {
      if (key === 'popErrorScope') {
        return () => {
          const n = armed ? ++pops : 0; // counted when the scope is popped, in allocation order
          return target.popErrorScope().then((e) => (n === nth ? { message: 'Out of memory (injected)' } : e));
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  // base.instance goes along: Dawn frees its instance (and aborts the process) once that object is garbage.
  return { gpu: new Gpu(device, base.adapter, base.instance), arm: () => void (armed = true) };
}

describe('out of GPU memory: caught by the error scope around each allocation, explained in one line', () => {
  it('names the allocation that failed, its size and what was in use; reported once', async () => {
    const { gpu: g, arm } = await gpuWithOutOfMemory(1);
    try {
      g.alloc(1024 * 1024, 'kept');
      arm();
      g.alloc(3 * 1024 * 1024, 'activations');
      await expect(g.sync()).rejects.toThrow(
        new GpuError(
          'out of GPU memory: buffer "activations" (3 MiB) could not be allocated with 1 MiB already in use ' +
            '(Out of memory (injected)): use a smaller batch or a smaller model',
        ),
      );
      await expect(g.sync()).resolves.toBeUndefined(); // reported once
    } finally {
      g.destroy();
    }
  });

  it('training stops with the explanation at its first read-back', async () => {
    const { gpu: g, arm } = await gpuWithOutOfMemory(5);
    try {
      const t = new Trainer(g, parseNet(SMALL, 'small.net'), 1);
      arm(); // the fifth allocation of fit: optimizer slots, learning rates, then the plan's buffers
      await expect(t.fit(synthetic(64, 1), null, opts({ epochs: 1 }))).rejects.toThrow(
        /^out of GPU memory: buffer "[^"]+" \([\d.]+ MiB\) could not be allocated with [\d.]+ MiB already in use/,
      );
      t.release();
    } finally {
      g.destroy();
    }
  });
});

describe('a diverged loss stops the run within the epoch, naming the step; the checkpoint is kept', () => {
  const big = join(tmp, 'data-div');
  beforeAll(() => writeIdxDir(big, 512, 32));
  // --lr 100 does not diverge here: the loss is computed stably (log-sum-exp) and grows to ~10²
  // without overflowing. 1e30 overflows f32 within the first steps.
  const DIVERGE = ['--lr', '1e30', '--optimizer', 'sgd'];
  /** The one line a diverged run prints at `epoch`; groups: the loss, the step, then those of `then`. */
  const diverged = (epoch: number, then: string): RegExp =>
    new RegExp(
      `^fmgpu: error: the loss became (NaN|-?Infinity) at epoch ${epoch}, by step (\\d+): ` +
        `try a learning rate lower than --lr 1e\\+30; ${then}$`,
    );

  it('in the first epoch: exit 1, the step of the report that saw it, no checkpoint yet', () => {
    const dir = join(tmp, 'div-first');
    // 512 images in batches of 4: 128 steps an epoch, the loss read back every 56 (8 per submit on
    // a CPU adapter, ≥ 50).
    const r = fmgpu(['train', TINY, '--data', big, '--out', dir, '--batch', '4', ...DIVERGE]);
    const line = oneLine(r.err);
    const m = diverged(1, 'no checkpoint was written to (.*) yet').exec(line);
    expect(m, line).not.toBeNull();
    expect(Number(m![2])).toBeLessThan(128); // within the epoch, not at its end
    expect(m![3]).toBe(dir);
    expect(r.code).toBe(1);
    expect(r.out).not.toMatch(/^epoch 1\/2 {2}\d/m); // the epoch never completed
  });

  it('after a good epoch: the checkpoint and its best weights stay readable and finite', () => {
    const dir = join(tmp, 'div-later');
    expect(
      fmgpu(['train', TINY, '--data', big, '--out', dir, '--batch', '4', '--epochs', '1', '--optimizer', 'sgd']).code,
    ).toBe(0);
    const before = readFileSync(join(dir, 'checkpoint', 'weights.safetensors'));
    // A resume may change the learning rate (not the optimizer): from the next step on.
    const r = fmgpu(['train', '--resume', dir, '--epochs', '2', '--lr', '1e30']);
    const line = oneLine(r.err);
    const kept = 'the checkpoint after epoch 1 \\(step 128\\) in (.*) is kept: resume it with fmgpu train --resume';
    const m = diverged(2, `${kept} (.*) and a lower --lr`).exec(line);
    expect(m, line).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(128);
    expect(Number(m![2])).toBeLessThan(256);
    expect(r.code).toBe(1);
    const ck = readCheckpoint(dir);
    expect(ck.state.epoch).toBe(1);
    expect(Buffer.compare(readFileSync(join(dir, 'checkpoint', 'weights.safetensors')), before)).toBe(0);
    for (const t of [...ck.weights.values(), ...ck.best!.values()]) expect(t.data.every(Number.isFinite)).toBe(true);
  });
});

describe('a lost GPU device ends the run with one line; the checkpoint is kept and --resume finishes', () => {
  const gpu = useGpu();

  it('reads and waits on a destroyed device reject instead of hanging', async () => {
    const g = await openNodeGpu();
    const b = g.alloc(64, 'weights');
    g.device.destroy(); // as a driver reset would end it, not Gpu.destroy()
    await expect(g.read(b)).rejects.toThrow(/^the GPU device was lost \(destroyed/);
    await expect(g.sync()).rejects.toThrow(/^the GPU device was lost \(destroyed/);
    expect(g.lost).toBe(true);
    g.destroy();
  });

  it('releasing a device is not a loss', async () => {
    const g = await openNodeGpu();
    g.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(g.lost).toBe(false);
    expect(gpu().lost).toBe(false);
  });

  const sigints = process.listenerCount('SIGINT');
  /** `fmgpu train ARGS` in this process: its exit code and lines, errors mapped as the CLI maps them. */
  const trainHere = async (args: string[], hooks: TrainHooks = {}) => {
    const log: string[] = [],
      err: string[] = [];
    const out: Out = { log: (l) => void log.push(l), err: (l) => void err.push(l), status: null };
    const used = new Set<Gpu>();
    const afterProgress = (g: Gpu, step: number): void => {
      used.add(g);
      hooks.afterProgress?.(g, step);
    };
    const code = await train(args, out, { afterProgress }).catch((e: unknown) => reportError(e, out, false));
    // Nothing left behind: no SIGINT handler, every buffer released, the device destroyed.
    expect(process.listenerCount('SIGINT')).toBe(sigints);
    expect(used.size).toBe(1);
    const g = [...used][0]!;
    expect(g.liveBytes).toBe(0);
    const timeout = new Promise((done) => setTimeout(done, 5000, 'still open').unref());
    await expect(Promise.race([g.device.lost.then((info) => info.reason), timeout])).resolves.toBe('destroyed');
    return { code, out: log.join('\n'), err };
  };

  it('the train command: exit 1 naming the step and the checkpoint; --resume goes on to the end', async () => {
    const dir = join(tmp, 'lost');
    // 256 images in batches of 32: 8 steps an epoch. The device goes at the first report at or after
    // step 10 (step 16), as a driver reset or a removed GPU would end it.
    const destroyAt10 = { afterProgress: (g: Gpu, step: number) => void (step >= 10 && !g.lost && g.device.destroy()) };
    const r = await trainHere([TINY, '--data', data, '--out', dir, '--epochs', '3'], destroyAt10);
    expect(r.err).toEqual([
      'fmgpu: error: the GPU device was lost (destroyed: device was destroyed) after step 16; ' +
        `the checkpoint after epoch 1 (step 8) in ${dir} is kept: resume with fmgpu train --resume ${dir}`,
    ]);
    expect(r.code).toBe(1);
    const ck = readCheckpoint(dir);
    expect([ck.state.epoch, ck.state.step]).toEqual([1, 8]);
    expect(existsSync(join(dir, 'weights.safetensors'))).toBe(false); // the run did not finish
    const resumed = await trainHere(['--resume', dir]);
    expect(resumed.err).toEqual([]);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toContain('resuming at epoch 2 of 3, step 0 of 8');
    expect(JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')).map((h: { epoch: number }) => h.epoch)).toEqual([
      1, 2, 3,
    ]);
    expect(existsSync(join(dir, 'weights.safetensors'))).toBe(true);
  });
});

describe('fifty epochs on a small subset: GPU and process memory stay flat', () => {
  const gpu = useGpu();
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  it('live GPU bytes identical after every epoch; heap and RSS do not grow', async () => {
    const g = gpu();
    const before = g.liveBytes;
    const t = new Trainer(g, parseNet(SMALL, 'small.net'), 4);
    const train = synthetic(64, 21),
      val = synthetic(32, 22);
    const live: number[] = [],
      heap: number[] = [],
      rss: number[] = [];
    await t.fit(
      train,
      val,
      opts({
        epochs: 50,
        onEpoch: () => {
          gc();
          live.push(g.liveBytes);
          heap.push(process.memoryUsage().heapUsed);
          rss.push(process.memoryUsage().rss);
        },
      }),
    );
    expect(live).toHaveLength(50);
    expect(new Set(live).size).toBe(1);
    // After a warm-up of five epochs (pipelines, caches), what one epoch leaves behind is at most a
    // few kilobytes of heap: over 45 epochs, under 2 MB; RSS (native memory: Dawn, the driver) under 16 MB.
    expect(heap.at(-1)! - heap[4]!).toBeLessThan(2 * 2 ** 20);
    expect(rss.at(-1)! - rss[4]!).toBeLessThan(16 * 2 ** 20);
    t.release();
    expect(g.liveBytes).toBe(before);
  });
});
