// The op table: every graph op by name, listed here (no registration by import side effects).
// Typed and exhaustive: adding a name to Attrs without its OpDef, or an OpDef without a backward,
// does not compile. Each op's definition lives beside its kernels in src/ops/<op>.ts.
import type { Act } from '../../dsl/ir.ts';
import { BATCHNORM, type BatchnormAttrs } from './batchnorm_op.ts';
import { CONV2D, type Conv2dAttrs } from './conv2d_op.ts';
import { DENSE, type DenseAttrs } from './dense.ts';
import { DROPOUT, type DropoutAttrs } from './dropout.ts';
import { ACTIVATION, ADD } from './elementwise.ts';
import type { Window2d } from './geometry.ts';
import type { OpDef } from './op.ts';
import { AVGPOOL, MAXPOOL } from './pool.ts';
import { GLOBALAVGPOOL } from './global_pool.ts';
import { RESHAPE } from './reshape.ts';

type NoAttrs = Record<string, never>;

/** Each op's attributes: what a graph node of that op carries besides its tensors. */
export interface Attrs {
  conv2d: Conv2dAttrs;
  dense: DenseAttrs;
  maxpool: Window2d;
  avgpool: Window2d;
  globalavgpool: NoAttrs;
  activation: { act: Act };
  dropout: DropoutAttrs;
  batchnorm: BatchnormAttrs;
  /** act: the activation after the add that the planner runs in its pass (src/graph/fuse-add.ts); never the model's. */
  add: { act?: Act };
  reshape: NoAttrs;
}
export type OpName = keyof Attrs;

export const OPS: { [K in OpName]: OpDef<Attrs[K]> } = {
  conv2d: CONV2D,
  dense: DENSE,
  maxpool: MAXPOOL,
  avgpool: AVGPOOL,
  globalavgpool: GLOBALAVGPOOL,
  activation: ACTIVATION,
  dropout: DROPOUT,
  batchnorm: BATCHNORM,
  add: ADD,
  reshape: RESHAPE,
};

export type { AliasOp, BackwardIO, ForwardIO, KernelOp, OpDef, SavedSpec } from './op.ts';
export { isAlias } from './op.ts';
