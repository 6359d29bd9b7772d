// The GPU batch gather (shaders/batch.wgsl) against its CPU reference, and idx decoding errors.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { gatherEval, gatherTrain, uploadDataset, type AugmentParams } from '../src/data/batch.ts';
import { gatherTrainRef } from '../src/data/batch.ref.ts';
import { datasetFromIdx, subset, validationSplit, type Dataset } from '../src/data/dataset.ts';
import { DataError } from '../src/errors.ts';
import { Rng } from '../src/util/rng.ts';

function randomDataset(n: number, h: number, w: number, seed: number): Dataset {
  const rng = new Rng(seed);
  return { images: new Uint8Array(n * h * w).map(() => rng.int(256)), labels: new Uint8Array(n).map(() => rng.int(10)), n, rows: h, cols: w };
}

describe('batch gather (GPU vs reference)', () => {
  const gpu = useGpu();
  const cases: [string, AugmentParams, number][] = [
    ['plain', {}, 0],
    ['shift 2', { shift: 2 }, 0],
    ['flip', { flip: true }, 0],
    ['shift + flip', { shift: 3, flip: true }, 0],
    ['erase 0.8', { erase: 0.8 }, 0],
    ['rotate 15 + zoom 0.1 (bilinear)', { rotate: 15, zoom: 0.1 }, 2e-4],
    ['everything', { shift: 2, flip: true, rotate: 10, zoom: 0.1, erase: 0.5 }, 2e-4],
  ];
  it.each(cases)('%s', async (_name, augment, atol) => {
    const g = gpu();
    const ds = randomDataset(37, 12, 10, 1);
    const data = uploadDataset(g, ds);
    const batch = 5, stepsPerEpoch = 7;
    const order = new Uint32Array(ds.n).map((_, i) => i);
    new Rng(2).shuffle(order);
    const indices = g.upload(order), counter = g.alloc(16), x = g.alloc(batch * 120 * 4), labels = g.alloc(batch * 4);
    const d = gatherTrain(g, { data, indices, counter, x, labels }, { batch, stepsPerEpoch, seed: 9, augment });
    for (const step of [0, 3, 8]) {
      g.write(counter, new Uint32Array([step, 0, 0, 0]));
      g.run([d]);
      const ref = gatherTrainRef(ds, order, step, { batch, stepsPerEpoch, seed: 9, augment });
      expectAllclose(`gather step ${step}`, await g.readF32(x), ref.x, { atol: atol || 1e-7, rtol: 0 }, [batch, 12, 10]);
      expect(Array.from(await g.readU32(labels))).toEqual(Array.from(ref.labels));
    }
    g.free([d]);
    [indices, counter, x, labels].forEach((b) => g.release(b));
    data.release();
  });

  it('eval gather takes samples in order from an offset', async () => {
    const g = gpu();
    const ds = randomDataset(9, 4, 4, 3);
    const data = uploadDataset(g, ds);
    const x = g.alloc(3 * 16 * 4), labels = g.alloc(12);
    const d = gatherEval(g, { data, x, labels }, { batch: 3, offset: 5 });
    g.run([d]);
    expect(Array.from(await g.readF32(x))).toEqual(Array.from(ds.images.subarray(5 * 16, 8 * 16), (v) => Math.fround(v / 255)));
    expect(Array.from(await g.readU32(labels))).toEqual(Array.from(ds.labels.subarray(5, 8)));
    g.free([d]);
    [x, labels].forEach((b) => g.release(b));
    data.release();
  });
});

function idx(magic: number, dims: number[], body: number[]): Uint8Array {
  const head = [magic, ...dims].flatMap((v) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  return Uint8Array.from([...head, ...body]);
}

describe('idx decoding', () => {
  const images = idx(2051, [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const labels = idx(2049, [2], [3, 9]);
  it('decodes images and labels', () => {
    const ds = datasetFromIdx(images, labels, 'img', 'lbl');
    expect([ds.n, ds.rows, ds.cols, Array.from(ds.labels)]).toEqual([2, 2, 2, [3, 9]]);
  });
  const bad: [string, () => unknown, string][] = [
    ['wrong image magic', () => datasetFromIdx(idx(2049, [2, 2, 2], []), labels, 'img', 'lbl'), 'img: not an idx3 image file: magic number 2049, expected 2051'],
    ['wrong label magic', () => datasetFromIdx(images, idx(2051, [2], [1, 2]), 'img', 'lbl'), 'lbl: not an idx1 label file: magic number 2051, expected 2049'],
    ['truncated images', () => datasetFromIdx(images.subarray(0, 20), labels, 'img', 'lbl'), 'img: truncated: 2 images of 2x2 need 24 bytes but the file has 20'],
    ['truncated labels', () => datasetFromIdx(images, labels.subarray(0, 9), 'img', 'lbl'), 'lbl: truncated: 2 labels need 10 bytes but the file has 9'],
    ['count mismatch', () => datasetFromIdx(images, idx(2049, [1], [1]), 'img', 'lbl'), 'lbl: 1 labels but img has 2 images'],
    ['label out of range', () => datasetFromIdx(images, idx(2049, [2], [1, 10]), 'img', 'lbl'), 'lbl: label 10 at index 1 is outside 0–9'],
  ];
  it.each(bad)('%s is a clear DataError', (_n, f, msg) => {
    expect(f).toThrow(DataError);
    expect(f).toThrow(msg);
  });
  it('validation split takes the last fraction, before shuffling (Keras)', () => {
    const ds = randomDataset(10, 2, 2, 4);
    const { train, val } = validationSplit(ds, 0.3);
    expect([train.n, val.n]).toEqual([7, 3]);
    expect(Array.from(val.labels)).toEqual(Array.from(ds.labels.subarray(7)));
    expect(subset(ds, 4).n).toBe(4);
  });
});
