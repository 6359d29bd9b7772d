// A tensor two layers read (a residual block's input: the block's first layer and its shortcut) gets a
// gradient from each. Without a junction, a pass adds the two (grads.ts) and, where the node that wrote the
// tensor applies its activation's derivative in its own backward (an add with its activation, a conv or dense
// layer with a fused one: fuse-add.ts actGradient), applies act' to the sum in that pass. Here the dX of the
// reader whose gradient comes last adds the earlier one and applies act' as it stores
// (shaders/lib/chain_store.wgsl, TERM): that pass is gone, and the writer's backward runs linear on what the dX
// wrote. Bit for bit the unfused plan's (`fuse: false`): the same sum (IEEE addition commutes), the same act'.
// The reader whose gradient comes last is the first in graph order (the backward walks it in reverse): a conv or
// dense layer (whose dX kernels run a chain as they store), with no chain below it already, not leaving its
// split-K partials; and a gradient must have come before (the term; where more than one, a pass
// adds them first, as before).
import type { Act } from '../../dsl/ir.ts';
import { gradFromOutput } from '../ops/act.ts';
import type { EpilogueChain } from '../ops/chain.ts';
import type { BufferRef } from '../gpu/runtime.ts';
import type { FusionIndex } from './fuse.ts';
import type { DxStore } from './fused-steps.ts';
import type { Graph, Node, Tensor } from './graph.ts';

/**
 * The dX's store: the earlier gradient (the term, which it reads) added, then act' from the writer's output (the
 * dX's input, x) where the writer `takes` one; that node's backward then runs linear.
 */
export interface Junction extends DxStore {
  takes: Node | null;
}

/** What the planner knows as it walks the backward. */
interface JunctionContext {
  ix: FusionIndex;
  readers: ReadonlyMap<number, readonly Node[]>;
  /** A tensor's gradient so far as one tensor (the contributions after the first added by a pass), if any. */
  gradient(t: Tensor): Tensor | undefined;
  /** Whether an add hands its gradient to its inputs itself (backward.ts fansOut): then act' is in its own pass. */
  fansOut(add: Node): boolean;
}

/** For each node as the backward reaches it: the junction its dX completes, or null (its dX planned as before). */
export function junctions(graph: Graph, c: JunctionContext): (n: Node) => Junction | null {
  const writers = new Map(graph.nodes.map((w) => [w.out.id, w]));
  return (n) => {
    const x = n.inputs[0];
    if (!x || (n.op !== 'conv2d' && n.op !== 'dense')) return null;
    const readers = c.readers.get(x.id) ?? [];
    // The last reader backward, reading x once; every other reader comes after it in the graph.
    if (readers.length < 2 || readers[0] !== n || n.inputs.indexOf(x, 1) >= 0) return null;
    const term = c.gradient(x);
    if (!term) return null;
    const a = derivative(c, writers.get(x.id));
    const chain: EpilogueChain = { act: a?.act ?? { kind: 'linear' }, from: 'output', term: true };
    const io = (buf: (t: Tensor) => BufferRef) => ({ chain, saved: a ? buf(x) : undefined, term: buf(term) });
    return { takes: a?.takes ?? null, reads: [term], io };
  };
}

/**
 * The activation whose derivative the writer of x would apply to x's gradient in its own pass, and the node
 * whose backward that is: an add with its fused activation that hands its gradient on itself, or a conv or dense
 * layer with a fused activation (from its output). Else none: the dX only adds.
 */
function derivative(c: JunctionContext, w: Node | undefined): { act: Act; takes: Node } | null {
  if (!w) return null;
  const f = c.ix.add.get(w);
  if (w.op === 'activation' && f?.act === w && f.backward && c.fansOut(f.add))
    return { act: w.attrs.act, takes: f.add };
  if (w.op !== 'conv2d' && w.op !== 'dense') return null;
  const act = w.attrs.act;
  return act.kind !== 'linear' && gradFromOutput(act) ? { act, takes: w } : null;
}
