// A 3×3, stride-1 conv's passes by Winograd's minimal filtering, on the tiled kernels: each one dispatch
// (shaders/lib/winograd.wgsl's 16 GEMMs) that transforms its operands as it fetches them and its
// products back in its epilogue, 16 multiply-adds a 2×2 tile and channel pair where the direct conv
// takes 36. The forward and dX by F(2×2, 3×3) (lib/winograd_conv.wgsl: each 4×4 input patch, each 3×3
// filter): the forward's epilogue (shaders/conv2d_winograd.wgsl) with the bias, the activation and,
// where asked, a 2×2 max pooling and dropout as the direct conv's; dX's (shaders/conv2d_winograd_dx.wgsl)
// overwriting, adding to, or running the backward chain below as the direct dX's. The weight and bias
// gradients by F(3×3, 2×2) (shaders/conv2d_winograd_dw.wgsl: each 2×2 tile of dY against its 4×4 patch
// of x), split over the tiles as the direct dW splits K. conv2d_plan.ts winogradPlan, inputWinogradPlan
// and weightWinogradPlan say where they run and on which tile; conv2d.ts launches them there.
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { grid } from '../gpu/runtime.ts';
import type { Work } from '../gpu/work.ts';
import {
  correlationCost,
  coverOf,
  weightCost,
  type Conv2dShape,
  type WinogradCost,
  type WinogradPlan,
  type WinogradWeightPlan,
} from './conv2d_plan.ts';
import { thenWeightReduce } from './conv2d_weights.ts';
import { needParts } from './gemm.ts';

/** Ops a thread spends once, in the epilogue, about: 4 rounds of 16 shared words written, 16 read, the output
 * transform (24 adds of a 2×2 tile; dW's 3×3, 35) and its stores. */
const EPILOGUE_OPS = 4 * 64;

/** A Winograd pass's work: its tile, workgroups, steps and transform ops (WinogradCost), loads and FLOPs. */
interface WinogradShape extends WinogradCost {
  /** Global loads of one step's B item and A item: a 4×4 patch (16), and a 3×3 filter (9) or 2×2 dY tile (4). */
  loads: [number, number];
  /** The 16 GEMMs' multiply-adds (× 2) and the transforms' adds, without padding. */
  flops: number;
}

/**
 * The cost model's description (work.ts): a GEMM of `side` rows by 16·`side` columns (the 16 GEMMs'
 * tiles side by side) a workgroup, 4 inner indices a step, 8×8 outputs a thread read as 4 vec4 an index
 * (64 words a step); the transforms (GemmShape.transform): in the K loop beside the FMAs, and the
 * epilogue's once. The FLOPs are the Winograd's own, fewer than the direct conv's.
 */
export function winogradWork(p: WinogradShape, bytes: { bytesRead: number; bytesWritten: number }): Work {
  const { side, threads, workgroups, steps, stepOps } = p;
  const executed = workgroups * threads * (steps * stepOps + EPILOGUE_OPS);
  // gemm_ab: 4 inner indices of 16 positions, side rows and side columns, 4 bytes each; all of it staged.
  const staged = 4 * 16 * 2 * side * 4;
  return {
    flops: p.flops,
    paddedFlops: 2 * workgroups * 16 * side * side * 4 * steps + executed,
    ...bytes,
    threads,
    sharedBytes: staged,
    shape: {
      kind: 'gemm',
      tileM: side,
      tileN: 16 * side,
      tileK: 4,
      kSteps: steps,
      rowsPerThread: 8,
      colsPerThread: 8,
      sharedLoads: 4 * 16,
      globalLoads: (4 * side * (p.loads[0] + p.loads[1])) / threads,
      indexed: false,
      transform: { stepOps, onceOps: EPILOGUE_OPS, loads: 0 },
      staged,
    },
  };
}

/** A forward's or dX's shape (lib/winograd_conv.wgsl): its plan's workgroups, the GEMMs over CIN and the transforms. */
const correlationShape = (p: WinogradPlan): WinogradShape => ({
  ...correlationCost(p),
  loads: [16, 9],
  flops:
    2 * 16 * p.tiles * p.cout * p.cin +
    32 * p.tiles * p.cin * p.rowTiles +
    28 * p.cout * p.cin * p.colTiles +
    24 * p.tiles * p.cout,
});

