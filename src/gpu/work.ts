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

export type WorkShape = GemmShape | StreamShape | ChainShape;

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

const BK = 16;
/** As and Bs of lib/gemm.wgsl: 1024 f32 each. */
const GEMM_SHARED = 8192;

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
  kSteps: number;
  bytesRead: number;
  bytesWritten: number;
  /** Workgroup memory beyond As and Bs (the weight gradient's decoded taps). */
  extraShared?: number;
}

/** A tiled GEMM of lib/gemm.wgsl: side×side threads, tileK 16, operands staged in workgroup memory. */
export function tiledGemm(t: GemmTiles, side: number): Work {
  const threads = side * side;
  const rowsPerThread = t.tileM / side;
  const colsPerThread = t.tileN / side;
  return {
    flops: 2 * t.rows * t.cols * t.inner,
    paddedFlops: 2 * t.tiles * t.tileM * t.tileN * BK * t.kSteps,
    bytesRead: t.bytesRead,
    bytesWritten: t.bytesWritten,
    threads,
    sharedBytes: GEMM_SHARED + (t.extraShared ?? 0),
    shape: {
      kind: 'gemm',
      tileM: t.tileM,
      tileN: t.tileN,
      tileK: BK,
      kSteps: t.kSteps,
      rowsPerThread,
      colsPerThread,
      sharedLoads: BK * (rowsPerThread + colsPerThread),
      globalLoads: ((t.tileM + t.tileN) * BK) / threads,
      // Every loop of gemm_tile() has a constant trip count (BM / GEMM_T after override
      // substitution): Tint emits no loop guard there (test/cost.test.ts checks the SPIR-V).
      indexed: false,
    },
  };
}

/**
 * A subgroup-lane GEMM of lib/lanes.wgsl: one subgroup of `lanes` threads per tile, one inner index
 * per step, operands straight from global memory (ROW_GROUPS + COLS loads a step), no workgroup memory.
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
      tileK: 1,
      kSteps: t.steps,
      rowsPerThread: t.tileM,
      colsPerThread: cols,
      sharedLoads: 0,
      globalLoads: rowGroups + cols,
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
