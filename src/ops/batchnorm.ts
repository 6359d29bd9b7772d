// Batch normalization for conv (NCHW, per channel over N·H·W) and dense ([N,F]: hw = 1) outputs:
// training forward with batch statistics and running-stat update, inference forward, backward.
// Math, layout and dispatch geometry: shaders/batchnorm.wgsl. At the end, the graph op BATCHNORM.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { chainWork, f32Bytes, streamWork, treeBarriers, type Work } from '../gpu/work.ts';
import { batched, numel } from './geometry.ts';
import type { KernelOp, Shapes } from './op.ts';
import { mustAt } from '../util/must.ts';

export interface BatchnormShape {
  n: number;
  /** Channels (conv) or features (dense). */
  c: number;
  /** H·W for conv outputs, 1 for dense. */
  hw: number;
  /** Added to the variance (Keras default 0.001). */
  eps?: number;
  /** running = momentum·running + (1 − momentum)·batch (Keras default 0.99). */
  momentum?: number;
  /** Forward: batch statistics and running-stat update (true) or running statistics (false). */
  training: boolean;
  /** Backward: dx += result instead of dx = result (dgamma and dbeta are always written). */
  accumulate?: boolean;
}

export interface BatchnormForwardIo {
  /** [n, c, hw] input and output. */
  x: BufferRef;
  y: BufferRef;
  /** [c] scale and shift. */
  gamma: BufferRef;
  beta: BufferRef;
  /** [c] running mean and (biased) variance: read in inference, updated in place in training. */
  runMean: BufferRef;
  runVar: BufferRef;
  /** [c] batch mean and 1/sqrt(var + eps), written in training for the backward; unused in inference. */
  saveMean?: BufferRef;
  saveInvStd?: BufferRef;
}

export interface BatchnormBackwardIo {
  dy: BufferRef;
  x: BufferRef;
  gamma: BufferRef;
  saveMean: BufferRef;
  saveInvStd: BufferRef;
  dx: BufferRef;
  /** [c], written. */
  dgamma: BufferRef;
  dbeta: BufferRef;
}

function params(s: BatchnormShape) {
  for (const [k, v] of [
    ['n', s.n],
    ['c', s.c],
    ['hw', s.hw],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`batchnorm ${k} must be a positive integer, got ${v}`);
  }
  const { n, c, hw } = s;
  return {
    n,
    c,
    hw,
    eps: { f32: s.eps ?? 0.001 },
    momentum: { f32: s.momentum ?? 0.99 },
    accumulate: s.accumulate ? 1 : 0,
  };
}

const desc = (s: BatchnormShape): string => `${s.n}x${s.c}x${s.hw}`;

/**
 * One workgroup of 256 per channel, each thread walking M/256 elements `passes` times (training
 * forward: sum, variance, write; backward: sums, write), a tree after each sum.
 */
function perChannel(s: BatchnormShape, passes: number, trees: number, tensors: number, written: number): Work {
  const count = s.n * s.c * s.hw;
  return chainWork({
    flops: 4 * passes * count,
    bytesRead: f32Bytes(tensors * count, 4 * s.c),
    bytesWritten: f32Bytes(written * count, 2 * s.c),
    threads: 256,
    depth: passes * Math.ceil((s.n * s.hw) / 256),
    barriers: trees * treeBarriers(256),
    sharedBytes: 2048,
  });
}

export function batchnormForward(gpu: Gpu, io: BatchnormForwardIo, s: BatchnormShape): Dispatch[] {
  const p = params(s);
  if (!s.training) {
    return [
      gpu.kernel({
        shader: 'batchnorm',
        entry: 'forward_infer',
        params: p,
        bindings: [io.x, io.gamma, io.beta, io.runMean, io.runVar, io.y],
        workgroups: grid(ceilDiv(s.n * s.c * s.hw, 64)),
        label: `batchnorm infer ${desc(s)}`,
        work: streamWork({
          flops: 2 * s.n * s.c * s.hw,
          bytesRead: f32Bytes(s.n * s.c * s.hw, 4 * s.c),
          bytesWritten: f32Bytes(s.n * s.c * s.hw),
          perThread: 1,
        }),
      }),
    ];
  }
  if (!io.saveMean || !io.saveInvStd)
    throw new ShapeError('batchnorm training forward needs saveMean and saveInvStd buffers');
  return [
    gpu.kernel({
      shader: 'batchnorm',
      entry: 'forward_train',
      params: p,
      bindings: [io.x, io.gamma, io.beta, io.runMean, io.runVar, io.y, io.saveMean, io.saveInvStd],
      workgroups: s.c,
      label: `batchnorm train ${desc(s)}`,
      work: perChannel(s, 3, 2, 1, 1),
    }),
  ];
}

