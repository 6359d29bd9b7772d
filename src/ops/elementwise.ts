// Elementwise ops over `count` f32 elements (any layout): activation forward and backward, add,
// accumulate, copy, fill, moving average. Math, layout and dispatch geometry: shaders/elementwise.wgsl.
// The output buffer must differ from the inputs; bound buffers may be larger than `count`.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { FmgpuError, ShapeError } from '../errors.ts';
import { actConstants, gradFromOutput, type Act } from './act.ts';

interface Opts {
  value?: number;
  fromOutput?: boolean;
  accumulate?: boolean;
  constants?: Record<string, number>;
}

function ew(gpu: Gpu, entry: string, bindings: BufferRef[], count: number, label: string, o: Opts = {}): Dispatch {
  if (!Number.isInteger(count) || count < 0)
    throw new ShapeError(`elementwise ${entry} count must be a non-negative integer, got ${count}`);
  return gpu.kernel({
    shader: 'elementwise',
    entry,
    constants: o.constants,
    params: [count, { f32: o.value ?? 0 }, o.fromOutput ? 1 : 0, o.accumulate ? 1 : 0],
    bindings,
    workgroups: gpu.spread(count),
    label: `elementwise.${label} ${count}`,
  });
}

const actName = (act: Act): string => (act.kind === 'leaky' ? `leaky(${act.alpha ?? 0.3})` : act.kind);

/** y = act(x). */
export function activationForward(gpu: Gpu, io: { x: BufferRef; y: BufferRef }, count: number, act: Act): Dispatch {
  return ew(gpu, 'act_forward', [io.y, io.x], count, `act_forward ${actName(act)}`, { constants: actConstants(act) });
}

/**
 * dx = dy · act'(x) (from 'input': saved holds x, every activation) or dy · act'(act⁻¹(y)) (from
 * 'output': saved holds y; not gelu, nor leaky with alpha ≤ 0). accumulate: dx += instead of dx =.
 */
export function activationBackward(
  gpu: Gpu,
  io: { dy: BufferRef; saved: BufferRef; dx: BufferRef },
  count: number,
  act: Act,
  from: 'input' | 'output',
  accumulate = false,
): Dispatch {
  if (from === 'output' && !gradFromOutput(act))
    throw new FmgpuError(`the gradient of ${actName(act)} cannot be computed from its output; save its input`);
  return ew(gpu, 'act_backward', [io.dx, io.dy, io.saved], count, `act_backward ${actName(act)} from ${from}`, {
    constants: actConstants(act),
    fromOutput: from === 'output',
    accumulate,
  });
}

/** c = a + b. */
export function add(gpu: Gpu, io: { a: BufferRef; b: BufferRef; c: BufferRef }, count: number): Dispatch {
  return ew(gpu, 'add', [io.c, io.a, io.b], count, 'add');
}

/** c += a (gradient fan-out: the later contributions to a gradient). */
export function accumulate(gpu: Gpu, io: { a: BufferRef; c: BufferRef }, count: number): Dispatch {
  return ew(gpu, 'accumulate', [io.c, io.a], count, 'accumulate');
}

/** dst = src. */
export function copy(gpu: Gpu, io: { src: BufferRef; dst: BufferRef }, count: number): Dispatch {
  return ew(gpu, 'copy', [io.dst, io.src], count, 'copy');
}

/** dst = value (as f32), e.g. zeroing a gradient. */
export function fill(gpu: Gpu, io: { dst: BufferRef }, count: number, value: number): Dispatch {
  return ew(gpu, 'fill', [io.dst], count, `fill ${value}`, { value });
}

/** avg = decay·avg + (1 − decay)·x: the exponential moving average of weights (Keras's use_ema). */
export function emaUpdate(gpu: Gpu, io: { x: BufferRef; avg: BufferRef }, count: number, decay: number): Dispatch {
  return ew(gpu, 'ema', [io.avg, io.x], count, `ema ${decay}`, { value: decay });
}
