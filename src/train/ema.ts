// An exponential moving average of the trainable weights (Keras's use_ema), packed in the trainable
// parameters' layout and updated on the GPU in the optimizer's own pass (src/train/optimizer.ts).
// Validation runs with the averages standing in for the weights, and at the end of fit they replace
// them.
import type { Gpu } from '../gpu/runtime.ts';
import { Packed } from '../gpu/packed.ts';
import type { ParamStore } from '../model/params.ts';
import type { NamedTensor } from '../model/safetensors.ts';
import { averageName, slotValues } from './optimizer.ts';

/** Copies every pack of `from` over `to` (same layout), in one submit. */
function copyPacked(gpu: Gpu, from: Packed, to: Packed): void {
  const enc = gpu.device.createCommandEncoder();
  from.copyTo(enc, to);
  gpu.device.queue.submit([enc.finish()]);
}

export class WeightAverage {
  /** The averages (a checkpoint saves each tensor as `<name>.ema`). */
  readonly averages: Packed;
  /** Where the live weights wait while the averages stand in. */
  private readonly live: Packed;

  /** Starts the averages at the current weights. */
  constructor(
    private readonly gpu: Gpu,
    private readonly params: ParamStore,
  ) {
    const layout = params.trainable.layout;
    this.averages = new Packed(gpu, layout, 'weight averages');
    this.live = new Packed(gpu, layout, 'live weights');
    copyPacked(gpu, params.trainable, this.averages);
  }

  /** Runs `fn` with the averages standing in for the trainable weights. */
  async standIn<T>(fn: () => Promise<T>): Promise<T> {
    copyPacked(this.gpu, this.params.trainable, this.live);
    copyPacked(this.gpu, this.averages, this.params.trainable);
    try {
      return await fn();
    } finally {
      copyPacked(this.gpu, this.live, this.params.trainable);
    }
  }

  /** The averages replace the weights (the end of fit). */
  apply(): void {
    copyPacked(this.gpu, this.averages, this.params.trainable);
  }

  /** The averages as `<param>.ema` (averageName), shape [count]. */
  async tensors(): Promise<Map<string, NamedTensor>> {
    const out = new Map<string, NamedTensor>();
    for (const [name, t] of await this.averages.read())
      out.set(averageName(name), { shape: [t.data.length], data: t.data });
    return out;
  }

  /** Loads the averages from `<param>.ema` tensors. */
  load(tensors: ReadonlyMap<string, NamedTensor>, file: string): void {
    for (const e of this.averages.layout.entries) slotValues(tensors, averageName(e.name), e.count, file);
    this.averages.writeAll((e) => slotValues(tensors, averageName(e.name), e.count, file));
  }

  release(): void {
    this.averages.release();
    this.live.release();
  }
}
