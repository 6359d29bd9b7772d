// Tiles and split-K of the tiled GEMM kernels (shaders/lib/gemm.wgsl: matmul and the three conv2d
// passes): which tile, register block and split each GEMM gets on this adapter, their override
// constants and cost description, and the split-K reduction's dispatch. The lane kernels of CPU
// adapters (lanes.ts) have their own tiles.
//
// The rule, for a GEMM of rows × cols over `inner` on an adapter of `units` compute units
// (GpuTuning.units), aiming at target = 2·units workgroups:
//   1. Candidates: tiles bm × bn (16 to 128 a side, no larger than the GEMM rounded up to a power of
//      two) of 4×4 blocks, rb × cb per thread (4×4, 4×8, 8×4 or 8×8 outputs), 16 to gemmSide² threads
//      (at most gemmSide a side), at most 32 values fetched per thread and step, 16 KB of workgroup
//      memory (WebGPU's default limit), and what the kernel's fetch needs (`columnRuns`, `sums`,
//      `columnTable`); 32 threads (a warp) at least unless nothing else fits.
//   2. Each candidate splits K when a split is allowed (a partial-sums buffer can be given), K is
//      over 8 steps, and its tiles alone are fewer than the target, or are a few waves (under four
//      times the target) of K loops over 64 steps (a chain the cost model flags): chunks of whole
//      16-deep steps, as many as reach the target and bring the loop to 64 steps, choosing among up
//      to twice that many the count whose workgroups spread most evenly over the units, then the
//      steps dealt out evenly (every chunk as short as that count allows: the longest chunk is the
//      pass's time); never more than 1,024 splits or 16 MB of partial sums.
//   3. Of those that reach the target: the most FMAs per workgroup-memory word (8×8, then 4×8/8×4,
//      then 4×4), then the most even spread over the units (in tenths), then no split, then the
//      least padding, then the largest tile. If none reaches it: the most workgroups (a small
//      GEMM's time is its longest chain, shortest in the smallest tiles), then as above.
// Where the units come from: GpuTuning.units, which the Gpu's opener sets (the cost tool from its
// device profile); a launcher never reads a device name.
// A tile is unchecked (GEMM_CHECKED false, no bounds tests) when rows, columns and every split's K
// range divide it exactly.
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import {
  BK,
  chainWork,
  DEFAULT_SHARED,
  f32Bytes,
  stageBytes,
  tiledGemm,
  treeBarriers,
  type GemmTiles,
  type Work,
} from '../gpu/work.ts';

const SIDES = [16, 32, 64, 128] as const;
/** Fetched values per thread and step that the kernels' register arrays hold (gemm_pa, gemm_pb). */
const MAX_FETCH = 32;
/** K-steps at or below which a GEMM is not split: the reduction would cost more than it saves. */
const MIN_SPLIT_STEPS = 8;
/** K-steps above which a few waves' loops are split even when the tiles fill the device (a flagged chain). */
export const MAX_STEPS = 64;
export const MAX_SPLITS = 1024;
/** Floats of partial sums at most (16 MB): a GEMM whose output is larger is not split. */
export const MAX_PARTS = 1 << 22;

/** bm × bn outputs per workgroup, rb × cb blocks of 4×4 per thread. */
export interface Tile {
  bm: number;
  bn: number;
  rb: 1 | 2;
  cb: 1 | 2;
}

export const threadsOf = (t: Tile): number => (t.bm * t.bn) / (16 * t.rb * t.cb);

/** What a GEMM asks of its tile. */
export interface GemmNeeds {
  rows: number;
  cols: number;
  inner: number;
  /**
   * B's columns fetched in runs down K (fetch order 2, the conv gathers): a thread's one column
   * (threads a multiple of bn) or two (threads half of bn), each decoded once.
   */
  columnRuns?: boolean;
  /** Row sums of A (1) or column sums of B (2) alongside: a thread per tile row (column). */
  sums?: 0 | 1 | 2;
  /** The tile's columns decoded into a workgroup table (16 bytes each), once per workgroup. */
  columnTable?: boolean;
  /** Independent GEMMs of this size in one dispatch (stride phases): workgroups count each. */
  copies?: number;
  /** Some workgroups' GEMMs are smaller than rows × cols × inner (stride phases): always checked. */
  ragged?: boolean;
  /** Whether K may be split (a partial-sums buffer can be given). */
  split: boolean;
  /** Workgroups to aim at (tests); else 2·gpu.units. */
  target?: number;
  /**
   * Each tile holds whole rows: every column, and all the rows or a band of whole 32-row groups (a row-wise
   * epilogue with the loss pass's 32-row sums: shaders/matmul_xent.wgsl).
   */
  wholeRows?: boolean;
}

