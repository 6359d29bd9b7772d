// The steps that run the fusions src/graph/fuse.ts finds, as the planner (src/graph/plan.ts) records them in
// place of the unfused ops: the fused forwards (a pooling with its dropout, a conv pooling in its epilogue, a
// dense layer dropping out in its epilogue), the fused backward chain, what a conv's or dense layer's dX
// does for the chain reading it (its split-K partials left unsummed; the chain run in its epilogue), a
// conv whose forward partials its reader sums (convParts), a batchnorm's fused forward (bnStep), and the
// logits' dense layer run in the loss step (xentHead, denseXentStep).
import {
  backwardChain,
  poolDropoutForward,
  poolForwardParts,
  type ChainDropout,
  type DyParts,
  type EpilogueChain,
} from '../ops/chain.ts';
import { conv2dForward, conv2dGeometry, unsummedForwardSplits, unsummedInputSplits } from '../ops/conv2d.ts';
import { windowsApart } from '../ops/pool.ts';
import { denseForward } from '../ops/dense.ts';
import { kernelsOf } from './kernels.ts';
import { gatherFor, type Gathering } from './gathering.ts';
import { matmulPlan, matmulXent, matmulXentPartials } from '../ops/matmul.ts';
import { bindsStorage } from '../gpu/pair.ts';
import { batchnormForward, bnPartials } from '../ops/batchnorm.ts';
import { bnShape } from '../ops/batchnorm_op.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import type { BackwardIO } from '../ops/op.ts';
import { inShapes, type readersOf, type Graph, type Node, type NodeOf, type Tensor } from './graph.ts';
import {
  chainOf,
  chainPool,
  chainSaved,
  convShapeOf,
  soleReader,
  named,
  type AddActFusion,
  type BackwardFusion,
  type BnActFusion,
  type ForwardFusion,
  type FusionIndex,
  type PoolNode,
} from './fuse.ts';

/** Each tensor's readers by id (graph.ts readersOf). */
type Readers = ReturnType<typeof readersOf>;

/** A planned step's tensors and kernels (planning.ts Step). */
export interface FusedStep {
  reads: Tensor[];
  writes: Tensor[];
  scratch: number[][];
  emit(buf: (t: Tensor) => BufferRef, scratch: BufferRef[]): Dispatch[];
}

/**
 * The fused forward as a step; a training step's max pooling's argmax (saved for the backward) is returned
 * to keep. At inference a conv's pooling writes none.
 */
export function forwardStep(
  gpu: Gpu,
  graph: Graph,
  f: ForwardFusion,
  o: { counter: GPUBuffer; gathering: Gathering | null; training: boolean },
): FusedStep & { saved: Tensor[] } {
  const { counter, gathering } = o;
  const dropout = f.dropout ? { rate: f.dropout.attrs.rate, seed: f.dropout.attrs.seed } : undefined;
  if (f.head?.op === 'dense' && f.dropout && dropout)
    return denseDropoutStep(gpu, f.head, f.dropout.out, dropout, counter);
  const pool = f.pool;
  if (!pool) throw new Error('a forward fusion without a dense layer needs its pooling');
  const x = pool.inputs[0];
  if (!x) throw new Error(`${named(pool)} has no input`);
  const saved = pool.op === 'maxpool' && o.training ? [graph.tensor(pool.out.shape, 'temp', 'u32')] : [];
  const out = (f.dropout ?? pool).out;
  if (f.head?.op === 'conv2d') {
    return convPoolStep(gpu, f.head, { out, argmax: saved, counter, dropout, gather: gatherFor(gathering, f.head) });
  }
  if (!dropout) throw new Error(`${named(pool)}: a forward fusion without a conv needs its dropout`);
  return {
    reads: [x],
    writes: [out, ...saved],
    scratch: [],
    saved,
    emit: (buf) => {
      const io = { x: buf(x), y: buf(out), argmax: saved[0] && buf(saved[0]), counter };
      return poolDropoutForward(gpu, io, chainPool(pool), dropout);
    },
  };
}

