// The GPU step's plan for the benches (src/train/step-plan.ts, with WebGPU's usage constants
// installed for Node) and the one line per batch size they print.
import type { ModelIR } from '../dsl/index.ts';
import type { StepCost } from '../src/gpu/cost.ts';
import type { DryLimits } from '../src/gpu/dry.ts';
import type { Dispatch } from '../src/gpu/runtime.ts';
import { installGlobals } from '../src/node/gpu.ts';
import { planTrainStep as plan } from '../src/train/step-plan.ts';

export { loadProfile } from '../src/node/profiles.ts';

/** The dispatches of one training step of `ir` at this batch size, in order, on a GPU adapter. */
export function planTrainStep(ir: ModelIR, batch: number, limits: Partial<DryLimits> = {}): Dispatch[] {
  installGlobals(); // GPUBufferUsage, which Gpu.alloc reads
  return plan(ir, batch, limits);
}

/** The one line per batch size tools read: `predicted batch=64: 123,456 images/s, 53 dispatches/step`. */
export const predictedLine = (c: StepCost): string =>
  `predicted batch=${c.batch}: ${Math.round(c.imagesPerSecond).toLocaleString('en-US')} images/s, ` +
  `${c.dispatches.length} dispatches/step`;
