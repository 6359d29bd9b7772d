// The steps that run the fusions src/graph/fuse.ts finds, as the planner (src/graph/plan.ts) records them in
// place of the unfused ops: the fused forwards (a pooling with its dropout, a conv pooling in its epilogue, a
// dense layer dropping out in its epilogue), the fused backward chain, and what a conv's or dense layer's dX
// does for the chain reading it (its split-K partials left unsummed; the chain run in its epilogue).
import { backwardChain, poolDropoutForward, type ChainDropout, type DyParts } from '../ops/chain.ts';
import { conv2dForward, unsummedInputSplits } from '../ops/conv2d.ts';
import { DENSE, denseForward } from '../ops/dense.ts';
import type { Act } from '../../dsl/ir.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { inShapes, type Graph, type Node, type NodeOf, type Tensor } from './graph.ts';
import {
  chainOf,
  chainPool,
  chainSaved,
  convShapeOf,
  named,
  type BackwardFusion,
  type ForwardFusion,
  type FusionIndex,
} from './fuse.ts';

/** A planned step's tensors and kernels (plan.ts Step). */
export interface FusedStep {
  reads: Tensor[];
  writes: Tensor[];
  scratch: number[][];
  emit(buf: (t: Tensor) => BufferRef, scratch: BufferRef[]): Dispatch[];
}

/** The fused forward as a step; a max pooling's argmax (saved for the backward) is returned to keep. */
export function forwardStep(
  gpu: Gpu,
  graph: Graph,
  f: ForwardFusion,
  counter: GPUBuffer,
): FusedStep & { saved: Tensor[] } {
  const dropout = f.dropout ? { rate: f.dropout.attrs.rate, seed: f.dropout.attrs.seed } : undefined;
  if (f.head?.op === 'dense' && f.dropout && dropout)
    return denseDropoutStep(gpu, f.head, f.dropout.out, dropout, counter);
  const pool = f.pool;
  if (!pool) throw new Error('a forward fusion without a dense layer needs its pooling');
  const x = pool.inputs[0];
  if (!x) throw new Error(`${named(pool)} has no input`);
  const saved = pool.op === 'maxpool' ? [graph.tensor(pool.out.shape, 'temp', 'u32')] : [];
  const out = (f.dropout ?? pool).out;
  if (f.head?.op === 'conv2d') return convPoolStep(gpu, f.head, { out, argmax: saved, counter, dropout });
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
    scratch: DENSE.forwardScratch?.(ins, dense.out.shape, dense.attrs, gpu) ?? [],
    saved: [],
    emit: (buf, scratch) => {
      const io = { x: buf(x), w: buf(w), b: b && buf(b), y: buf(dense.out), parts: scratch[0], epi: buf(out), counter };
      return denseForward(gpu, io, ins, dense.attrs.act, { kind: 'dropout', dropout });
    },
  };
}

/** The conv with the pooling (and dropout) in its epilogue: writes Y (act' reads it), the pooled output and argmax. */
function convPoolStep(
  gpu: Gpu,
  conv: NodeOf<'conv2d'>,
  o: { out: Tensor; argmax: Tensor[]; counter: GPUBuffer; dropout?: { rate: number; seed: number } },
): FusedStep & { saved: Tensor[] } {
  const [x, w, b] = conv.inputs;
  const argmax = o.argmax[0];
  if (!x || !w || !argmax) throw new Error(`${named(conv)}: a pooled conv needs its input, weights and argmax`);
  const s = convShapeOf(conv);
  return {
    reads: [...conv.inputs, ...conv.state],
    writes: [conv.out, o.out, argmax],
    scratch: [],
    saved: o.argmax,
    emit: (buf) => {
      const pool = { pooled: buf(o.out), argmax: buf(argmax), counter: o.counter, dropout: o.dropout };
      return conv2dForward(gpu, { x: buf(x), w: buf(w), b: b && buf(b), y: buf(conv.out), pool }, s, conv.attrs.act);
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
 * 2 to 16 ways on the tiled kernels (unsummedInputSplits); else null.
 */
export function dxParts(gpu: Gpu, graph: Graph, ix: FusionIndex, conv: Node): DyParts | null {
  const x = conv.inputs[0];
  if (conv.op !== 'conv2d' || !x || ![...ix.backward.keys()].some((n) => n.out.id === x.id)) return null;
  if (graph.nodes.flatMap((n) => n.inputs).filter((t) => t.id === x.id).length !== 1) return null;
  const s = convShapeOf(conv);
  const splits = unsummedInputSplits(gpu, s);
  return splits > 0 ? { splits, channels: s.c, plane: s.h * s.w, length: s.n * s.c * s.h * s.w } : null;
}

/** A backward chain run in a dense layer's dX epilogue: the fusion, its saved tensor, and what the kernel applies. */
export interface DxChain {
  fusion: BackwardFusion;
  saved: Tensor;
  chain: { dropout: ChainDropout; act: Act; from: 'output' | 'input' };
}

/**
 * The backward chain dense layer `n`'s dX runs in its epilogue (shaders/lib/matmul_out_fused.wgsl), found
 * by findFusions (BackwardFusion.dx), with its saved tensor; else null. The chain has no kernel of its own.
 */
export function dxChain(ix: FusionIndex, n: Node): DxChain | null {
  const f = ix.dx.get(n);
  if (!f) return null;
  const saved = chainSaved(f);
  const { act, from, dropout } = chainOf(f);
  if (!saved || !dropout) throw new Error(`${named(n)}: the chain its dX runs needs a dropout and an activation`);
  return { fusion: f, saved, chain: { dropout, act, from } };
}
