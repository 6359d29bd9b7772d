// Learning-rate schedules as a table of one rate per step, prepared by the host for a whole run
// and read by the optimizer kernel at the GPU-side step counter.
//   constant: lr
//   cosine:   lr · ½(1 + cos(π·t/T))
//   onecycle: linear warm-up from lr/25 to lr over the first 30% of steps, then cosine down to lr/1e4
//   plateau:  constant; the trainer multiplies by `factor` when the monitored metric stalls
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
