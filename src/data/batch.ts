// Datasets on the GPU: uploaded once as bytes; batches gathered, normalised and augmented by
// shaders/batch.wgsl (layout, draws and geometry in shaders/lib/augment.wgsl), or, for training, by the
// first conv as it fetches its input (trainGatherIn; src/ops/conv2d_gather.ts). CPU reference: batch.ref.ts.
//
// The epoch contract. Training steps are recorded many to a submit, so the host cannot tell the
// kernel where it is: the kernel reads the global step s = counter[0] (advanced on the GPU after
// each step by other code) and takes batch t = (s − epochStartStep) mod stepsPerEpoch, i.e. samples
// indices[t·B … t·B + B − 1]. Before an epoch's first step the host writes that epoch's shuffled
// order (epochOrder) into `indices`. With the trainer's numbering — epoch e's first step is
// e·stepsPerEpoch — epochStartStep stays 0; otherwise pass the counter value at the epoch's first
// step (u32 arithmetic: keep s ≥ epochStartStep). stepsPerEpoch = floor(n / B): the remainder
// (< B samples) is dropped each epoch, as tf.data's drop_remainder, so shapes stay static; the
// shuffle differs per epoch, so no sample is always left out. Evaluation covers every sample:
// gatherEval by explicit offset over evalBatches.
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { chainWork, f32Bytes, type Work } from '../gpu/work.ts';
import type { BufferLimits } from '../graph/limits.ts';
import { Rng } from '../util/rng.ts';
import { channelsOf, imageBytes, type Dataset } from './dataset.ts';
import { MAX_INPUT } from '../../dsl/ir.ts';

export interface GpuDataset {
  /** n·c·h·w pixel bytes (each sample NCHW), four to a u32 (little-endian). */
  images: GPUBuffer;
  /** n label bytes, four to a u32. */
  labels: GPUBuffer;
  n: number;
  /** Channels (absent: 1). */
  c?: number;
  h: number;
  w: number;
  /** The dataset's own normalisation (Dataset.normalize): what a gather without one applies. */
  normalize?: Normalize;
  release(): void;
}

/** Training-time augmentation; everything off (the default) is a plain gather. */
export interface AugmentParams {
  /** Random translation by up to ±shift whole pixels in x and y, zero fill. */
  shift?: number;
  /** Horizontal flip with probability ½. */
  flip?: boolean;
  /** Rotation by up to ±rotate degrees (≤ 180), bilinear. */
  rotate?: number;
  /** Scale by 1 ± up to zoom (< 1; > 1 enlarges the item), bilinear. */
  zoom?: number;
  /** Probability of random erasing (Zhong et al.): a rectangle of 2–33% of the image, aspect 0.3–3.3, set to 0. */
  erase?: number;
}

/**
 * x = (pixel/255 − mean) / std, one number for every channel or one per channel. The default {0, 1}
 * is plain pixel/255 in [0, 1].
 */
export interface Normalize {
  mean: number | readonly number[];
  std: number | readonly number[];
}

/** The most channels a gather takes (grey, RGB, RGBA): its uniform has four means and four stds. */
export const MAX_CHANNELS = MAX_INPUT.channels;

/** Channel c's mean and std. */
export function channelNorm(norm: Normalize, c: number): { mean: number; std: number } {
  const at = (v: number | readonly number[]): number => (typeof v === 'number' ? v : (v[c] ?? Number.NaN));
  return { mean: at(norm.mean), std: at(norm.std) };
}

const IDENTITY: Normalize = { mean: 0, std: 1 };
// Erasing's integer area·aspect product stays below 2³² up to 128×128: the language's largest input.
const MAX_PIXELS = MAX_INPUT.side * MAX_INPUT.side;

/**
 * A dataset whose images do not fit one buffer binding of this adapter is refused (ShapeError),
 * naming its bytes and the limit: `what` names the set ("the training set").
 */
