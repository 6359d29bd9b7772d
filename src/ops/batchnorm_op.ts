// The batchnorm graph op (BATCHNORM): batch normalisation with a fused activation (the planner's), its
// backward, on batchnorm.ts's passes; the batchnorm shape of a node (bnShape).
import type { Act } from '../../dsl/ir.ts';
import { mustAt } from '../util/must.ts';
import { ShapeError } from '../errors.ts';
import { batchnormBackward, batchnormForward, bnPartials, type BatchnormShape } from './batchnorm.ts';
import { batched, numel } from './geometry.ts';
import type { KernelOp, Shapes } from './op.ts';

export interface BatchnormAttrs {
  eps: number;
  momentum: number;
  /** Set only by the planner (src/graph/fuse.ts): the activation fused after it. */
  act?: Act;
}

/** The batchnorm shape of a node's input shapes and attributes. */
export function bnShape([x]: Shapes, a: BatchnormAttrs, training: boolean): BatchnormShape {
  const [n, c, ...spatial] = batched(x, 'batchnorm input');
  return { n, c, hw: numel(spatial), eps: a.eps, momentum: a.momentum, training, act: a.act };
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
  // The kernel always writes dx: where the input needs no gradient it goes to scratch (0); 1 holds
  // the per-slice sums.
  scratch: (ins, _out, a, gpu) => [[...(ins[0] ?? [])], [bnPartials(gpu, bnShape(ins, a, true))]],
  // The per-slice statistics (a training forward needs them: the planner always gives forward scratch).
  forwardScratch: (ins, _out, a, gpu) => [[bnPartials(gpu, bnShape(ins, a, true))]],
  forward: (gpu, io, a) => {
    const [saveMean, saveInvStd] = io.training ? io.saved : [gpu.dummy, gpu.dummy];
    const x = mustAt(io.inputs, 0, 'batchnorm x');
    const gamma = mustAt(io.inputs, 1, 'batchnorm gamma');
    const beta = mustAt(io.inputs, 2, 'batchnorm beta');
    const runMean = mustAt(io.state, 0, 'batchnorm running mean');
    const runVar = mustAt(io.state, 1, 'batchnorm running variance');
    const partial = io.scratch?.[0];
    if (io.training && !partial) throw new ShapeError('batchnorm training forward needs its scratch');
    return batchnormForward(
      gpu,
      { x, gamma, beta, runMean, runVar, y: io.out, saveMean, saveInvStd, partial },
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
        beta: mustAt(io.inputs, 2, 'batchnorm beta'),
        saveMean: mustAt(io.saved, 0, 'batchnorm saved mean'),
        saveInvStd: mustAt(io.saved, 1, 'batchnorm saved 1/std'),
        dx: io.dIn[0] ?? mustAt(io.scratch, 0, 'batchnorm scratch dx'),
        // The kernel always writes dgamma and dbeta: a frozen batchnorm would need scratch for them too.
        dgamma: mustAt(io.dIn, 1, 'batchnorm dgamma'),
        dbeta: mustAt(io.dIn, 2, 'batchnorm dbeta'),
        partial: mustAt(io.scratch, 1, 'batchnorm scratch partial sums'),
      },
      bnShape(io.inShapes, a, true),
    );
  },
};
