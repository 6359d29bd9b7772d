// CIFAR binary batches through the built CLI (issue 19, steps 3–4): a small generated CIFAR-10
// folder trained in colour (32x32x3, per-channel normalisation kept in run.json), then eval,
// predict --test, export (ONNX Runtime on pixel / 255 scores as eval does), resume; CIFAR-100's
// fine labels; a malformed batch, a wrong class count and a folder holding no dataset refused with
// one line, exit 2.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from './helpers/files.ts';
import { cifarRecords } from './helpers/datasets.ts';
import { channelStats, decodeCifar } from '../src/data/cifar.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { decodeOnnx } from '../src/node/onnx.ts';
import { metricsFromProbabilities } from '../src/train/metrics.ts';
import ort from 'onnxruntime-node';
import { fmgpu } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-cifar-'));
const NAMES = ['red', 'green', 'blue'];

function cifar10Dir(name: string, names = NAMES): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'data_batch_1.bin'), cifarRecords(120, 1, NAMES.length, 1));
  writeFileSync(join(dir, 'data_batch_2.bin'), cifarRecords(80, 1, NAMES.length, 2));
  writeFileSync(join(dir, 'test_batch.bin'), cifarRecords(50, 1, NAMES.length, 3));
  writeFileSync(join(dir, 'batches.meta.txt'), `${names.join('\n')}\n\n`);
  return dir;
}

const colourNet = (name: string, outputs: number): string => {
  const file = join(tmp, name);
  writeFileSync(
    file,
    `input 32x32x3\nconv 4 3x3 same relu\npool 4\nflatten\ndense ${outputs} softmax\n` +
      'train epochs=1 batch=25 validation=0\naugment shift=1 flip\n',
  );
  return file;
};

describe('CIFAR decoding (no GPU)', () => {
  it('records split into images (planar RGB) and labels; CIFAR-100 keeps the fine label', () => {
    const bytes = cifarRecords(4, 2, NAMES.length, 9);
    const ds = decodeCifar(bytes, 'cifar100', 'train.bin');
    expect(ds.n).toBe(4);
    expect(ds.channels).toBe(3);
    expect(Array.from(ds.labels)).toEqual([0, 1, 2, 3].map((i) => bytes[i * 3074 + 1]));
    expect(Array.from(ds.images.subarray(3072, 3082))).toEqual(Array.from(bytes.subarray(3074 + 2, 3074 + 12)));
  });

  it('per-channel mean and std of pixel/255', () => {
    const images = new Uint8Array(2 * 3 * 4);
    images.fill(255, 0, 4); // sample 0: R all 1
    images.fill(51, 12, 16); // sample 1: R all 0.2
    const s = channelStats({ images, labels: new Uint8Array(2), n: 2, rows: 2, cols: 2, channels: 3 });
    expect(s.mean).toEqual([0.6, 0, 0]);
    expect(s.std[0]).toBeCloseTo(0.4, 6);
    expect(s.std.slice(1)).toEqual([1, 1]); // a flat channel divides by 1
  });

  it('a CIFAR-100 folder: train.bin and test.bin, names from fine_label_names.txt', () => {
    const dir = join(tmp, 'c100');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'train.bin'), cifarRecords(30, 2, NAMES.length, 4));
    writeFileSync(join(dir, 'test.bin'), cifarRecords(10, 2, NAMES.length, 5));
    writeFileSync(join(dir, 'fine_label_names.txt'), 'apple\nbee\ncar\n');
    const d = loadFashionMnist(dir, { subset: 12 });
    expect([d.train.n, d.test.n, d.train.channels]).toEqual([12, 10, 3]);
    expect(d.classes).toEqual(['apple', 'bee', 'car']);
  });
});

