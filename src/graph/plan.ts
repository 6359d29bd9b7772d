// Planning: a graph becomes fixed lists of dispatches, once per (model, batch size, mode), in phases:
//   1. gradientsNeeded: which tensors carry a gradient back to a trainable parameter;
//   2. forwardSteps: the training batch's gather (in the first conv's forward where it can: gathering.ts),
//      the nodes in order (a view of its input runs nothing and shares its storage; a chain fuse.ts found
//      runs as one kernel; a batchnorm or layer whose pass adds a residual shortcut runs where that add is, as
//      the shortcut may come after it; a conv whose split-K forward partials its pooling or batchnorm sums runs
//      its split pass alone, fused-steps.ts convParts), then the loss, which seeds the backward with
//      dL/dlogits (loss-step.ts; with the logits' dense layer in its one dispatch: fused.xentHead);
//   3. backwardSteps (training; backward.ts): the nodes in reverse, each writing its wanted inputs' gradients;
//   4. assignBuffers (pool.ts): persistent tensors are where `persistent` says; each trainable parameter's
//      gradient mirrors its parameter's place in its pack (src/gpu/packed.ts: one optimizer dispatch
//      per pack); the rest share pooled buffers by liveness (reused once their last reader has run);
//   5. dispatchLists: each step's kernels, created once with their bind groups; neighbouring independent
//      GEMMs (a layer's dX and dW) paired into one dispatch (src/gpu/pair.ts).
// A training step is then: plan.forward, plan.backward, the optimizer (given plan.gradSums and plan.totals),
// plan.finish.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { xentTotal, type LossTotals } from '../ops/softmax_xent.ts';
import { lossStep } from './loss-step.ts';
import { forwardPools, leavesInputParts, type Conv2dShape } from '../ops/conv2d.ts';
import { gradientsNeeded, readersOf, type Graph, type NodeOf, type Tensor } from './graph.ts';
import { checkLimits } from './limits.ts';
import * as fuse from './fuse.ts';
import * as fused from './fused-steps.ts';
import { backwardSteps } from './backward.ts';
import { ioFor, type Planning, type Step } from './planning.ts';
import { kernelsOf } from './kernels.ts';
import type { GradSums } from './deferred.ts';
import { assignBuffers, type Buffers } from './pool.ts';
import { mustAt } from '../util/must.ts';
import { pairAdjacent } from '../gpu/pair.ts';
import { gatherFor, gatherStep, gathering, type GatherInput } from './gathering.ts';

export { checkLimits, type BufferLimits } from './limits.ts';

export interface PlanOptions {
  training: boolean;
  logits: Tensor;
  /** Labels tensor: with it the plan computes the loss (and, training, the gradients). */
  labels: Tensor | null;
  smoothing?: number;
  /** Where param and state tensors are, by tensor name: whole buffers or ranges of packs. */
  persistent: ReadonlyMap<string, BufferRef>;
  counter: GPUBuffer;
  stats: GPUBuffer;
  /**
   * The plan is a training step's: its loss pass takes the step's snapshot of the counter, and the
   * step's update must end the step (src/ops/optimizer.ts endsStep: the counter's advance); loss
   * totals the loss cannot add itself (more than one workgroup's rows) are left to the update (foldTotals)
   * or to `finish`.
   */
  endsStep?: boolean;
  /** Parameter names that are frozen (no gradient). */
  frozen?: ReadonlySet<string>;
  /** More tensors whose buffers stay valid after a step (e.g. the penultimate features). */
  keep?: Tensor[];
  /** Run the chains src/graph/fuse.ts finds as fused kernels (default true; false: every op unfused). */
  fuse?: boolean;
  /** Gradient buffers to use, by parameter buffer (another training plan's `gradientBuffers`), not owned. */
  gradients?: ReadonlyMap<GPUBuffer, GPUBuffer>;
  /** The update after this plan sums the deferred weight gradients (Plan.gradSums): no pass of the plan's. */
  foldGradSums?: boolean;
  /** The update after this plan adds the loss's partial totals into stats (Plan.totals): no pass of the plan's. */
  foldTotals?: boolean;
  /** Run neighbouring independent GEMMs as one dispatch (src/gpu/pair.ts; default: as `fuse`). */
  pair?: boolean;
  /** A training step's batch: gathered in the first conv's forward where it can, else by its pass (gathering.ts). */
  gather?: GatherInput;
}

