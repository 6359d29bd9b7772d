// What Trainer.fit takes and reports, and the one way to make its options from a model's `train`
// and `augment` lines (the CLI and the page both start from it, then set what is theirs).
import type { AugmentValues, ModelIR } from '../../dsl/ir.ts';
import type { AugmentParams } from '../data/batch.ts';
import type { Monitor, Monitored, MonitorOptions } from './monitor.ts';
import { optimizerConfig, type OptimizerConfig } from './optimizer.ts';
import type { ScheduleName } from './schedule.ts';

export interface FitOptions {
  epochs: number;
  batch: number;
  lr: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleName;
  labelSmoothing: number;
  seed: number;
  augment?: AugmentParams;
  /**
   * Stop when the monitored metric (`monitor` with validation, else the training loss) has not
   * improved for `patience` epochs; `restoreBest` puts the best epoch's weights back at the end.
   */
  earlyStop?: { patience: number; monitor: Monitored; restoreBest: boolean };
  /**
   * Early stopping, the plateau schedule and the best weights, when the caller keeps them (a
   * checkpoint reads it in onEpoch; a resumed run passes the one it saved). Default: a new one
   * from `earlyStop` and `schedule`.
   */
  monitor?: Monitor;
  /** Steps recorded into one submit. */
  stepsPerSubmit?: number;
  /** Report progress every this many steps (rounded up to whole submits). */
  progressEvery?: number;
  /**
   * Progress at each report point, and at the epoch's end. The host does not wait for a submit
   * before recording the next (fit.ts: the stats are read back through a ring of 3 buffers), so a
   * report arrives late by at most the ring's depth: up to 3 submits after its step has run, while
   * later steps are already queued. Its step and values are those of the report point; a
   * non-finite loss is found there too (DivergedError names that step).
   */
  onProgress?(p: Progress): void;
  /**
   * Once, when a fit that was not interrupted ends: whether early stopping ended it and at which
   * epoch, the best epoch, and whose weights it leaves (restoreBest puts the best epoch's back).
   */
  onEnd?(end: FitEnd): void;
  /** Called after each epoch, after the monitor's verdict; return 'stop' to end training (Ctrl-C, a budget). */
  onEpoch?(log: EpochLog): undefined | 'stop' | Promise<undefined | 'stop'>;
  /**
   * Polled between submits: true interrupts training after the current submit (a page may await a
   * pause). An interrupted fit leaves the live weights, not the averages or the best ones, so that
   * a checkpoint written then resumes exactly.
   */
  shouldStop?(): boolean | Promise<boolean>;
  /** Epoch to start from (resume); the step counter and schedule continue from there. */
  initialEpoch?: number;
  /**
   * Global step to start from (resume mid-epoch; wins over initialEpoch): the epoch's order is
   * re-derived from the seed.
   */
  initialStep?: number;
  /**
   * The sums of the epoch a resume starts within, as the interrupted fit left them (onInterrupt): the epoch's
   * loss, accuracy and time then cover its steps before the resume too, as an uninterrupted epoch's do.
   */
  partial?: PartialEpoch;
  /** Once, when shouldStop interrupts an epoch: its sums so far, for a checkpoint to hand to a resume (partial). */
  onInterrupt?(p: PartialEpoch): void;
  /**
   * Decay of an exponential moving average of the trainable weights (0 or absent: off). As Keras's
   * use_ema: validation uses the averaged weights, and they replace the weights when fit ends.
   */
  ema?: number;
  /** The epoch's last, partial batch: trained as a step of its own (default, as Keras) or dropped. */
  lastBatch?: LastBatch;
}

/**
 * What happens to an epoch's last n mod batch images: `train`ed as a smaller step of their own, as
 * Keras does (6,000 images at batch 128: 46 steps of 128 and one of 112), or `drop`ped, as
 * tf.data's drop_remainder and every fmgpu run checkpointed before issue 18 (46 steps).
 */
export type LastBatch = 'train' | 'drop';

/** An epoch's steps: `fullSteps` of `batch` images, then one of `tail` images when tail > 0. */
export interface EpochShape {
  batch: number;
  fullSteps: number;
  tail: number;
  stepsPerEpoch: number;
}

/** The steps of an epoch over n images (a batch larger than n is n). */
export function epochShape(n: number, batch: number, lastBatch: LastBatch = 'train'): EpochShape {
  const b = Math.min(batch, n);
  const fullSteps = Math.floor(n / b);
  const tail = lastBatch === 'train' ? n - fullSteps * b : 0;
  return { batch: b, fullSteps, tail, stepsPerEpoch: fullSteps + (tail > 0 ? 1 : 0) };
}

export interface Progress {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSec: number;
}

/** An interrupted epoch's sums from its start to global step `step`: the GPU's accumulators and the seconds. */
export interface PartialEpoch {
  step: number;
  /** The loss summed over the epoch's images so far (the f32 accumulator's value). */
  lossSum: number;
  correct: number;
  seconds: number;
}

/** How a fit ended (not interrupted): epochs are 1-based. */
export interface FitEnd {
  /** The epoch at which early stopping ended training, or null when it ran its course. */
  stopped: number | null;
  /** The best epoch by the monitored value (Monitor.watched reads its value from that epoch's log). */
  best: number | null;
  /** The epoch whose weights were put back (restoreBest), or null when the last ones stay. */
  restored: number | null;
}

export interface EpochLog {
  epoch: number;
  seconds: number;
  loss: number;
  accuracy: number;
  val_loss?: number;
  val_accuracy?: number;
  lr: number;
}

/** The augmentation a model's `augment` line asks for, or undefined when it asks for none. */
export function augmentParams(a: AugmentValues): AugmentParams | undefined {
  const augmenting = a.shift > 0 || a.flip || a.rotate > 0 || a.zoom > 0 || a.erase > 0;
  return augmenting ? { shift: a.shift, flip: a.flip, rotate: a.rotate, zoom: a.zoom, erase: a.erase } : undefined;
}

/** FitOptions from the model's `train` and `augment` lines; `over` replaces any of them. */
export function fitOptions(ir: Pick<ModelIR, 'train' | 'augment'>, over: Partial<FitOptions> = {}): FitOptions {
  const t = ir.train;
  return {
    epochs: t.epochs,
    batch: t.batch,
    lr: t.lr,
    optimizer: optimizerConfig(t),
    schedule: t.schedule,
    labelSmoothing: t.labelSmoothing,
    seed: t.seed,
    augment: augmentParams(ir.augment),
    ema: t.ema,
    earlyStop: t.earlyStop > 0 ? { patience: t.earlyStop, monitor: 'val_loss', restoreBest: true } : undefined,
    ...over,
  };
}

/** The monitor fit makes when the caller gives none; `keepBest` also when the caller saves the best weights. */
export function monitorOptions(o: Pick<FitOptions, 'earlyStop' | 'schedule'>, keepBest = false): MonitorOptions {
  return {
    metric: o.earlyStop?.monitor,
    patience: o.earlyStop?.patience ?? 0,
    plateau: o.schedule === 'plateau',
    keepBest: keepBest || !!o.earlyStop?.restoreBest,
  };
}
