// The op table: for every graph op, its output shape, the kernels of its forward and of its
// backward. One typed table, so an op without a backward does not compile.
// The kernels themselves live in src/ops/; this file only wires graph tensors to them.
import { dispatchList, type BufferRef, type Dispatch, type Gpu } from '../gpu/runtime.ts';
import { gradFromOutput, type Act } from '../ops/act.ts';
import {
  conv2dBackwardInput,
  conv2dBackwardWeights,
  conv2dForward,
  conv2dGeometry,
  weightPartsLength,
  type Conv2dShape,
} from '../ops/conv2d.ts';
import { matmul } from '../ops/matmul.ts';
import {
  avgPoolBackward,
  avgPoolForward,
  globalAvgPoolBackward,
  globalAvgPoolForward,
  maxPoolBackward,
  maxPoolForward,
  poolGeometry,
  type PoolShape,
} from '../ops/pool.ts';
import { activationBackward, activationForward, add, copy } from '../ops/elementwise.ts';
import { dropoutBackward, dropoutForward } from '../ops/dropout.ts';
import { batchnormBackward, batchnormForward } from '../ops/batchnorm.ts';
import { softmaxXent } from '../ops/softmax_xent.ts';
import { sumRows } from '../ops/reduce.ts';
import type { Padding } from '../ops/geometry.ts';
import { numel } from './graph.ts';

export interface WindowAttrs {
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padding: Padding;
}

export interface Attrs {
  conv2d: WindowAttrs & { act: Act };
  dense: { act: Act };
  maxpool: WindowAttrs;
  avgpool: WindowAttrs;
  globalavgpool: Record<string, never>;
  activation: { act: Act };
  dropout: { rate: number; seed: number };
  batchnorm: { eps: number; momentum: number };
  add: Record<string, never>;
  reshape: Record<string, never>;
}
export type OpName = keyof Attrs;

/** Where an op's tensors live during one step; planned by src/graph/plan.ts. */
export interface ForwardIO {
  inputs: BufferRef[];
  inShapes: (readonly number[])[];
  out: BufferRef;
  outShape: readonly number[];
  saved: BufferRef[];
  state: BufferRef[];
  training: boolean;
  /** u32 step counter on the GPU (dropout masks, data offsets, optimizer step). */
  counter: GPUBuffer;
  /** Loss/accuracy accumulators: [loss sum (f32 bits), correct count]. */
  stats: GPUBuffer;
}

export interface BackwardIO extends ForwardIO {
  dOut: BufferRef;
  /** Where to write each input's gradient (overwrite), or null where it is not needed. */
  dIn: (BufferRef | null)[];
  scratch: BufferRef[];
}

export interface OpDef<A> {
  shape(inShapes: (readonly number[])[], attrs: A): number[];
  /** Shapes (and dtypes) of values the forward saves for the backward. */
  saved?(inShapes: (readonly number[])[], attrs: A, training: boolean): { shape: number[]; dtype: 'f32' | 'u32' }[];
  /** Scratch f32 tensors the backward needs for the duration of its step. */
  scratch?(inShapes: (readonly number[])[], outShape: readonly number[], attrs: A, gpu: Gpu): number[][];
  forward(gpu: Gpu, io: ForwardIO, attrs: A): Dispatch[];
  /** null: the op has no gradient with respect to any input (a loss seeds its own). */
  backward: ((gpu: Gpu, io: BackwardIO, attrs: A) => Dispatch[]) | null;
  /** Forward output aliases input 0 (no kernel): reshape, dropout at inference. */
  alias?(attrs: A, training: boolean): boolean;
}

function convShape(s: readonly number[], w: readonly number[], a: WindowAttrs): Conv2dShape {
  return {
    n: s[0]!,
    c: s[1]!,
    h: s[2]!,
    w: s[3]!,
    k: w[0]!,
    kh: a.kh,
    kw: a.kw,
    strideH: a.strideH,
    strideW: a.strideW,
    padding: a.padding,
  };
}
function poolShape(s: readonly number[], a: WindowAttrs): PoolShape {
  return {
    n: s[0]!,
    c: s[1]!,
    h: s[2]!,
    w: s[3]!,
    kh: a.kh,
    kw: a.kw,
    strideH: a.strideH,
    strideW: a.strideW,
    padding: a.padding,
  };
}

/** dZ = dY · act'(Y) for an activation fused into the forward (linear: no kernel, dZ = dY). */
function unfuse(gpu: Gpu, io: BackwardIO, act: Act): { dz: BufferRef; pre: Dispatch[] } {
  if (act.kind === 'linear') return { dz: io.dOut, pre: [] };
  const dz = io.scratch[0]!;
  return {
    dz,
    pre: [activationBackward(gpu, { dy: io.dOut, saved: io.out, dx: dz }, numel(io.outShape), act, 'output')],
  };
}

const fusedScratch = (_i: (readonly number[])[], out: readonly number[], a: { act: Act }): number[][] =>
  a.act.kind === 'linear' ? [] : [[...out]];

