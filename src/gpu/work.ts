// What a dispatch computes and moves, as its launcher describes it beside the dispatch
// (KernelSpec.work → Dispatch.work): the input of the cost model (cost.ts). Counts are for the
// whole dispatch unless they say "per thread".
//   flops          2 per multiply-add the math needs (a conv: 2·N·K·C·KH·KW·OH·OW), 1 per other op
//   paddedFlops    what the threads execute, the zeros of partial tiles included (≥ flops)
//   bytesRead      each tensor read counted once, however often it is read; bytesWritten alike
//   threads        per workgroup; sharedBytes: workgroup memory per workgroup
//   shape          how the work lies on the threads:
//     gemm    a register-tiled GEMM (lib/gemm.wgsl, lib/lanes.wgsl): a tileM×tileN output tile per
//             workgroup, kSteps steps of tileK down the inner dimension; per thread and step its
//             workgroup-memory and global loads; its rowsPerThread×colsPerThread accumulators, and
//             `indexed`: they sit in an array indexed in loops whose trip counts the shader compiler
//             does not see as constants (Tint guards such loops), so they leave registers (the
//             b46cd8a kernels, `let tm = BM / T`); false where every such loop has a constant bound
//     stream  elements spread over threads (one per thread on a GPU): perThread elements each, and
//             `loads` dependent global loads per element (a pool window: one per cell)
//     chain   a serial loop in every thread: `depth` dependent global loads, then `barriers`
//             workgroup barriers (a reduction tree)
//     pair    two GEMMs' workgroups in one dispatch (src/gpu/pair.ts), each half as it was described
import { LANE_DEPTH } from './lane-step.ts';

export interface GemmShape {
  kind: 'gemm';
  tileM: number;
  tileN: number;
  tileK: number;
  /** Steps one workgroup takes down the inner dimension (a split-K workgroup: down its chunk). */
  kSteps: number;
  rowsPerThread: number;
  colsPerThread: number;
  /** Workgroup-memory loads per thread per step. */
  sharedLoads: number;
  /** Global loads per thread per step. */
  globalLoads: number;
  /** Accumulators in an array the compiler cannot unroll (they leave registers). */
  indexed: boolean;
  /** An operand decoded as it is fetched (a first conv gathering its batch): the work it adds. */
  gather?: GatherFetch;
  /**
   * Operands transformed as they are fetched and the products transformed back (Winograd's F(2×2, 3×3):
   * src/ops/conv2d_winograd.ts): priced as a gather's decode (the ops in the K loop, the ops once), no loads.
   */
  transform?: GatherFetch;
  /**
   * Bytes of its workgroup memory in lib/gemm.wgsl's staging array (gemm_ab), which a pair shares whole,
   * where that is not the tiles' BK-deep slices (a Winograd pass keeps all of it there).
   */
  staged?: number;
  /**
   * A row-wise epilogue after the K loop, a serial chain in every thread (a loss over each row of the tile:
   * shaders/matmul_xent.wgsl): its dependent global loads and workgroup barriers, priced as a chain's.
   */
  tail?: ChainTail;
}

export interface ChainTail {
  loads: number;
  barriers: number;
}

/**
 * What decoding an operand as it is fetched adds to a GEMM (src/ops/conv2d_gather.ts): ALU ops per thread
 * per step (in the K loop, beside the FMAs), ops per thread once, outside the loop (values decoded into
 * workgroup memory, the draws, values written beside), and the dependent global loads before the first
 * step. The cost model issues the step's ops as it issues the FMAs (at the GEMM factor), the ops once at
 * the FMA issue rate, and the loads as a latency chain (at the chain factor, as the gather's own pass).
 */
export interface GatherFetch {
  stepOps: number;
  onceOps: number;
  loads: number;
}

export interface StreamShape {
  kind: 'stream';
  perThread: number;
  loads: number;
}

export interface ChainShape {
  kind: 'chain';
  depth: number;
  barriers: number;
}

/** One of a pair's halves: its workgroups and its work as alone. */
export interface PairHalf {
  label: string;
  workgroups: number;
  work: Work;
}

