// A 3×3, stride-1 conv's forward or dX by Winograd's minimal filtering F(2×2, 3×3), on the tiled kernels:
// one dispatch (shaders/lib/winograd.wgsl) that transforms each 4×4 input patch and each 3×3 filter as it
// fetches them, multiplies the 16 transformed GEMMs (16 multiply-adds a 2×2 output tile and channel pair
// where the direct conv takes 36), and transforms the products back in its epilogue: the forward's
// (shaders/conv2d_winograd.wgsl) with the bias, the activation and, where asked, a 2×2 max pooling and
// dropout as the direct conv's; dX's (shaders/conv2d_winograd_dx.wgsl) overwriting, adding to, or running
// the backward chain below as the direct dX's. conv2d_plan.ts winogradPlan and inputWinogradPlan say
// where they run and on which tile; conv2d.ts launches them there.
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { grid } from '../gpu/runtime.ts';
import type { Work } from '../gpu/work.ts';
import { winogradStepOps, type WinogradPlan } from './conv2d_plan.ts';

/** Ops a thread spends once, in the epilogue: 4 rounds of 16 shared words written, 16 read, 24 adds, the store. */
const EPILOGUE_OPS = 4 * 64;

/**
 * The cost model's description (work.ts): a GEMM of `side` out-channel rows by 16·`side` columns (the
 * 16 GEMMs' tiles side by side) a workgroup, 4 channels a step, 8×8 outputs a thread read as 4 vec4
 * a channel (64 words a step); the transforms (GemmShape.transform): in the K loop beside the FMAs, and
 * the epilogue's once. The FLOPs are the Winograd's own, fewer than the direct conv's.
 */
export function winogradWork(p: WinogradPlan, bytes: { bytesRead: number; bytesWritten: number }): Work {
  const { side, threads, cin, cout, tiles, rowTiles, colTiles, steps } = p;
  const workgroups = rowTiles * colTiles;
  const gemm = 2 * 16 * tiles * cout * cin;
  const transforms = 32 * tiles * cin * rowTiles + 28 * cout * cin * colTiles + 24 * tiles * cout;
  const executed = workgroups * threads * (steps * winogradStepOps(side) + EPILOGUE_OPS);
  return {
    flops: gemm + transforms,
    paddedFlops: 2 * workgroups * 16 * side * side * 4 * steps + executed,
    ...bytes,
    threads,
    sharedBytes: 4 * 4 * 16 * 2 * side,
    shape: {
      kind: 'gemm',
      tileM: side,
      tileN: 16 * side,
      tileK: 4,
      kSteps: steps,
      rowsPerThread: 8,
      colsPerThread: 8,
      sharedLoads: 4 * 16,
      globalLoads: (4 * side * (16 + 9)) / threads,
      indexed: false,
      transform: { stepOps: winogradStepOps(side), onceOps: EPILOGUE_OPS, loads: 0 },
    },
  };
}

/** A Winograd pass as its launcher (conv2d.ts) describes it: its module, uniform, constants and bindings. */
export interface WinogradLaunch {
  shader: 'conv2d_winograd' | 'conv2d_winograd_pool' | 'conv2d_winograd_dx' | 'conv2d_winograd_dx_chain';
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
      work: winogradWork(p, {
        bytesRead: l.work.bytesRead + (l.work.epilogueReads ?? 0),
        bytesWritten: l.work.bytesWritten + (l.work.epilogueWrites ?? 0),
      }),
    }),
  ];
}