export const OPS: { [K in OpName]: OpDef<Attrs[K]> } = {
  conv2d: {
    shape: ([x, w], a) => {
      const g = conv2dGeometry(convShape(x!, w!, a));
      return [x![0]!, w![0]!, g.oh, g.ow];
    },
    // The fused activation's gradient, then the weight gradient's split-K partial sums (if split).
    scratch: (ins, out, a, gpu) => {
      const parts = weightPartsLength(gpu, convShape(ins[0]!, ins[1]!, a));
      return [...fusedScratch(ins, out, a), ...(parts > 0 ? [[parts]] : [])];
    },
    forward: (gpu, io, a) => {
      if (!gradFromOutput(a.act)) throw new Error(`conv2d cannot fuse ${a.act.kind}: its gradient needs the input`);
      return dispatchList(
        conv2dForward(
          gpu,
          { x: io.inputs[0]!, w: io.inputs[1]!, b: io.inputs[2], y: io.out },
          convShape(io.inShapes[0]!, io.inShapes[1]!, a),
          a.act,
        ),
      );
    },
    backward: (gpu, io, a) => {
      const { dz, pre: out } = unfuse(gpu, io, a.act);
      const s = convShape(io.inShapes[0]!, io.inShapes[1]!, a);
      if (io.dIn[0])
        out.push(...dispatchList(conv2dBackwardInput(gpu, { dy: dz, w: io.inputs[1]!, dx: io.dIn[0] }, s)));
      const parts = weightPartsLength(gpu, s) > 0 ? io.scratch.at(-1) : undefined;
      if (io.dIn[1])
        out.push(
          ...dispatchList(
            conv2dBackwardWeights(
              gpu,
              { dy: dz, x: io.inputs[0]!, dw: io.dIn[1], db: io.dIn[2] ?? undefined, parts },
              s,
            ),
          ),
        );
      return out;
    },
  },
  dense: {
    shape: ([x, w]) => [x![0]!, w![1]!],
    scratch: fusedScratch,
    forward: (gpu, io, a) => {
      if (!gradFromOutput(a.act)) throw new Error(`dense cannot fuse ${a.act.kind}: its gradient needs the input`);
      const [n, f] = io.inShapes[0]!,
        u = io.inShapes[1]![1]!;
      return [
        matmul(
          gpu,
          { a: io.inputs[0]!, b: io.inputs[1]!, bias: io.inputs[2], c: io.out },
          { m: n!, k: f!, n: u, act: a.act },
        ),
      ];
    },
    backward: (gpu, io, a) => {
      const { dz, pre: out } = unfuse(gpu, io, a.act);
      const [n, f] = io.inShapes[0]!,
        u = io.inShapes[1]![1]!;
      // dX = dZ·Wᵀ; dW = Xᵀ·dZ; db = Σ_rows dZ
      if (io.dIn[0])
        out.push(matmul(gpu, { a: dz, b: io.inputs[1]!, c: io.dIn[0] }, { m: n!, k: u, n: f!, transB: true }));
      if (io.dIn[1])
        out.push(matmul(gpu, { a: io.inputs[0]!, b: dz, c: io.dIn[1] }, { m: f!, k: n!, n: u, transA: true }));
      if (io.dIn[2]) out.push(...dispatchList(sumRows(gpu, { x: dz, out: io.dIn[2] }, { m: n!, n: u })));
      return out;
    },
  },
  maxpool: {
    shape: ([x], a) => {
      const g = poolGeometry(poolShape(x!, a));
      return [x![0]!, x![1]!, g.oh, g.ow];
    },
    saved: (ins, a) => {
      const g = poolGeometry(poolShape(ins[0]!, a));
      return [{ shape: [ins[0]![0]!, ins[0]![1]!, g.oh, g.ow], dtype: 'u32' }];
    },
    forward: (gpu, io, a) =>
      dispatchList(
        maxPoolForward(gpu, { x: io.inputs[0]!, y: io.out, argmax: io.saved[0]! }, poolShape(io.inShapes[0]!, a)),
      ),
    backward: (gpu, io, a) =>
      io.dIn[0]
        ? dispatchList(
            maxPoolBackward(gpu, { dy: io.dOut, argmax: io.saved[0]!, dx: io.dIn[0] }, poolShape(io.inShapes[0]!, a)),
          )
        : [],
  },
  avgpool: {
    shape: ([x], a) => {
      const g = poolGeometry(poolShape(x!, a));
      return [x![0]!, x![1]!, g.oh, g.ow];
    },
    forward: (gpu, io, a) =>
      dispatchList(avgPoolForward(gpu, { x: io.inputs[0]!, y: io.out }, poolShape(io.inShapes[0]!, a))),
    backward: (gpu, io, a) =>
      io.dIn[0]
        ? dispatchList(avgPoolBackward(gpu, { dy: io.dOut, dx: io.dIn[0] }, poolShape(io.inShapes[0]!, a)))
        : [],
  },
  globalavgpool: {
    shape: ([x]) => [x![0]!, x![1]!],
    forward: (gpu, io) => {
      const [n, c, h, w] = io.inShapes[0]!;
      return dispatchList(globalAvgPoolForward(gpu, { x: io.inputs[0]!, y: io.out }, { n: n!, c: c!, h: h!, w: w! }));
    },
    backward: (gpu, io) => {
      const [n, c, h, w] = io.inShapes[0]!;
      return io.dIn[0]
        ? dispatchList(globalAvgPoolBackward(gpu, { dy: io.dOut, dx: io.dIn[0] }, { n: n!, c: c!, h: h!, w: w! }))
        : [];
    },
  },
  activation: {
    shape: ([x]) => [...x!],
    forward: (gpu, io, a) => [activationForward(gpu, { x: io.inputs[0]!, y: io.out }, numel(io.outShape), a.act)],
    backward: (gpu, io, a) =>
      io.dIn[0]
        ? [
            activationBackward(
              gpu,
              { dy: io.dOut, saved: io.inputs[0]!, dx: io.dIn[0] },
              numel(io.outShape),
              a.act,
              'input',
            ),
          ]
        : [],
  },
  dropout: {
    shape: ([x]) => [...x!],
    alias: (a, training) => !training || a.rate === 0,
    forward: (gpu, io, a) =>
      dispatchList(
        dropoutForward(
          gpu,
          { x: io.inputs[0]!, counter: io.counter, y: io.out },
          { count: numel(io.outShape), rate: a.rate, seed: a.seed },
        ),
      ),
    backward: (gpu, io, a) =>
      io.dIn[0]
        ? dispatchList(
            dropoutBackward(
              gpu,
              { dy: io.dOut, counter: io.counter, dx: io.dIn[0] },
              { count: numel(io.outShape), rate: a.rate, seed: a.seed },
            ),
          )
        : [],
  },
  batchnorm: {
    shape: ([x]) => [...x!],
    saved: (ins, _a, training) => {
      const c = ins[0]![1]!;
      return training
        ? [
            { shape: [c], dtype: 'f32' },
            { shape: [c], dtype: 'f32' },
          ]
        : [];
    },
    // The kernel always writes dx: where the input needs no gradient it goes to scratch.
    scratch: (ins) => [[...ins[0]!]],
    forward: (gpu, io, a) => {
      const s = io.inShapes[0]!;
      const [mean, invstd] = io.training ? io.saved : [gpu.dummy, gpu.dummy];
      return dispatchList(
        batchnormForward(
          gpu,
          {
            x: io.inputs[0]!,
            gamma: io.inputs[1]!,
            beta: io.inputs[2]!,
            runMean: io.state[0]!,
            runVar: io.state[1]!,
            y: io.out,
            saveMean: mean!,
            saveInvStd: invstd!,
          },
          { n: s[0]!, c: s[1]!, hw: numel(s.slice(2)), eps: a.eps, momentum: a.momentum, training: io.training },
        ),
      );
    },
    backward: (gpu, io, a) => {
      const s = io.inShapes[0]!;
      return dispatchList(
        batchnormBackward(
          gpu,
          {
            dy: io.dOut,
            x: io.inputs[0]!,
            gamma: io.inputs[1]!,
            saveMean: io.saved[0]!,
            saveInvStd: io.saved[1]!,
            dx: io.dIn[0] ?? io.scratch[0]!,
            dgamma: io.dIn[1]!,
            dbeta: io.dIn[2]!,
          },
          { n: s[0]!, c: s[1]!, hw: numel(s.slice(2)), eps: a.eps, momentum: a.momentum, training: true },
        ),
      );
    },
  },
  add: {
    shape: ([a, b]) => {
      if (numel(a!) !== numel(b!)) throw new Error(`add of [${a}] and [${b}]`);
      return [...a!];
    },
    forward: (gpu, io) => [add(gpu, { a: io.inputs[0]!, b: io.inputs[1]!, c: io.out }, numel(io.outShape))],
    // d(a+b)/da = d(a+b)/db = 1: the gradient fans out unchanged.
    backward: (gpu, io) => io.dIn.flatMap((d) => (d ? [copy(gpu, { src: io.dOut, dst: d }, numel(io.outShape))] : [])),
  },
  reshape: {
    shape: () => {
      throw new Error('reshape takes its shape from the graph');
    },
    alias: () => true,
    forward: () => [],
    backward: null,
  },
};

/** The loss kernel: per-sample loss, stats accumulation and (when training) dL/dlogits = (softmax − target)/N. */
export function lossDispatches(
  gpu: Gpu,
  io: { logits: BufferRef; labels: BufferRef; loss: BufferRef; dlogits: BufferRef | null; stats: GPUBuffer },
  n: number,
  classes: number,
  smoothing: number,
): Dispatch[] {
  return dispatchList(
    softmaxXent(
      gpu,
      { logits: io.logits, labels: io.labels, dlogits: io.dlogits ?? undefined, loss: io.loss, stats: io.stats },
      { n, classes, smoothing, scale: 1 / n },
    ),
  );
}
