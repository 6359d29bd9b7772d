// The planner's buffers (phase 4 of src/graph/plan.ts): the pool of activation buffers (a tensor
// whose life has ended gives its buffer back, and a later one of at most that size takes it) and
// the places of the parameters' gradients.
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
 * their last reader. `borrowed` (another plan's `mirrors`, by parameter buffer) are used instead of
 * new ones and not owned: two training plans of one model at two batch sizes share their gradients.
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
