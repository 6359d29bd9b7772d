// Phase 3 of planning (plan.ts), training only: the backward. The nodes in reverse, each writing its wanted
// inputs' gradients (grads.ts: the first contribution writes it, later ones add in, or make a new sum where that
// gradient is also another tensor's: an add's, handed to both inputs uncopied); where a tensor's gradient comes
// from two layers, the last one's dX adds the one before as it stores, and the writer's act' (junction.ts), else
// an add or a conv or dense layer with a fused activation adds a second in its act' pass; a fused chain's kernel,
// or the dX running it as it stores, writes its first node's gradient; split-K weight gradients leave partials
// (deferred.ts).
import { actGradient, actTakes } from './fuse-add.ts';
import * as fuse from './fuse.ts';
import * as fused from './fused-steps.ts';
import { Gradients } from './grads.ts';
import type { Node, Tensor } from './graph.ts';
import { junctions } from './junction.ts';
import { kernelsOf, type Kernels } from './kernels.ts';
import { deferWeights, type DeferredWeights } from './deferred.ts';
import { ioFor, type Planning, type Step } from './planning.ts';
import { mustAt } from '../util/must.ts';

// 3. The nodes in reverse, each given its output's gradient and fresh tensors for its wanted inputs'
// gradients; a gradient that already had a value gets the fresh one added in (grads.ts: when it is read).
export function backwardSteps(
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
