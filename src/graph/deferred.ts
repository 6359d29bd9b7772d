// Deferred weight-gradient reductions, a planner's choice in training plans on the tiled kernels: a conv
// or dense layer whose dW GEMM splits K leaves its partial sums unsummed, in its own range of one
// tensor, and one pass at the end of the backward (src/ops/grad-reduce.ts) sums them all into dW and db,
// in place of a reduce pass per layer. The gradients are the same bits either way (the pass sums as each
// layer's reduce_splits would). Where the update recorded after the plan takes them (PlanOptions.foldGradSums,
// at most SEGMENTS layers), that update sums them on its way instead (shaders/optimizer.wgsl adam_sums,
// sgd_sums; `sums` gives it their segments) and the plan makes no pass for them.
// A layer is deferred where its weights are trainable, its weights and trainable bias read by it alone (so
// their gradients are written once, never accumulated into) and in one parameter buffer (a pack), so that
// one pass over that buffer's gradient mirror writes them all; a frozen bias is left out of its layout.
// Up to MAX_DEFERRED of partials; past it a layer sums its own. Each deferred layer's backward asks no
// scratch for its dW's partials (KernelOp.scratch `deferred`).
import { rangeOf } from '../gpu/packed.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { reduceGradients, SEGMENTS, splitLength, type GradSegment, type SplitLayout } from '../ops/grad-reduce.ts';
import { readersOf, type Graph, type Node, type Tensor } from './graph.ts';
import { kernelsOf } from './kernels.ts';

/** Floats a layer's range of partials is aligned to: WebGPU's storage-binding offset alignment, 256 bytes. */
const ALIGN = 64;
/**
 * Floats of partials deferred at most (64 MB; less where the adapter binds less): past it, a layer
 * sums its own, as each GEMM's partials are at most 16 MB (gemm.ts).
 */
const MAX_DEFERRED = 1 << 24;

interface Deferral {
  layout: SplitLayout;
  /** The range's first float in the partials tensor. */
  at: number;
  node: Node;
  /** The gradients the final pass writes (DeferredWeights.made, as the layer's backward step is made). */
  dw?: Tensor;
  db?: Tensor | null;
}

/** A deferral whose layer's backward step was made: its gradients known. */
type Made = Deferral & { dw: Tensor };

const layerOf = (n: Node): string => n.layer ?? n.op;

/** The deferred layers of a training plan and the tensor of their partial sums. */
export interface DeferredWeights {
  /** The layer's deferral, where its dW is deferred. */
  of(n: Node): Deferral | undefined;
  /** The partial sums of every deferred layer (one tensor; each layer its aligned range). */
  parts: Tensor | null;
  /** The gradient tensors the layer's backward step was given for its weights and bias: the sums write them. */
  made(d: Deferral, dw: Tensor | null | undefined, db: Tensor | null | undefined): void;
  /** The layer's range of `parts`, for its backward (BackwardIO.dWParts). */
  range(buf: (t: Tensor) => BufferRef, d: Deferral): BufferRef;
  /** The pass that sums them, as a step at the end of the backward; null when nothing is deferred. */
  step(gpu: Gpu): DeferredStep | null;
  /** Whether the update can sum them instead: at most SEGMENTS layers (one table). */
  foldable(): boolean;
  /** Their segments by gradient buffer, for the update that sums them; null when nothing is deferred. */
  sums(buf: (t: Tensor) => BufferRef): GradSums | null;
}

/**
 * The deferred weight gradients' split-K partials and their segments by gradient buffer (offsets in floats
 * from the buffer's start), for the update that sums them on its way (OptimizerState.updates `sums`).
 */
export interface GradSums {
  parts: BufferRef;
  groups: { grads: GPUBuffer; segments: GradSegment[] }[];
}

interface DeferredStep {
  reads: Tensor[];
  writes: Tensor[];
  scratch: number[][];
  emit(buf: (t: Tensor) => BufferRef): Dispatch[];
}

/**
 * The layers of `graph` whose weight-gradient reduction this training plan defers: those `wants` says
 * are trainable, read by one node, in one parameter buffer of `persistent`, whose dW splits on `gpu`.
 */
