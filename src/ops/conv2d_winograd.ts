// The conv forward by Winograd's minimal filtering F(2×2, 3×3), on the tiled kernels: one dispatch of
// shaders/conv2d_winograd.wgsl that transforms each 4×4 input patch and each 3×3 filter as it fetches
// them, multiplies the 16 transformed GEMMs (16 multiply-adds a 2×2 output tile and channel pair where
// the direct conv takes 36), and transforms the products back in its epilogue, with the bias, the
// activation and, where asked, a 2×2 max pooling and dropout (lib/conv_out_pool.wgsl) as the direct
// conv's. conv2d_plan.ts winogradPlan says where it runs and on which tile; conv2d.ts conv2dForward
// launches it there.
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { grid } from '../gpu/runtime.ts';
import type { Work } from '../gpu/work.ts';
import { winogradStepOps, type Conv2dShape, type WinogradPlan } from './conv2d_plan.ts';

/** Ops a thread spends once, in the epilogue: 4 rounds of 16 shared words written, 16 read, 24 adds, the store. */
const EPILOGUE_OPS = 4 * 64;

/**
 * The cost model's description (work.ts): a GEMM of `side` out-channel rows by 16·`side` columns (the
 * 16 GEMMs' tiles side by side) a workgroup, 4 channels a step, 8×8 outputs a thread read as 4 vec4
 * a channel (64 words a step); the transforms (GemmShape.transform): in the K loop beside the FMAs, and
 * the epilogue's once. The FLOPs are the Winograd's own, fewer than the direct conv's.
 */
export function winogradWork(
  s: Conv2dShape,
  p: WinogradPlan,
  bytes: { bytesRead: number; bytesWritten: number },
): Work {
  const { side, threads, tiles, rowTiles, colTiles, steps } = p;
  const workgroups = rowTiles * colTiles;
  const gemm = 2 * 16 * tiles * s.k * s.c;
  const transforms = 32 * tiles * s.c * rowTiles + 28 * s.k * s.c * colTiles + 24 * tiles * s.k;
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

/** The direct conv's launch description that the Winograd dispatch shares (conv2d.ts conv2dForward). */
export interface WinogradLaunch {
  io: { x: BufferRef; w: BufferRef; b?: BufferRef; y: BufferRef };
  /** The pooled epilogue's bindings 5–7 (lib/conv_out_pool.wgsl), or none. */
  poolOut: BufferRef[];
  params: Uniform;
  /** HAS_BIAS, the activation's and the pooling's override constants. */
  constants: Record<string, number>;
  label: string;
  bytes: { bytesRead: number; bytesWritten: number };
}

/** y = act(conv(x, w) + b) by F(2×2, 3×3) on plan `p`, pooled where `poolOut` is given: one dispatch. */
export function winogradForward(gpu: Gpu, s: Conv2dShape, p: WinogradPlan, l: WinogradLaunch): Dispatch[] {
  return [
    gpu.kernel({
      shader: l.poolOut.length > 0 ? 'conv2d_winograd_pool' : 'conv2d_winograd',
      params: l.params,
      constants: { ...l.constants, WINO_BC: p.side, WINO_BT: p.side },
      bindings: [l.io.x, l.io.w, l.io.b ?? gpu.dummy, l.io.y, ...l.poolOut],
      workgroups: grid(p.rowTiles * p.colTiles),
      label: l.label.replace('conv2d forward', 'conv2d forward winograd'),
      work: winogradWork(s, p, l.bytes),
    }),
  ];
}
