// Batch normalization for conv (NCHW, per channel over N·H·W) and dense ([N,F]: hw = 1) outputs:
// training forward with batch statistics and running-stat update, inference forward, backward.
// Math, layout and dispatch geometry: shaders/batchnorm.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';

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

function params(s: BatchnormShape): [number, number, number, { f32: number }, { f32: number }, number] {
  for (const [k, v] of [
    ['n', s.n],
    ['c', s.c],
    ['hw', s.hw],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`batchnorm ${k} must be a positive integer, got ${v}`);
  }
  return [s.n, s.c, s.hw, { f32: s.eps ?? 0.001 }, { f32: s.momentum ?? 0.99 }, s.accumulate ? 1 : 0];
}

const desc = (s: BatchnormShape): string => `${s.n}x${s.c}x${s.hw}`;

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
    }),
  ];
}
