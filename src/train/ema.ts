// An exponential moving average of the trainable weights (Keras's use_ema): one update dispatch
// per tensor after every optimizer step, on the GPU. Validation runs with the averages standing in
// for the weights, and at the end of fit they replace them.
import type { Dispatch, Gpu } from '../gpu/runtime.ts';
import type { ParamStore } from '../model/params.ts';
import { emaUpdate } from '../ops/elementwise.ts';

/** Copies the named buffers of `from` over those of `to` (names present in both), in one submit. */
export function copyBuffers(gpu: Gpu, from: ReadonlyMap<string, GPUBuffer>, to: ReadonlyMap<string, GPUBuffer>): void {
  const enc = gpu.device.createCommandEncoder();
  for (const [name, dst] of to) {
    const src = from.get(name);
    if (src) enc.copyBufferToBuffer(src, 0, dst, 0, dst.size);
  }
  gpu.device.queue.submit([enc.finish()]);
}

export class WeightAverage {
  /** The averages, by parameter name (a checkpoint saves them as `<name>.ema`). */
  readonly averages = new Map<string, GPUBuffer>();
  /** Where the live weights wait while the averages stand in. */
  private readonly live = new Map<string, GPUBuffer>();

  /** Starts the averages at the current weights. */
  constructor(
    private readonly gpu: Gpu,
    private readonly params: ParamStore,
  ) {
    for (const s of params.specs) {
      if (!s.trainable) continue;
      const size = params.buffer(s.name).size;
      this.averages.set(s.name, gpu.alloc(size, `${s.name}.ema`));
      this.live.set(s.name, gpu.alloc(size, `${s.name}.live`));
    }
    copyBuffers(gpu, params.buffers, this.averages);
  }

  /** One step's updates: avg ← decay·avg + (1 − decay)·weight. */
  updates(decay: number): Dispatch[] {
    return [...this.averages].flatMap(([name, avg]) =>
      emaUpdate(this.gpu, { x: this.params.buffer(name), avg }, avg.size / 4, decay),
    );
  }

  /** Runs `fn` with the averages standing in for the trainable weights. */
  async standIn<T>(fn: () => Promise<T>): Promise<T> {
    copyBuffers(this.gpu, this.params.buffers, this.live);
    copyBuffers(this.gpu, this.averages, this.params.buffers);
    try {
      return await fn();
    } finally {
      copyBuffers(this.gpu, this.live, this.params.buffers);
    }
  }

  /** The averages replace the weights (the end of fit). */
  apply(): void {
    copyBuffers(this.gpu, this.averages, this.params.buffers);
  }

  release(): void {
    for (const b of [...this.averages.values(), ...this.live.values()]) this.gpu.release(b);
    this.averages.clear();
    this.live.clear();
  }
}