export function checkDatasetFits(ds: Dataset, limits: BufferLimits, what = 'the dataset'): void {
  const max = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const bytes = ds.images.byteLength;
  if (bytes <= max) return;
  const n = (v: number): string => v.toLocaleString('en-US');
  const name = max === limits.maxBufferSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  throw new ShapeError(
    `${what}: ${n(ds.n)} images of ${ds.rows}x${ds.cols}x${channelsOf(ds)} take ${n(bytes)} bytes but this ` +
      `adapter's ${name} is ${n(max)}: use --subset N, fewer images or a smaller input`,
  );
}

export function uploadDataset(gpu: Gpu, ds: Dataset): GpuDataset {
  checkDatasetFits(ds, gpu.limits);
  if (ds.rows * ds.cols > MAX_PIXELS)
    throw new ShapeError(`images of ${ds.rows}x${ds.cols}: the batch gather takes at most ${MAX_PIXELS} pixels`);
  const c = channelsOf(ds);
  if (!(Number.isInteger(c) && c >= 1 && c <= MAX_CHANNELS))
    throw new ShapeError(`images of ${c} channels: the batch gather takes 1–${MAX_CHANNELS}`);
  const images = gpu.upload(ds.images, 'dataset images');
  const labels = gpu.upload(ds.labels, 'dataset labels');
  return {
    images,
    labels,
    n: ds.n,
    c,
    h: ds.rows,
    w: ds.cols,
    ...(ds.normalize ? { normalize: ds.normalize } : {}),
    release: () => {
      gpu.release(images);
      gpu.release(labels);
    },
  };
}

/** Training steps per epoch: the last partial batch is dropped. */
export function stepsPerEpochOf(n: number, batch: number): number {
  return Math.floor(n / batch);
}

/** Epoch `epoch`'s order of n samples: a seeded Fisher–Yates shuffle (the same on every machine). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return new Rng((seed * 1000003 + epoch) >>> 0).shuffle(order);
}

/** Evaluation chunks of at most `batch` samples covering all n, the last one partial. */
export function evalBatches(n: number, batch: number): { offset: number; size: number }[] {
  const out: { offset: number; size: number }[] = [];
  for (let offset = 0; offset < n; offset += batch) out.push({ offset, size: Math.min(batch, n - offset) });
  return out;
}

function checkAugment(a: AugmentParams, h: number, w: number): void {
  const bad = (what: string): never => {
    throw new RangeError(`augment ${what}`);
  };
  const shift = a.shift ?? 0,
    rotate = a.rotate ?? 0,
    zoom = a.zoom ?? 0,
    erase = a.erase ?? 0;
  if (!Number.isInteger(shift) || shift < 0 || shift >= Math.max(h, w))
    bad(`shift ${shift}: expected a whole number of pixels in 0–${Math.max(h, w) - 1}`);
  if (!(rotate >= 0 && rotate <= 180)) bad(`rotate ${rotate}: expected degrees in 0–180`);
  if (!(zoom >= 0 && zoom < 1)) bad(`zoom ${zoom}: expected a fraction in [0, 1)`);
  if (!(erase >= 0 && erase <= 1)) bad(`erase ${erase}: expected a probability in 0–1`);
}

function params(
  d: GpuDataset,
  batch: number,
  stepsPerEpoch: number,
  epochStart: number,
  offset: number,
  seed: number,
  a: AugmentParams,
  norm: Normalize,
) {
  const channels = d.c ?? 1;
  const ch = Array.from({ length: MAX_CHANNELS }, (_, c) => channelNorm(norm, Math.min(c, channels - 1)));
  for (const { mean, std } of ch.slice(0, channels))
    if (!(std > 0 && Number.isFinite(mean)))
      throw new RangeError(`normalise mean ${mean} std ${std}: expected std > 0`);
  const f32 = (v: number) => ({ f32: v });
  return {
    batch,
    c: channels,
    h: d.h,
    w: d.w,
    stepsPerEpoch,
    epochStart: epochStart >>> 0,
    offset,
    seed: seed >>> 0,
    shift: a.shift ?? 0,
    flip: a.flip ? 1 : 0,
    rotate: { f32: a.rotate ?? 0 },
    zoom: { f32: a.zoom ?? 0 },
    erase: { f32: a.erase ?? 0 },
    ...Object.fromEntries(ch.map((n, c) => [`mean${c}`, f32(n.mean)])),
    ...Object.fromEntries(ch.map((n, c) => [`invStd${c}`, f32(1 / n.std)])),
  };
}