/** The dense layer with its dropout in the epilogue: writes Y (act' reads it) and the dropped output. */
function denseDropoutStep(
  gpu: Gpu,
  dense: NodeOf<'dense'>,
  out: Tensor,
  dropout: ChainDropout,
  counter: GPUBuffer,
): FusedStep & { saved: Tensor[] } {
  const [x, w, b] = dense.inputs;
  if (!x || !w) throw new Error(`${named(dense)}: a dense layer needs its input and weights`);
  const ins = inShapes(dense);
  return {
    reads: [...dense.inputs, ...dense.state],
    writes: [dense.out, out],
    // The split-K partial sums the dense forward takes (the epilogue does not change them).
    scratch: kernelsOf(dense, true)?.forwardScratch(gpu) ?? [],
    saved: [],
    emit: (buf, scratch) => {
      const io = { x: buf(x), w: buf(w), b: b && buf(b), y: buf(dense.out), parts: scratch[0], epi: buf(out), counter };
      return denseForward(gpu, io, ins, dense.attrs.act, { kind: 'dropout', dropout });
    },
  };
}

/** The conv with the pooling (and dropout) in its epilogue: writes Y, the pooled output and (training) argmax. */
function convPoolStep(
  gpu: Gpu,
  conv: NodeOf<'conv2d'>,
  o: { out: Tensor; argmax: Tensor[]; counter: GPUBuffer; dropout?: ChainDropout; gather: Gathering | null },
): FusedStep & { saved: Tensor[] } {
  const [x, w, b] = conv.inputs;
  const argmax = o.argmax[0];
  if (!x || !w) throw new Error(`${named(conv)}: a pooled conv needs its input and weights`);
  const s = convShapeOf(conv);
  return {
    reads: [...conv.inputs, ...conv.state],
    writes: [conv.out, o.out, ...o.argmax, ...(o.gather?.writes ?? [])],
    scratch: [],
    saved: o.argmax,
    emit: (buf) => {
      const pool = { pooled: buf(o.out), argmax: argmax && buf(argmax), counter: o.counter, dropout: o.dropout };
      const io = { x: buf(x), w: buf(w), b: b && buf(b), y: buf(conv.out), pool, gather: o.gather?.io(buf) };
      return conv2dForward(gpu, io, s, conv.attrs.act);
    },
  };
}

/**
 * The fused backward as a step, from the chain's output gradient `dy` into a fresh tensor `target`
 * (the head's dZ, or the chain input's gradient: writesPreActivation says which).
 */
export function backwardStep(
  gpu: Gpu,
  f: BackwardFusion,
  io: { dy: Tensor; target: Tensor; argmax: Tensor | undefined; counter: GPUBuffer; dyParts?: DyParts },
): FusedStep {
  const saved = chainSaved(f);
  const extra = [io.argmax, saved].filter((t): t is Tensor => t != null);
  return {
    reads: [io.dy, ...extra],
    writes: [io.target],
    scratch: [],
    emit: (buf) =>
      backwardChain(
        gpu,
        {
          dy: buf(io.dy),
          dx: buf(io.target),
          counter: io.counter,
          argmax: io.argmax && buf(io.argmax),
          saved: saved ? buf(saved) : undefined,
        },
        { ...chainOf(f), dyParts: io.dyParts },
      ),
  };
}

/**
 * A conv's dX that the backward chain reading it sums from the GEMM's split-K partials, its reduce
 * pass dropped: the conv's input is a chain's last output, read by this conv alone, and its dX splits
 * 2 to 16 ways on the tiled kernels (unsummedInputSplits); else null, as where the conv's dX runs that
 * chain as it stores (FusionIndex.dx).
 */
export function dxParts(gpu: Gpu, readers: Readers, ix: FusionIndex, conv: Node): DyParts | null {
  const x = conv.inputs[0];
  if (conv.op !== 'conv2d' || !x || ix.dx.has(conv) || ![...ix.backward.keys()].some((n) => n.out.id === x.id))
    return null;
  if (readers.get(x.id)?.length !== 1) return null;
  const s = convShapeOf(conv);
  const splits = unsummedInputSplits(gpu, s);
  return splits > 0 ? { splits, channels: s.c, plane: s.h * s.w, length: s.n * s.c * s.h * s.w } : null;
}

