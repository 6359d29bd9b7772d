// What `train` prints: on a terminal a live bar rewritten in place, then a line per epoch; piped
// (a file, a CI log) only the line per epoch, as Keras's verbose=2; JSON Lines with --json.
import type { EpochLog, Progress as StepProgress } from '../train/trainer.ts';

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
}