function checkBatch(batch: number): void {
  if (!Number.isInteger(batch) || batch < 1 || batch > 65535) throw new ShapeError(`batch ${batch}: expected 1–65535`);
}

/**
 * B workgroups of 64, each thread looping over H·W / 64 pixels of its sample, one byte load (four,
 * bilinear, when rotating or zooming) a pixel; training first reads the step counter, then the
 * sample's index, then its label: three dependent loads more.
 */
function gatherWork(batch: number, d: GpuDataset, train: boolean, bilinear: boolean): Work {
  const pixels = batch * (d.c ?? 1) * d.h * d.w;
  return chainWork({
    flops: (bilinear ? 12 : 2) * pixels,
    ...gatherBytes(batch, d, train, bilinear),
    threads: 64,
    depth: Math.ceil(pixels / batch / 64) + (train ? 3 : 1),
  });
}

/**
 * A gather's bytes, each counted once: a byte a pixel (four, bilinear) and per sample its label (and, training,
 * its index) read; x in f32 and the labels written.
 */
export function gatherBytes(batch: number, d: GpuDataset, train: boolean, bilinear: boolean) {
  const pixels = batch * (d.c ?? 1) * d.h * d.w;
  return { bytesRead: pixels * (bilinear ? 4 : 1) + batch * (train ? 5 : 1), bytesWritten: f32Bytes(pixels, batch) };
}

const bytesOf = (b: BufferRef): number => ('buffer' in b ? (b.size ?? b.buffer.size - (b.offset ?? 0)) : b.size);

export interface TrainGather {
  batch: number;
  stepsPerEpoch: number;
  /** Augmentation seed (u32). */
  seed: number;
  augment?: AugmentParams;
  normalize?: Normalize;
  /** counter[0] at the first step of the epoch in progress, mod stepsPerEpoch (default 0); see the top of the file. */
  epochStartStep?: number;
}

/** A training gather's checks: its settings, and an epoch's order that fits the dataset and `indices`. */
function checkTrain(d: GpuDataset, indices: BufferRef, s: TrainGather): void {
  checkBatch(s.batch);
  checkAugment(s.augment ?? {}, d.h, d.w);
  if (!Number.isInteger(s.stepsPerEpoch) || s.stepsPerEpoch < 1 || s.stepsPerEpoch * s.batch > d.n) {
    throw new ShapeError(
      `${s.stepsPerEpoch} steps of ${s.batch} need ${s.stepsPerEpoch * s.batch} samples but the dataset has ${d.n}`,
    );
  }
  if (bytesOf(indices) < s.stepsPerEpoch * s.batch * 4)
    throw new ShapeError(
      `the index buffer holds ${bytesOf(indices) / 4} u32 but an epoch reads ${s.stepsPerEpoch * s.batch}`,
    );
}

const bilinearOf = (a: AugmentParams | undefined): boolean => (a?.rotate ?? 0) > 0 || (a?.zoom ?? 0) > 0;

/**
 * A training gather, checked, as a pass (gatherPass) or a first conv's forward (src/ops/conv2d_gather.ts,
 * lib/conv_in_gather.wgsl) runs it: the dataset, the epoch's order (u32 × ≥ stepsPerEpoch·B), the step
 * counter (u32, word 0 the global step) and its uniform record (struct Gather of lib/augment.wgsl).
 */
export interface GatherIn {
  data: GpuDataset;
  indices: BufferRef;
  counter: BufferRef;
  settings: Uniform;
  batch: number;
  /** Rotation or zoom: four bytes read for each value (bilinear). */
  bilinear: boolean;
  /** Random erasing: a draw tries its rectangles. */
  erase: boolean;
  /** Any augmentation at all (else each value is the pixel's own, normalised). */
  augmented: boolean;
}