/**
 * What a dX runs as it stores (BackwardIO.dInChain): the tensors it reads besides its own (the saved values act'
 * reads, a max pooling's argmax, a term) and its buffers as the kernels take them.
 */
export interface DxStore {
  reads: Tensor[];
  io(buf: (t: Tensor) => BufferRef): BackwardIO['dInChain'];
}

/** A backward chain run where a dense layer's or conv's dX stores: the fusion, and what its kernel reads. */
export interface DxChain extends DxStore {
  fusion: BackwardFusion;
}

/**
 * The backward chain that dense layer or conv `n`'s dX runs as it stores (shaders/lib/chain_store.wgsl),
 * found by findFusions (BackwardFusion.dx), with its tensors (`savedOf`: the forward's saved tensors by
 * output, the pooling's argmax among them); else null. The chain has no kernel of its own.
 */
export function dxChain(ix: FusionIndex, n: Node, savedOf: Map<number, Tensor[]>): DxChain | null {
  const f = ix.dx.get(n);
  if (!f) return null;
  const { act, from, pool, dropout } = chainOf(f);
  const argmax = chainArgmax(f, savedOf);
  const saved = chainSaved(f) ?? undefined;
  const reads = [saved, argmax].filter((t): t is Tensor => !!t);
  const chain: EpilogueChain = { act, from, pool, dropout };
  const io = (buf: (t: Tensor) => BufferRef) => ({ chain, saved: saved && buf(saved), argmax: argmax && buf(argmax) });
  return { fusion: f, reads, io };
}

/** The argmax a chain's max unpooling reads: its pooling's, saved by the forward (savedOf); none for other chains. */
export function chainArgmax(f: BackwardFusion, savedOf: Map<number, Tensor[]>): Tensor | undefined {
  if (f.pool?.op !== 'maxpool') return undefined;
  const argmax = savedOf.get(f.pool.out.id)?.[0];
  if (!argmax) throw new Error(`${named(f.pool)}: its chain's backward needs the argmax the forward saved`);
  return argmax;
}

/** A conv whose pooling sums its forward's split-K partials: the conv, the partials' tensor and their layout. */
export interface ConvParts {
  conv: NodeOf<'conv2d'>;
  parts: Tensor;
  layout: DyParts;
}

/**
 * A conv (not pooling in its own epilogue) whose only reader sums its forward's split-K partials on its
 * way, the conv's reduce pass dropped: a pooling of windows apart, fused with its dropout or plain, which
 * then adds the bias, activates, writes Y and pools in one pass (poolForwardParts); or a training
 * batchnorm (the conv linear), whose statistics pass sums them and writes Y (batchnorm.wgsl stats_parts).
 * The conv's forward splits 2 to 16 ways on the tiled kernels (unsummedForwardSplits), and its output is
 * not read outside the graph (`outside`); else null.
 */
export function convParts(
  gpu: Gpu,
  graph: Graph,
  o: { ix: FusionIndex; readers: Readers; outside: Set<number> },
  n: Node,
): ConvParts | null {
  if (n.op !== 'conv2d' || o.ix.absorbed.has(n)) return null;
  const r = soleReader(o.readers, o.outside, n.out);
  if (!r || o.ix.absorbed.has(r)) return null;
  const pools = (r.op === 'maxpool' || r.op === 'avgpool') && windowsApart(chainPool(r).shape);
  const normalises = r.op === 'batchnorm' && n.attrs.act.kind === 'linear';
  if (!pools && !normalises) return null;
  const s = convShapeOf(n);
  const splits = unsummedForwardSplits(gpu, s);
  if (splits === 0) return null;
  const { oh, ow } = conv2dGeometry(s);
  const layout = { splits, channels: s.k, plane: oh * ow, length: s.n * s.k * oh * ow };
  return { conv: n as NodeOf<'conv2d'>, parts: graph.tensor([splits * layout.length], 'temp'), layout };
}

