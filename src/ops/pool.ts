// Max and average pooling over NCHW, forward and backward (global average pooling: global_pool.ts).
// Math, layout and dispatch geometry: shaders/pool.wgsl.
// Every buffer must be distinct (a dispatch cannot read and write one buffer); bound buffers may be
// larger than the tensor (sizes come from the shape, never from the buffer).
// At the end, the graph ops MAXPOOL and AVGPOOL.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { f32Bytes, perThread, streamWork, type Work } from '../gpu/work.ts';
import { ShapeError } from '../errors.ts';
import { nchw, window2d, type Geometry2d, type Window2d } from './geometry.ts';
import type { KernelOp, Shapes } from './op.ts';
import { mustAt } from '../util/must.ts';

/** Input [n, c, h, w] pooled by a kh×kw window moving strideH×strideW, Keras/TF 'same'/'valid'. */
export interface PoolShape extends Window2d {
  n: number;
  c: number;
  h: number;
  w: number;
  /** Backward only: dx += result instead of dx = result. */
  accumulate?: boolean;
}

export function checkDims(what: string, dims: Record<string, number>): void {
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

/**
 * Each entry's work: its tensors (in input elements `inp` and output elements `out`) and its dependent
 * loads per element: a window's cells one after another forwards; backwards per input, the windows
 * holding it (max: the argmax, then dy); per output, its argmax and dy together (blocks).
 */
function poolWork(entry: string, s: PoolShape, g: Geometry2d, count: number, workgroups: number[]): Work {
  const planes = s.n * s.c;
  const [inp, out] = [planes * s.h * s.w, planes * g.oh * g.ow];
  const windows = Math.ceil(s.kh / s.strideH) * Math.ceil(s.kw / s.strideW);
  const acc = s.accumulate ? inp : 0;
  const table: Record<string, readonly [number, number, number]> = {
    max_forward: [inp, 2 * out, s.kh * s.kw],
    avg_forward: [inp, out, s.kh * s.kw],
    max_backward: [2 * out + acc, inp, 2 * windows],
    max_backward_blocks: [2 * out + acc, inp, 1],
    avg_backward: [out + acc, inp, windows],
  };
  const [read, written, loads] = table[entry] ?? [inp, out, 1];
  return streamWork({
    flops: count * loads,
    bytesRead: f32Bytes(read),
    bytesWritten: f32Bytes(written),
    perThread: perThread(count, workgroups),
    loads,
  });
}

/** `perInput`: one thread per input element (the gathering backwards), else one per output element. */
function poolKernel(
  gpu: Gpu,
  entry: string,
  bindings: BufferRef[],
  s: PoolShape,
  backward: boolean,
  perInput = backward,
): Dispatch[] {
  const g = poolGeometry(s);
  const planes = s.n * s.c;
  const count = perInput ? planes * s.h * s.w : planes * g.oh * g.ow;
  const { h, w, kh, kw } = s;
  const { oh, ow, padTop, padLeft } = g;
  const accumulate = backward && s.accumulate ? 1 : 0;
  const workgroups = gpu.spread(count);
  return [
    gpu.kernel({
      shader: 'pool',
      entry,
      params: { planes, h, w, oh, ow, kh, kw, sh: s.strideH, sw: s.strideW, padTop, padLeft, accumulate },
      bindings,
      workgroups,
      label: `pool.${entry} ${desc(s)}`,
      work: poolWork(entry, { ...s, accumulate: accumulate === 1 }, g, count, workgroups),
    }),
  ];
}

/**
 * y[n,c,oy,ox] = max over the window's real cells; argmax (u32, same shape as y) = iy·w + ix, the
 * index of the winner within its own [h, w] input plane (ties: first in row-major window order).
 */
export function maxPoolForward(
  gpu: Gpu,
  io: { x: BufferRef; y: BufferRef; argmax: BufferRef },
  s: PoolShape,
): Dispatch[] {
  return poolKernel(gpu, 'max_forward', [io.x, io.y, io.argmax], s, false);
}

/** The windows do not overlap (stride ≥ window both ways, as in `pool 2`): each cell is in one at most. */
export const windowsApart = (s: PoolShape): boolean => s.strideH >= s.kh && s.strideW >= s.kw;

/**
 * dx[n,c,iy,ix] = Σ dy over the windows whose argmax (from maxPoolForward) is (iy, ix); 0 elsewhere.
 * Windows that do not overlap (stride ≥ window) are scattered from one thread per output, each
 * writing its own block of the input; overlapping ones are gathered per input element.
 */
export function maxPoolBackward(
  gpu: Gpu,
  io: { dy: BufferRef; argmax: BufferRef; dx: BufferRef },
  s: PoolShape,
): Dispatch[] {
  if (windowsApart(s)) return poolKernel(gpu, 'max_backward_blocks', [io.dy, io.dx, io.argmax], s, true, false);
  return poolKernel(gpu, 'max_backward', [io.dy, io.dx, io.argmax], s, true);
}

/** y = mean of the window's real cells (padding not counted, as TF 'same'). */
export function avgPoolForward(gpu: Gpu, io: { x: BufferRef; y: BufferRef }, s: PoolShape): Dispatch[] {
  return poolKernel(gpu, 'avg_forward', [io.x, io.y], s, false);
}

/** dx[n,c,iy,ix] = Σ dy[o] / cnt(o) over the windows o that hold (iy, ix). */
export function avgPoolBackward(gpu: Gpu, io: { dy: BufferRef; dx: BufferRef }, s: PoolShape): Dispatch[] {
  return poolKernel(gpu, 'avg_backward', [io.dy, io.dx], s, true);
}

// --- graph ops ----------------------------------------------------------------------------------

/** The pool shape of a node's input shapes and window attributes (also the planner's fused chains'). */
export function poolShape([x]: Shapes, a: Window2d): PoolShape {
  const [n, c, h, w] = nchw(x, 'pooling input');
  const { kh, kw, strideH, strideW, padding } = a;
  return { n, c, h, w, kh, kw, strideH, strideW, padding };
}

function pooledShape(ins: Shapes, a: Window2d): number[] {
  const s = poolShape(ins, a);
  const g = poolGeometry(s);
  return [s.n, s.c, g.oh, g.ow];
}

/** Max pooling; the forward saves each window's argmax (u32, the output's shape) for the backward. */
export const MAXPOOL: KernelOp<Window2d> = {
  shape: pooledShape,
  saved: (ins, a) => [{ shape: pooledShape(ins, a), dtype: 'u32' }],
  forward: (gpu, io, a) => {
    const x = mustAt(io.inputs, 0, 'maxpool x');
    const argmax = mustAt(io.saved, 0, 'maxpool argmax');
    return maxPoolForward(gpu, { x, y: io.out, argmax }, poolShape(io.inShapes, a));
  },
  // dX[argmax(o)] += dY[o]
  backward: (gpu, io, a) => {
    const dx = io.dIn[0];
    const argmax = mustAt(io.saved, 0, 'maxpool argmax');
    return dx ? maxPoolBackward(gpu, { dy: io.dOut, argmax, dx }, poolShape(io.inShapes, a)) : [];
  },
};

export const AVGPOOL: KernelOp<Window2d> = {
  shape: pooledShape,
  forward: (gpu, io, a) =>
    avgPoolForward(gpu, { x: mustAt(io.inputs, 0, 'avgpool x'), y: io.out }, poolShape(io.inShapes, a)),
  // dX[i] = Σ over windows o holding i of dY[o] / |o|
  backward: (gpu, io, a) => {
    const dx = io.dIn[0];
    return dx ? avgPoolBackward(gpu, { dy: io.dOut, dx }, poolShape(io.inShapes, a)) : [];
  },
};