export interface PairShape {
  kind: 'pair';
  halves: readonly [PairHalf, PairHalf];
}

export type WorkShape = GemmShape | StreamShape | ChainShape | PairShape;

export interface Work {
  flops: number;
  paddedFlops: number;
  bytesRead: number;
  bytesWritten: number;
  threads: number;
  sharedBytes: number;
  shape: WorkShape;
}

/** Bytes of f32 (or u32) tensors of these element counts. */
export const f32Bytes = (...counts: number[]): number => 4 * counts.reduce((a, b) => a + b, 0);

/** The K-step depth of the tiled GEMMs (lib/gemm.wgsl GEMM_BK). */
export const BK = 16;

/** Workgroup memory of `n` rows (or columns) of a tiled GEMM's staged operand: one BK-deep slice, 4 bytes each. */
export const stageBytes = (n: number): number => 4 * BK * n;

/** WebGPU's default maxComputeWorkgroupStorageSize: every GEMM tile keeps within it (src/ops/gemm.ts). */
export const DEFAULT_SHARED = 16384;

/**
 * The workgroup memory a kernel may declare on this device (its maxComputeWorkgroupStorageSize, which the
 * device asks of the adapter): what a pair (pair.ts) or a gathering conv's staged input may add to tiles.
 */
export const sharedLimit = (gpu: { limits: Partial<GPUSupportedLimits> }): number =>
  gpu.limits.maxComputeWorkgroupStorageSize ?? DEFAULT_SHARED;

/** The tiles, steps and tensor bytes of one GEMM-shaped dispatch. */
export interface GemmTiles {
  /** The useful GEMM: rows × cols outputs over `inner`. */
  rows: number;
  cols: number;
  inner: number;
  /** Output tiles (× splits or stride phases: every workgroup that computes one). */
  tiles: number;
  tileM: number;
  tileN: number;
  /** Inner indices a step multiplies: BK, or a whole inner dimension shorter than BK (lib/gemm.wgsl GEMM_KK). */
  tileK?: number;
  kSteps: number;
  bytesRead: number;
  bytesWritten: number;
  /** Workgroup memory beyond the staged slices (lib/gemm.wgsl gemm_ab) (the weight gradient's decoded taps). */
  extraShared?: number;
  gather?: GatherFetch;
  tail?: ChainTail;
}

/**
 * How a tiled GEMM's workgroup holds its tile (src/ops/gemm.ts): threads, each a rowsPerThread ×
 * colsPerThread register tile; `sums` 1 (2): the threads of tile row (column) 0 also add up a
 * slice's rows of A (columns of B) from workgroup memory (a bias gradient).
 */
export interface GemmBlock {
  threads: number;
  rowsPerThread: number;
  colsPerThread: number;
  sums: 0 | 1 | 2;
}

/**
 * A tiled GEMM of lib/gemm.wgsl: tileK 16 (or the whole inner dimension where it is shorter: t.tileK),
 * operands staged in workgroup memory (gemm_ab: 4 bytes per element). Its workgroup-memory loads are
 * counted in 32-bit words per thread and step, as the cost model's wavefronts are (one warp-wide 32-bit
 * access each): a vec4 read counts 4, so a thread's r×c register tile costs tileK·(r + c) a step however
 * it is read; the sums add tileK per
 * summing thread (averaged over the workgroup's threads, and counted for every workgroup, though
 * only those of tile row or column 0 sum: an upper bound). The stores that stage a slice are not
 * counted, as they were not in the descriptions the GEMM factor was fitted on (test/fixtures).
 * Not expressed: the next slice's global loads are issued before the current one is multiplied
 * (the model charges a K-step's load latency in full), and bank conflicts of the staging stores.
 */
