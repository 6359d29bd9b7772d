// The planner's buffers (phase 4 of src/graph/plan.ts): the pool of activation buffers (a tensor
// whose life has ended gives its buffer back, and a later one of at most that size takes it), the
// places of the parameters' gradients, and the assignment of every tensor of a plan's steps.
import { rangeOf } from '../gpu/packed.ts';
import type { BufferRef, Gpu } from '../gpu/runtime.ts';
import { numel } from '../ops/geometry.ts';
import type { Tensor } from './graph.ts';

/** Buffers handed out best-fit from those given back, else newly allocated (and counted). */
export class BufferPool {
  readonly owned: GPUBuffer[] = [];
  private readonly free: GPUBuffer[] = [];
  bytes = 0;

  constructor(private readonly gpu: Gpu) {}

  take(bytes: number, label: string): GPUBuffer {
    let best: GPUBuffer | undefined;
    for (const b of this.free) if (b.size >= bytes && (!best || b.size < best.size)) best = b;
    if (best) {
      this.free.splice(this.free.indexOf(best), 1);
      return best;
    }
    const b = this.gpu.alloc(bytes, label);
    this.owned.push(b);
    this.bytes += b.size;
    return b;
  }

  give(buffer: GPUBuffer): void {
    this.free.push(buffer);
  }
}

/**
 * Where the trainable parameters' gradients go: for each parameter buffer (a pack, or a buffer of
 * one), a gradient buffer of its size, each gradient (`grads[i]`, of the parameter `names[i]`) at its
 * parameter's offset. They live as long as the plan: the optimizer, recorded after the backward, is
 * their last reader (and, with PlanOptions.foldGradSums, the writer of the deferred layers' dW and db).
 * `borrowed` (another plan's `mirrors`, by parameter buffer) are used instead of new ones and not owned:
 * two training plans of one model at two batch sizes share their gradients.
 */
export function gradientPlaces(
  gpu: Gpu,
  persistent: ReadonlyMap<string, BufferRef>,
  grads: readonly Tensor[],
  names: readonly string[],
  borrowed: ReadonlyMap<GPUBuffer, GPUBuffer> = new Map(),
): { where: Map<number, BufferRef>; owned: GPUBuffer[]; mirrors: Map<GPUBuffer, GPUBuffer> } {
  const mirrors = new Map<GPUBuffer, GPUBuffer>();
  const owned: GPUBuffer[] = [];
  const where = new Map<number, BufferRef>();
  grads.forEach((g, i) => {
    const name = names[i] ?? '?';
    const param = persistent.get(name);
    if (!param) throw new Error(`no buffer for param ${name}`);
    const { buffer, offset } = rangeOf(param);
    let mirror = mirrors.get(buffer) ?? borrowed.get(buffer);
    if (!mirror) {
      mirror = gpu.alloc(buffer.size, 'gradients');
      owned.push(mirror);
    }
    mirrors.set(buffer, mirror);
    where.set(g.id, { buffer: mirror, offset, size: numel(g.shape) * 4 });
  });
  return { where, owned, mirrors };
}

/** Where a plan's tensors live (assignBuffers). */
export interface Buffers {
  buf(t: Tensor): BufferRef;
  /** Each step's scratch buffers. */
  scratch: BufferRef[][];
  owned: GPUBuffer[];
  gradients: ReadonlyMap<GPUBuffer, GPUBuffer>; // by parameter buffer, owned or borrowed
  plannedBytes: number;
}

/** What assignBuffers reads of a plan: its graph's tensors, labels and persistent places, and storage aliasing. */
export interface BufferNeeds {
  gpu: Gpu;
  tensors: readonly Tensor[];
  labels: Tensor | null;
  persistent: ReadonlyMap<string, BufferRef>;
  /** Gradient buffers to use, by parameter buffer (another plan's), not owned. */
  gradients?: ReadonlyMap<GPUBuffer, GPUBuffer>;
  /** The tensor owning t's storage (a view's output → its input). */
  storage(t: Tensor): Tensor;
}

/** A step as buffers see it: the tensors it reads and writes, and its scratch shapes. */
export interface StepTensors {
  reads: Tensor[];
  writes: Tensor[];
  scratch: number[][];
}

/**
 * 4. Buffers (src/graph/plan.ts): inputs, labels and persistent tensors keep their own, parameter gradients their
 * places (gradientPlaces); every other tensor takes the smallest free pooled buffer that fits (or a
 * new one) at its first step and gives it back after its last, unless it is kept (valid after a
 * step). Scratch is held for one step.
 */
export function assignBuffers(
  p: BufferNeeds,
  steps: readonly StepTensors[],
  kept: Tensor[],
  paramGrads: ReadonlyMap<string, Tensor>,
): Buffers {
  const storage = (t: Tensor): Tensor => p.storage(t);
  const keep = new Set(kept.map((t) => storage(t).id));
  const lastUse = new Map<number, number>();
  steps.forEach((s, i) => {
    for (const t of [...s.reads, ...s.writes]) lastUse.set(storage(t).id, i);
  });
  const pool = new BufferPool(p.gpu);
  const grads = gradientPlaces(
    p.gpu,
    p.persistent,
    [...paramGrads.values()].map((g) => storage(g)),
    [...paramGrads.keys()],
    p.gradients,
  );
  const where = new Map<number, BufferRef>(grads.where);
  const place = (t: Tensor): void => {
    const s = storage(t);
    if (where.has(s.id)) return;
    if (s.kind === 'param' || s.kind === 'state') {
      const b = p.persistent.get(s.name);
      if (!b) throw new Error(`no buffer for ${s.kind} ${s.name}`);
      where.set(s.id, b);
      return;
    }
    const bytes = numel(s.shape) * 4;
    where.set(s.id, {
      buffer: pool.take(bytes, s.kind === 'temp' ? `t${s.id}` : s.kind),
      size: Math.ceil(bytes / 4) * 4,
    });
  };
  // Inputs and labels first, persistent for the plan's life.
  for (const t of p.tensors) if (t.kind === 'input' || t.kind === 'label') place(t);
  if (p.labels) place(p.labels);
  const scratch = steps.map((s, i) => {
    for (const t of s.reads) place(t); // e.g. params
    for (const t of s.writes) place(t);
    const mine = s.scratch.map((shape) => ({ buffer: pool.take(numel(shape) * 4, 'scratch'), size: numel(shape) * 4 }));
    for (const sc of mine) pool.give(sc.buffer);
    for (const t of [...s.reads, ...s.writes]) {
      const st = storage(t);
      if (st.kind !== 'temp' || keep.has(st.id) || grads.where.has(st.id) || lastUse.get(st.id) !== i) continue;
      const r = where.get(st.id);
      if (r && 'buffer' in r) pool.give(r.buffer);
      lastUse.delete(st.id);
    }
    return mine;
  });
  const buf = (t: Tensor): BufferRef => {
    const r = where.get(storage(t).id);
    if (!r) throw new Error(`tensor ${t.id} has no buffer`);
    return r;
  };
  const plannedBytes = pool.bytes + grads.owned.reduce((a, b) => a + b.size, 0);
  return { buf, scratch, owned: [...pool.owned, ...grads.owned], gradients: grads.mirrors, plannedBytes };
}
