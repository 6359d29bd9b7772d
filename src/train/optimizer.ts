// The optimizer as planned dispatches: one update per trainable tensor, reading the step count and
// the learning rate from GPU buffers (a whole submit of steps runs without the host).
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { adamUpdate, sgdUpdate } from '../ops/optimizer.ts';
import type { ParamStore } from '../model/params.ts';
import type { TrainValues } from '../../dsl/ir.ts';
import { numel } from '../ops/geometry.ts';
import { must } from '../util/must.ts';

export type OptimizerName = 'adam' | 'adamw' | 'sgd';

export interface OptimizerConfig {
  name: OptimizerName;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** The optimizer a model file's (or the flags') train settings ask for. */
export function optimizerConfig(
  t: Pick<TrainValues, 'optimizer' | 'momentum' | 'nesterov' | 'weightDecay'>,
): OptimizerConfig {
  return { name: t.optimizer, momentum: t.momentum, nesterov: t.nesterov, weightDecay: t.weightDecay };
}

/** Optimizer state (moments, velocities) on the GPU, by `<param>.<slot>` name. */
export class OptimizerState {
  readonly slots = new Map<string, GPUBuffer>();
  constructor(
    private readonly gpu: Gpu,
    params: ParamStore,
    readonly config: OptimizerConfig,
  ) {
    for (const s of params.specs) {
      if (!s.trainable) continue;
      for (const slot of slotNames(config)) {
        const b = gpu.alloc(numel(s.shape) * 4, `${s.name}.${slot}`);
        gpu.write(b, new Float32Array(numel(s.shape)));
        this.slots.set(`${s.name}.${slot}`, b);
      }
    }
  }

  updates(
    params: ParamStore,
    grads: ReadonlyMap<string, BufferRef>,
    counter: GPUBuffer,
    lrTable: GPUBuffer,
  ): Dispatch[] {
    const c = this.config;
    const out: Dispatch[] = [];
    for (const s of params.specs) {
      if (!s.trainable) continue;
      const grad = grads.get(s.name);
      if (!grad) continue;
      const param = params.buffer(s.name);
      const n = numel(s.shape);
      if (c.name === 'sgd') {
        const velocity = this.slots.get(`${s.name}.velocity`);
        out.push(
          ...sgdUpdate(
            this.gpu,
            { param, grad, velocity, counter, lrTable },
            { count: n, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay },
          ),
        );
      } else {
        out.push(
          ...adamUpdate(
            this.gpu,
            {
              param,
              grad,
              m: must(this.slots, `${s.name}.m`, `first moment of "${s.name}"`),
              v: must(this.slots, `${s.name}.v`, `second moment of "${s.name}"`),
              counter,
              lrTable,
            },
            {
              count: n,
              // Unset: adamUpdate's ADAM_DEFAULTS (src/ops/optimizer.ts).
              beta1: c.beta1,
              beta2: c.beta2,
              eps: c.eps,
              weightDecay: c.weightDecay,
              decoupled: c.name === 'adamw',
            },
          ),
        );
      }
    }
    return out;
  }

  release(): void {
    for (const b of this.slots.values()) this.gpu.release(b);
    this.slots.clear();
  }
}

function slotNames(c: OptimizerConfig): string[] {
  if (c.name === 'sgd') return c.momentum > 0 ? ['velocity'] : [];
  return ['m', 'v'];
}
