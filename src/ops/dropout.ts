// Inverted dropout with a counter-based mask: forward and backward recompute the same mask from
// (seed, step counter, element index), so nothing is stored. Math and layout: shaders/dropout.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';

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

function dropoutKernel(
  gpu: Gpu,
  src: BufferRef,
  counter: BufferRef,
  dst: BufferRef,
  s: DropoutShape,
  what: string,
): Dispatch[] {
  if (!(s.rate >= 0 && s.rate < 1)) throw new RangeError(`dropout rate must be in [0, 1), got ${s.rate}`);
  return [
    gpu.kernel({
      shader: 'dropout',
      params: [s.count, s.seed >>> 0, { f32: s.rate }, { f32: 1 / (1 - s.rate) }, s.accumulate ? 1 : 0],
      bindings: [src, counter, dst],
      workgroups: gpu.spread(s.count),
      label: `dropout ${what} ${s.count} p=${s.rate}`,
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
