// A first conv that gathers its training batch in its forward (shaders/lib/conv_in_gather.wgsl), so the
// gather (shaders/batch.wgsl train_batch) has no dispatch of its own: where this adapter runs it, the
// bindings it adds, and what it adds to the forward's work. conv2d.ts conv2dForward launches it; the
// planner (src/graph/plan.ts, PlanOptions.gather) chooses it.
import { gatherBytes, type GatherIn } from '../data/batch.ts';
import { ShapeError } from '../errors.ts';
import type { BufferRef, Gpu } from '../gpu/runtime.ts';
import { bindsStorage } from '../gpu/pair.ts';
import { BK, sharedLimit, stageBytes, type GatherFetch } from '../gpu/work.ts';
import { conv2dGeometry, forwardPlan, poolWindows, type Conv2dShape } from './conv2d_plan.ts';
import type { GemmPlan } from './gemm.ts';

/** The gather a forward runs: the dataset's side, and where the batch's labels go (the loss reads them). */
export interface ConvGather {
  from: GatherIn;
  labels: BufferRef;
}

/** The input values a workgroup stages at most (4 KB; lib/conv_in_gather.wgsl's override GATHER_PATCH). */
const GATHER_PATCH = 1024;

/**
 * Whether conv `s` (pooling 2×2 in its epilogue or not) can gather its batch in its forward here: a tiled
 * forward in one pass (the lane kernels, and a forward that would split, keep the gather's own dispatch)
 * that fits (gathersWith).
 */
export function forwardGathers(gpu: Gpu, s: Conv2dShape, pooled: boolean): boolean {
  if (gpu.lanes > 0 || (!pooled && forwardPlan(gpu, s, {}).splits > 1)) return false;
  return gathersWith(gpu, forwardPlan(gpu, s, { split: false }), pooled);
}

/**
 * Whether a gathering forward of unsplit tiled plan `p` fits: its tiles and patch in workgroup memory, its
 * storage buffers.
 */
export function gathersWith(gpu: Gpu, p: GemmPlan, pooled: boolean): boolean {
  if (stageBytes(p.tile.bm + p.tile.bn) + 4 * GATHER_PATCH > sharedLimit(gpu)) return false;
  const shader = pooled ? 'conv2d_forward_pool_gather' : 'conv2d_forward_gather';
  return bindsStorage(gpu, { shader, entry: 'main' });
}

/**
 * Bindings 5–13 of a gathering forward after its own (pooled: 1–7; else 1–4), and the buffer it owns: the
 * gather's settings as storage (the conv keeps its uniform for its own).
 */
export function gatherBindings(gpu: Gpu, g: ConvGather, pooled: boolean) {
  const { data, indices, counter } = g.from;
  const settings = gpu.uniformAsStorage('batch', 'train_batch', g.from.settings, `gather settings ${g.from.batch}`);
  const bindings = [...(pooled ? [] : [null, null, null]), settings, data.images, data.labels, indices, counter];
  return { bindings: [...bindings, g.labels], owns: [settings] };
}

/** The gathering module's constants: GATHER_AUGMENT off where nothing is augmented. */
export const gatherConstants = (g: ConvGather): Record<string, number> => ({
  GATHER_AUGMENT: g.from.augmented ? 1 : 0,
  GATHER_PATCH,
});

/** Why a conv cannot gather the batch here: the adapter's. */
export const ownPass = (what: string): string => `${what}: this adapter gathers the batch in its own pass`;

/**
 * A ShapeError unless conv `s` takes the gathered batch as it is, in one pass of the tiled kernels (not
 * `unsummed`). Whether the plan it launches fits is gathersWith's.
 */
export function checkGather(gpu: Gpu, s: Conv2dShape, g: ConvGather, o: { what: string; unsummed?: boolean }): void {
  const d = g.from.data;
  const [c, batch] = [d.c ?? 1, g.from.batch];
  if (s.n !== batch || s.c !== c || s.h !== d.h || s.w !== d.w)
    throw new ShapeError(
      `${o.what} takes ${s.n}x${s.c}x${s.h}x${s.w} but the gathered batch is ${batch}x${c}x${d.h}x${d.w}`,
    );
  if (o.unsummed || gpu.lanes > 0) throw new ShapeError(ownPass(o.what));
}

