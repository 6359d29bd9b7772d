import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import type { EpilogueChain } from './chain.ts';
import type { SplitLayout } from './grad-reduce.ts';
import type { ConvGather } from './conv2d_gather.ts';

export type Shapes = readonly (readonly number[])[];

/** Where an op's tensors live during one step; planned by src/graph/plan.ts. */
export interface ForwardIO {
  inputs: BufferRef[];
  inShapes: Shapes;
  out: BufferRef;
  outShape: readonly number[];
  saved: BufferRef[];
  state: BufferRef[];
  training: boolean;
  /** u32 step counter on the GPU (dropout masks, data offsets, optimizer step). */
  counter: GPUBuffer;
  /** Loss/accuracy accumulators: [loss sum (f32 bits), correct count]. */
  stats: GPUBuffer;
  /** The scratch the forward asked for (KernelOp.forwardScratch), where the planner gives it. */
  scratch?: BufferRef[];
  /** A first conv's training batch, gathered in its forward (the planner's choice: src/graph/gathering.ts). */
  gather?: ConvGather;
}

export interface BackwardIO extends ForwardIO {
  dOut: BufferRef;
  /** Where to write each input's gradient (overwrite), or null where it is not needed. */
  dIn: (BufferRef | null)[];
  /** dIn[0] takes its split-K partial sums unsummed (a conv's dX whose reader sums them: the planner's choice). */
  dInParts?: boolean;
  /**
   * dIn[0] is written through the backward chain of the layers below (its dropoutᵀ, unpooling and activation
   * derivative, from `saved` and `argmax`), the chain input's gradient: the planner's choice
   * (src/graph/fused-steps.ts dxChain), made for dense layers, convs and global average pooling. With
   * `chain.term`, `term` is first added to the values stored (a second gradient: src/graph/junction.ts).
   */
  dInChain?: { chain: EpilogueChain; saved?: BufferRef; argmax?: BufferRef; term?: BufferRef };
  /**
   * The weight gradient (dIn[1], and dIn[2] the bias's) is left as its GEMM's split-K partial sums in this
   * range, laid out as KernelOp.weightParts says: the planner sums them at the end of the backward
   * (src/graph/deferred.ts). dIn[1] and dIn[2] are not written then.
   */
  dWParts?: BufferRef;
  scratch: BufferRef[];
}

export interface SavedSpec {
  shape: number[];
  dtype: 'f32' | 'u32';
}

/**
 * A conv's or dense layer's bias and residual shortcut among its inputs [x, w, b?, shortcut?]: the shortcut is
 * the last input where the node runs with one (its `shortcut` attribute, src/graph/fuse-add.ts layerWithAdd).
 */
export function biasAndShortcut<T>(inputs: readonly T[], shortcut: boolean): { b?: T; shortcut?: T } {
  if (!shortcut) return { b: inputs[2] };
  return { b: inputs.length > 3 ? inputs[2] : undefined, shortcut: inputs[inputs.length - 1] };
}

/** An op whose forward runs kernels; `A` is its attributes (the node's `attrs`). */
export interface KernelOp<A> {
  shape(inShapes: Shapes, attrs: A): number[];
  /** Shapes (and dtypes) of values the forward saves for the backward. */
  saved?(inShapes: Shapes, attrs: A, training: boolean): SavedSpec[];
  /**
   * Scratch f32 tensors the backward needs for the duration of its step; `deferredWeights`: its weight
   * gradient's partials go to BackwardIO.dWParts, so none for them.
   */
  scratch?(
    inShapes: Shapes,
    outShape: readonly number[],
    attrs: A,
    gpu: Gpu,
    o?: { deferredWeights?: boolean },
  ): number[][];
  /**
   * Scratch f32 tensors the forward can use for its step (a GEMM's split-K partial sums): an offer,
   * not a need. A forward given no `io.scratch` runs without it (src/graph/plan.ts gives forward
   * steps none yet).
   */
  forwardScratch?(inShapes: Shapes, outShape: readonly number[], attrs: A, gpu: Gpu): number[][];
  /**
   * How the weight gradient's split-K partial sums are laid out where its GEMM splits K on this adapter's
   * tiled kernels (`bias`: the bias gradient alongside), so that the planner may leave them unsummed
   * (BackwardIO.dWParts); null where it does not split.
   */
  weightParts?(inShapes: Shapes, attrs: A, gpu: Gpu, bias: boolean): SplitLayout | null;
  forward(gpu: Gpu, io: ForwardIO, attrs: A): Dispatch[];
  /** Required: an op without a backward does not compile. */
  backward(gpu: Gpu, io: BackwardIO, attrs: A): Dispatch[];
  /**
   * Runs no kernel when this is true: the output is input 0's storage and its gradient is the
   * output's (dropout at inference or at rate 0). The planner then never calls forward or backward.
   */
  alias?(attrs: A, training: boolean): boolean;
}

/**
 * An op that is always a view of input 0 (reshape): no kernel either way, so neither a forward nor
 * a backward to write. Typed apart from KernelOp so that "always an alias" cannot be half-declared.
 */
export interface AliasOp<A> {
  alias: 'always';
  shape(inShapes: Shapes, attrs: A): number[];
}

export type OpDef<A> = KernelOp<A> | AliasOp<A>;

export const isAlias = <A>(def: OpDef<A>): def is AliasOp<A> => def.alias === 'always';
