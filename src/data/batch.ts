// Datasets on the GPU: uploaded once as bytes; batches gathered (and augmented) by shaders/batch.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import type { Dataset } from './dataset.ts';

export interface GpuDataset {
  images: GPUBuffer;
  labels: GPUBuffer;
  n: number;
  h: number;
  w: number;
  release(): void;
}

export interface AugmentParams {
  shift?: number;
  flip?: boolean;
  rotate?: number;
  zoom?: number;
  erase?: number;
}

export function uploadDataset(gpu: Gpu, ds: Dataset): GpuDataset {
  const images = gpu.upload(ds.images, 'dataset images');
  const labels = gpu.upload(ds.labels, 'dataset labels');
  return { images, labels, n: ds.n, h: ds.rows, w: ds.cols, release: () => (gpu.release(images), gpu.release(labels)) };
}

function params(d: GpuDataset, batch: number, stepsPerEpoch: number, offset: number, seed: number, a: AugmentParams = {}) {
  return [batch, d.h, d.w, stepsPerEpoch, offset, seed >>> 0, a.shift ?? 0, a.flip ? 1 : 0, { f32: a.rotate ?? 0 }, { f32: a.zoom ?? 0 }, { f32: a.erase ?? 0 }];
}

/**
 * Training batch: sample b of step t is indices[(t mod stepsPerEpoch)·batch + b], with t read from
 * counter[0] on the GPU; `indices` holds the epoch's shuffled order (written by the host per epoch).
 */
export function gatherTrain(
  gpu: Gpu,
  io: { data: GpuDataset; indices: BufferRef; counter: BufferRef; x: BufferRef; labels: BufferRef },
  s: { batch: number; stepsPerEpoch: number; seed: number; augment?: AugmentParams },
): Dispatch {
  const d = io.data;
  return gpu.kernel({
    shader: 'batch',
    entry: 'train_batch',
    params: params(d, s.batch, s.stepsPerEpoch, 0, s.seed, s.augment),
    bindings: [d.images, d.labels, io.indices, io.counter, io.x, io.labels],
    workgroups: [Math.ceil((d.h * d.w) / 64), s.batch],
    label: `gather train ${s.batch}`,
  });
}

/** Evaluation batch: samples offset … offset+batch−1, in order, not augmented. */
export function gatherEval(gpu: Gpu, io: { data: GpuDataset; x: BufferRef; labels: BufferRef }, s: { batch: number; offset: number }): Dispatch {
  const d = io.data;
  return gpu.kernel({
    shader: 'batch',
    entry: 'eval_batch',
    params: params(d, s.batch, 1, s.offset, 0),
    bindings: [d.images, d.labels, io.x, io.labels],
    workgroups: [Math.ceil((d.h * d.w) / 64), s.batch],
    label: `gather eval ${s.batch}@${s.offset}`,
  });
}
