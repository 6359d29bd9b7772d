// Global average pooling over NCHW, [N,C,H,W] → [N,C], forward and backward; the backward may run the
// backward chain of the layers below as it stores (chain.ts chainStoreOf), the planner's choice.
// Math, layout and dispatch geometry: shaders/global_avg_pool.wgsl, global_avg_pool_chain.wgsl.
// At the end, the graph op GLOBALAVGPOOL.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { grid } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, perThread, streamWork, treeBarriers } from '../gpu/work.ts';
import { ShapeError } from '../errors.ts';
import { chainLabel, chainStoreOf } from './chain.ts';
import { nchw } from './geometry.ts';
import type { BackwardIO, KernelOp, Shapes } from './op.ts';
import { checkDims } from './pool.ts';
import { mustAt } from '../util/must.ts';

/** Input [n, c, h, w] averaged to [n, c]. */
export interface GlobalPoolShape {
  n: number;
  c: number;
  h: number;
  w: number;
  /** Backward only: dx += result instead of dx = result. */
  accumulate?: boolean;
}

function globalParams(s: GlobalPoolShape, backward: boolean) {
  checkDims('global average pool', { n: s.n, c: s.c, h: s.h, w: s.w });
  return { planes: s.n * s.c, hw: s.h * s.w, accumulate: backward && s.accumulate ? 1 : 0 };
}

const describe = (s: GlobalPoolShape): string => `${s.n}x${s.c}x${s.h}x${s.w}`;

/** y[n,c] = mean over h·w of x[n,c,:,:]; fixed-order reduction, deterministic. */
export function globalAvgPoolForward(gpu: Gpu, io: { x: BufferRef; y: BufferRef }, s: GlobalPoolShape): Dispatch[] {
  const threads = Math.min(64, gpu.treeThreads);
  return [
    gpu.kernel({
      shader: 'global_avg_pool',
      entry: 'forward',
      params: globalParams(s, false),
      constants: { WG: threads },
      bindings: [io.x, io.y],
      workgroups: grid(s.n * s.c),
      label: `global_avg_pool.forward ${describe(s)}`,
      // `threads` per plane, each a loop over H·W / threads cells, then a tree.
      work: chainWork({
        flops: s.n * s.c * s.h * s.w,
        bytesRead: f32Bytes(s.n * s.c * s.h * s.w),
        bytesWritten: f32Bytes(s.n * s.c),
        threads,
        depth: Math.ceil((s.h * s.w) / threads),
        barriers: treeBarriers(threads),
        sharedBytes: 256,
      }),
    }),
  ];
}

/** A backward chain the backward runs as it stores (BackwardIO.dInChain), with the step counter its dropout reads. */
type GlobalPoolChain = NonNullable<BackwardIO['dInChain']> & { counter: BufferRef };

/**
 * dx[n,c,:,:] = dy[n,c] / (h·w); or, with `chain`, dx is the chain's input gradient, written through the chain
 * (its dropoutᵀ, unpooling of windows apart, act') as each value is stored (shaders/global_avg_pool_chain.wgsl).
 */
export function globalAvgPoolBackward(
  gpu: Gpu,
  io: { dy: BufferRef; dx: BufferRef; chain?: GlobalPoolChain },
  s: GlobalPoolShape,
): Dispatch[] {
  const count = s.n * s.c * s.h * s.w;
  const workgroups = gpu.spread(count);
  const label = `global_avg_pool.backward ${describe(s)}`;
  const { planes, hw, accumulate } = globalParams(s, true);
  const c = io.chain;
  if (c && s.accumulate) throw new ShapeError(`${label} runs no chain into a gradient it adds to`);
  const store = c && chainStoreOf(c.chain, c, count);
  const bytes = store?.bytes ?? { reads: 0, writes: 0 };
  return [
    gpu.kernel({
      shader: store ? 'global_avg_pool_chain' : 'global_avg_pool',
      entry: store ? 'backward_chain' : 'backward',
      params: store ? { planes, hw, ...store.params } : { planes, hw, accumulate },
      constants: store?.constants,
      bindings: store ? [io.dy, io.dx, null, null, null, ...store.bindings] : [io.dy, io.dx],
      workgroups,
      label: `${label}${c ? chainLabel(c.chain) : ''}`,
      work: streamWork({
        flops: count,
        bytesRead: f32Bytes(s.n * s.c, s.accumulate ? count : 0) + bytes.reads,
        bytesWritten: f32Bytes(count) + bytes.writes,
        perThread: perThread(count, workgroups),
      }),
    }),
  ];
}

function globalShape([x]: Shapes): GlobalPoolShape {
  const [n, c, h, w] = nchw(x, 'global pooling input');
  return { n, c, h, w };
}

/** [N,C,H,W] → [N,C], the mean of each plane. */
export const GLOBALAVGPOOL: KernelOp<Record<string, never>> = {
  shape: (ins) => {
    const { n, c } = globalShape(ins);
    return [n, c];
  },
  forward: (gpu, io) =>
    globalAvgPoolForward(gpu, { x: mustAt(io.inputs, 0, 'global pooling x'), y: io.out }, globalShape(io.inShapes)),
  // dX[n,c,:,:] = dY[n,c] / (H·W), through the chain below where the planner fused one (io.dInChain).
  backward: (gpu, io) => {
    const dx = io.dIn[0];
    const chain = io.dInChain && { ...io.dInChain, counter: io.counter };
    return dx ? globalAvgPoolBackward(gpu, { dy: io.dOut, dx, chain }, globalShape(io.inShapes)) : [];
  },
};
