// The planner's pool of activation buffers: a tensor whose life has ended gives its buffer back,
// and a later one of at most that size takes it (phase 4 of src/graph/plan.ts).
import type { Gpu } from '../gpu/runtime.ts';

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
