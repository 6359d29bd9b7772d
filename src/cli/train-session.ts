// `fmgpu train` once the job is checked, the run directory claimed and the GPU open, in phases:
// announce, begin (from the checkpoint, or new weights and the run's first files), train with a
// checkpoint after every epoch, then the final weights, the test metrics and the report. Ctrl-C
// stops after the steps in flight and writes a checkpoint (exit 130); a second Ctrl-C quits now.
import { shellWord } from '../util/shell.ts';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { escapeControl, summarize, type AugmentValues } from '../../dsl/index.ts';
import { adapterName } from '../gpu/device.ts';
import { inputForm } from '../data/photo.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { RunDir } from '../node/rundir.ts';
import { augmentParams, fitOptions } from '../train/fit-options.ts';
import { perClass } from '../train/metrics.ts';
import { optimizerConfig } from '../train/optimizer.ts';
import { DivergedError, type Trainer } from '../train/trainer.ts';
import type { Flags } from './args.ts';
import { VERSION, savedRunJson } from './common.ts';
import { onSignal } from './interrupt.ts';
import { Progress, type Out } from './progress.ts';
import { runReport, writtenRun } from './report.ts';
import { Checkpoints } from './train-checkpoints.ts';
import { explainFault, overflowAtStart } from './train-faults.ts';
import type { Job } from './train-job.ts';

/** Tests' way into a run in progress (a fault injected mid-run); the CLI passes none. */
export interface TrainHooks {
  /** After each progress report, with the global step reached (1-based, counted across epochs). */
  afterProgress?(gpu: Gpu, step: number): void;
}

/** Where a run is: the GPU, the trainer and the run directory it writes, and how it reports. */
interface Session {
  job: Job;
  run: RunDir;
  gpu: Gpu;
  trainer: Trainer;
  out: Out;
  progress: Progress;
  checkpoints: Checkpoints;
}

/** Trains, checkpointing after every epoch, then writes the weights, the test metrics and the report. */
export async function runSession(
  base: Omit<Session, 'progress' | 'checkpoints'>,
  hooks: TrainHooks,
  forked: boolean,
): Promise<number> {
  const { job, out, trainer } = base;
  const s: Session = {
    ...base,
    progress: new Progress(out, !!job.flags.json, job.ir.train.batch),
    checkpoints: new Checkpoints(job, base.run, trainer),
  };
  const resume = `resume with fmgpu train --resume ${shellWord(job.dir)}`;
  const ctrlC = new CtrlC(out, () => {
    base.run.release();
    out.err(escapeControl(`fmgpu: quit; the last checkpoint is kept: ${resume}`));
  });
  try {
    announce(s, forked);
    begin(s);
    await train(s, ctrlC, hooks);
    if (ctrlC.interrupted) {
      await s.checkpoints.write(s.checkpoints.history.length);
      out.err(escapeControl(`fmgpu: interrupted; checkpoint written: ${resume}`));
      return ctrlC.code;
    }
    ctrlC.finishing = true;
    await finish(s);
    return 0;
  } catch (e) {
    throw await explain(s, e);
  } finally {
    ctrlC.release();
  }
}

/**
 * Ctrl-C (or SIGTERM, as a scheduler or `docker stop` sends) while training: the first stops after the steps in
 * flight and writes a checkpoint; once training is done, the test evaluation and report go on (the checkpoint
 * already holds the run); a second signal quits now, letting go of the run's lock (`quit`).
 */
class CtrlC {
  interrupted = false;
  /** Training is over: the run's end is being written. */
  finishing = false;
  /** The exit code of the signal that stopped training: 130 (SIGINT) or 143 (SIGTERM). */
  code = 130;
  private readonly releases: (() => void)[];

  constructor(out: Out, quit: () => void) {
    const on = (code: number) => () => {
      if (this.interrupted) {
        quit();
        process.exit(code);
      }
      this.interrupted = true;
      this.code = code;
      // On a terminal, first leave the progress bar's line.
      const again = `${code === 130 ? 'Ctrl-C' : 'the signal'} again to quit now`;
      const what = this.finishing
        ? `training is done: finishing the test evaluation and the report (${again})`
        : `stopping after the steps in flight, then writing a checkpoint (${again})`;
      out.err(`${out.status ? '\n' : ''}fmgpu: ${what}`);
    };
    this.releases = [onSignal('SIGINT', on(130)), onSignal('SIGTERM', on(143))];
  }

  release(): void {
    for (const r of this.releases) r();
  }
}

