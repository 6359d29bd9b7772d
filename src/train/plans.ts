// The plans a trainer runs, built once and kept: the training step (gather, forward, backward,
// optimizer with the weight averages, which ends the step: the counter's advance) per batch and data, with
// its ring of read-back buffers, and inference plans per batch size and what is read back. Both
// accumulate the loss sum and correct count in one `stats` buffer.
import type { ModelIR } from '../../dsl/ir.ts';
import type { Dispatch, Gpu } from '../gpu/runtime.ts';
import { buildGraph, type Built } from '../model/build.ts';
import type { ParamStore } from '../model/params.ts';
import { plan, type Plan } from '../graph/plan.ts';
import { trainGatherIn, type AugmentParams, type GpuDataset } from '../data/batch.ts';
import { StatsRing } from './readback.ts';
import type { StepBuffers } from '../ops/optimizer.ts';

/** The buffers every plan of a trainer shares. */
export interface Shared {
  params: ParamStore;
  /** u32 [4]: word 0 the global step, word 1 the running step's snapshot (src/ops/optimizer.ts endsStep). */
  counter: GPUBuffer;
  /** f32 loss sum, u32 correct count. */
  stats: GPUBuffer;
}

/** The loss and accuracy accumulators set to zero, or to an interrupted epoch's sums (the loss's f32 bits). */
export function resetStats(gpu: Gpu, stats: GPUBuffer, from = { lossSum: 0, correct: 0 }): void {
  const words = new DataView(new ArrayBuffer(16));
  words.setFloat32(0, from.lossSum, true);
  words.setUint32(4, from.correct, true);
  gpu.write(stats, new Uint32Array(words.buffer));
}

export async function readStats(gpu: Gpu, stats: GPUBuffer): Promise<{ lossSum: number; correct: number }> {
  const words = new DataView(await gpu.read(stats, 8));
  return { lossSum: words.getFloat32(0, true), correct: words.getUint32(4, true) };
}

/** What a training step's plan depends on besides the model: the cache key. */
export interface StepSettings {
  batch: number;
  /** Steps of `batch` images in an epoch (the gather's stepsPerEpoch, data/batch.ts). */
  fullSteps: number;
  /** Images in the epoch's last, partial step after the full ones (0: none, or dropped). */
  tail: number;
  seed: number;
  labelSmoothing: number;
  augment?: AugmentParams;
}

/**
 * The step of an epoch's last, partial batch (Keras trains it): its own plan at its batch size,
 * sharing the parameters, their gradient buffers, the optimizer's slots, the averages and the step
 * counter with the full steps' plan. Its gather reads `indices`, which holds the epoch's last images.
 */
export interface TailPlan {
  batch: number;
  built: Built;
  plan: Plan;
  step: Dispatch[];
  indices: GPUBuffer;
}

export interface TrainPlan {
  key: string;
  built: Built;
  plan: Plan;
  step: Dispatch[];
  /** The partial last step of an epoch, when it has one. */
  tail: TailPlan | null;
  data: GpuDataset;
  /** The epoch's order of sample indices for the full steps, written at the start of every epoch (fit.ts). */
  indices: GPUBuffer;
  /** The learning-rate buffer the optimizer's dispatches bind. */
  rates: GPUBuffer;
  /** Where fit reads the stats back, submit by submit (readback.ts). */
  ring: StatsRing;
}

export const trainPlanKey = (s: StepSettings, n: number, ema: number): string =>
  `${s.batch}:${s.fullSteps}:${s.tail}:${s.labelSmoothing}:${JSON.stringify(s.augment ?? {})}:${n}:${ema}`;

type Io = Shared & { data: GpuDataset; rates: GPUBuffer };
/**
 * `update`: the optimizer's dispatches (with the weight averages) for plan `p`, over `step`'s buffers; the
 * plans here end the step in their update (`step.endsStep`: the counter advances there), so stepAt gives it,
 * and leave the deferred weight gradients' split-K sums to it (`p.gradSums`, OptimizerState.updates).
 */
type Parts = { update(p: Plan, step: StepBuffers): Dispatch[]; key: string };

