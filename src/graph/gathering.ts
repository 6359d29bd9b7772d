// A training plan's batch (PlanOptions.gather): gathered in the first conv's forward where one can take it
// (src/ops/conv2d_gather.ts), so the gather has no dispatch of its own, else by the gather's pass as the
// plan's first step. The planner (plan.ts forwardSteps) hands it to the conv's forward, fused with its
// pooling (fused-steps.ts convPoolStep) or not (the op's own, ForwardIO.gather).
import { gatherPass, type GatherIn } from '../data/batch.ts';
import { forwardGathers, type ConvGather } from '../ops/conv2d_gather.ts';
import type { BufferRef, Gpu } from '../gpu/runtime.ts';
import { convShapeOf, type FusionIndex } from './fuse.ts';
import type { Graph, Node, NodeOf, Tensor } from './graph.ts';
import type { FusedStep } from './fused-steps.ts';

/** A training plan's batch, as the step's gather would write it (plans.ts). */
export interface GatherInput {
  /** The graph's input tensor, the batch x. */
  input: Tensor;
  from: GatherIn;
}

export interface Gathering {
  conv: NodeOf<'conv2d'>;
  /** What the conv's step writes besides its own outputs: the batch and its labels. */
  writes: Tensor[];
  io(buf: (t: Tensor) => BufferRef): ConvGather;
}

/**
 * The conv that gathers the batch: the first node to read the input, a conv reading it as its x, fused
 * or not with its pooling, where this adapter runs it (forwardGathers). Null: the gather keeps its pass.
 */
export function gathering(
  gpu: Gpu,
  graph: Graph,
  o: { gather?: GatherInput; labels: Tensor | null; fuse?: boolean },
  fusions: FusionIndex,
): Gathering | null {
  const { gather: g, labels } = o;
  if (!g || !labels || o.fuse === false) return null;
  const first = graph.nodes.find((n) => n.inputs.includes(g.input));
  if (first?.op !== 'conv2d' || first.inputs[0] !== g.input) return null;
  const conv = first as NodeOf<'conv2d'>;
  // A conv pooling in its epilogue is absorbed into its pooling's fusion (fuse.ts FusionIndex.forward) and
  // gathers there (fused-steps.ts convPoolStep); absorbed into any other, it has no forward of its own.
  const pooled = [...fusions.forward.values()].some((f) => f.head === conv);
  if (fusions.absorbed.has(conv) !== pooled) return null;
  if (!forwardGathers(gpu, convShapeOf(conv), pooled)) return null;
  return { conv, writes: [g.input, labels], io: (buf) => ({ from: g.from, labels: buf(labels) }) };
}

/** The gathering when `n` is its conv, else null. */
export const gatherFor = (g: Gathering | null, n: Node): Gathering | null => (g?.conv === n ? g : null);

/** The gather's own pass as the plan's first step, where no conv takes the batch; null without a gather. */
export function gatherStep(gpu: Gpu, o: { gather?: GatherInput; labels: Tensor | null }): FusedStep | null {
  const { gather: g, labels } = o;
  if (!g) return null;
  if (!labels) throw new Error('a plan that gathers its batch needs its labels tensor');
  return {
    ...{ reads: [], writes: [g.input, labels], scratch: [] },
    emit: (buf) => gatherPass(gpu, g.from, { x: buf(g.input), labels: buf(labels) }),
  };
}
