// Planning: a graph becomes fixed lists of dispatches, once per (model, batch size, mode), in phases:
//   1. gradientsNeeded: which tensors carry a gradient back to a trainable parameter;
//   2. forwardSteps: the training batch's gather (in the first conv's forward where it can: gathering.ts),
//      the nodes in order (a view of its input runs nothing and shares its storage; a chain fuse.ts found
//      runs as one kernel; a batchnorm or layer whose pass adds a residual shortcut runs where that add is, as
//      the shortcut may come after it; a conv whose split-K forward partials its pooling or batchnorm sums runs
//      its split pass alone, fused-steps.ts convParts), then the loss, which seeds the backward with
//      dL/dlogits (loss-step.ts; with the logits' dense layer in its one dispatch: fused.xentHead);
//   3. backwardSteps (training): the nodes in reverse, each writing its wanted inputs' gradients
//      (the first contribution writes it, later ones add in, or make a new sum where that gradient is also
//      another tensor's: an add's, handed to both inputs uncopied; the last, a conv's or dense layer's dX, adds
//      the one before as it stores, and the writer's act' (junction.ts), else an add or a conv or dense layer with
//      a fused activation adds a second in its act' pass; a fused chain's kernel, or the dX running it as it
//      stores, writes its first node's); split-K weight gradients leave partials (deferred.ts);
//   4. assignBuffers (pool.ts): persistent tensors are where `persistent` says; each trainable parameter's
//      gradient mirrors its parameter's place in its pack (src/gpu/packed.ts: one optimizer dispatch
//      per pack); the rest share pooled buffers by liveness (reused once their last reader has run);
//   5. dispatchLists: each step's kernels, created once with their bind groups; neighbouring independent
//      GEMMs (a layer's dX and dW) paired into one dispatch (src/gpu/pair.ts).
// A training step is then: plan.forward, plan.backward, the optimizer (given plan.gradSums and plan.totals),
// plan.finish.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import type { ForwardIO } from '../ops/index.ts';
import { xentTotal, type LossTotals } from '../ops/softmax_xent.ts';
import { lossStep } from './loss-step.ts';
import { forwardPools, leavesInputParts, type Conv2dShape } from '../ops/conv2d.ts';
import { gradientsNeeded, inShapes, readersOf, type Graph, type Node, type NodeOf, type Tensor } from './graph.ts';
import { checkLimits } from './limits.ts';
import * as fuse from './fuse.ts';
import { actGradient, actTakes } from './fuse-add.ts';
import { junctions } from './junction.ts';
import { Gradients } from './grads.ts';
import * as fused from './fused-steps.ts';
import { kernelsOf, type Kernels } from './kernels.ts';
import { deferWeights, type DeferredWeights, type GradSums } from './deferred.ts';
import { assignBuffers, type Buffers } from './pool.ts';
import { mustAt } from '../util/must.ts';
import { pairAdjacent } from '../gpu/pair.ts';
import { gatherFor, gatherStep, gathering, type Gathering, type GatherInput } from './gathering.ts';

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

/** One node's (or the loss's, or an accumulation's) kernels, with the tensors they read and write. */
type Step = fused.FusedStep;