/** The conv's forward as its split pass alone, its partials into cp.parts (Y is its pooling's to write). */
export function convPartsStep(gpu: Gpu, cp: ConvParts): FusedStep {
  const [x, w] = cp.conv.inputs;
  if (!x || !w) throw new Error(`${named(cp.conv)}: a conv needs its input and weights`);
  const s = convShapeOf(cp.conv);
  return {
    reads: [...cp.conv.inputs, ...cp.conv.state],
    writes: [cp.parts],
    scratch: [],
    emit: (buf) =>
      conv2dForward(gpu, { x: buf(x), w: buf(w), y: gpu.dummy, parts: buf(cp.parts) }, s, cp.conv.attrs.act, {
        unsummed: true,
      }),
  };
}

/**
 * The pooling (with the dropout fusion `f` gives, or plain) that sums its conv's partials: writes the
 * conv's Y, the pooled (dropped) output and, for max pooling, the argmax it returns to keep.
 */
export function poolPartsStep(
  gpu: Gpu,
  graph: Graph,
  o: { pool: PoolNode; f: ForwardFusion | undefined; cp: ConvParts; counter: GPUBuffer },
): FusedStep & { saved: Tensor[] } {
  const { pool, cp } = o;
  const saved = pool.op === 'maxpool' ? [graph.tensor(pool.out.shape, 'temp', 'u32')] : [];
  const d = o.f?.dropout;
  const out = (d ?? pool).out;
  const b = cp.conv.inputs[2];
  const chain = { pool: chainPool(pool), act: cp.conv.attrs.act, parts: cp.layout };
  return {
    reads: [cp.parts, ...(b ? [b] : [])],
    writes: [cp.conv.out, out, ...saved],
    scratch: [],
    saved,
    emit: (buf) => {
      const io = { parts: buf(cp.parts), bias: b && buf(b), counter: o.counter, y: buf(cp.conv.out), pooled: buf(out) };
      const dropout = d ? { rate: d.attrs.rate, seed: d.attrs.seed } : undefined;
      return poolForwardParts(gpu, { ...io, argmax: saved[0] && buf(saved[0]) }, { ...chain, dropout });
    },
  };
}

/**
 * A batchnorm's forward (training or inference) as the fusions make it: with its activation and the pooling
 * that reads it in one pass (`fusion`, BnActFusion.pool), or the residual add after it and the add's activation
 * (`add`, AddActFusion.bn: it reads the add's other input, the shortcut), and/or its statistics summed from its
 * input conv's forward partials (`parts`, convParts), which it then writes. Writes its output (the activation's,
 * when fused), the pooled output, the batch statistics it returns to keep (`saved`, as its own forward saves
 * them) and the argmax for max pooling; at inference it saves nothing, and with a pooling writes that alone.
 */
export function bnStep(
  gpu: Gpu,
  graph: Graph,
  o: { bn: NodeOf<'batchnorm'>; fusion?: BnActFusion; parts?: ConvParts; add?: AddActFusion; training: boolean },
): FusedStep & { saved: Tensor[]; argmax: Tensor[]; out: Tensor } {
  const { bn, fusion: f, parts: cp, add, training } = o;
  const [x, gamma, beta] = bn.inputs;
  const [runMean, runVar] = bn.state;
  if (!x || !gamma || !beta || !runMean || !runVar) throw new Error(`${named(bn)}: a batchnorm needs its tensors`);
  const pool = f?.pool;
  const act = (add ?? f)?.act.attrs.act;
  const s = { ...bnShape(inShapes(bn), bn.attrs, training), act, pool: pool && chainPool(pool) };
  const out = (add ?? f)?.act.out ?? bn.out;
  const shortcut = add?.add.inputs[1]; // the add's other input: y = act(z + shortcut)
  // At inference nothing is saved, and a pooling pass writes its pooled output alone.
  const saved = training ? [graph.tensor([s.c], 'temp'), graph.tensor([s.c], 'temp')] : [];
  const argmax = training && pool?.op === 'maxpool' ? [graph.tensor(pool.out.shape, 'temp', 'u32')] : [];
  const y = training || !pool ? out : null;
  const bias = cp?.conv.inputs[2];
  return {
    reads: [
      ...bn.inputs,
      ...bn.state,
      ...(cp ? [cp.parts, ...(bias ? [bias] : [])] : []),
      ...(shortcut ? [shortcut] : []),
    ],
    writes: [...(y ? [y] : []), ...(pool ? [pool.out] : []), ...saved, ...argmax, ...(cp ? [x] : [])],
    scratch: training ? [[bnPartials(gpu, s)]] : [],
    saved,
    argmax,
    out,
    emit: (buf, scratch) => {
      const [saveMean, saveInvStd] = saved.map(buf);
      const params = { x: buf(x), gamma: buf(gamma), beta: buf(beta), runMean: buf(runMean), runVar: buf(runVar) };
      const outs = { y: y ? buf(y) : gpu.dummy, pooled: pool && buf(pool.out), argmax: argmax[0] && buf(argmax[0]) };
      const xParts = cp && { parts: buf(cp.parts), splits: cp.layout.splits, bias: bias && buf(bias) };
      const more = { saveMean, saveInvStd, partial: scratch[0], xParts, shortcut: shortcut && buf(shortcut) };
      return batchnormForward(gpu, { ...params, ...outs, ...more }, s);
    },
  };
}