export function trainGatherIn(
  io: { data: GpuDataset; indices: BufferRef; counter: BufferRef },
  s: TrainGather,
): GatherIn {
  checkTrain(io.data, io.indices, s);
  const a = s.augment ?? {};
  // As params() packs them: any shift, flip (truthy), rotation, zoom or erasing.
  const [bilinear, erase] = [bilinearOf(a), (a.erase ?? 0) > 0];
  const augmented = (a.shift ?? 0) > 0 || Boolean(a.flip) || bilinear || erase;
  const norm = s.normalize ?? io.data.normalize ?? IDENTITY;
  const settings = params(io.data, s.batch, s.stepsPerEpoch, s.epochStartStep ?? 0, 0, s.seed, a, norm);
  return { ...io, settings, batch: s.batch, bilinear, erase, augmented };
}

/** The gather's own pass: x [B,C,H,W] f32 and labels [B] u32 from indices[t·B …], t from the GPU step counter. */
export function gatherPass(gpu: Gpu, g: GatherIn, io: { x: BufferRef; labels: BufferRef }): Dispatch[] {
  const d = g.data;
  return [
    gpu.kernel({
      shader: 'batch',
      entry: 'train_batch',
      params: g.settings,
      bindings: [d.images, d.labels, g.indices, g.counter, io.x, io.labels],
      workgroups: [g.batch],
      label: `gather train ${g.batch}`,
      work: gatherWork(g.batch, d, true, g.bilinear),
    }),
  ];
}

/** Training batch: the gather's pass (gatherPass) of these settings. */
export function gatherTrain(
  gpu: Gpu,
  io: { data: GpuDataset; indices: BufferRef; counter: BufferRef; x: BufferRef; labels: BufferRef },
  s: TrainGather,
): Dispatch[] {
  return gatherPass(gpu, trainGatherIn(io, s), io);
}

/** Evaluation batch: samples offset … offset+B−1 in order, normalised, never augmented. */
export function gatherEval(
  gpu: Gpu,
  io: { data: GpuDataset; x: BufferRef; labels: BufferRef },
  s: { batch: number; offset: number; normalize?: Normalize; flip?: boolean },
): Dispatch[] {
  const d = io.data;
  checkBatch(s.batch);
  if (!Number.isInteger(s.offset) || s.offset < 0 || s.offset + s.batch > d.n)
    throw new ShapeError(`samples ${s.offset}…${s.offset + s.batch - 1} are outside the dataset's ${d.n}`);
  return [
    gpu.kernel({
      shader: 'batch',
      entry: 'eval_batch',
      params: params(d, s.batch, 1, 0, s.offset, 0, { flip: s.flip }, s.normalize ?? d.normalize ?? IDENTITY),
      bindings: [d.images, d.labels, io.x, io.labels],
      workgroups: [s.batch],
      label: `gather eval ${s.batch}@${s.offset}${s.flip ? ' mirrored' : ''}`,
      work: gatherWork(s.batch, d, false, false),
    }),
  ];
}

/**
 * Images at `indices` (default: all) as the network's input, n×channels×rows×cols: pixel/255, then
 * the dataset's own per-channel normalisation when it has one (as training's batches are).
 */
export function imagesOf(
  ds: Dataset,
  indices: readonly number[] = Array.from({ length: ds.n }, (_, i) => i),
): Float32Array {
  const px = imageBytes(ds);
  const plane = ds.rows * ds.cols;
  const norms = Array.from({ length: channelsOf(ds) }, (_, c) =>
    ds.normalize ? channelNorm(ds.normalize, c) : { mean: 0, std: 1 },
  );
  const out = new Float32Array(indices.length * px);
  indices.forEach((idx, i) => {
    for (let j = 0; j < px; j++) {
      const { mean, std } = norms[Math.floor(j / plane)]!;
      out[i * px + j] = (ds.images[idx * px + j]! / 255 - mean) / std;
    }
  });
  return out;
}
