// The autograd graph: tensors and nodes, built once per (model, batch size, mode).
//   A node is {op, attrs, inputs, out}; backward visits nodes in reverse topological order (the
//   order they were added). Gradient convention: the first contribution to a tensor's gradient
//   writes it, later ones are added to it — fan-out (residual connections) just works (the planner adds
//   into a new tensor where the gradient is also another tensor's: src/graph/grads.ts).
import { ShapeError } from '../errors.ts';
import { OPS, type Attrs, type OpName } from '../ops/index.ts';
import type { Shapes } from '../ops/op.ts';

export { numel } from '../ops/geometry.ts';

export type DType = 'f32' | 'u32';

export type TensorKind =
  | 'input' // the batch images, written by the data kernel
  | 'label' // the batch labels (u32)
  | 'param' // trainable weights: persistent, updated by the optimizer
  | 'state' // non-trainable persistent values (batch-norm running statistics)
  | 'temp'; // activations, saved values, gradients: buffers reused by liveness

interface TensorCommon {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}
/** A parameter or state tensor: persistent, and named (weights files and the optimizer use the name). */
export interface PersistentTensor extends TensorCommon {
  readonly kind: 'param' | 'state';
  readonly name: string;
}
export interface TransientTensor extends TensorCommon {
  readonly kind: Exclude<TensorKind, PersistentTensor['kind']>;
  readonly name?: undefined;
}
export type Tensor = PersistentTensor | TransientTensor;

/** An op applied with its attributes, e.g. { op: 'dropout', attrs: { rate: 0.25, seed: 7 } }. */
export interface OpCallOf<K extends OpName> {
  readonly op: K;
  readonly attrs: Attrs[K];
}
export type OpCall = { [K in OpName]: OpCallOf<K> }[OpName];

export interface NodeOf<K extends OpName> extends OpCallOf<K> {
  readonly inputs: readonly Tensor[];
  readonly out: Tensor;
  /** Persistent tensors the op updates in place (batch-norm running statistics). */
  readonly state: readonly Tensor[];
  /** The model layer the node computes, as the summary names it (`conv3`, `res2.conv1`, `res2`). */
  readonly layer?: string;
}
/** A node, discriminated by op: `n.op === 'conv2d'` narrows `n.attrs` to Attrs['conv2d']. */
export type Node = { [K in OpName]: NodeOf<K> }[OpName];

/** A node's input shapes, in order: what an op's shape rules take. */
export const inShapes = (n: { readonly inputs: readonly Tensor[] }): Shapes => n.inputs.map((t) => t.shape);

/** Each tensor's readers by tensor id: the nodes with it among their inputs, once per input it is. */
export function readersOf(graph: Graph): ReadonlyMap<number, readonly Node[]> {
  const readers = new Map<number, Node[]>();
  for (const n of graph.nodes) for (const t of n.inputs) readers.set(t.id, [...(readers.get(t.id) ?? []), n]);
  return readers;
}

/** The output shape of `call` on inputs of these shapes (the op's own shape rule). */
export function outShape<K extends OpName>(call: OpCallOf<K>, inShapes: Shapes): number[] {
  return OPS[call.op].shape(inShapes, call.attrs);
}

function checkShape(shape: readonly number[], name: string): number[] {
  for (const d of shape)
    if (!Number.isInteger(d) || d <= 0)
      throw new ShapeError(`tensor ${name} has an invalid shape [${shape.join(', ')}]`);
  return [...shape];
}

export class Graph {
  readonly tensors: Tensor[] = [];
  readonly nodes: Node[] = [];

  tensor(shape: readonly number[], kind: TransientTensor['kind'], dtype: DType = 'f32'): Tensor {
    return this.push({ id: this.tensors.length, shape: checkShape(shape, ''), dtype, kind });
  }

  /** A named f32 parameter or state tensor. */
  persistent(shape: readonly number[], kind: PersistentTensor['kind'], name: string): Tensor {
    return this.push({ id: this.tensors.length, shape: checkShape(shape, name), dtype: 'f32', kind, name });
  }

  private push(t: Tensor): Tensor {
    this.tensors.push(t);
    return t;
  }

  /** Adds a node computing `call` on `inputs` and returns its output, shaped by the op. */
  add(call: OpCall, inputs: readonly Tensor[], o: { state?: Tensor[]; layer?: string } = {}): Tensor {
    const inShapes = inputs.map((i) => i.shape);
    const out = this.tensor(outShape(call, inShapes), 'temp');
    this.nodes.push({ ...call, inputs, out, state: o.state ?? [], layer: o.layer });
    return out;
  }
}

/** Tensors that carry a gradient back to a trainable (not `frozen`) parameter, by id. */
export function gradientsNeeded(graph: Graph, frozen?: ReadonlySet<string>): Set<number> {
  const needs = new Set<number>();
  for (const t of graph.tensors) if (t.kind === 'param' && !frozen?.has(t.name)) needs.add(t.id);
  for (const n of graph.nodes) if (n.inputs.some((i) => needs.has(i.id))) needs.add(n.out.id);
  return needs;
}