// ALU ops per gathered value beyond a plain load (estimates, counted from lib/augment.wgsl): without
// augmentation the byte's address, extraction, scaling and normalisation; with it, the erase test, flip,
// shift and bounds besides; a bilinear value four of those pixels and its interpolation. A draw: five
// hashes and the rotation's series; an erase adds its tries (two, typically).
const PLAIN_OPS = 8;
const VALUE_OPS = 20;
const BILINEAR_OPS = 70;
const DRAW_OPS = 60;
const ERASE_OPS = 80;
/** A staged value's workgroup-memory address, beyond a global one's. */
const STAGED_OPS = 2;
/** A decoded value's store: its index split into channel, row and column, and the address. */
const STORE_OPS = 4;

/**
 * The input values a tile of `tileN` columns stages (C × its input rows × W), at most: its columns span
 * that many output rows (twice the pooled rows, pooled), each reading KH input rows (strided SH apart).
 */
function patchValues(s: Conv2dShape, tileN: number, pooled: boolean): number {
  const { oh, ow } = conv2dGeometry(s);
  const windows = Math.floor(ow / 2); // a row of windows (lib/conv_out_pool.wgsl)
  const outRows = pooled ? 2 * (Math.ceil((tileN / 4 - 1) / windows) + 1) : Math.ceil((tileN - 1) / ow) + 1;
  return s.c * Math.min(s.h, (Math.min(outRows, oh) - 1) * s.strideH + s.kh) * s.w;
}

/**
 * What the gather changes in the forward's description: the dataset's bytes read instead of x's f32s
 * (once: the row tiles' and taps' re-reads are left to the cache), x and the labels written, and the
 * decoding. A tile of one batch row whose input rows fit the patch (`staged`: the share of tiles that stay
 * in one row, by where a run of tileN columns starts) decodes its share of them once a thread and reads
 * each value it fetches from workgroup memory; the others decode every value they fetch. Once per thread
 * besides: its draws, and its run of x's values (counted for every workgroup, though only row tile 0's
 * write: an upper bound).
 */
export function convGatherWork(
  s: Conv2dShape,
  g: ConvGather,
  tiles: { tileN: number; threads: number; colTiles: number; pooled: boolean },
): { bytesRead: number; bytesWritten: number; extraShared: number; gather: GatherFetch } {
  const pixels = s.n * s.c * s.h * s.w;
  const value = g.from.bilinear ? BILINEAR_OPS : g.from.augmented ? VALUE_OPS : PLAIN_OPS;
  const draw = g.from.augmented ? DRAW_OPS + (g.from.erase ? ERASE_OPS : 0) : 0;
  const run = Math.ceil(pixels / (tiles.colTiles * tiles.threads));
  const patch = patchValues(s, tiles.tileN, tiles.pooled);
  const { oh, ow } = conv2dGeometry(s);
  // An image's columns in row order: a pooled odd output's uncovered ones come after all images' windows.
  const ordered = tiles.pooled ? 4 * poolWindows({ oh, ow }) : oh * ow;
  const staged = patch <= GATHER_PATCH ? (ordered / (oh * ow)) * Math.max(0, 1 - (tiles.tileN - 1) / ordered) : 0;
  const fetched = (tiles.tileN * BK) / tiles.threads;
  // The columns a thread fetches (gemm.wgsl fetch order 2), each drawing its row's transform unstaged.
  const columns = Math.max(1, tiles.tileN / tiles.threads);
  return {
    ...gatherBytes(s.n, g.from.data, true, g.from.bilinear),
    extraShared: 4 * GATHER_PATCH,
    gather: {
      stepOps: fetched * (staged * STAGED_OPS + (1 - staged) * value),
      // The draws: the staging's (or the columns') and conv_in_finish's; a value decoded and its store's address.
      onceOps:
        (staged + (1 - staged) * columns + 1) * draw +
        (staged * Math.ceil(patch / tiles.threads) + run) * (value + STORE_OPS),
      loads: 3, // the step, the sample's index, a pixel
    },
  };
}