export interface GemmPlan {
  tile: Tile;
  threads: number;
  rowTiles: number;
  colTiles: number;
  /** K is split `splits` ways, `chunk` inner indices each (a multiple of BK; inner when not split). */
  splits: number;
  chunk: number;
  /** Inner indices a K-step multiplies (GEMM_KK): BK, or the whole inner dimension where it is shorter. */
  stepK: number;
  checked: boolean;
}

const fits = (n: number): number => Math.min(128, Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, n)))));

function candidates(gpu: Gpu, need: GemmNeeds, minThreads: number): Tile[] {
  const out: Tile[] = [];
  for (const bm of SIDES)
    for (const bn of SIDES)
      for (const rb of [1, 2] as const)
        for (const cb of [1, 2] as const) {
          const t = { bm, bn, rb, cb };
          const [tx, ty, threads] = [bn / (4 * cb), bm / (4 * rb), threadsOf(t)];
          if (tx < 1 || ty < 1 || tx > gpu.gemmSide || ty > gpu.gemmSide || threads < minThreads) continue;
          if ((BK * bm) / threads > MAX_FETCH || (BK * bn) / threads > MAX_FETCH) continue;
          if (bm > fits(need.rows) || bn > fits(need.cols)) continue;
          if (need.wholeRows && (bn < need.cols || (bm < need.rows && bm % 32 !== 0))) continue;
          if (need.columnRuns && threads % bn !== 0 && bn !== 2 * threads) continue;
          if ((need.sums === 1 && threads < bm) || (need.sums === 2 && threads < bn)) continue;
          if (stageBytes(bm + bn) + (need.columnTable ? 16 * bn : 0) > DEFAULT_SHARED) continue;
          out.push(t);
        }
  return out;
}

/** How evenly w workgroups spread over the units: 1 when every unit has as many as the busiest. */
const spread = (w: number, units: number): number => w / units / Math.ceil(w / units);

/**
 * Splits of K for `tiles` tiles of a GEMM of `outputs` values: chunks of whole steps, among enough
 * splits the count whose workgroups spread most evenly, each as short as that count allows (72 steps in
 * 4 splits are chunks of 18, not 23, 23, 23 and 3); one when not worth it (rule 2 above).
 */
export function splitK(
  tiles: number,
  inner: number,
  o: { target: number; units: number; allowed: boolean; outputs: number },
): { splits: number; chunk: number } {
  const steps = ceilDiv(inner, BK);
  const fill = tiles < o.target;
  const deep = tiles < 4 * o.target ? ceilDiv(steps, MAX_STEPS) : 1;
  const most = Math.min(MAX_SPLITS, Math.floor(MAX_PARTS / o.outputs), steps);
  if (!o.allowed || steps <= MIN_SPLIT_STEPS || (!fill && deep <= 1) || most < 2)
    return { splits: 1, chunk: steps * BK };
  const want = Math.min(Math.max(fill ? ceilDiv(o.target, tiles) : 1, deep), most);
  const top = Math.max(1, Math.floor(inner / want / BK));
  // Chunks of k steps make ⌈steps / k⌉ splits; ⌈steps / splits⌉ steps a chunk make as many, evenly.
  let best = ceilDiv(steps, top);
  for (let k = top - 1; k >= Math.max(1, Math.floor(top / 2)); k--) {
    const splits = ceilDiv(steps, k);
    if (splits > most) break;
    if (spread(tiles * splits, o.units) > spread(tiles * best, o.units) + 1e-9) best = splits;
  }
  return { splits: best, chunk: ceilDiv(steps, best) * BK };
}

type Scored = { plan: GemmPlan; key: number[] };

function score(gpu: Gpu, need: GemmNeeds, tile: Tile, target: number): Scored {
  const [rowTiles, colTiles] = [ceilDiv(need.rows, tile.bm), ceilDiv(need.cols, tile.bn)];
  const tiles = rowTiles * colTiles * (need.copies ?? 1);
  const outputs = need.rows * need.cols * (need.copies ?? 1);
  const { splits, chunk } = splitK(tiles, need.inner, { target, units: gpu.units, allowed: need.split, outputs });
  const exact = need.rows % tile.bm === 0 && need.cols % tile.bn === 0 && need.inner % BK === 0;
  const [threads, stepK, checked] = [threadsOf(tile), Math.max(1, Math.min(BK, need.inner)), need.ragged || !exact];
  const plan = { tile, threads, rowTiles, colTiles, splits, chunk, stepK, checked };
  const w = tiles * splits;
  const block = (16 * tile.rb * tile.cb) / (4 * (tile.rb + tile.cb)); // FMAs per workgroup-memory word
  const waste = (rowTiles * tile.bm * colTiles * tile.bn) / (need.rows * need.cols);
  // Spread in tenths: a difference of a few per cent is not worth smaller tiles.
  const rest = [Math.round(10 * spread(w, gpu.units)), splits === 1 ? 1 : 0, -waste, tile.bm * tile.bn];
  return { plan, key: w >= target ? [1, block, ...rest] : [0, w, block, ...rest] };
}

