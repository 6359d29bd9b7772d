// What `train` prints: on a terminal a live bar rewritten in place, then a line per epoch; piped
// (a file, a CI log) only the line per epoch, as Keras's verbose=2; JSON Lines with --json.
import type { EpochLog, FitEnd, Progress as StepProgress } from '../train/trainer.ts';

export interface Out {
  log(line: string): void;
  err(line: string): void;
  /** Rewrites the current terminal line (a TTY), or null when stdout is not one. */
  status: ((line: string) => void) | null;
}

const fmt = (x: number | undefined, d = 4): string => (x === undefined ? '—' : x.toFixed(d));

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const m = Math.floor(seconds / 60),
    s = Math.round(seconds % 60);
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

/** What the end-of-fit lines say beside FitEnd: the plan, the patience, and the monitored value of an epoch. */
export interface EndFacts {
  epochs: number;
  patience: number;
  /** The last epoch trained. */
  last: number;
  watched(epoch: number): { metric: string; value: number } | null;
}

const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

export class Progress {
  constructor(
    private readonly out: Out,
    private readonly json: boolean,
    /** Images per step, for the ETA. */
    private readonly batch = 1,
  ) {}

  event(name: string, fields: Record<string, unknown>): void {
    if (this.json) this.out.log(JSON.stringify({ event: name, ...fields }));
  }

  step(p: StepProgress, epochs: number): void {
    if (this.json) {
      this.event('progress', {
        epoch: p.epoch,
        step: p.step,
        steps: p.steps,
        loss: p.loss,
        accuracy: p.accuracy,
        images_per_s: p.imagesPerSec,
      });
      return;
    }
    if (!this.out.status) return;
    const left = p.imagesPerSec > 0 ? ((p.steps - p.step) * this.batch) / p.imagesPerSec : NaN;
    const width = 24,
      filled = Math.round((width * p.step) / p.steps);
    const bar = `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${p.step}/${p.steps}`;
    const rate = `${Math.round(p.imagesPerSec).toLocaleString('en-US')} img/s`;
    const figures = `loss ${fmt(p.loss)}  acc ${fmt(p.accuracy)}`;
    this.out.status(`epoch ${p.epoch}/${epochs} ${bar}  ${rate}  ${figures}  ETA ${eta(left)}`);
  }

  epoch(l: EpochLog, epochs: number): void {
    if (this.json) {
      this.event('epoch', { ...l });
      return;
    }
    if (this.out.status) this.out.status('');
    // As Keras: the validation columns only when there is a validation set.
    const val = l.val_loss === undefined ? '' : `  val_loss ${fmt(l.val_loss)}  val_acc ${fmt(l.val_accuracy)}`;
    this.out.log(
      `epoch ${l.epoch}/${epochs}  ${l.seconds.toFixed(1)}s  loss ${fmt(l.loss)}  acc ${fmt(l.accuracy)}${val}`,
    );
  }

  /**
   * How training ended, as Keras says it: early stopping, and the best epoch's weights put back.
   * Nothing when the run ran its course and keeps its last weights.
   */
  fitEnd(end: FitEnd, f: EndFacts): void {
    const best = end.best === null ? null : { epoch: end.best, ...f.watched(end.best) };
    const restored = end.restored === null ? null : end.restored;
    if (end.stopped !== null) {
      this.event('early_stop', {
        epoch: end.stopped,
        epochs: f.epochs,
        patience: f.patience,
        monitor: best?.metric,
        best_epoch: best?.epoch,
        best: best?.value,
        restored_epoch: restored,
      });
    } else if (restored !== null && restored !== f.last) {
      this.event('restore_best', { epoch: restored, monitor: best?.metric, value: best?.value });
    } else return;
    if (this.json) return;
    const value = best?.metric && best.value !== undefined ? ` (${best.metric} ${fmt(best.value)})` : '';
    const restoring =
      restored === null
        ? `keeping the weights of epoch ${end.stopped}`
        : `restoring model weights from the end of the best epoch: ${restored}${value}`;
    if (end.stopped === null) {
      this.out.log(`${restoring}, as early_stop does`);
      return;
    }
    const epochs = plural(best ? end.stopped - best.epoch : f.patience, 'epoch');
    const stalled = `${best?.metric ?? 'the monitored value'} has not improved in ${epochs} (patience ${f.patience})`;
    this.out.log(`early stopping at epoch ${end.stopped} of ${f.epochs}: ${stalled}; ${restoring}`);
  }
}
