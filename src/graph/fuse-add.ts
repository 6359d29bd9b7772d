// An add (a residual connection) whose only reader is an activation runs as one pass with it:
// y = act(a + b) (shaders/elementwise.wgsl add), the sum never written; or in the pass of the batchnorm or the
// store of the conv or dense layer that writes a (AddActFusion.bn, .layer), a then never written either.
// Backward: act'(y) from the output (so only activations whose output gives their derivative), once, then the
// add passes that gradient on to both inputs (src/graph/backward.ts); unless a backward chain took the activation as
// its head: the chain then reads act' from the output too, and the add passes on what the chain wrote.
// actGradient is that act' pass, for a conv's or dense layer's fused activation too where its output has two
// gradients (backward.ts); unless the dX giving the last of them applies act' as it stores (junction.ts): then the
// add, conv or dense layer runs linear.
import type { Gpu } from '../gpu/runtime.ts';
import { gradFromOutput } from '../ops/act.ts';
import type { Act } from '../../dsl/ir.ts';
import { activationBackward, activationBackwardSum } from '../ops/elementwise.ts';
import type { BackwardFusion, Fusion } from './fuse.ts';
import type { FusedStep } from './fused-steps.ts';
import { numel, type Graph, type Node, type NodeOf, type Tensor } from './graph.ts';
import { mustAt } from '../util/must.ts';

export interface AddActFusion {
  kind: 'add';
  add: NodeOf<'add'>;
  act: NodeOf<'activation'>;
  /** act' in the add's backward (false: at inference, or a backward chain headed by the activation applies it). */
  backward: boolean;
  /**
   * The batchnorm whose output, read by the add alone, is its input 0 (a block ending in batch norm): its pass
   * adds the shortcut and activates, y = act(z + shortcut), run where the add is (the shortcut may be computed
   * after it); no add kernel. In training only where the adapter binds BN_ADD_BUFFERS storage buffers (at
   * inference the pass binds 7).
   */
  bn?: NodeOf<'batchnorm'>;
  /**
   * Likewise the conv or dense layer (its activation linear; a conv not reading the batch) whose output, read by
   * the add alone, is its input 0 (a block ending in one): it adds the shortcut and activates as it stores
   * (conv2d.ts ConvForwardIO.shortcut, matmul.ts's `add` epilogue; on every forward kernel), run where the add is.
   */
  layer?: StoreLayer;
}

/** A layer whose forward can add a residual shortcut as it stores. */
type StoreLayer = NodeOf<'conv2d'> | NodeOf<'dense'>;

/** Storage buffers shaders/batchnorm.wgsl forward_train_add binds (the shortcut's too). */
export const BN_ADD_BUFFERS = 10;

/**
 * The adds whose only reader is an activation with a derivative from its output; `chains` learn theirs
 * (training: else nothing goes back). `sole`: a tensor's only reader; `writer`: the node writing it.
 */
export function addFusions(
  graph: Graph,
  { sole, writer }: { sole: (t: Tensor) => Node | null; writer: (t: Tensor | undefined) => Node | undefined },
  o: { chains: Fusion[]; training: boolean; bnAdds: boolean },
): AddActFusion[] {
  const out: AddActFusion[] = [];
  for (const add of graph.nodes) {
    const act = sole(add.out);
    if (add.op !== 'add' || act?.op !== 'activation') continue;
    const a = (act as NodeOf<'activation'>).attrs.act;
    if (a.kind === 'linear' || !gradFromOutput(a)) continue;
    const chain = o.chains.find((c): c is BackwardFusion => c.kind === 'backward' && c.head === act);
    if (chain) chain.fromOutput = true;
    const f: AddActFusion = { kind: 'add', add: add as NodeOf<'add'>, act, backward: o.training && !chain };
    const by = writer(add.inputs[0]);
    if (by?.op === 'batchnorm' && sole(by.out) === add && (!o.training || o.bnAdds)) out.push({ ...f, bn: by });
    else if (by && sole(by.out) === add && addsInStore(by)) out.push({ ...f, layer: by });
    else out.push(f);
  }
  return out;
}

/** Whether a layer adds the shortcut as it stores: a conv or dense layer, linear, not a conv gathering the batch. */
const addsInStore = (n: Node): n is StoreLayer =>
  (n.op === 'dense' || (n.op === 'conv2d' && n.inputs[0]?.kind !== 'input')) && n.attrs.act.kind === 'linear';

/** The layer as it runs fused: the shortcut its last input, the add's activation, writing the activation's output. */
export function layerWithAdd(f: AddActFusion, layer: StoreLayer): Node {
  const [act, out] = [f.act.attrs.act, f.act.out];
  const inputs = [...layer.inputs, mustAt(f.add.inputs, 1, 'the shortcut')];
  // One branch a kind, so each node's attributes are checked as its own.
  if (layer.op === 'conv2d') return { ...layer, attrs: { ...layer.attrs, act, shortcut: true }, inputs, out };
  return { ...layer, attrs: { ...layer.attrs, act, shortcut: true }, inputs, out };
}

/** The add as the fused pass runs it, writing the activation's output: with its activation or (`act` false) not. */
export function addWithAct(f: AddActFusion, act = true): Node {
  return { ...f.add, attrs: act ? { act: f.act.attrs.act } : {}, out: f.act.out };
}

const actOf = (n: Node): Act | undefined => {
  const act = n.op === 'add' || n.op === 'conv2d' || n.op === 'dense' ? n.attrs.act : undefined;
  return act && act.kind !== 'linear' ? act : undefined;
};

/** Contributions to its output gradient the node (as it runs) adds in its own act' pass (actGradient's `term`). */
export const actTakes = (n: Node): number => (actOf(n) ? 1 : 0);

/**
 * The gradient before a node's fused activation: dY where it has none, else a new tensor dY · act'(Y) and the
 * step that writes it. An add (addWithAct) passes it on to its inputs; a conv or dense layer then runs its own
 * backward on it, linear. `term`: a second contribution to dY, added in that pass ((dY + term) · act'(Y), the
 * bits of the sum and then act').
 */
export function actGradient(
  gpu: Gpu,
  graph: Graph,
  n: Node,
  dy: Tensor,
  term?: Tensor,
): { grad: Tensor; step?: FusedStep } {
  const act = actOf(n);
  if (!act) return { grad: dy };
  const grad = graph.tensor(dy.shape, 'temp');
  const count = numel(dy.shape);
  const step: FusedStep = {
    reads: [dy, n.out, ...(term ? [term] : [])],
    writes: [grad],
    scratch: [],
    emit: (buf) => {
      const io = { dy: buf(dy), saved: buf(n.out), dx: buf(grad) };
      return term
        ? activationBackwardSum(gpu, { ...io, dy2: buf(term) }, count, act)
        : activationBackward(gpu, io, count, act, 'output');
    },
  };
  return { grad, step };
}