export function deferWeights(
  gpu: Gpu,
  graph: Graph,
  o: { persistent: ReadonlyMap<string, BufferRef>; wants: (t: Tensor) => boolean },
): DeferredWeights {
  const readers = readersOf(graph);
  const sole = (t: Tensor | undefined): t is Tensor =>
    t !== undefined && t.kind === 'param' && readers.get(t.id)?.length === 1;
  const bufferOf = (t: Tensor): GPUBuffer | undefined => {
    const r = t.name === undefined ? undefined : o.persistent.get(t.name);
    return r && rangeOf(r).buffer;
  };
  const byNode = new Map<Node, Deferral>();
  const most = Math.min(MAX_DEFERRED, Math.floor(gpu.limits.maxStorageBufferBindingSize / 4));
  let total = 0;
  for (const n of graph.nodes) {
    const [, w, b] = n.inputs;
    if ((n.op !== 'conv2d' && n.op !== 'dense') || !sole(w) || !o.wants(w)) continue;
    const bias = b !== undefined && o.wants(b);
    if (bias && (!sole(b) || bufferOf(b) !== bufferOf(w))) continue;
    const layout = kernelsOf(n, true)?.weightParts(gpu, bias) ?? null;
    const size = layout ? Math.ceil(splitLength(layout) / ALIGN) * ALIGN : 0;
    if (!layout || total + size > most) continue;
    byNode.set(n, { layout, at: total, node: n });
    total += size;
  }
  const parts = total > 0 ? graph.tensor([total], 'temp') : null;
  /** The deferrals whose backward step was made (a layer whose weights got no gradient has none). */
  const made = (): Made[] => [...byNode.values()].filter((d): d is Made => d.dw !== undefined);
  return {
    of: (n) => byNode.get(n),
    parts,
    made(d, dw, db) {
      if (!dw) throw new Error(`${layerOf(d.node)}: a deferred weight gradient needs its tensor`);
      // The layout's bias sums and the bias gradient go together (both from the trainable bias).
      if ((d.layout.sums !== 'none') !== (db != null))
        throw new Error(`${layerOf(d.node)}: a deferred layout with sums ${d.layout.sums} and ${db ? 'a' : 'no'} db`);
      d.dw = dw;
      d.db = db ?? null;
    },
    range(buf, d) {
      if (!parts) throw new Error('no deferred partial sums');
      const r = rangeOf(buf(parts));
      return { buffer: r.buffer, offset: r.offset + 4 * d.at, size: 4 * splitLength(d.layout) };
    },
    step(g) {
      const m = made();
      return parts && m.length > 0 ? finalStep(g, parts, m) : null;
    },
    foldable: () => made().length <= SEGMENTS,
    sums(buf) {
      const m = made();
      if (!parts || m.length === 0) return null;
      const groups = [...groupsOf(m, buf)].map(([grads, segments]) => ({ grads, segments }));
      return { parts: buf(parts), groups };
    },
  };
}

/** Each deferred layer's segment (where its partials are, where its dW and db go), by gradient buffer. */
function groupsOf(made: Made[], buf: (t: Tensor) => BufferRef): Map<GPUBuffer, GradSegment[]> {
  const groups = new Map<GPUBuffer, GradSegment[]>();
  for (const d of made) {
    const dw = rangeOf(buf(d.dw));
    const db = d.db ? rangeOf(buf(d.db)) : null;
    if (db && db.buffer !== dw.buffer) throw new Error(`${layerOf(d.node)}: its dW and db are in two buffers`);
    const at = { parts: d.at, dw: dw.offset / 4, db: db ? db.offset / 4 : 0 };
    groups.set(dw.buffer, [...(groups.get(dw.buffer) ?? []), { layout: d.layout, ...at, label: layerOf(d.node) }]);
  }
  return groups;
}

/** The one pass (per gradient buffer) that sums every deferred layer's partials into its dW and db. */
function finalStep(gpu: Gpu, parts: Tensor, made: Made[]): DeferredStep {
  const grads = made.flatMap((d) => [d.dw, d.db]).filter((t): t is Tensor => t != null);
  return {
    reads: [parts],
    writes: grads,
    scratch: [],
    emit(buf) {
      const all = buf(parts);
      const groups = groupsOf(made, buf);
      return [...groups].flatMap(([grads, segments]) => reduceGradients(gpu, { parts: all, grads }, segments));
    },
  };
}
