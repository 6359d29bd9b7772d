// One epoch of Trainer.fit: submits of `perSubmit` recorded steps each, the GPU's step counter
// picking each step's batch; the host reads back only the loss and accuracy accumulators, to
// report progress every `reportEvery` steps and at the epoch's end, and stops on a non-finite loss.
import type { Gpu } from '../gpu/runtime.ts';
import { FmgpuError } from '../errors.ts';
import { epochOrder } from '../data/batch.ts';
import type { FitOptions } from './fit-options.ts';
import { readStats, resetStats, type TrainPlan } from './plans.ts';

/** The loss summed so far in an epoch is NaN or ±Inf (read back as f32 bits, tested on the host). */
export class DivergedError extends FmgpuError {
  override name = 'DivergedError';
  constructor(
    readonly loss: number,
    readonly epoch: number,
    readonly step: number,
  ) {
    super(`the loss became ${loss} at epoch ${epoch}, by step ${step}: try a lower learning rate`);
  }
}

/** Where an epoch runs: its number (0-based), its first step within it, and the run's pace. */
export interface EpochPlan {
  epoch: number;
  /** The shuffle's seed: the epoch's order is derived from it and the epoch. */
  seed: number;
  first: number;
  stepsPerEpoch: number;
  batch: number;
  perSubmit: number;
  reportEvery: number;
}

/** An epoch's sums: `done` steps reached, `interrupted` when shouldStop ended it early. */
export interface EpochSums {
  lossSum: number;
  correct: number;
  seen: number;
  done: number;
  seconds: number;
  interrupted: boolean;
}

export async function trainEpoch(
  gpu: Gpu,
  tp: TrainPlan,
  stats: GPUBuffer,
  e: EpochPlan,
  o: Pick<FitOptions, 'shouldStop' | 'onProgress'>,
): Promise<EpochSums> {
  const t0 = performance.now();
  gpu.write(tp.indices, epochOrder(tp.data.n, e.seed, e.epoch));
  resetStats(gpu, stats);
  let done = e.first,
    lastReport = e.first,
    interrupted = false;
  while (done < e.stepsPerEpoch) {
    const n = Math.min(e.perSubmit, e.stepsPerEpoch - done);
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let s = 0; s < n; s++) gpu.encode(pass, tp.step);
    pass.end();
    gpu.device.queue.submit([enc.finish()]);
    done += n;
    if (await o.shouldStop?.()) {
      interrupted = true;
      break;
    }
    if (done - lastReport < e.reportEvery && done !== e.stepsPerEpoch) continue;
    lastReport = done;
    const st = await sums(gpu, stats, e, done);
    const seen = (done - e.first) * e.batch;
    o.onProgress?.({
      epoch: e.epoch + 1,
      step: done,
      steps: e.stepsPerEpoch,
      loss: st.lossSum / seen,
      accuracy: st.correct / seen,
      imagesPerSec: seen / ((performance.now() - t0) / 1000),
    });
  }
  const st = await sums(gpu, stats, e, done);
  const seen = (done - e.first) * e.batch;
  return { ...st, seen, done, seconds: (performance.now() - t0) / 1000, interrupted };
}

/** The accumulators, or a DivergedError naming the step reached. */
async function sums(
  gpu: Gpu,
  stats: GPUBuffer,
  e: EpochPlan,
  done: number,
): Promise<{ lossSum: number; correct: number }> {
  const st = await readStats(gpu, stats);
  if (!Number.isFinite(st.lossSum)) throw new DivergedError(st.lossSum, e.epoch + 1, e.epoch * e.stepsPerEpoch + done);
  return st;
}