/**
 * The dense layer whose GEMM ends in the training step's loss (shaders/matmul_xent.wgsl): the node that
 * writes the logits, the graph's last, linear, on the tiled kernels, with at most 128 classes (one tile's
 * columns), whose forward would not split K anyway (so the logits, and the training, are the same bits
 * either way; a deep K keeps its split), where the adapter binds the kernel's storage buffers; else null.
 * Its forward then runs in the loss step (denseXentStep).
 */
export function xentHead(gpu: Gpu, graph: Graph, logits: Tensor): NodeOf<'dense'> | null {
  const last = graph.nodes[graph.nodes.length - 1];
  if (gpu.lanes > 0 || last?.op !== 'dense' || last.out.id !== logits.id || last.attrs.act.kind !== 'linear')
    return null;
  const [[n = 0, f = 0] = [], [, classes = 0] = []] = inShapes(last);
  if (classes > 128) return null;
  if (!bindsStorage(gpu, { shader: 'matmul_xent', entry: 'main_xent' })) return null;
  return matmulPlan(gpu, { m: n, k: f, n: classes }).splits === 1 ? (last as NodeOf<'dense'>) : null;
}

/**
 * The loss step with the logits' dense layer in it (xentHead): one dispatch writes the logits, dlogits
 * (when `dlogits` is given) and the counter snapshot, as the dense forward and the loss pass would, and adds
 * the stats itself when one workgroup holds every row; else it leaves their partials, which it returns as
 * `partials` (with their pairs' count) for the step's update or the totals pass to add.
 */
export function denseXentStep(
  gpu: Gpu,
  graph: Graph,
  dense: NodeOf<'dense'>,
  o: { labels: Tensor; dlogits: Tensor | null; stats: GPUBuffer; counter: GPUBuffer; smoothing: number },
): FusedStep & { partials: { tensor: Tensor; groups: number } | null } {
  const [x, w, b] = dense.inputs;
  if (!x || !w) throw new Error(`${named(dense)}: a dense layer needs its input and weights`);
  const [[n = 1, f = 1] = [], [, classes = 1] = []] = inShapes(dense);
  const s = { m: n, k: f, n: classes };
  const groups = matmulXentPartials(gpu, s);
  // Bound either way (unwritten by one workgroup, which adds the stats itself).
  const partials = graph.tensor([2 * Math.max(1, groups)], 'temp', 'u32');
  return {
    reads: [...dense.inputs, o.labels],
    writes: [dense.out, ...(o.dlogits ? [o.dlogits] : []), partials],
    scratch: [],
    partials: groups > 0 ? { tensor: partials, groups } : null,
    emit: (buf) => {
      const io = { a: buf(x), b: buf(w), bias: b && buf(b), c: buf(dense.out), labels: buf(o.labels) };
      const loss = { dlogits: o.dlogits ? buf(o.dlogits) : undefined, stats: o.stats, counter: o.counter };
      const more = { ...loss, partials: buf(partials) };
      return matmulXent(gpu, { ...io, ...more }, s, { smoothing: o.smoothing, scale: 1 / n });
    },
  };
}