/** What the phases share. */
interface Planning {
  gpu: Gpu;
  graph: Graph;
  o: PlanOptions;
  /** Storage aliasing: tensor id → the tensor that owns the storage (a view's output → its input). */
  root: Map<number, Tensor>;
  /** Values each node's forward saved for its backward, by the node's output tensor id. */
  savedOf: Map<number, Tensor[]>;
  fusions: fuse.FusionIndex;
  /** The logits' dense layer when its forward runs in the loss step (fused.xentHead). */
  xentHead: NodeOf<'dense'> | null;
  /** Each tensor's readers (graph.ts readersOf). */
  readers: ReturnType<typeof readersOf>;
  gathering: Gathering | null; // the conv that gathers the batch in its forward (PlanOptions.gather), if one can
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

function ioFor(p: Planning, n: Node, buf: (t: Tensor) => BufferRef): ForwardIO {
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

// 3. The nodes in reverse, each given its output's gradient and fresh tensors for its wanted inputs'
// gradients; a gradient that already had a value gets the fresh one added in (grads.ts: when it is read).
function backwardSteps(
  p: Planning,
  needsGrad: ReadonlySet<number>,
  grads: Map<number, Tensor>,
): { steps: Step[]; paramGrads: Map<string, Tensor>; folded: DeferredWeights | null } {
  const steps: Step[] = [];
  const preActivation = new Set<number>();
  const unsummed = new Map<number, fuse.DyParts>();
  // Weight gradients whose split-K sums one pass at the end adds up (deferred.ts); none unfused.
  const trainable = (t: Tensor): boolean => p.o.fuse !== false && needsGrad.has(t.id);
  const deferred = deferWeights(p.gpu, p.graph, { persistent: p.o.persistent, wants: trainable });
  const g = new Gradients(p.gpu, p.graph, grads, (s) => steps.push(s));
  const fans = (add: Node) => fansOut(p, add, needsGrad);
  const junction = junctions(p.graph, { ix: p.fusions, readers: p.readers, gradient: (t) => g.read(t), fansOut: fans });
  /** A chain's kernel (or the dX that ran it) wrote `target`: its head's dZ, or its input's gradient. */
  const chainWrote = (chain: fuse.BackwardFusion, target: Tensor): void => {
    const first = fuse.chainInput(chain);
    if (fuse.writesPreActivation(chain)) {
      g.set(first, target);
      preActivation.add(first.id);
    } else g.contribute(first, target);
  };
  for (const n of [...p.graph.nodes].reverse()) {
    const ran = fuse.runAs(p.fusions, n, true); // as the kernels run it (linear where a dX took its act')
    const node = preActivation.has(n.out.id) ? fuse.withoutActivation(ran) : ran;
    if (fuse.foldAct(p.fusions, n, (o) => g.pass(n.out, o))) continue; // act' in bn's (add's) backward
    if (fans(n)) {
      // d(a+b)/da = d(a+b)/db = 1: each input's gradient is the output's (· act'(Y) where it runs with act), no copy.
      const got = g.take(n.out, actTakes(node));
      if (!got) continue;
      const { grad, step } = actGradient(p.gpu, p.graph, node, got.grad, got.terms[0]);
      if (step) steps.push(step);
      g.share(grad);
      for (const inp of n.inputs) if (needsGrad.has(inp.id)) g.contribute(inp, grad);
      continue;
    }
    // A conv or dense layer whose output has two gradients no dX completed adds them in its act' pass, runs linear.
    const own = p.o.fuse !== false && n.op !== 'add' && !preActivation.has(n.out.id);
    const got = own ? g.take(n.out, actTakes(node)) : undefined;
    const two = got?.terms.length === 1 ? actGradient(p.gpu, p.graph, node, got.grad, got.terms[0]) : null;
    if (two?.step) {
      steps.push(two.step);
      g.set(n.out, two.grad);
      preActivation.add(n.out.id);
    }
    let dOut = g.read(n.out);
    if (!dOut) continue;
    const chain = p.fusions.backward.get(n);
    if (chain) {
      // One kernel from the chain's output gradient; a conv or dense head's dZ feeds its own backward.
      const first = fuse.chainInput(chain);
      const target = p.graph.tensor(first.shape, 'temp');
      const argmax = fused.chainArgmax(chain, p.savedOf);
      const dyParts = unsummed.get(dOut.id);
      steps.push(fused.backwardStep(p.gpu, chain, { dy: dOut, target, argmax, counter: p.o.counter, dyParts }));
      chainWrote(chain, target);
      if (first !== n.out) continue;
      dOut = target; // a chain of the head's act' alone: the head's own backward follows, on its dZ
    }
    const wants = n.inputs.map((i) => needsGrad.has(i.id));
    const k = kernelsOf(preActivation.has(n.out.id) ? fuse.withoutActivation(node) : node, true);
    if (!k) {
      // Same storage both ways: the input's gradient is the output's.
      if (wants[0]) g.contribute(mustAt(n.inputs, 0, `${n.op} input`), dOut);
      continue;
    }
    // A conv's dX that a chain sums from its split-K partials (fused.dxParts) is those partials; a dense
    // layer's or conv's dX may run the chain below it as it stores (fused.dxChain): that chain's input gradient;
    // or complete its input's gradient, adding the one before and the writer's act' (junction.ts).
    const parts = wants[0] ? fused.dxParts(p.gpu, p.readers, p.fusions, n) : null;
    const below = wants[0] ? fused.dxChain(p.fusions, n, p.savedOf) : null;
    const jx = wants[0] && !parts && !below && p.o.fuse !== false ? junction(n) : null;
    if (jx?.takes) preActivation.add(jx.takes.out.id); // the dX applies that node's act'
    const shapeOf = (inp: Tensor, i: number): readonly number[] => {
      if (i === 0 && parts) return [parts.splits * parts.length];
      return i === 0 && below ? fuse.chainInput(below.fusion).shape : inp.shape;
    };
    const targets = n.inputs.map((inp, i) => (wants[i] ? p.graph.tensor(shapeOf(inp, i), 'temp') : null));
    if (parts && targets[0]) unsummed.set(targets[0].id, parts);
    steps.push(nodeBackward(p, { n, node, k, dOut }, { targets, parts, store: below ?? jx, deferred }));
    n.inputs.forEach((inp, i) => {
      const t = targets[i];
      if (t && i === 0 && below) chainWrote(below.fusion, t);
      else if (t && i === 0 && jx) g.set(inp, t);
      else if (t) g.contribute(inp, t);
    });
  }
  g.flush(p.graph.tensors.filter((t) => t.kind === 'param')); // a parameter read twice: its gradient's sum
  // Summed by their own pass, or (foldGradSums) by the update: then their partials are kept until it.
  const folded = p.o.foldGradSums === true && deferred.foldable() ? deferred : null;
  const sums = folded ? null : deferred.step(p.gpu);
  if (sums) steps.push(sums);
  return { steps, paramGrads: g.params, folded };
}

/**
 * Whether an add passes its output's gradient on to its inputs as it is (planned, not copied): not in an unfused
 * plan (which copies, as the op does), nor where an input is a parameter (its gradient has its place in the pack).
 */
const fansOut = (p: Planning, n: Node, needsGrad: ReadonlySet<number>): boolean =>
  n.op === 'add' && p.o.fuse !== false && n.inputs.every((i) => i.kind !== 'param' || !needsGrad.has(i.id));

/**
 * A node's own backward kernels as a step, writing `targets`: dX as split-K partials a chain sums
 * (`parts`) or through a chain in its store (`store`), dW left unsummed where its reduction is deferred.
 */
function nodeBackward(
  p: Planning,
  { n, node, k, dOut }: { n: Node; node: Node; k: Kernels; dOut: Tensor },
  o: { targets: (Tensor | null)[]; parts: fuse.DyParts | null; store: fused.DxStore | null; deferred: DeferredWeights },
): Step {
  const { targets, store, deferred } = o;
  const d = deferred.of(n);
  if (d) deferred.made(d, targets[1], targets[2]);
  const partials = d && deferred.parts ? [deferred.parts] : [];
  return {
    reads: [...node.inputs, node.out, ...(p.savedOf.get(node.out.id) ?? []), dOut, ...(store?.reads ?? [])],
    writes: [...targets.filter((t): t is Tensor => t !== null), ...partials],
    scratch: k.scratch(p.gpu, { deferredWeights: d !== undefined }),
    emit: (buf, scratch) =>
      k.backward(p.gpu, {
        ...ioFor(p, node, buf),
        ...{ dOut: buf(dOut), dIn: targets.map((t) => t && buf(t)), dInParts: o.parts !== null, scratch },
        dInChain: store?.io(buf),
        dWParts: d ? deferred.range(buf, d) : undefined,
      }),
  };
}

/** 5. Each step's kernels over its buffers, created once (neighbours paired where `pairs`): forward, backward. */
function dispatchLists(steps: Step[], b: Buffers, forwardSteps: number, pairs: Gpu | null) {
  const lists = steps.map((s, i) => s.emit(b.buf, mustAt(b.scratch, i, 'scratch of a step')));
  const [fwd, bwd] = [lists.slice(0, forwardSteps).flat(), lists.slice(forwardSteps).flat()];
  return pairs ? { fwd: pairAdjacent(pairs, fwd), bwd: pairAdjacent(pairs, bwd) } : { fwd, bwd };
}
