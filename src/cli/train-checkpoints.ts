// The checkpoints `fmgpu train` writes after every epoch and on Ctrl-C: the weights, the best
// weights, the optimizer state and state.json (position, history, the monitor's memory and the
// run's identity), replaced whole by RunDir.writeCheckpoint, with history.json and history.csv.
// A resumed run starts from the checkpoint's history and monitor.
import { encodeSafetensors } from '../model/safetensors.ts';
import { trainedWithMetadata } from '../model/trained-with.ts';
import { historyCsv, type CheckpointState, type RunDir } from '../node/rundir.ts';
import { checkPosition } from '../node/state.ts';
import { fitOptions, monitorOptions, type PartialEpoch } from '../train/fit-options.ts';
import { Monitor } from '../train/monitor.ts';
import type { EpochLog, Trainer } from '../train/trainer.ts';
import { VERSION } from './common.ts';
import { runIdentity } from './resume.ts';
import type { Kept } from './train-faults.ts';
import type { Job } from './train-job.ts';

/**
 * What a run's end writes beside its checkpoint (train-session.ts finish), and what is made from it (an
 * exported model.onnx): removed when a resume moves the run on, so nothing reads the previous end.
 */
const ENDED = ['weights.safetensors', 'metrics.json', 'report.html', 'model.onnx'] as const;

export class Checkpoints {
  /** The last checkpoint on disk: what a fault mid-run reports as kept. */
  kept: Kept;
  /** The global step of the last progress report: where a lost device stopped the run. */
  lastStep: number;
  /** Every epoch's log so far (a resumed run's from its checkpoint). */
  readonly history: EpochLog[];
  /** Early stopping, the plateau schedule and the best weights (best.safetensors), for fit and for the checkpoint. */
  readonly monitor: Monitor;
  /** An epoch Ctrl-C interrupted: its sums so far, which the checkpoint at that step keeps for a resume. */
  partial: PartialEpoch | null = null;
  /** The step of the last checkpoint written (-1: none by this process). */
  private saved = -1;
  /** A resumed run's previous end (weights, metrics, report) still on disk: removed with the first checkpoint. */
  private stale: boolean;
  /** best.safetensors's bytes, and the epoch whose weights they hold. */
  private best: { epoch: number; bytes: Uint8Array } | null = null;
  private readonly metadata: Record<string, string>;
  private readonly identity: ReturnType<typeof runIdentity>;

  constructor(
    private readonly job: Job,
    private readonly run: RunDir,
    private readonly trainer: Trainer,
  ) {
    const resume = job.resume?.checkpoint ?? null;
    this.stale = resume !== null;
    this.kept = resume ? { epoch: resume.state.epoch, step: resume.state.step } : null;
    this.lastStep = resume?.state.step ?? 0;
    this.history = resume ? [...resume.state.history] : [];
    const saved = resume ? { best: resume.state.best, monitor: resume.state.monitor, weights: resume.best } : undefined;
    this.monitor = new Monitor(monitorOptions(fitOptions(job.ir), true), saved);
    this.metadata = {
      'fmgpu.source': job.source,
      'fmgpu.version': VERSION,
      'fmgpu.layout': 'conv weight [out, in, kh, kw]; dense weight [in, out]; tensors NCHW',
      ...trainedWithMetadata({ classes: job.data.classes, normalize: job.data.train.normalize }),
    };
    const epoch = { stepsPerEpoch: job.stepsPerEpoch, lastBatch: job.lastBatch };
    this.identity = runIdentity(job.source, job.ir, job.trainImages, epoch, job.validation);
  }

  /** The trainer's weights as weights.safetensors holds them: the source and the layout in the metadata. */
  async weights(): Promise<Uint8Array> {
    return encodeSafetensors(await this.trainer.params.read(), this.metadata);
  }

  /** A checkpoint after `epoch` completed epochs, unless the last one is at this same step. */
  async write(epoch: number): Promise<void> {
    const config = this.job.ir.train;
    const state: CheckpointState = {
      epoch,
      step: await this.trainer.step(),
      seed: config.seed,
      optimizer: config.optimizer,
      ...this.monitor.save(),
      history: this.history,
      ...this.identity,
    };
    const p = this.partial;
    // Within an epoch, at the step its sums were taken: they go with the checkpoint, for a resume to carry on.
    if (p?.step === state.step && state.step > epoch * this.job.stepsPerEpoch)
      state.partial = { lossSum: p.lossSum, correct: p.correct, seconds: p.seconds };
    if (state.step === this.saved) return;
    // Never replace the last good checkpoint with one that --resume would refuse (src/node/state.ts).
    checkPosition(state, this.job.stepsPerEpoch, 'the checkpoint to write (the last one is kept)');
    this.saved = state.step;
    const files = {
      weights: await this.weights(),
      best: this.bestBytes(),
      optimizer: encodeSafetensors(await this.trainer.stateTensors()),
      state,
    };
    // A resumed run's end before this (its final weights, test metrics and report) is about to be older than the
    // checkpoint: gone first, so that no moment (a kill -9 between the two) leaves it beside a newer checkpoint,
    // and eval, predict, export and report read the checkpoint until the run ends again.
    if (this.stale) for (const f of ENDED) this.run.remove(f);
    this.stale = false;
    this.run.writeCheckpoint(files);
    this.kept = { epoch, step: state.step };
    this.run.write('history.json', JSON.stringify(this.history, null, 2));
    this.run.write('history.csv', historyCsv(this.history));
  }

  /** best.safetensors: the monitor's best weights, encoded again only when a better epoch replaced them. */
  private bestBytes(): Uint8Array | null {
    const { best, bestWeights } = this.monitor;
    if (!best || !bestWeights) return null;
    if (this.best?.epoch !== best.epoch)
      this.best = { epoch: best.epoch, bytes: encodeSafetensors(bestWeights, this.metadata) };
    return this.best.bytes;
  }
}