export function tiledGemm(t: GemmTiles, b: GemmBlock): Work {
  const summed = b.sums === 1 ? t.tileM : b.sums === 2 ? t.tileN : 0;
  const k = t.tileK ?? BK;
  return {
    flops: 2 * t.rows * t.cols * t.inner,
    paddedFlops: 2 * t.tiles * t.tileM * t.tileN * k * t.kSteps,
    bytesRead: t.bytesRead,
    bytesWritten: t.bytesWritten,
    threads: b.threads,
    sharedBytes: stageBytes(t.tileM + t.tileN) + (t.extraShared ?? 0),
    shape: {
      kind: 'gemm',
      tileM: t.tileM,
      tileN: t.tileN,
      tileK: k,
      kSteps: t.kSteps,
      rowsPerThread: b.rowsPerThread,
      colsPerThread: b.colsPerThread,
      sharedLoads: k * (b.rowsPerThread + b.colsPerThread) + (k * summed) / b.threads,
      globalLoads: ((t.tileM + t.tileN) * BK) / b.threads,
      // Accumulators are mat4x4 values indexed by constants, every loop bound a constant or an
      // override expression: Tint emits no loop guard there (test/cost.test.ts checks the SPIR-V).
      indexed: false,
      ...(t.gather ? { gather: t.gather } : {}),
      ...(t.tail ? { tail: t.tail } : {}),
    },
  };
}

/**
 * A subgroup-lane GEMM of lib/lanes.wgsl: one subgroup of `lanes` threads per tile, LANE_DEPTH inner
 * indices a step, operands straight from global memory (ROW_GROUPS + COLS loads an index), no
 * workgroup memory.
 */
export function laneGemm(t: Omit<GemmTiles, 'kSteps'> & { steps: number }, lanes: number): Work {
  const rowGroups = t.tileM / lanes;
  const cols = t.tileN / lanes;
  return {
    flops: 2 * t.rows * t.cols * t.inner,
    paddedFlops: 2 * t.tiles * t.tileM * t.tileN * t.steps,
    bytesRead: t.bytesRead,
    bytesWritten: t.bytesWritten,
    threads: lanes,
    sharedBytes: 0,
    shape: {
      kind: 'gemm',
      tileM: t.tileM,
      tileN: t.tileN,
      tileK: LANE_DEPTH,
      kSteps: Math.ceil(t.steps / LANE_DEPTH),
      rowsPerThread: t.tileM,
      colsPerThread: cols,
      sharedLoads: 0,
      globalLoads: LANE_DEPTH * (rowGroups + cols),
      indexed: false,
    },
  };
}

/** Elements spread over `threads`-thread workgroups, `perThread` each, `loads` dependent loads per element. */
export function streamWork(o: {
  flops: number;
  bytesRead: number;
  bytesWritten: number;
  threads?: number;
  perThread: number;
  loads?: number;
}): Work {
  return {
    flops: o.flops,
    paddedFlops: o.flops,
    bytesRead: o.bytesRead,
    bytesWritten: o.bytesWritten,
    threads: o.threads ?? 64,
    sharedBytes: 0,
    shape: { kind: 'stream', perThread: o.perThread, loads: o.loads ?? 1 },
  };
}

/** Elements per thread of a grid-stride kernel over `count` elements in this many 64-thread workgroups. */
export const perThread = (count: number, workgroups: readonly number[]): number =>
  Math.max(1, Math.ceil(count / (64 * workgroups.reduce((a, b) => a * b, 1))));

/** A serial loop of `depth` dependent loads in every thread, then `barriers` barriers. */
export function chainWork(o: {
  flops: number;
  bytesRead: number;
  bytesWritten: number;
  threads: number;
  depth: number;
  barriers?: number;
  sharedBytes?: number;
}): Work {
  return {
    flops: o.flops,
    paddedFlops: o.flops,
    bytesRead: o.bytesRead,
    bytesWritten: o.bytesWritten,
    threads: o.threads,
    sharedBytes: o.sharedBytes ?? 0,
    shape: { kind: 'chain', depth: o.depth, barriers: o.barriers ?? 0 },
  };
}

/** Barriers of a tree reduction over n values (one per halving, and the one before it). */
export const treeBarriers = (n: number): number => Math.ceil(Math.log2(n)) + 1;