export interface Plan {
  forward: Dispatch[];
  backward: Dispatch[];
  /** Where a tensor lives (input, labels, logits, loss stay valid after a step). */
  buffer(t: Tensor): BufferRef;
  /**
   * Gradients of trainable parameters, by name (training plans): each in a buffer that mirrors its
   * parameter's, at its parameter's offset.
   */
  grads: Map<string, BufferRef>;
  /** The gradient buffers by parameter buffer: for another plan of the same parameters to share. */
  gradientBuffers: ReadonlyMap<GPUBuffer, GPUBuffer>;
  /** With endsStep: the loss totals pass where the loss leaves partials and the update does not add them. */
  finish: Dispatch[];
  /**
   * With endsStep and foldTotals: the loss's partial totals the update must add into stats
   * (OptimizerState.updates); null: none left (the loss added them, or `finish` does).
   */
  totals: LossTotals | null;
  /**
   * A training step's plan (PlanOptions.endsStep): its loss pass snapshots the counter, so the update
   * recorded with it must end the step. Give this to OptimizerState.updates as `endsStep`.
   */
  endsStep: boolean;
  /** Bytes of the buffers this plan allocated (activations, gradients, saved values). */
  plannedBytes: number;
  /** The chains this plan runs as fused kernels (fuse.ts describeFusion lists them). */
  fusions: fuse.Fusion[];
  /** With foldGradSums: the split-K sums the update must add up (OptimizerState.updates); null: none left. */
  gradSums: GradSums | null;
  /** With `gather`: the first conv's forward gathers the batch (else the gather's pass is the first dispatch). */
  gathered: boolean;
  release(): void;
}

export function plan(gpu: Gpu, graph: Graph, o: PlanOptions): Plan {
  const onConv = (f: (g: Gpu, s: Conv2dShape) => boolean) => (c: NodeOf<'conv2d'>) => f(gpu, fuse.convShapeOf(c));
  const [convPools, dxSplits] = [forwardPools, leavesInputParts].map(onConv);
  const binds = (buffers: number) => (gpu.limits.maxStorageBuffersPerShaderStage ?? 8) >= buffers;
  const [bnPools, bnAdds] = [fuse.BN_POOL_BUFFERS, fuse.BN_ADD_BUFFERS].map(binds);
  const adapter = { convPools, bnPools, bnAdds, dxSplits }; // what the adapter's kernels allow
  const fusions = o.fuse === false ? [] : fuse.findFusions(graph, { ...o, ...adapter });
  const head = o.training && o.endsStep && o.labels && o.fuse !== false ? fused.xentHead(gpu, graph, o.logits) : null;
  const ix = fuse.indexFusions(fusions);
  const p: Planning = {
    ...{ gpu, graph, o, root: new Map(), savedOf: new Map(), gathering: gathering(gpu, graph, o, ix) },
    ...{ fusions: ix, xentHead: head, readers: readersOf(graph) },
  };
  const needsGrad = o.training ? gradientsNeeded(graph, o.frozen) : new Set<number>(); // 1.
  const grads = new Map<number, Tensor>();
  const forward = forwardSteps(p);
  const loss = lossStep(gpu, graph, { o, head, needsGrad, grads });
  if (loss) forward.push(loss.step);
  const back = o.training ? backwardSteps(p, needsGrad, grads) : null;
  const [paramGrads, folded] = [back?.paramGrads ?? new Map<string, Tensor>(), back?.folded ?? null];
  const steps = [...forward, ...(back?.steps ?? [])];
  const scratchShapes = steps.flatMap((s) => s.scratch);
  checkLimits(graph, gpu.limits, scratchShapes);
  const sumsKept = folded?.parts ? [folded.parts] : []; // the partials the update sums
  const kept = [p.o.logits, ...paramGrads.values(), ...(loss?.kept ?? []), ...(o.keep ?? []), ...sumsKept];
  const where = { gpu, tensors: graph.tensors, labels: o.labels, persistent: o.persistent, gradients: o.gradients };
  const b = assignBuffers({ ...where, storage: (t) => storage(p, t) }, steps, kept, paramGrads);
  const { fwd, bwd } = dispatchLists(steps, b, forward.length, (o.pair ?? o.fuse !== false) ? gpu : null);
  const left = o.endsStep && loss?.totals ? loss.totals(b.buf) : null;
  const totals = o.foldTotals ? left : null;
  const finish = left && !totals ? xentTotal(gpu, left) : [];
  return {
    forward: fwd,
    backward: bwd,
    buffer: b.buf,
    grads: new Map([...paramGrads].map(([name, g]) => [name, b.buf(g)])),
    gradientBuffers: b.gradients,
    finish,
    totals,
    endsStep: o.endsStep === true,
    plannedBytes: b.plannedBytes,
    fusions,
    gradSums: folded?.sums(b.buf) ?? null,
    gathered: p.gathering !== null,
    release() {
      gpu.free([...fwd, ...bwd, ...finish]);
      for (const buffer of b.owned) gpu.release(buffer);
    },
  };
}