const better = (a: number[], b: number[]): boolean => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) > (b[i] ?? 0);
  return false;
};

/** The tile and split of a GEMM on this adapter (the rule at the top of this file). */
export function chooseGemm(gpu: Gpu, need: GemmNeeds): GemmPlan {
  const target = need.target ?? 2 * gpu.units;
  let best: Scored | null = null;
  // A warp (32 threads) at least, unless only a 16×16 tile fits the GEMM.
  const tiles = candidates(gpu, need, 32);
  for (const tile of tiles.length > 0 ? tiles : candidates(gpu, need, 16)) {
    const s = score(gpu, need, tile, target);
    if (!best || better(s.key, best.key)) best = s;
  }
  if (!best) throw new ShapeError(`no GEMM tile fits ${need.rows}x${need.cols}x${need.inner} on this adapter`);
  return best.plan;
}

/** The GEMM core's override constants for this plan: tile, block, checks, fetch orders, sums. */
export function gemmConstants(
  p: GemmPlan,
  o: { a: 0 | 1 | 2; b: 0 | 1 | 2; sums?: 0 | 1 | 2 },
): Record<string, number> {
  const { bm, bn, rb, cb } = p.tile;
  return {
    GEMM_BM: bm,
    GEMM_BN: bn,
    GEMM_RB: rb,
    GEMM_CB: cb,
    GEMM_CHECKED: p.checked ? 1 : 0,
    GEMM_A_ORDER: o.a,
    GEMM_B_ORDER: o.b,
    GEMM_SUMS: o.sums ?? 0,
    ...(p.stepK < BK ? { GEMM_KK: p.stepK } : {}),
  };
}

/** The cost description of a plan's GEMM dispatch: `tiles` workgroups (phases included), K-steps of a split. */
export function planWork(
  p: GemmPlan,
  g: Omit<GemmTiles, 'tileM' | 'tileN' | 'kSteps'>,
  o: { sums?: 0 | 1 | 2; steps?: number } = {},
): Work {
  const { bm, bn, rb, cb } = p.tile;
  const kSteps = ceilDiv(Math.min(p.chunk, o.steps ?? g.inner), BK);
  const block = { threads: p.threads, rowsPerThread: 4 * rb, colsPerThread: 4 * cb, sums: o.sums ?? 0 };
  return tiledGemm({ ...g, tileM: bm, tileN: bn, tileK: p.stepK, kSteps: Math.max(1, kSteps) }, block);
}

/** Floats of a split plan's partial sums: splits × the output tile (rows × cols, sums included). */
export const partsLength = (p: GemmPlan, rows: number, cols: number): number =>
  p.splits > 1 ? p.splits * rows * cols : 0;

/** The partial-sums buffer a split plan needs, or a ShapeError naming its size. */
export function needParts(
  p: { splits: number },
  parts: BufferRef | undefined,
  what: string,
  len: number,
): BufferRef | null {
  if (p.splits <= 1) return null;
  if (parts === undefined)
    throw new ShapeError(`${what} splits its sum ${p.splits} ways and needs a partial-sums buffer of ${len} floats`);
  return parts;
}

/** The shaders built on lib/gemm.wgsl. */
export type GemmShader =
  | 'matmul'
  | 'matmul_fused'
  | 'matmul_add'
  | 'matmul_chain'
  | 'matmul_xent'
  | 'conv2d_forward'
  | 'conv2d_forward_pool'
  | 'conv2d_forward_add'
  | 'conv2d_forward_gather'
  | 'conv2d_forward_pool_gather'
  | 'conv2d_backward_input'
  | 'conv2d_backward_input_chain'
  | 'conv2d_backward_weights';

/** Partials one thread of a split-K reduction adds up, at most (reduce_splits walks them in order). */
const PARTIALS_PER_THREAD = 16;

/** Threads per output of a split-K reduction (GEMM_RED_Y): a power of two, none walking over 16 partials. */
export const redThreads = (splits: number): number =>
  Math.min(256, 2 ** Math.ceil(Math.log2(ceilDiv(splits, PARTIALS_PER_THREAD))));

/**
 * Whether a reader may add up `splits` split-K partials on its way instead of a reduce pass (a pooling
 * chain, a backward chain, a batchnorm's statistics): 2 to 16, one reduce_splits thread's order, so the
 * sums are the reduce pass's bit for bit.
 */
