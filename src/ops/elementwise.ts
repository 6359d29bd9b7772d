// Elementwise ops over `count` f32 elements (any layout): activation forward and backward, add,
// accumulate, copy, fill (the weights' moving average runs in the optimizer's pass: optimizer.ts).
// Math, layout and dispatch geometry: shaders/elementwise.wgsl.
// The output buffer must differ from the inputs; bound buffers may be larger than `count`.
// At the end, the graph ops ACTIVATION and ADD, and the unfusing of an activation fused into a
// conv or dense layer's output.
import type { Act } from '../../dsl/ir.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { FmgpuError, ShapeError } from '../errors.ts';
import { f32Bytes, perThread, streamWork } from '../gpu/work.ts';
import { actConstants, actName, gradFromOutput } from './act.ts';
import { numel } from './geometry.ts';
import type { BackwardIO, KernelOp } from './op.ts';
import { mustAt } from '../util/must.ts';

interface Opts {
  /** Tensors the entry point reads and writes (in elements of `count`) and its ops per element. */
  traffic?: { reads: number; writes: number; ops: number };
  value?: number;
  fromOutput?: boolean;
  accumulate?: boolean;
  constants?: Record<string, number>;
}

function ew(gpu: Gpu, entry: string, bindings: BufferRef[], count: number, label: string, o: Opts = {}): Dispatch[] {
  if (!Number.isInteger(count) || count < 0)
    throw new ShapeError(`elementwise ${entry} count must be a non-negative integer, got ${count}`);
  const workgroups = gpu.spread(count);
  const t = o.traffic ?? { reads: bindings.length - 1, writes: 1, ops: 1 };
  const reads = t.reads + (o.accumulate ? 1 : 0);
  return [
    gpu.kernel({
      shader: 'elementwise',
      entry,
      constants: o.constants,
      params: {
        count,
        value: { f32: o.value ?? 0 },
        fromOutput: o.fromOutput ? 1 : 0,
        accumulate: o.accumulate ? 1 : 0,
      },
      bindings,
      workgroups,
      label: `elementwise.${label} ${count}`,
      work: streamWork({
        flops: t.ops * count,
        bytesRead: f32Bytes(reads * count),
        bytesWritten: f32Bytes(t.writes * count),
        perThread: perThread(count, workgroups),
      }),
    }),
  ];
}

function mustGradFromOutput(act: Act): void {
  if (!gradFromOutput(act))
    throw new FmgpuError(`the gradient of ${actName(act)} cannot be computed from its output; save its input`);
}

/** y = act(x). */
export function activationForward(gpu: Gpu, io: { x: BufferRef; y: BufferRef }, count: number, act: Act): Dispatch[] {
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
): Dispatch[] {
  if (from === 'output') mustGradFromOutput(act);
  return ew(gpu, 'act_backward', [io.dx, io.dy, io.saved], count, `act_backward ${actName(act)} from ${from}`, {
    constants: actConstants(act),
    fromOutput: from === 'output',
    accumulate,
  });
}

/**
 * dx = (dy + dy2) · act'(act⁻¹(y)): two contributions to a gradient added, then act' from the output (the bits
 * of an add, then activationBackward from 'output').
 */
export function activationBackwardSum(
  gpu: Gpu,
  io: { dy: BufferRef; dy2: BufferRef; saved: BufferRef; dx: BufferRef },
  count: number,
  act: Act,
): Dispatch[] {
  mustGradFromOutput(act);
  return ew(gpu, 'act_backward_sum', [io.dx, io.dy, io.saved, io.dy2], count, `act_backward_sum ${actName(act)}`, {
    constants: actConstants(act),
    traffic: { reads: 3, writes: 1, ops: 2 },
  });
}

/** c = act(a + b) (linear: a + b). */
export function add(
  gpu: Gpu,
  io: { a: BufferRef; b: BufferRef; c: BufferRef },
  count: number,
  act: Act = { kind: 'linear' },
): Dispatch[] {
  const label = act.kind === 'linear' ? 'add' : `add+${actName(act)}`;
  const traffic = { reads: 2, writes: 1, ops: act.kind === 'linear' ? 1 : 2 };
  return ew(gpu, 'add', [io.c, io.a, io.b], count, label, { constants: actConstants(act), traffic });
}