function announce({ job, gpu, progress, out, checkpoints }: Session, forked: boolean): void {
  const { ir, data, dir } = job;
  warnEarlyStop(job, out);
  const augment = augmentParams(ir.augment) ?? null;
  const init = job.init?.weightsFile ?? null;
  progress.event('start', {
    adapter: adapterName(gpu.adapter),
    cpu: gpu.adapter.cpu,
    model: job.file,
    run: dir,
    params: ir.params.trainable + ir.params.nonTrainable,
    train: data.train.n,
    validation: data.val?.n ?? 0,
    validation_set: data.validation?.set ?? 'none',
    test: data.test.n,
    version: VERSION,
    augment,
    init,
  });
  if (job.flags.json) return;
  const cpu = gpu.adapter.cpu ? ': no GPU in use, training is correct but slow' : '';
  out.log(`adapter: ${adapterName(gpu.adapter)}${cpu}`);
  // A resumed run's model.net is its copy: the summary names the model it was trained from.
  out.log(summarize({ ...ir, file: job.resume?.trainedFrom ?? job.file }));
  const count = (n: number): string => n.toLocaleString('en-US');
  const sets = `${count(data.train.n)} training, ${count(data.val?.n ?? 0)} validation, ${count(data.test.n)} test`;
  out.log(`data: ${sets} images (${data.from})`);
  out.log(`augmentation: ${augmentText(ir.augment)}`);
  if (init) out.log(`initial weights: ${init} (--init ${job.init?.dir})`);
  if (data.validation) out.log(`validation: ${data.validation.text}`);
  out.log(`run directory: ${dir}`);
  const r = job.resume;
  if (!r) return;
  const { epoch, step } = r.checkpoint.state;
  if (forked) out.log(`forking the run in ${r.dir} at epoch ${epoch} into ${dir} (${r.dir} is left as it was)`);
  const { monitor } = checkpoints;
  if (monitor.halted) {
    const why = `early stopping ended it at epoch ${monitor.stopped} (patience ${ir.train.earlyStop})`;
    out.log(`${why}: evaluating; a larger --early-stop, or --early-stop 0, trains on`);
  } else if (epoch === ir.train.epochs)
    out.log(`${epoch === 1 ? 'its 1 epoch is' : `all ${epoch} epochs are`} trained: evaluating`);
  else if (epoch > ir.train.epochs)
    out.log(`the checkpoint has ${epoch} epochs, more than the ${ir.train.epochs} asked: evaluating it as it is`);
  else {
    const within = `step ${step - epoch * job.stepsPerEpoch} of ${job.stepsPerEpoch}`;
    out.log(`resuming at epoch ${epoch + 1} of ${ir.train.epochs}, ${within}`);
  }
  if (r.changes.length > 0) out.log(`changed since the checkpoint, from the next step on: ${r.changes.join(', ')}`);
}

/** The augmentation of training batches, as the augment line writes it, or "none". */
function augmentText(a: AugmentValues): string {
  if (!augmentParams(a)) return 'none';
  const on: [boolean, string][] = [
    [a.shift > 0, `shift=${a.shift}`],
    [a.flip, 'flip'],
    [a.rotate > 0, `rotate=${a.rotate}`],
    [a.zoom > 0, `zoom=${a.zoom}`],
    [a.erase > 0, `erase=${a.erase}`],
  ];
  return `${on.flatMap(([used, text]) => (used ? [text] : [])).join(' ')} (training batches only)`;
}

/**
 * Early stopping without a validation set watches the training loss (as Keras's monitor='loss'):
 * never silently. Said on stderr, in --json runs too.
 */
function warnEarlyStop({ ir, data }: Job, out: Out): void {
  if (ir.train.earlyStop === 0 || data.val) return;
  out.err(
    `fmgpu: warning: there is no validation set, so early stopping (patience ${ir.train.earlyStop}) watches the ` +
      'training loss and restores the weights of the epoch where it was lowest; to watch val_loss, hold out ' +
      'validation: validation=0.1 in the train line, or --validation 0.1',
  );
}

/** The weights and state the run starts from: the checkpoint's, or new ones (--init: another run's) and run.json. */
function begin({ job, run, gpu, trainer }: Session): void {
  trainer.prepareOptimizer(optimizerConfig(job.ir.train));
  const resume = job.resume?.checkpoint;
  if (resume) {
    trainer.params.load(resume.weights, join(resume.folder, 'weights.safetensors'));
    trainer.loadStateTensors(resume.optimizer, join(resume.folder, 'optimizer.safetensors'));
    // What this resume was given (more epochs, tta, another test set) is the run's from now on: a later
    // plain --resume, eval, export and report read it from run.json.
    const { resume: _, ...flags } = job.flags;
    const saved = savedRunJson(run.path);
    run.write('run.json', JSON.stringify({ ...saved, flags: absolutePaths(flags) }, null, 2));
    return;
  }
  if (job.init) trainer.params.load(job.init.weights, job.init.weightsFile);
  run.write('model.net', job.source);
  const info = {
    version: VERSION,
    model: job.file,
    seed: job.ir.train.seed,
    adapter: adapterName(gpu.adapter),
    node: process.version,
    git: gitRevision(),
    flags: absolutePaths(job.flags),
    started: new Date().toISOString(),
    // How its images frame their object: `fmgpu predict` brings photos to the same form.
    input: inputForm(job.data.train),
    // What the network was checked against: eval, predict and report name the classes the same.
    classes: job.data.classes,
    shape: job.ir.input,
    // Colour data's per-channel mean and std (of pixel/255, from the training images); absent: pixel/255.
    ...(job.data.train.normalize ? { normalize: job.data.train.normalize } : {}),
  };
  run.write('run.json', JSON.stringify(info, null, 2));
}