/** One training step's dispatches, in order; `update` comes from the optimizer (with the weight averages). */
export function buildTrainPlan(gpu: Gpu, ir: ModelIR, io: Io, s: StepSettings, parts: Parts): TrainPlan {
  const main = stepAt(gpu, ir, io, s, parts, { batch: s.batch, steps: s.fullSteps, indices: s.fullSteps * s.batch });
  const tail =
    s.tail > 0
      ? stepAt(gpu, ir, io, s, parts, {
          batch: s.tail,
          steps: 1,
          indices: s.tail,
          gradients: main.plan.gradientBuffers,
        })
      : null;
  const ring = new StatsRing(gpu);
  return { key: parts.key, ...main, tail, data: io.data, rates: io.rates, ring };
}

/**
 * A step at one batch size: the plan (its gather of `steps` batches from its `indices`, in the first conv's
 * forward where it can: PlanOptions.gather; forward, backward), the update, finish.
 */
function stepAt(
  gpu: Gpu,
  ir: ModelIR,
  io: Io,
  s: StepSettings,
  parts: Parts,
  at: { batch: number; steps: number; indices: number; gradients?: ReadonlyMap<GPUBuffer, GPUBuffer> },
): TailPlan {
  const built = buildGraph(ir, at.batch, { seed: s.seed });
  const indices = gpu.alloc(at.indices * 4, 'epoch order');
  const settings = { batch: at.batch, stepsPerEpoch: at.steps, seed: s.seed, augment: s.augment };
  let p: Plan;
  try {
    const from = trainGatherIn({ data: io.data, indices, counter: io.counter }, settings);
    p = plan(gpu, built.graph, {
      ...{ training: true, logits: built.logits, labels: built.labels, smoothing: s.labelSmoothing },
      ...{ persistent: io.params.buffers, counter: io.counter, stats: io.stats, endsStep: true },
      gradients: at.gradients,
      // The update sums the deferred weight gradients on its way: `parts.update` gives it p.gradSums.
      foldGradSums: true,
      // …and adds the loss's partial totals into stats as it ends the step (p.totals).
      foldTotals: true,
      // The plan gathers the batch: in conv1's forward where it can, else by the gather's pass.
      gather: { input: built.x, from },
    });
  } catch (e) {
    gpu.release(indices);
    throw e;
  }
  const update = parts.update(p, { counter: io.counter, lrTable: io.rates, endsStep: p.endsStep });
  const step = [...p.forward, ...p.backward, ...update, ...p.finish];
  return { batch: at.batch, built, plan: p, step, indices };
}

export function releaseTrainPlan(gpu: Gpu, t: TrainPlan): void {
  // The tail borrows the main plan's gradient buffers: released first.
  for (const s of [t.tail, t].filter((x) => x !== null)) {
    const planned = new Set([...s.plan.forward, ...s.plan.backward, ...s.plan.finish]);
    gpu.free(s.step.filter((d) => !planned.has(d)));
    s.plan.release();
    gpu.release(s.indices);
  }
  t.ring.release();
}

/** What an inference plan is for: the loss and accuracy (labels in), class scores, or the penultimate features. */
export type Output = 'loss' | 'scores' | 'features';

export interface InferencePlan {
  built: Built;
  plan: Plan;
}

/** Inference plans by batch size and output, built on first use. */
export class InferencePlans {
  private readonly plans = new Map<string, InferencePlan>();

  constructor(
    private readonly gpu: Gpu,
    private readonly ir: ModelIR,
    private readonly seed: number,
    private readonly shared: Shared,
  ) {}

  get(batch: number, output: Output): InferencePlan {
    const key = `${batch}:${output}`;
    let e = this.plans.get(key);
    if (!e) {
      const built = buildGraph(this.ir, batch, { seed: this.seed });
      const p = plan(this.gpu, built.graph, {
        training: false,
        logits: built.logits,
        labels: output === 'loss' ? built.labels : null,
        persistent: this.shared.params.buffers,
        counter: this.shared.counter,
        stats: this.shared.stats,
        keep: output === 'features' ? [built.features ?? built.logits] : undefined,
      });
      e = { built, plan: p };
      this.plans.set(key, e);
    }
    return e;
  }

  release(): void {
    for (const e of this.plans.values()) e.plan.release();
    this.plans.clear();
  }
}
