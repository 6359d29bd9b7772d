// The training step's or evaluation's loss, as the planner (plan.ts) records it after the forward: the loss
// pass (src/ops/softmax_xent.ts), or the logits' dense layer with the loss in its GEMM (fused.xentHead).
import type { BufferRef, Gpu } from '../gpu/runtime.ts';
import { softmaxXent, xentGroups, type LossTotals } from '../ops/softmax_xent.ts';
import type { Graph, NodeOf, Tensor } from './graph.ts';
import * as fused from './fused-steps.ts';
import type { FusedStep } from './fused-steps.ts';
import type { PlanOptions } from './plan.ts';

// The loss kernels: per-sample loss, the stats totals and (training) dL/dlogits, which seeds `grads`. With
// endsStep the loss pass takes the counter's snapshot, and totals it cannot add itself (its partials, kept)
// are left to the step's end: the update's (PlanOptions.foldTotals) or a totals pass in `finish`.
export function lossStep(
  gpu: Gpu,
  graph: Graph,
  at: { o: PlanOptions; head: NodeOf<'dense'> | null; needsGrad: ReadonlySet<number>; grads: Map<number, Tensor> },
): { step: FusedStep; kept: Tensor[]; totals: ((buf: (t: Tensor) => BufferRef) => LossTotals) | null } | null {
  const { o, head, needsGrad, grads } = at;
  const labels = o.labels;
  if (!labels) return null;
  const [n = 1, classes = 1] = o.logits.shape;
  const dlogits = o.training && needsGrad.has(o.logits.id) ? graph.tensor(o.logits.shape, 'temp') : null;
  if (dlogits) grads.set(o.logits.id, dlogits);
  if (head) {
    // The logits' dense layer and the loss in one dispatch (fused.xentHead): its snapshot, and its totals
    // or their partials.
    const xent = { labels, dlogits, stats: o.stats, counter: o.counter, smoothing: o.smoothing ?? 0 };
    const step = fused.denseXentStep(gpu, graph, head, xent);
    const left = step.partials;
    if (!left) return { step, kept: [], totals: null };
    return { step, kept: [left.tensor], totals: (buf) => ({ partials: buf(left.tensor), ...left, stats: o.stats }) };
  }
  const loss = graph.tensor([n], 'temp');
  const groups = xentGroups(n);
  const partials = graph.tensor([2 * groups], 'temp', 'u32');
  const step: FusedStep = {
    reads: [o.logits, labels],
    writes: dlogits ? [loss, partials, dlogits] : [loss, partials],
    scratch: [],
    // dL/dlogits = (softmax(logits) − target) / N: the gradient of the mean loss.
    emit: (buf) => {
      const io = { logits: buf(o.logits), labels: buf(labels), loss: buf(loss), partials: buf(partials) };
      const more = { dlogits: dlogits ? buf(dlogits) : undefined, counter: o.endsStep ? o.counter : undefined };
      const shape = { n, classes, smoothing: o.smoothing ?? 0, scale: 1 / n };
      return softmaxXent(gpu, { ...io, ...more, stats: o.stats }, shape, { total: !o.endsStep });
    },
  };
  if (!o.endsStep || groups === 1) return { step, kept: [], totals: null };
  return { step, kept: [partials], totals: (buf) => ({ partials: buf(partials), groups, stats: o.stats }) };
}