/** fit with the run's settings: progress reported, a checkpoint after every epoch, Ctrl-C polled between submits. */
async function train({ job, gpu, trainer, progress, checkpoints: ck }: Session, ctrlC: CtrlC, hooks: TrainHooks) {
  const epochs = job.ir.train.epochs;
  const resumed = job.resume?.checkpoint.state;
  await trainer.fit(
    job.data.train,
    job.data.val,
    fitOptions(job.ir, {
      monitor: ck.monitor,
      initialStep: resumed?.step ?? 0,
      partial: resumed?.partial && { step: resumed.step, ...resumed.partial },
      onInterrupt: (p) => {
        ck.partial = p;
      },
      lastBatch: job.lastBatch,
      // A macrotask between submits lets the SIGINT handler run: Ctrl-C stops after this submit.
      shouldStop: () => new Promise<boolean>((done) => setImmediate(() => done(ctrlC.interrupted))),
      onProgress: (p) => {
        ck.lastStep = (p.epoch - 1) * p.steps + p.step;
        progress.step(p, epochs);
        hooks.afterProgress?.(gpu, ck.lastStep);
      },
      onEpoch: async (log) => {
        ck.history.push(log);
        progress.epoch(log, epochs);
        await ck.write(log.epoch);
        return ctrlC.interrupted ? 'stop' : undefined;
      },
      onEnd: (end) =>
        progress.fitEnd(end, {
          epochs,
          patience: job.ir.train.earlyStop,
          last: ck.history.at(-1)?.epoch ?? 0,
          watched: (epoch) => {
            const log = ck.history.find((h) => h.epoch === epoch);
            return log ? ck.monitor.watched(log) : null;
          },
        }),
    }),
  );
}

/** The end of a run: its final weights, the test set's metrics, the report. */
async function finish({ job, run, trainer, progress, out, checkpoints }: Session): Promise<void> {
  const { tta } = job.ir.train;
  run.write('weights.safetensors', await checkpoints.weights());
  const ev = await trainer.evaluate(job.data.test, undefined, { tta });
  const metrics = {
    test_loss: ev.loss,
    test_accuracy: ev.accuracy,
    n: ev.n,
    tta,
    per_class: perClass(ev.confusion, undefined, job.data.classes),
    confusion: Array.from(ev.confusion),
  };
  run.write('metrics.json', JSON.stringify(metrics, null, 2));
  run.write('report.html', await runReport(trainer, writtenRun(job.dir), job.data.test, { metrics }));
  progress.event('test', { test_loss: ev.loss, test_accuracy: ev.accuracy, n: ev.n, tta, run: job.dir });
  if (job.flags.json) return;
  const images = `${ev.n.toLocaleString('en-US')} images${tta ? ', each averaged with its mirror image' : ''}`;
  out.log(`test: loss ${ev.loss.toFixed(4)}  accuracy ${(ev.accuracy * 100).toFixed(2)}% (${images})  → ${job.dir}`);
  const [dir, page] = [shellWord(job.dir), shellWord(join(job.dir, 'report.html'))];
  out.log(`next: open ${page} (curves, confusion, mistakes); fmgpu predict ${dir} photo.jpg; fmgpu export ${dir}`);
}

/** A fault mid-run as the user reads it (see train-faults.ts); a NaN loss is first traced to the network. */
async function explain({ job, gpu, checkpoints }: Session, e: unknown): Promise<unknown> {
  const start = job.resume
    ? { weights: job.resume.checkpoint.weights, from: "at the checkpoint's weights" }
    : job.init
      ? { weights: job.init.weights, from: `with the weights of ${job.init.dir}` }
      : { weights: null, from: 'at initialisation' };
  const overflow =
    e instanceof DivergedError && !gpu.lost
      ? await overflowAtStart(gpu, job.ir, job.data.train, start).catch(() => null)
      : null;
  const { kept, lastStep } = checkpoints;
  return explainFault(e, gpu, { dir: job.dir, kept, lastStep, lr: job.ir.train.lr, overflow });
}

/** Path flags made absolute, so that `--resume` works from any directory. */
function absolutePaths(flags: Flags): Flags {
  const out = { ...flags };
  for (const k of ['data', 'csv', 'test-csv', 'val-data', 'val-csv', 'init'])
    if (typeof out[k] === 'string') out[k] = resolve(out[k] as string);
  return out;
}

function gitRevision(): string | null {
  try {
    const head = readFileSync('.git/HEAD', 'utf8').trim();
    if (!head.startsWith('ref: ')) return head;
    return readFileSync(join('.git', head.slice(5)), 'utf8').trim();
  } catch {
    return null;
  }
}