export const readerSums = (splits: number): boolean =>
  Number.isInteger(splits) && splits >= 2 && splits <= PARTIALS_PER_THREAD;

/**
 * The split-K reduction (reduce_splits of lib/gemm.wgsl in `shader`): `len` outputs (sums included)
 * from `splits` partials each, no thread walking more than 16 of them: RED_Y threads per output
 * (a power of two) then a fixed tree, deterministic.
 */
export function reduceSplits(
  gpu: Gpu,
  o: {
    shader: GemmShader;
    params: Uniform;
    constants: Record<string, number>;
    bindings: (BufferRef | null)[];
    len: number;
    splits: number;
    label: string;
    bytesRead?: number;
    /** Bytes the epilogue writes besides the outputs (a fused dropout's output). */
    bytesWritten?: number;
  },
): Dispatch {
  const redY = redThreads(o.splits);
  return gpu.kernel({
    shader: o.shader,
    entry: 'reduce_splits',
    params: o.params,
    constants: { ...o.constants, GEMM_RED_Y: redY },
    bindings: o.bindings,
    workgroups: grid(ceilDiv(o.len, 256 / redY)),
    label: o.label,
    work: chainWork({
      flops: o.splits * o.len,
      bytesRead: f32Bytes(o.splits * o.len) + (o.bytesRead ?? 0),
      bytesWritten: f32Bytes(o.len) + (o.bytesWritten ?? 0),
      threads: 256,
      depth: ceilDiv(o.splits, redY),
      barriers: redY > 1 ? treeBarriers(redY) : 0,
      sharedBytes: 1024,
    }),
  });
}

/** One tiled GEMM pass as its dispatches: main, or main_split and reduce_splits when the plan splits K. */
export interface GemmPass {
  shader: GemmShader;
  plan: GemmPlan;
  params: Uniform;
  /** Every constant of main (tile and variant); `epilogue` those of reduce_splits (variant only). */
  constants: Record<string, number>;
  epilogue: Record<string, number>;
  /** The fetch's bindings (1, 2, …), then the epilogue's. */
  inputs: BufferRef[];
  outputs: (BufferRef | null)[];
  /** Buffers among the bindings the (unsplit) dispatch owns (KernelSpec.owns). */
  owns?: GPUBuffer[];
  parts: BufferRef | null;
  /** The split pass alone: its partials in `parts` are the output, summed by their reader (no reduce pass). */
  unsummed?: boolean;
  /** Workgroups of one split: (x, y) or (x, y, stride phases). */
  workgroups: readonly [number, number, number?];
  label: string;
  /** The useful GEMM and the bytes: A and B (`bytesRead`), the epilogue's own reads and its outputs. */
  work: Omit<GemmTiles, 'tileM' | 'tileN' | 'kSteps' | 'tiles'> & {
    epilogueReads?: number;
    epilogueWrites?: number;
    steps?: number;
  };
  sums?: 0 | 1 | 2;
  /** Outputs of a partial tile, sums included. */
  len: number;
}

export function gemmDispatches(gpu: Gpu, o: GemmPass): Dispatch[] {
  const p = o.plan;
  const [x, y, z = 1] = o.workgroups;
  const { epilogueReads = 0, epilogueWrites = 0, steps, ...g } = o.work;
  const tiles = x * y * z * p.splits;
  const opts = { sums: o.sums ?? 0, steps };
  const split = p.splits > 1 ? ` split ${p.splits}` : '';
  if (!o.parts)
    return [
      gpu.kernel({
        shader: o.shader,
        params: o.params,
        constants: o.constants,
        bindings: [...o.inputs, ...o.outputs],
        owns: o.owns,
        workgroups: [x, y, z],
        label: o.label,
        work: planWork(
          p,
          { ...g, tiles, bytesRead: g.bytesRead + epilogueReads, bytesWritten: g.bytesWritten + epilogueWrites },
          opts,
        ),
      }),
    ];
  const splitPass = gpu.kernel({
    shader: o.shader,
    entry: 'main_split',
    params: o.params,
    constants: o.constants,
    bindings: [...o.inputs, o.parts],
    workgroups: [x, y, z * p.splits],
    label: `${o.label}${split}`,
    work: planWork(p, { ...g, tiles, bytesWritten: f32Bytes(p.splits * o.len) }, opts),
  });
  if (o.unsummed) return [splitPass];
  return [
    splitPass,
    reduceSplits(gpu, {
      shader: o.shader,
      params: o.params,
      constants: o.epilogue,
      bindings: [o.parts, ...o.inputs.slice(1).map(() => null), ...o.outputs],
      len: o.len,
      splits: p.splits,
      label: `${o.label} reduce ${p.splits} splits`,
      bytesRead: epilogueReads,
      bytesWritten: epilogueWrites,
    }),
  ];
}