/** A Winograd pass as its launcher (conv2d.ts) describes it: its module, uniform, constants and bindings. */
export interface WinogradLaunch {
  shader:
    | 'conv2d_winograd'
    | 'conv2d_winograd_pool'
    | 'conv2d_winograd_add'
    | 'conv2d_winograd_dx'
    | 'conv2d_winograd_dx_chain';
  params: Uniform;
  /** The variant's override constants (bias, activation, pooling, accumulation, chain). */
  constants: Record<string, number>;
  bindings: readonly (BufferRef | null)[];
  label: string;
  /** The tensors' bytes, and what the epilogue reads and writes besides (the direct pass's description). */
  work: { bytesRead: number; bytesWritten: number; epilogueReads?: number; epilogueWrites?: number };
}

/** One dispatch of a 3×3, stride-1 conv's pass by F(2×2, 3×3) on plan `p`. */
export function winogradPass(gpu: Gpu, p: WinogradPlan, l: WinogradLaunch): Dispatch[] {
  return [
    gpu.kernel({
      shader: l.shader,
      params: l.params,
      constants: { ...l.constants, WINO_BC: p.side, WINO_BT: p.side },
      bindings: [...l.bindings],
      workgroups: grid(p.rowTiles * p.colTiles),
      label: l.label,
      work: winogradWork(correlationShape(p), {
        bytesRead: l.work.bytesRead + (l.work.epilogueReads ?? 0),
        bytesWritten: l.work.bytesWritten + (l.work.epilogueWrites ?? 0),
      }),
    }),
  ];
}

/** The weight gradient's buffers and options, as conv2dBackwardWeights takes them. */
export interface WinogradWeightLaunch {
  io: { dy: BufferRef; x: BufferRef; dw: BufferRef; db?: BufferRef; parts?: BufferRef };
  /** Only the split pass, its partials left in `parts` for the planner to sum. */
  unsummed?: boolean;
  params: Uniform;
  label: string;
  work: { bytesRead: number; bytesWritten: number };
}

/**
 * dw (and db) by F(3×3, 2×2) on plan `p`: one dispatch, or the split pass writing its partials in
 * conv2d_backward_weights.wgsl's layout and that shader's reduce_splits (none when `unsummed`).
 */
export function winogradWeights(gpu: Gpu, s: Conv2dShape, p: WinogradWeightPlan, l: WinogradWeightLaunch): Dispatch[] {
  const sums = l.io.db ? 1 : 0;
  const len = s.k * (s.c * 9 + sums);
  const split = p.splits > 1;
  const bindings = split
    ? [l.io.dy, l.io.x, needParts(p, l.io.parts, l.label, p.splits * len), gpu.dummy]
    : [l.io.dy, l.io.x, l.io.dw, l.io.db ?? gpu.dummy];
  const shape = {
    ...weightCost(p),
    loads: [16, 4] as [number, number],
    // The GEMMs; Bᵀ d B of each patch (32 adds), G g Gᵀ of each dY tile (12), Aᵀ M A of each split's (k, c) (35).
    flops:
      2 * 16 * p.tiles * s.k * s.c +
      32 * p.tiles * s.c * p.rowTiles +
      12 * p.tiles * s.k * p.colTiles +
      35 * s.k * s.c * p.splits,
  };
  const written = split ? { ...l.work, bytesWritten: 4 * p.splits * len } : l.work;
  const pass = gpu.kernel({
    shader: 'conv2d_winograd_dw',
    params: l.params,
    constants: { SUMS: sums, WINO_SPLIT: split ? 1 : 0, WINO_BC: p.side, WINO_BT: p.side, ...coverOf(s).constants },
    bindings,
    workgroups: grid(shape.workgroups),
    label: `${l.label}${split ? ` split ${p.splits}` : ''}`,
    work: winogradWork(shape, written),
  });
  if (!split) return [pass];
  return thenWeightReduce(gpu, pass, { ...l, sums, splits: p.splits, len });
}