/** c += a (gradient fan-out: the later contributions to a gradient). */
export function accumulate(gpu: Gpu, io: { a: BufferRef; c: BufferRef }, count: number): Dispatch[] {
  return ew(gpu, 'accumulate', [io.c, io.a], count, 'accumulate', { traffic: { reads: 2, writes: 1, ops: 1 } });
}

/** dst = src. */
export function copy(gpu: Gpu, io: { src: BufferRef; dst: BufferRef }, count: number): Dispatch[] {
  return ew(gpu, 'copy', [io.dst, io.src], count, 'copy', { traffic: { reads: 1, writes: 1, ops: 0 } });
}

/** dst = value (as f32), e.g. zeroing a gradient. */
export function fill(gpu: Gpu, io: { dst: BufferRef }, count: number, value: number): Dispatch[] {
  return ew(gpu, 'fill', [io.dst], count, `fill ${value}`, { value, traffic: { reads: 0, writes: 1, ops: 0 } });
}

// --- graph ops ----------------------------------------------------------------------------------

/** A standalone activation layer (where the planner fuses none: a chain head, or after a residual add, does). */
export const ACTIVATION: KernelOp<{ act: Act }> = {
  shape: ([x = []]) => [...x],
  forward: (gpu, io, a) =>
    activationForward(gpu, { x: mustAt(io.inputs, 0, 'activation x'), y: io.out }, numel(io.outShape), a.act),
  // dX = dY · act'(X)
  backward: (gpu, io, a) => {
    const dx = io.dIn[0];
    const x = mustAt(io.inputs, 0, 'activation x');
    return dx ? activationBackward(gpu, { dy: io.dOut, saved: x, dx }, numel(io.outShape), a.act, 'input') : [];
  },
};

/**
 * y = a + b (a residual connection); the shapes may differ in form but not in size. With `act` (the
 * planner's fusion of the activation after it: src/graph/fuse-add.ts) y = act(a + b).
 */
export const ADD: KernelOp<{ act?: Act }> = {
  shape: ([a = [], b = []]) => {
    if (numel(a) !== numel(b)) throw new ShapeError(`add of [${a}] and [${b}]`);
    return [...a];
  },
  forward: (gpu, io, attrs) => {
    const a = mustAt(io.inputs, 0, 'add a');
    const b = mustAt(io.inputs, 1, 'add b');
    return add(gpu, { a, b, c: io.out }, numel(io.outShape), attrs.act);
  },
  // d(a+b)/da = d(a+b)/db = 1: the gradient fans out unchanged (dY · act'(Y) with an activation).
  backward: (gpu, io, attrs) =>
    io.dIn.flatMap((d) => {
      if (!d) return [];
      const n = numel(io.outShape);
      if (!attrs.act || attrs.act.kind === 'linear') return copy(gpu, { src: io.dOut, dst: d }, n);
      return activationBackward(gpu, { dy: io.dOut, saved: io.out, dx: d }, n, attrs.act, 'output');
    }),
};

/** Scratch a layer with a fused activation needs for dZ = dY · act'(Y): none when linear. */
export const fusedScratch = (out: readonly number[], act: Act): number[][] => (act.kind === 'linear' ? [] : [[...out]]);

/**
 * dZ = dY · act'(Y) for an activation fused into a layer's forward, from its output Y, into scratch 0
 * (see fusedScratch); linear: no kernel, dZ = dY.
 */
export function unfuseActivation(gpu: Gpu, io: BackwardIO, act: Act): { dz: BufferRef; pre: Dispatch[] } {
  if (act.kind === 'linear') return { dz: io.dOut, pre: [] };
  const dz = mustAt(io.scratch, 0, 'scratch for dZ');
  return {
    dz,
    pre: activationBackward(gpu, { dy: io.dOut, saved: io.out, dx: dz }, numel(io.outShape), act, 'output'),
  };
}
