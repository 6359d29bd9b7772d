// A node's kernels with its attributes bound (the planner's view of an op: src/ops/op.ts).
import type { Dispatch, Gpu } from '../gpu/runtime.ts';
import {
  OPS,
  isAlias,
  type Attrs,
  type BackwardIO,
  type ForwardIO,
  type OpDef,
  type OpName,
  type SavedSpec,
} from '../ops/index.ts';
import type { SplitLayout } from '../ops/grad-reduce.ts';
import { inShapes, type NodeOf } from './graph.ts';

/** A node's kernels with its attributes bound; null where the node is a view of its input 0. */
export interface Kernels {
  saved: SavedSpec[];
  scratch(gpu: Gpu, o?: { deferredWeights?: boolean }): number[][];
  forwardScratch(gpu: Gpu): number[][];
  /** How the weight gradient's split-K partials are laid out where they may be left unsummed (op.ts weightParts). */
  weightParts(gpu: Gpu, bias: boolean): SplitLayout | null;
  forward(gpu: Gpu, io: ForwardIO): Dispatch[];
  backward(gpu: Gpu, io: BackwardIO): Dispatch[];
}

export function kernelsOf<K extends OpName>(n: NodeOf<K>, training: boolean): Kernels | null {
  const def: OpDef<Attrs[K]> = OPS[n.op];
  if (isAlias(def) || def.alias?.(n.attrs, training)) return null;
  const ins = inShapes(n);
  return {
    saved: def.saved?.(ins, n.attrs, training) ?? [],
    scratch: (gpu, o) => def.scratch?.(ins, n.out.shape, n.attrs, gpu, o) ?? [],
    forwardScratch: (gpu) => def.forwardScratch?.(ins, n.out.shape, n.attrs, gpu) ?? [],
    weightParts: (gpu, bias) => def.weightParts?.(ins, n.attrs, gpu, bias) ?? null,
    forward: (gpu, io) => def.forward(gpu, io, n.attrs),
    backward: (gpu, io) => def.backward(gpu, io, n.attrs),
  };
}
