// Max, average and global average pooling over NCHW, forward and backward.
// Math, layout and dispatch geometry: shaders/pool.wgsl and shaders/global_avg_pool.wgsl.
// Every buffer must be distinct (a dispatch cannot read and write one buffer); bound buffers may be
// larger than the tensor (sizes come from the shape, never from the buffer).
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { grid } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { window2d, type Geometry2d, type Window2d } from './geometry.ts';

/** Input [n, c, h, w] pooled by a kh×kw window moving strideH×strideW, Keras/TF 'same'/'valid'. */
export interface PoolShape extends Window2d {
  n: number;
  c: number;
  h: number;
  w: number;
  /** Backward only: dx += result instead of dx = result. */
  accumulate?: boolean;
}

/** Input [n, c, h, w] averaged to [n, c]. */
export interface GlobalPoolShape {
  n: number;
  c: number;
  h: number;
  w: number;
  /** Backward only: dx += result instead of dx = result. */
  accumulate?: boolean;
}

function checkDims(what: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`${what} ${k} must be a positive integer, got ${v}`);
  }
}

/** Output size oh×ow and padding before (top, left); throws ShapeError for shapes that do not pool. */
export function poolGeometry(s: PoolShape): Geometry2d {
  checkDims('pool', { n: s.n, c: s.c, h: s.h, w: s.w, kh: s.kh, kw: s.kw, strideH: s.strideH, strideW: s.strideW });
  return window2d(s.h, s.w, s);
}

const desc = (s: PoolShape): string =>
  `${s.n}x${s.c}x${s.h}x${s.w} ${s.kh}x${s.kw}/${s.strideH}x${s.strideW} ${s.padding}`;

/** `perInput`: one thread per input element (the gathering backwards), else one per output element. */
function poolKernel(
  gpu: Gpu,
  entry: string,
  bindings: BufferRef[],
  s: PoolShape,
  backward: boolean,
  perInput = backward,
): Dispatch {
  const g = poolGeometry(s);
  const planes = s.n * s.c;
  const count = perInput ? planes * s.h * s.w : planes * g.oh * g.ow;
  return gpu.kernel({
    shader: 'pool',
    entry,
    params: [
      planes,
      s.h,
      s.w,
      g.oh,
      g.ow,
      s.kh,
      s.kw,
      s.strideH,
      s.strideW,
      g.padTop,
      g.padLeft,
      backward && s.accumulate ? 1 : 0,
    ],
    bindings,
    workgroups: gpu.spread(count),
    label: `pool.${entry} ${desc(s)}`,
  });
}

/**
 * y[n,c,oy,ox] = max over the window's real cells; argmax (u32, same shape as y) = iy·w + ix, the
 * index of the winner within its own [h, w] input plane (ties: first in row-major window order).
 */
export function maxPoolForward(
  gpu: Gpu,
  io: { x: BufferRef; y: BufferRef; argmax: BufferRef },
  s: PoolShape,
): Dispatch {
  return poolKernel(gpu, 'max_forward', [io.x, io.y, io.argmax], s, false);
}

/**
 * dx[n,c,iy,ix] = Σ dy over the windows whose argmax (from maxPoolForward) is (iy, ix); 0 elsewhere.
 * Windows that do not overlap (stride ≥ window) are scattered from one thread per output, each
 * writing its own block of the input; overlapping ones are gathered per input element.
 */
export function maxPoolBackward(
  gpu: Gpu,
  io: { dy: BufferRef; argmax: BufferRef; dx: BufferRef },
  s: PoolShape,
): Dispatch {
  if (s.strideH >= s.kh && s.strideW >= s.kw)
    return poolKernel(gpu, 'max_backward_blocks', [io.dy, io.dx, io.argmax], s, true, false);
  return poolKernel(gpu, 'max_backward', [io.dy, io.dx, io.argmax], s, true);
}

/** y = mean of the window's real cells (padding not counted, as TF 'same'). */
export function avgPoolForward(gpu: Gpu, io: { x: BufferRef; y: BufferRef }, s: PoolShape): Dispatch {
  return poolKernel(gpu, 'avg_forward', [io.x, io.y], s, false);
}

/** dx[n,c,iy,ix] = Σ dy[o] / cnt(o) over the windows o that hold (iy, ix). */
export function avgPoolBackward(gpu: Gpu, io: { dy: BufferRef; dx: BufferRef }, s: PoolShape): Dispatch {
  return poolKernel(gpu, 'avg_backward', [io.dy, io.dx], s, true);
}

function globalParams(s: GlobalPoolShape, backward: boolean): number[] {
  checkDims('global average pool', { n: s.n, c: s.c, h: s.h, w: s.w });
  return [s.n * s.c, s.h * s.w, backward && s.accumulate ? 1 : 0];
}

/** y[n,c] = mean over h·w of x[n,c,:,:]; fixed-order reduction, deterministic. */
export function globalAvgPoolForward(gpu: Gpu, io: { x: BufferRef; y: BufferRef }, s: GlobalPoolShape): Dispatch {
  return gpu.kernel({
    shader: 'global_avg_pool',
    entry: 'forward',
    params: globalParams(s, false),
    bindings: [io.x, io.y],
    workgroups: grid(s.n * s.c),
    label: `global_avg_pool.forward ${s.n}x${s.c}x${s.h}x${s.w}`,
  });
}

/** dx[n,c,:,:] = dy[n,c] / (h·w). */
export function globalAvgPoolBackward(gpu: Gpu, io: { dy: BufferRef; dx: BufferRef }, s: GlobalPoolShape): Dispatch {
  return gpu.kernel({
    shader: 'global_avg_pool',
    entry: 'backward',
    params: globalParams(s, true),
    bindings: [io.dy, io.dx],
    workgroups: gpu.spread(s.n * s.c * s.h * s.w),
    label: `global_avg_pool.backward ${s.n}x${s.c}x${s.h}x${s.w}`,
  });
}