const storage = (p: Planning, t: Tensor): Tensor => p.root.get(t.id) ?? t;

/** 2. The forward nodes in order; a view's output shares its input's storage and runs nothing. */
function forwardSteps(p: Planning): Step[] {
  const pass = p.gathering ? null : gatherStep(p.gpu, p.o); // where no conv takes the batch
  const steps: Step[] = pass ? [pass] : [];
  // Convs whose pooling sums their forward partials (fused.convParts), by their output; none unfused.
  const summed = new Map<number, fused.ConvParts>();
  const outside = new Set([p.o.logits.id, ...(p.o.keep ?? []).map((t) => t.id)]);
  const reading = { ix: p.fusions, readers: p.readers, outside };
  for (const n of p.graph.nodes) {
    if (p.fusions.absorbed.has(n) || n === p.xentHead) continue; // a fused kernel (or the loss step) writes it
    const f = p.fusions.forward.get(n);
    const cp = p.o.training && p.o.fuse !== false ? fused.convParts(p.gpu, p.graph, reading, n) : null;
    const from = summed.get(n.inputs[0]?.id ?? -1);
    if (cp) {
      summed.set(n.out.id, cp);
      steps.push(fused.convPartsStep(p.gpu, cp));
      continue;
    }
    const bnf = p.fusions.batchnorm.get(n);
    const bn = bnf?.bn === n ? bnf : undefined;
    const add = p.fusions.add.get(n); // a batchnorm or layer adding the shortcut runs at the add (fuse-add.ts)
    if (add?.bn === n || add?.layer === n) continue;
    const norm = add?.add === n ? add.bn : n.op === 'batchnorm' && (bn?.pool || from) ? n : undefined;
    if (norm?.op === 'batchnorm') {
      const parts = summed.get(norm.inputs[0]?.id ?? -1);
      const o = { bn: norm, fusion: bn, parts, add: norm === n ? undefined : add, training: p.o.training };
      const s = fused.bnStep(p.gpu, p.graph, o);
      for (const t of [norm.out, s.out]) p.savedOf.set(t.id, s.saved);
      if (bn?.pool) p.savedOf.set(bn.pool.out.id, s.argmax);
      steps.push(s);
      continue;
    }
    if (from && (n.op === 'maxpool' || n.op === 'avgpool')) {
      const s = fused.poolPartsStep(p.gpu, p.graph, { pool: n as fuse.PoolNode, f, cp: from, counter: p.o.counter });
      p.savedOf.set(n.out.id, s.saved);
      steps.push(s);
      continue;
    }
    if (f) {
      const s = fused.forwardStep(p.gpu, p.graph, f, { ...p.o, gathering: p.gathering });
      p.savedOf.set(n.out.id, s.saved);
      steps.push(s);
      continue;
    }
    const node = fuse.runAs(p.fusions, n); // a fused batchnorm writes its activation's output
    const k = kernelsOf(node, p.o.training);
    if (!k) {
      p.root.set(n.out.id, storage(p, mustAt(n.inputs, 0, `${n.op} input`)));
      continue;
    }
    const saved = k.saved.map((s) => p.graph.tensor(s.shape, 'temp', s.dtype));
    for (const t of [n.out, node.out]) p.savedOf.set(t.id, saved);
    const gather = gatherFor(p.gathering, n);
    steps.push({
      reads: [...node.inputs, ...node.state],
      writes: [node.out, ...saved, ...(gather?.writes ?? [])],
      scratch: k.forwardScratch(p.gpu),
      emit: (buf, scratch) => k.forward(p.gpu, { ...ioFor(p, node, buf), scratch, gather: gather?.io(buf) }),
    });
  }
  return steps;
}

/** 5. Each step's kernels over its buffers, created once (neighbours paired where `pairs`): forward, backward. */
function dispatchLists(steps: Step[], b: Buffers, forwardSteps: number, pairs: Gpu | null) {
  const lists = steps.map((s, i) => s.emit(b.buf, mustAt(b.scratch, i, 'scratch of a step')));
  const [fwd, bwd] = [lists.slice(0, forwardSteps).flat(), lists.slice(forwardSteps).flat()];
  return pairs ? { fwd: pairAdjacent(pairs, fwd), bwd: pairAdjacent(pairs, bwd) } : { fwd, bwd };
}
