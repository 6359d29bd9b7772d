// Learning-rate schedules as a table of one rate per step, prepared by the host for a whole run
// and read by the optimizer kernel at the GPU-side step counter.
//   constant: lr
//   cosine:   lr · ½(1 + cos(π·t/T))
//   onecycle: linear warm-up from lr/25 to lr over the first 30% of steps, then cosine down to lr/1e4
//   plateau:  constant; the monitor halves a factor on it when the monitored metric stalls
import type { Gpu } from '../gpu/runtime.ts';

export type ScheduleName = 'constant' | 'cosine' | 'onecycle' | 'plateau';

export function lrTable(name: ScheduleName, lr: number, totalSteps: number): Float32Array {
  const t = new Float32Array(Math.max(1, totalSteps));
  const T = Math.max(1, totalSteps);
  for (let i = 0; i < t.length; i++) {
    switch (name) {
      case 'constant':
      case 'plateau':
        t[i] = lr;
        break;
      case 'cosine':
        t[i] = lr * 0.5 * (1 + Math.cos((Math.PI * i) / T));
        break;
      case 'onecycle': {
        const warm = Math.max(1, Math.floor(0.3 * T));
        if (i < warm) t[i] = lr / 25 + ((lr - lr / 25) * i) / warm;
        else t[i] = lr / 1e4 + (lr - lr / 1e4) * 0.5 * (1 + Math.cos((Math.PI * (i - warm)) / Math.max(1, T - warm)));
        break;
      }
      default:
        return name satisfies never;
    }
  }
  return t;
}

/** A run's rates on the GPU, where the optimizer reads them: the schedule's table times a factor (plateau). */
export class LearningRates {
  private table: Float32Array = new Float32Array(0);
  private scale = 1;
  private buf: GPUBuffer | null = null;

  constructor(private readonly gpu: Gpu) {}

  /** The buffer of one rate per step; a larger schedule gets a new one (plans that bind it are rebuilt). */
  get buffer(): GPUBuffer {
    if (!this.buf) throw new Error('no learning rates yet: set a schedule first');
    return this.buf;
  }

  /** A run's schedule, times `scale`. */
  set(table: Float32Array, scale: number): void {
    if (this.buf && this.buf.size < table.byteLength) this.release();
    this.buf ??= this.gpu.alloc(table.byteLength, 'learning rates');
    this.table = table;
    this.scale = -1;
    this.rescale(scale);
  }

  /** A new factor on the table (written only when it changes). */
  rescale(scale: number): void {
    if (scale === this.scale) return;
    this.scale = scale;
    this.gpu.write(this.buffer, scale === 1 ? this.table : this.table.map((x) => x * scale));
  }

  /** The rate at a step (0-based; past the table, its last). */
  at(step: number): number {
    return this.table[Math.min(this.table.length - 1, step)]! * this.scale;
  }

  release(): void {
    if (this.buf) this.gpu.release(this.buf);
    this.buf = null;
  }
}
