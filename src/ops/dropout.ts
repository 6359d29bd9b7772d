// Inverted dropout with a counter-based mask: forward and backward recompute the same mask from
// (seed, step counter, element index), so nothing is stored. Math and layout: shaders/dropout.wgsl.
// At the end, the graph op DROPOUT.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { f32Bytes, perThread, streamWork } from '../gpu/work.ts';
import { numel } from './geometry.ts';
import type { KernelOp } from './op.ts';
import { mustAt } from '../util/must.ts';

export interface DropoutShape {
  /** Elements (any layout). */
  count: number;
  /** Drop probability p in [0, 1): kept values are scaled by 1/(1 − p), as Keras. */
  rate: number;
  /** Per-layer u32 seed: different layers draw independent masks. */
  seed: number;
  /** Output += result (gradient accumulation) instead of output = result. */
  accumulate?: boolean;
}

/**
 * The dropout fields of a kernel's uniform (lib/random.wgsl dropout): the seed as u32, the rate and the
 * kept values' scale 1/(1 − rate) as f32. No dropout is rate 0 (scale 1). The one place for every
 * kernel that drops (dropout, chain, the conv and matmul epilogues), so they draw the same bits.
 */
export function dropoutUniform(d: { seed: number; rate: number } = { seed: 0, rate: 0 }) {
  return { seed: d.seed >>> 0, rate: { f32: d.rate }, scale: { f32: 1 / (1 - d.rate) } };
}

function dropoutKernel(
  gpu: Gpu,
  src: BufferRef,
  counter: BufferRef,
  dst: BufferRef,
  s: DropoutShape,
  what: string,
): Dispatch[] {
  if (!(s.rate >= 0 && s.rate < 1)) throw new RangeError(`dropout rate must be in [0, 1), got ${s.rate}`);
  const workgroups = gpu.spread(s.count);
  return [
    gpu.kernel({
      shader: 'dropout',
      params: {
        count: s.count,
        ...dropoutUniform(s),
        accumulate: s.accumulate ? 1 : 0,
      },
      bindings: [src, counter, dst],
      workgroups,
      label: `dropout ${what} ${s.count} p=${s.rate}`,
      // The step counter, then (where kept) the element: two dependent loads; a hash of ~20 integer ops.
      work: streamWork({
        flops: 2 * s.count,
        bytesRead: f32Bytes((s.accumulate ? 2 : 1) * s.count, 1),
        bytesWritten: f32Bytes(s.count),
        perThread: perThread(s.count, workgroups),
        loads: 2,
      }),
    }),
  ];
}

/**
 * y = x·keep/(1 − p), keep_i = rand01(seed, counter[0], i) ≥ p. counter: a u32 buffer whose word 0
 * is the training step (advanced on the GPU between steps). x and y must be different buffers.
 */
export function dropoutForward(
  gpu: Gpu,
  io: { x: BufferRef; counter: BufferRef; y: BufferRef },
  s: DropoutShape,
): Dispatch[] {
  return dropoutKernel(gpu, io.x, io.counter, io.y, s, 'forward');
}

/** dx = dy·keep/(1 − p) with the forward's mask: call with the same counter buffer, step and shape. */
export function dropoutBackward(
  gpu: Gpu,
  io: { dy: BufferRef; counter: BufferRef; dx: BufferRef },
  s: DropoutShape,
): Dispatch[] {
  return dropoutKernel(gpu, io.dy, io.counter, io.dx, s, 'backward');
}

// --- the graph op -------------------------------------------------------------------------------

export interface DropoutAttrs {
  rate: number;
  /** The layer's u32 seed (src/model/build.ts derives it from the layer name and the run seed). */
  seed: number;
}

/** Dropout while training; at inference (or rate 0) the output is the input itself: no kernel. */
export const DROPOUT: KernelOp<DropoutAttrs> = {
  shape: ([x = []]) => [...x],
  alias: (a, training) => !training || a.rate === 0,
  forward: (gpu, io, a) =>
    dropoutForward(
      gpu,
      { x: mustAt(io.inputs, 0, 'dropout x'), counter: io.counter, y: io.out },
      { count: numel(io.outShape), rate: a.rate, seed: a.seed },
    ),
  // dX = dY · keep / (1 − p), the forward's mask recomputed from (seed, step, index)
  backward: (gpu, io, a) => {
    const dx = io.dIn[0];
    const s = { count: numel(io.outShape), rate: a.rate, seed: a.seed };
    return dx ? dropoutBackward(gpu, { dy: io.dOut, counter: io.counter, dx }, s) : [];
  },
};