describe('CIFAR-10 through the CLI', () => {
  const data = join(tmp, 'c10');
  const run = join(tmp, 'run');
  beforeAll(() => {
    ensureBuilt();
    cifar10Dir('c10');
  });

  it('trains in colour; run.json keeps the classes, the shape and the per-channel normalisation', () => {
    const r = fmgpu('train', colourNet('c10.net', 3), '--data', data, '--out', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const info = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(info.classes).toEqual(NAMES);
    expect(info.shape).toEqual({ h: 32, w: 32, c: 3 });
    expect(info.normalize.mean).toHaveLength(3);
    expect(info.normalize.std.every((s: number) => s > 0)).toBe(true);
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    expect(metrics.per_class.map((c: { name: string }) => c.name)).toEqual(NAMES);
  });

  it('the normalisation is of the images trained on: a held-out validation fraction is left out', () => {
    const held = join(tmp, 'c10-held');
    const args = ['--validation', '0.25', '--split', 'last', '--epochs', '1'];
    const r = fmgpu('train', colourNet('c10h.net', 3), '--data', data, '--out', held, ...args);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const batches = ['data_batch_1.bin', 'data_batch_2.bin'].map((f) =>
      decodeCifar(readFileSync(join(data, f)), 'cifar10', f),
    );
    const images = Uint8Array.from(batches.flatMap((b) => [...b.images]));
    const all = { ...batches[0]!, images, labels: new Uint8Array(200), n: 200 };
    const kept = { ...all, images: images.subarray(0, 150 * 3072), labels: new Uint8Array(150), n: 150 };
    const { normalize } = JSON.parse(readFileSync(join(held, 'run.json'), 'utf8'));
    const want = channelStats(kept);
    for (let c = 0; c < 3; c++) {
      expect(normalize.mean[c]).toBeCloseTo(want.mean[c]!, 6);
      expect(normalize.std[c]).toBeCloseTo(want.std[c]!, 6);
    }
    expect(channelStats(all).mean[0]).not.toBeCloseTo(want.mean[0]!, 6); // the fraction matters here
  });

  it('eval, predict --test and report apply the same normalisation and name the classes', () => {
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    const ev = fmgpu('eval', run, '--json');
    expect(ev.err).toBe('');
    expect(ev.code).toBe(0);
    expect(JSON.parse(ev.out.trim()).test_accuracy).toBeCloseTo(metrics.test_accuracy, 6);
    const p = fmgpu('predict', run, '--test', '0-2', '--json');
    expect(p.code).toBe(0);
    for (const line of p.out.trim().split('\n')) expect(NAMES).toContain(JSON.parse(line).truth.class);
    const rep = fmgpu('report', run);
    expect(rep.err).toBe('');
    expect(rep.code).toBe(0);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    for (const name of NAMES) expect(html).toContain(`>${name}<`);
  });

  it('exports a model that carries the normalisation: ONNX Runtime on pixel / 255 scores as fmgpu eval', async () => {
    const file = join(tmp, 'c10.onnx');
    const r = fmgpu('export', run, '-o', file);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const ev = JSON.parse(fmgpu('eval', run, '--json').out.trim()) as { test_accuracy: number; test_loss: number };
    const test = decodeCifar(readFileSync(join(data, 'test_batch.bin')), 'cifar10', 'test_batch.bin');
    const session = await ort.InferenceSession.create(file);
    const pixels = new ort.Tensor(
      'float32',
      Float32Array.from(test.images, (v) => v / 255),
      [test.n, 3, 32, 32],
    );
    const probs = (await session.run({ pixels })).probabilities?.data as Float32Array;
    const onnx = metricsFromProbabilities(probs, test.labels, 3);
    console.log(
      `colour test set: ONNX Runtime accuracy ${onnx.accuracy} loss ${onnx.loss}, eval ${JSON.stringify(ev)}`,
    );
    expect(onnx.accuracy).toBe(ev.test_accuracy);
    expect(Math.abs(onnx.loss - ev.test_loss)).toBeLessThan(1e-4); // the probabilities, not only the top-1
    const { normalize } = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    const meta = Object.fromEntries(
      (decodeOnnx(readFileSync(file)).metadata_props as { key: string; value: string }[]).map((p) => [p.key, p.value]),
    );
    expect(meta.input).toContain(`mean [${normalize.mean.join(', ')}], std [${normalize.std.join(', ')}]`);
  });

  it('resumes', () => {
    const r = fmgpu('train', '--resume', run, '--epochs', '2');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('epoch 2/2');
  });

  it('a network of another class count, or a grey network, is refused before training', () => {
    const bad = colourNet('ten.net', 10);
    const r = fmgpu('train', bad, '--data', data, '--out', join(tmp, 'never'));
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toMatch(/error: the network ends in 10 outputs but the data has 3 classes/);
    const grey = join(tmp, 'grey.net');
    writeFileSync(grey, 'input 32x32x1\nconv 4 3x3 same relu\nflatten\ndense 3 softmax\n');
    const g = fmgpu('train', grey, '--data', data, '--out', join(tmp, 'never'));
    expect(g.code).toBe(2);
    expect(g.err).toMatch(/32x32x1 but the data is 32x32x3/);
  });

  it('a batch file of the wrong length is refused in one line naming it', () => {
    const dir = cifar10Dir('short');
    writeFileSync(join(dir, 'data_batch_2.bin'), cifarRecords(3, 1, NAMES.length, 1).subarray(0, 3 * 3073 - 5));
    const r = fmgpu('train', colourNet('short.net', 3), '--data', dir, '--out', join(tmp, 'never'));
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `fmgpu: error: ${join(dir, 'data_batch_2.bin')}: 9,214 bytes is not a whole number ` +
        'of 3073-byte CIFAR-10 records (label + 32x32x3)',
    );
  });

  it('a folder holding no dataset says what it looked for and what it holds', () => {
    const dir = join(tmp, 'photos');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cat.png'), 'x');
    const r = fmgpu('train', colourNet('none.net', 3), '--data', dir, '--out', join(tmp, 'never'));
    expect(r.code).toBe(2);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toContain(`${dir}: no dataset found: looked for idx files`);
    expect(r.err).toContain('CIFAR-10 batches (data_batch_*.bin, test_batch.bin)');
    expect(r.err).toContain('the folder holds cat.png');
  });
});
