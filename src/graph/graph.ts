// The autograd graph: tensors and nodes, built once per (model, batch size, mode).
//   A node is {op, inputs, attrs, out}; backward visits nodes in reverse topological order (the
//   order they were added). Gradient convention: the first contribution to a tensor's gradient
//   writes it, later ones accumulate (add) into it — fan-out (residual connections) just works.
import { ShapeError } from '../errors.ts';

export type DType = 'f32' | 'u32';

export type TensorKind =
  | 'input' // the batch images, written by the data kernel
  | 'label' // the batch labels (u32)
  | 'param' // trainable weights: persistent, updated by the optimizer
  | 'state' // non-trainable persistent values (batch-norm running statistics)
  | 'temp'; // activations, saved values, gradients: buffers reused by liveness

export interface Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly kind: TensorKind;
  /** Parameter / state name (weights files use it). */
  readonly name?: string;
}

export interface Node {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly attrs: unknown;
  readonly out: Tensor;
  /** Extra forward outputs the backward reads (max-pool argmax, batch-norm statistics). */
  readonly saved: readonly Tensor[];
  /** Persistent tensors the op updates in place (batch-norm running statistics). */
  readonly state: readonly Tensor[];
  /** The model layer the node computes, as the summary names it (`conv3`, `res2.conv1`, `res2`). */
  readonly layer?: string;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export class Graph {
  readonly tensors: Tensor[] = [];
  readonly nodes: Node[] = [];

  tensor(shape: readonly number[], kind: TensorKind, dtype: DType = 'f32', name?: string): Tensor {
    for (const d of shape)
      if (!Number.isInteger(d) || d <= 0)
        throw new ShapeError(`tensor ${name ?? ''} has an invalid shape [${shape.join(', ')}]`);
    const t: Tensor = { id: this.tensors.length, shape: [...shape], dtype, kind, name };
    this.tensors.push(t);
    return t;
  }

  add(
    op: string,
    inputs: readonly Tensor[],
    attrs: unknown,
    outShape: readonly number[],
    saved: Tensor[] = [],
    state: Tensor[] = [],
    layer?: string,
  ): Tensor {
    const out = this.tensor(outShape, 'temp');
    this.nodes.push({ op, inputs, attrs, out, saved, state, layer });
    return out;
  }
}
