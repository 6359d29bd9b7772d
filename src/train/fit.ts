// One epoch of Trainer.fit: submits of `perSubmit` recorded steps each, the GPU's step counter
// picking each step's batch. The host never drains the queue: every submit ends with a copy of the
// loss and accuracy accumulators into a slot of the plan's read-back ring (readback.ts), read when
// the ring is full, up to `depth` submits later. A read that falls on a report point (every
// `reportEvery` steps, and the epoch's end) reports progress and stops on a non-finite loss.
// An epoch's last n mod batch images, when it trains them, are its last step, run by the plan's
// tail (plans.ts TailPlan); its means weight every step by its images.
import type { Gpu } from '../gpu/runtime.ts';
import { FmgpuError } from '../errors.ts';
import { epochOrder } from '../data/batch.ts';
import type { EpochShape, FitOptions, PartialEpoch } from './fit-options.ts';
import { resetStats, type TailPlan, type TrainPlan } from './plans.ts';
import type { StatsMark, StatsRead } from './readback.ts';

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
export interface EpochPlan extends EpochShape {
  epoch: number;
  /** The shuffle's seed: the epoch's order is derived from it and the epoch. */
  seed: number;
  first: number;
  /** The epoch's sums before `first`, where a resume starts within it (absent: none, or not known). */
  before?: Omit<PartialEpoch, 'step'>;
  perSubmit: number;
  reportEvery: number;
}

/** An epoch's sums: `done` steps reached, `interrupted` when shouldStop ended it before its last step. */
export interface EpochSums {
  lossSum: number;
  correct: number;
  seen: number;
  done: number;
  seconds: number;
  interrupted: boolean;
}

type Watch = Pick<FitOptions, 'shouldStop' | 'onProgress'>;

export async function trainEpoch(
  gpu: Gpu,
  tp: TrainPlan,
  stats: GPUBuffer,
  e: EpochPlan,
  o: Watch,
): Promise<EpochSums> {
  const t0 = performance.now();
  writeOrder(gpu, tp, epochOrder(tp.data.n, e.seed, e.epoch), e);
  // A resumed epoch's accumulators go on from the interrupted one's, so its sums are bit for bit an unbroken epoch's.
  const before = e.before ?? { lossSum: 0, correct: 0, seconds: 0 };
  resetStats(gpu, stats, before);
  const ring = tp.ring;
  let last: StatsRead = { mark: { done: e.first, report: true }, lossSum: before.lossSum, correct: before.correct };
  const taken = (r: StatsRead): void => {
    last = r;
    if (r.mark.report) report(r, e, o, t0);
  };
  let done = e.first,
    lastReport = e.first,
    interrupted = false;
  try {
    while (done < e.stepsPerEpoch) {
      if (ring.full) taken(await ring.take());
      const n = Math.min(e.perSubmit, e.stepsPerEpoch - done);
      const enc = gpu.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      for (let j = done; j < done + n; j++) gpu.encode(pass, j < e.fullSteps ? tp.step : mustTail(tp).step);
      pass.end();
      done += n;
      const mark: StatsMark = { done, report: done - lastReport >= e.reportEvery || done === e.stepsPerEpoch };
      if (mark.report) lastReport = done;
      ring.submit(enc, stats, mark);
      // A stop asked for after the epoch's last submit leaves the epoch whole: fit ends it as any other (its
      // checkpoint then holds it whole), and stops after it.
      if (done < e.stepsPerEpoch && (await o.shouldStop?.())) {
        interrupted = true;
        mark.report = false; // as before the ring: an interrupted submit is not reported
        break;
      }
    }
    while (ring.inFlight > 0) taken(await ring.take());
  } finally {
    await ring.settle();
  }
  // The totals of the epoch's last submit (or the reset zeros when it had none).
  checkFinite(last.lossSum, e, done);
  return {
    lossSum: last.lossSum,
    correct: last.correct,
    seen: imagesTo(e, done) - imagesTo(e, summedFrom(e)),
    done,
    seconds: before.seconds + (performance.now() - t0) / 1000,
    interrupted,
  };
}

/** A report point's progress, or a DivergedError naming its step. */
function report(r: StatsRead, e: EpochPlan, o: Watch, t0: number): void {
  checkFinite(r.lossSum, e, r.mark.done);
  const seen = imagesTo(e, r.mark.done) - imagesTo(e, summedFrom(e));
  o.onProgress?.({
    epoch: e.epoch + 1,
    step: r.mark.done,
    steps: e.stepsPerEpoch,
    loss: r.lossSum / seen,
    accuracy: r.correct / seen,
    imagesPerSec: (imagesTo(e, r.mark.done) - imagesTo(e, e.first)) / ((performance.now() - t0) / 1000),
  });
}

/** The epoch's step its sums start at: its first, or where a resume carries the interrupted sums, 0. */
const summedFrom = (e: EpochPlan): number => (e.before ? 0 : e.first);

/** Images in an epoch's first `steps` steps: the full ones, then the tail. */
const imagesTo = (e: EpochShape, steps: number): number =>
  Math.min(steps, e.fullSteps) * e.batch + (steps > e.fullSteps ? e.tail : 0);

const mustTail = (tp: TrainPlan): TailPlan => {
  if (!tp.tail) throw new Error('an epoch step past the full batches but no plan for the partial one');
  return tp.tail;
};

/**
 * The epoch's order as the gathers read it. The full steps' gather takes slot s mod fullSteps of
 * `indices` at global step s (data/batch.ts); with a tail step an epoch has fullSteps + 1 steps, so
 * the epoch starting at step epoch·stepsPerEpoch finds its batch j at slot (start + j) mod fullSteps:
 * the batches are written there, rotated (without a tail, in order). The tail's images go to its own.
 */
function writeOrder(gpu: Gpu, tp: TrainPlan, order: Uint32Array, e: EpochPlan): void {
  const B = e.batch;
  const start = (e.epoch * e.stepsPerEpoch) % e.fullSteps;
  const slots = new Uint32Array(e.fullSteps * B);
  for (let j = 0; j < e.fullSteps; j++) slots.set(order.subarray(j * B, (j + 1) * B), ((start + j) % e.fullSteps) * B);
  gpu.write(tp.indices, slots);
  if (e.tail > 0) gpu.write(mustTail(tp).indices, order.slice(e.fullSteps * B, e.fullSteps * B + e.tail));
}

function checkFinite(lossSum: number, e: EpochPlan, done: number): void {
  if (!Number.isFinite(lossSum)) throw new DivergedError(lossSum, e.epoch + 1, e.epoch * e.stepsPerEpoch + done);
}
