// What training watches after every epoch, as Keras's EarlyStopping, ReduceLROnPlateau and
// ModelCheckpoint(save_best_only) do, in one object with one rule for "better": the monitored
// value (val_loss, or val_accuracy, when there is validation; else the training loss) is lower
// (accuracy: higher) than the best so far. Its memory goes into a checkpoint (state.json's `best`
// and `monitor`, the weights into best.safetensors), so that a resumed run continues it exactly.
import type { NamedTensor } from '../model/safetensors.ts';
import type { EpochLog } from './fit-options.ts';

/** Keras's `monitor`: a validation metric; without validation the training loss stands in. */
export type Monitored = 'val_loss' | 'val_accuracy';

export interface MonitorOptions {
  metric?: Monitored;
  /** Epochs without improvement that end training (0 or absent: never). */
  patience?: number;
  /** The plateau schedule: halve the learning rate after every second epoch without improvement. */
  plateau?: boolean;
  /** Keep a host copy of the best epoch's weights (to restore them, or to save them). */
  keepBest?: boolean;
}

/** Early stopping's and the plateau schedule's memory, as state.json's `monitor` keeps it. */
export interface MonitorState {
  /** Epochs since the monitored value last improved. */
  bad: number;
  /** Factor on the scheduled learning rate (halved by the plateau schedule). */
  lrScale: number;
  /** The epoch (1-based) at which early stopping ended training; absent while it has not. */
  stopped?: number;
}

/** The best epoch so far (1-based) and its monitored value, in the monitor's direction (lower is better). */
export interface Best {
  value: number;
  epoch: number;
}

export type Weights = Map<string, NamedTensor>;

/** What a checkpoint holds of a monitor: state.json's `best` and `monitor`, and best.safetensors. */
export interface MonitorSaved {
  best: Best | null;
  monitor?: MonitorState;
  weights?: ReadonlyMap<string, NamedTensor> | null;
}

/** An epoch's verdict: whether patience ran out, whether the learning-rate factor changed. */
export interface Verdict {
  improved: boolean;
  stop: boolean;
  rescaled: boolean;
}

export class Monitor {
  best: Best | null = null;
  bestWeights: ReadonlyMap<string, NamedTensor> | null = null;
  bad = 0;
  lrScale = 1;
  /** The epoch at which early stopping ended training, or null. */
  stopped: number | null = null;

  constructor(
    readonly options: MonitorOptions = {},
    saved?: MonitorSaved,
  ) {
    if (!saved) return;
    this.best = saved.best;
    this.bad = saved.monitor?.bad ?? 0;
    this.lrScale = saved.monitor?.lrScale ?? 1;
    this.stopped = saved.monitor?.stopped ?? null;
    if (options.keepBest) this.bestWeights = saved.weights ?? null;
  }

  /**
   * Early stopping has ended training and its patience still holds: a resumed run trains no further
   * (a larger patience, or none, lets it go on).
   */
  get halted(): boolean {
    const patience = this.options.patience ?? 0;
    return this.stopped !== null && patience > 0 && this.bad >= patience;
  }

  /** What the monitor watches in an epoch like `log`: its name, and the value as written (not negated). */
  watched(log: EpochLog): { metric: 'val_loss' | 'val_accuracy' | 'loss'; value: number } {
    if (this.options.metric === 'val_accuracy' && log.val_accuracy !== undefined)
      return { metric: 'val_accuracy', value: log.val_accuracy };
    return log.val_loss === undefined
      ? { metric: 'loss', value: log.loss }
      : { metric: 'val_loss', value: log.val_loss };
  }

  /** The monitored value of an epoch, lower is better. */
  value(log: EpochLog): number {
    const w = this.watched(log);
    return w.metric === 'val_accuracy' ? -w.value : w.value;
  }

  /** Judges a finished epoch; `weights` reads the weights when they are the best so far and kept. */
  async observe(log: EpochLog, weights: () => Promise<Weights>): Promise<Verdict> {
    const value = this.value(log);
    // NaN is never better: a best value is always a number a checkpoint can hold.
    if (value < (this.best?.value ?? Infinity)) {
      this.best = { value, epoch: log.epoch };
      if (this.options.keepBest) this.bestWeights = await weights();
      this.bad = 0;
      this.stopped = null;
      return { improved: true, stop: false, rescaled: false };
    }
    this.bad++;
    const rescaled = !!this.options.plateau && this.bad % 2 === 0;
    if (rescaled) this.lrScale *= 0.5;
    const patience = this.options.patience ?? 0;
    const stop = patience > 0 && this.bad >= patience;
    this.stopped = stop ? log.epoch : null;
    return { improved: false, stop, rescaled };
  }

  /** state.json's `best` and `monitor`. */
  save(): { best: Best | null; monitor: MonitorState } {
    const monitor: MonitorState = { bad: this.bad, lrScale: this.lrScale };
    if (this.stopped !== null) monitor.stopped = this.stopped;
    return { best: this.best && { ...this.best }, monitor };
  }
}
