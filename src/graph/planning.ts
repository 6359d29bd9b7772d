// What the planner's phases share (src/graph/plan.ts, backward.ts): the planning's state and a node's kernel I/O.
import type { BufferRef, Gpu } from '../gpu/runtime.ts';
import type { ForwardIO } from '../ops/index.ts';
import type { FusionIndex } from './fuse.ts';
import type { FusedStep } from './fused-steps.ts';
import type { Gathering } from './gathering.ts';
import { inShapes, type Graph, type Node, type NodeOf, type readersOf, type Tensor } from './graph.ts';
import type { PlanOptions } from './plan.ts';

/** One node's (or the loss's, or an accumulation's) kernels, with the tensors they read and write. */
export type Step = FusedStep;

/** What the phases share. */
export interface Planning {
  gpu: Gpu;
  graph: Graph;
  o: PlanOptions;
  /** Storage aliasing: tensor id → the tensor that owns the storage (a view's output → its input). */
  root: Map<number, Tensor>;
  /** Values each node's forward saved for its backward, by the node's output tensor id. */
  savedOf: Map<number, Tensor[]>;
  fusions: FusionIndex;
  /** The logits' dense layer when its forward runs in the loss step (fused.xentHead). */
  xentHead: NodeOf<'dense'> | null;
  /** Each tensor's readers (graph.ts readersOf). */
  readers: ReturnType<typeof readersOf>;
  gathering: Gathering | null; // the conv that gathers the batch in its forward (PlanOptions.gather), if one can
}

/** A node's forward I/O over the step's buffers (its saved values, state, the counter and stats included). */
export function ioFor(p: Planning, n: Node, buf: (t: Tensor) => BufferRef): ForwardIO {
  return {
    inputs: n.inputs.map(buf),
    inShapes: inShapes(n),
    out: buf(n.out),
    outShape: n.out.shape,
    saved: (p.savedOf.get(n.out.id) ?? []).map(buf),
    state: n.state.map(buf),
    training: p.o.training,
    counter: p.o.counter,
    stats: p.o.stats,
  };
}
