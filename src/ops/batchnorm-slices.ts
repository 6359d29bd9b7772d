// How a batch norm's training passes cut each channel into slices on an adapter (or take it whole), their
// pipeline constants and the work a slice pass does: shaders/batchnorm.wgsl's header, src/ops/batchnorm.ts.
import type { AdapterReport, Gpu } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, treeBarriers, type Work } from '../gpu/work.ts';
import type { Act } from '../../dsl/ir.ts';
import { actConstants } from './act.ts';
import type { BatchnormShape } from './batchnorm.ts';

/**
 * What sizes a slice pass: the adapter's compute units, its workgroups' threads (GpuTuning.treeThreads), and
 * whether it is a CPU adapter (its workgroups run as loops: no load latency to hide).
 */
export type BnDevice = Pick<Gpu, 'units' | 'treeThreads'> & { adapter: Pick<AdapterReport, 'cpu'> };

/**
 * A slice pass's pipeline constants: its activation's and its workgroup's threads (the shader's WG,
 * GpuTuning.treeThreads: a power of two, at most the 256 its trees hold).
 */
export const sliceConstants = (gpu: BnDevice, act?: Act, whole = false) => ({
  ...actConstants(act),
  WG: gpu.treeThreads,
  WHOLE: whole ? 1 : 0,
});
/** The most elements a thread walks in a slice pass (each pass: a chain of this many loads) where M allows. */
const DEPTH = 64;
/**
 * The most elements a thread walks to take its channel whole (bnWhole), whatever the channels' workgroups
 * fill: its pass then walks them 3 times in place of 2 dispatches' 2 and 1 (a GPU's dispatch gap, about
 * 5 µs, is longer than 16 loads' latency).
 */
const WHOLE_DEPTH = 16;

/**
 * Slices per channel and elements per slice: one where a thread walks at most WHOLE_DEPTH of them; else two
 * workgroups per compute unit where M allows, and on a GPU ≤ DEPTH per thread where at most WG slices allow.
 * A CPU adapter's threads walk any length (its workgroups run as loops: lavapipe, fast.net at batch 64, 45 →
 * 35 dispatches a step and 120 → 136 images/s with its channels whole).
 */
export function bnSlices(gpu: BnDevice, s: BatchnormShape): { slices: number; len: number } {
  const wg = gpu.treeThreads;
  const m = s.n * s.hw;
  const most = Math.max(1, Math.min(wg, Math.ceil(m / wg)));
  const depth = gpu.adapter.cpu ? 1 : Math.ceil(m / (wg * DEPTH));
  const fill = Math.max(Math.ceil((2 * gpu.units) / s.c), depth);
  const want = s.slices ?? (m <= wg * WHOLE_DEPTH ? 1 : fill);
  const len = Math.ceil(m / Math.max(1, Math.min(most, want)));
  return { slices: Math.ceil(m / len), len };
}

/**
 * Whether a training pass takes each channel whole (one slice): its statistics (backward: sums) are then made
 * in the pass that uses them, one dispatch each way (shaders/batchnorm.wgsl WHOLE). Not over a conv's
 * split-K partials (stats_parts writes the conv's output first).
 */
export const bnWhole = (gpu: BnDevice, s: BatchnormShape, parts = false): boolean =>
  !parts && s.whole !== false && bnSlices(gpu, s).slices === 1;

/** Floats of the partial statistics buffer (forward: 3 per slice; the backward's 2 fit in it). */
export const bnPartials = (gpu: BnDevice, s: BatchnormShape): number => 3 * s.c * bnSlices(gpu, s).slices;

/**
 * A slice pass: (S, C) workgroups of WG threads, each walking ⌈L/WG⌉ elements `passes` times (a chain of
 * loads), after `combine` a tree over the S partials and after each sum a tree over WG.
 */
export function sliced(s: BatchnormShape, gpu: BnDevice, o: { passes: number; trees: number; combine: boolean }): Work {
  const { slices, len } = bnSlices(gpu, s);
  const wg = gpu.treeThreads;
  const per = Math.ceil(len / wg);
  const tree = 2 ** Math.ceil(Math.log2(slices));
  return chainWork({
    flops: 4 * o.passes * s.n * s.c * s.hw,
    bytesRead: 0,
    bytesWritten: 0,
    threads: wg,
    depth: o.passes * per + (o.combine ? 1 : 0),
    barriers: o.trees * treeBarriers(wg) + (o.combine ? treeBarriers(tree) : 0),
    sharedBytes: 4 * 256 * 3, // the shader's three trees, whatever WG
  });
}

/** `sliced` with the bytes each pass reads and writes: `tensors` and `written` full tensors, plus vectors. */
export function withBytes(
  w: Work,
  count: number,
  tensors: number,
  written: number,
  vectors: number,
  out: number,
): Work {
  return { ...w, bytesRead: f32Bytes(tensors * count, vectors), bytesWritten: f32Bytes(written * count, out) };
}

/**
 * A training pass's walks and trees: the statistics combined first, or (whole channels) made first, as stats
 * makes them (two walks and two trees more).
 */
export const trainWork = (gpu: BnDevice, s: BatchnormShape, whole: boolean): Work =>
  sliced(s, gpu, whole ? { passes: 3, trees: 2, combine: false } : { passes: 1, trees: 0, combine: true });