/** dL/dx = (gamma·invstd/M)·(M·dy − Σdy − xhat·Σ(dy·xhat)), dgamma = Σ dy·xhat, dbeta = Σ dy; M = n·hw. */
export function batchnormBackward(gpu: Gpu, io: BatchnormBackwardIo, s: BatchnormShape): Dispatch[] {
  return [
    gpu.kernel({
      shader: 'batchnorm',
      entry: 'backward',
      params: params(s),
      bindings: [io.x, io.gamma, io.dy, io.saveMean, io.saveInvStd, io.dx, io.dgamma, io.dbeta],
      workgroups: s.c,
      label: `batchnorm backward ${desc(s)}`,
      work: perChannel(s, 2, 1, s.accumulate ? 3 : 2, 1),
    }),
  ];
}

// --- the graph op -------------------------------------------------------------------------------

export interface BatchnormAttrs {
  eps: number;
  momentum: number;
}

function bnShape([x]: Shapes, a: BatchnormAttrs, training: boolean): BatchnormShape {
  const [n, c, ...spatial] = batched(x, 'batchnorm input');
  return { n, c, hw: numel(spatial), eps: a.eps, momentum: a.momentum, training };
}

/**
 * Inputs x, gamma, beta; state: the running mean and variance. Training saves the batch mean and
 * 1/std for the backward; inference reads the running statistics and saves nothing.
 */
export const BATCHNORM: KernelOp<BatchnormAttrs> = {
  shape: ([x = []]) => [...x],
  saved: ([x], _a, training) => {
    const [, c] = batched(x, 'batchnorm input');
    return training
      ? [
          { shape: [c], dtype: 'f32' },
          { shape: [c], dtype: 'f32' },
        ]
      : [];
  },
  // The kernel always writes dx: where the input needs no gradient it goes to scratch.
  scratch: ([x = []]) => [[...x]],
  forward: (gpu, io, a) => {
    const [saveMean, saveInvStd] = io.training ? io.saved : [gpu.dummy, gpu.dummy];
    const x = mustAt(io.inputs, 0, 'batchnorm x');
    const gamma = mustAt(io.inputs, 1, 'batchnorm gamma');
    const beta = mustAt(io.inputs, 2, 'batchnorm beta');
    const runMean = mustAt(io.state, 0, 'batchnorm running mean');
    const runVar = mustAt(io.state, 1, 'batchnorm running variance');
    return batchnormForward(
      gpu,
      { x, gamma, beta, runMean, runVar, y: io.out, saveMean, saveInvStd },
      bnShape(io.inShapes, a, io.training),
    );
  },
  // dX = (γ·invstd/M)·(M·dY − ΣdY − x̂·Σ(dY·x̂)); dγ = Σ dY·x̂; dβ = Σ dY
  backward: (gpu, io, a) => {
    return batchnormBackward(
      gpu,
      {
        dy: io.dOut,
        x: mustAt(io.inputs, 0, 'batchnorm x'),
        gamma: mustAt(io.inputs, 1, 'batchnorm gamma'),
        saveMean: mustAt(io.saved, 0, 'batchnorm saved mean'),
        saveInvStd: mustAt(io.saved, 1, 'batchnorm saved 1/std'),
        dx: io.dIn[0] ?? mustAt(io.scratch, 0, 'batchnorm scratch dx'),
        // The kernel always writes dgamma and dbeta: a frozen batchnorm would need scratch for them too.
        dgamma: mustAt(io.dIn, 1, 'batchnorm dgamma'),
        dbeta: mustAt(io.dIn, 2, 'batchnorm dbeta'),
      },
      bnShape(io.inShapes, a, true),
    );
  },
};
