// `fmgpu train model.net`: check everything, claim the run directory, open the GPU, train with
// progress, checkpoint every epoch, evaluate on the test set, leave a run directory behind.
// Every refusal (flags, model, data, a resume that could not continue exactly, a run directory in
// use or not ours) happens before the GPU is opened and exits 2.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { escapeControl, parseNet, summarize, type ModelIR } from '../../dsl/index.ts';
import { adapterName } from '../gpu/device.ts';
import { DivergedError, Trainer, type EpochLog } from '../train/trainer.ts';
import { optimizerConfig } from '../train/optimizer.ts';
import { encodeSafetensors } from '../model/safetensors.ts';
import { loadFashionMnist, DEFAULT_DATA_DIR, loadCsv } from '../node/data.ts';
import { validationSplit, type Dataset } from '../data/dataset.ts';
import { perClass } from '../train/metrics.ts';
import {
  defaultRunDir,
  historyCsv,
  readCheckpoint,
  readRun,
  RunDir,
  type Checkpoint,
  type CheckpointState,
  type RunInfo,
} from '../node/rundir.ts';
import { FmgpuError, GpuError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { UsageError, parseArgs, type FlagSpec, type Flags } from './args.ts';
import { Progress, type Out } from './progress.ts';
import {
  VERSION,
  applyTrainFlags,
  checkBatchFits,
  checkWeights,
  openCliGpu,
  readRunJson,
  readSource,
} from './common.ts';
import { firstNonFinite, firstNonFiniteGradient, type NonFinite, type StepFault } from '../train/diagnose.ts';
import { checkSameData, checkSameNetwork, checkSameSettings, runIdentity } from './resume.ts';
export { TRAIN_KEY, applyTrainFlags } from './common.ts';
import { runReport } from './report.ts';

export const TRAIN_FLAGS: Record<string, FlagSpec> = {
  epochs: { type: 'string', meta: 'N', help: 'epochs to train (overrides the file)' },
  batch: { type: 'string', meta: 'N', help: 'batch size' },
  lr: { type: 'string', meta: 'X', help: 'learning rate' },
  optimizer: { type: 'string', meta: 'NAME', help: 'adam, adamw or sgd' },
  momentum: { type: 'string', meta: 'X', help: 'SGD momentum' },
  nesterov: { type: 'string', meta: 'BOOL', help: 'SGD Nesterov momentum (true/false)' },
  'weight-decay': { type: 'string', meta: 'X', help: 'decoupled weight decay' },
  schedule: { type: 'string', meta: 'NAME', help: 'constant, cosine, onecycle or plateau' },
  'label-smoothing': { type: 'string', meta: 'X', help: 'label smoothing in [0, 1)' },
  ema: { type: 'string', meta: 'X', help: 'decay of a moving average of the weights (0: off)' },
  tta: {
    type: 'string',
    meta: 'BOOL',
    help: 'test-time augmentation: the test set is scored averaging each image with its mirror (true/false)',
  },
  seed: { type: 'string', meta: 'N', help: 'random seed (initialisation, shuffles, dropout, augmentation)' },
  validation: { type: 'string', meta: 'F', help: 'fraction of the training set held out, taken from its end (Keras)' },
  'early-stop': {
    type: 'string',
    meta: 'N',
    help: 'stop after N epochs without val_loss improving, restore the best (0: off)',
  },
  data: { type: 'string', meta: 'DIR', help: `Fashion-MNIST idx files (default ${DEFAULT_DATA_DIR})` },
  csv: { type: 'string', meta: 'FILE', help: "training data in Kaggle's CSV form (label,pixel1..pixel784)" },
  'test-csv': { type: 'string', meta: 'FILE', help: 'test data in the same CSV form' },
  subset: { type: 'int', min: 1, meta: 'N', help: 'keep the first N training images (the test set stays whole)' },
  out: {
    type: 'string',
    meta: 'DIR',
    help: 'run directory: a new or empty folder (default runs/<model>-<timestamp>); with --resume, a copy of the run continues there',
  },
  resume: {
    type: 'string',
    meta: 'DIR',
    help: 'continue an interrupted run from its last checkpoint (same model, data and settings; --epochs may grow)',
  },
  init: { type: 'string', meta: 'RUN', help: "start from another run's weights (fine-tuning)" },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
  json: { type: 'bool', help: 'JSON Lines on stdout, one object per event' },
  debug: { type: 'bool', help: 'stack traces on errors' },
};

interface Data {
  train: Dataset;
  val: Dataset | null;
  test: Dataset;
  from: string;
}

function loadData(flags: Flags, validation: number): Data {
  let train: Dataset, test: Dataset, from: string;
  const keep = flags.subset ? Number(flags.subset) : undefined;
  if (flags.csv || flags['test-csv']) {
    if (!flags.csv || !flags['test-csv']) throw new UsageError('--csv and --test-csv go together');
    if (flags.data) throw new UsageError('--data and --csv are two sources of training data: give one');
    // With --subset, only the images it keeps are read (and held).
    train = loadCsv(String(flags.csv), { subset: keep });
    test = loadCsv(String(flags['test-csv']));
    from = `${flags.csv}, ${flags['test-csv']}`;
  } else {
    const dir = String(flags.data ?? DEFAULT_DATA_DIR);
    ({ train, test } = loadFashionMnist(dir, { subset: keep }));
    from = dir;
  }
  if (flags.subset)
    train = {
      ...train,
      n: Math.min(train.n, Number(flags.subset)),
      images: train.images.subarray(0, Number(flags.subset) * train.rows * train.cols),
      labels: train.labels.subarray(0, Number(flags.subset)),
    };
  if (validation > 0) {
    const s = validationSplit(train, validation);
    if (s.val.n === 0)
      throw new UsageError(`validation ${validation} of ${train.n} images leaves no validation images`);
    return { train: s.train, val: s.val, test, from };
  }
  return { train, val: null, test, from };
}

/** Tests' way into a run in progress (a fault injected mid-run); the CLI passes none. */
export interface TrainHooks {
  /** After each progress report, with the global step reached (1-based, counted across epochs). */
  afterProgress?(gpu: Gpu, step: number): void;
}

/** Everything a run needs, read and checked before anything is written or the GPU is opened. */
interface Job {
  flags: Flags;
  file: string;
  source: string;
  ir: ModelIR;
  init: RunInfo | null;
  /** The run being continued, and its last checkpoint. */
  resume: { dir: string; checkpoint: Checkpoint; changes: string[] } | null;
  data: Data;
  stepsPerEpoch: number;
  /** The run directory this invocation writes. */
  dir: string;
}

/** The run's flags from run.json, unless given again; a data source given again replaces the saved one whole. */
function resumeFlags(flags: Flags, dir: string): void {
  const saved = readRunJson(dir);
  // How this invocation reports (--json, --debug) and where it writes are its own.
  const DATA = ['data', 'csv', 'test-csv'];
  const source = DATA.some((k) => flags[k] !== undefined);
  for (const [k, v] of Object.entries(saved.flags ?? {})) {
    if (
      flags[k] !== undefined ||
      ['resume', 'out', 'init', 'json', 'debug'].includes(k) ||
      (source && DATA.includes(k))
    )
      continue;
    flags[k] = v;
  }
}

function prepare(args: readonly string[]): Job {
  const { flags, positional } = parseArgs(args, TRAIN_FLAGS);
  const resumeDir = flags.resume === undefined ? null : String(flags.resume);
  let file = positional[0];
  if (resumeDir) {
    if (flags.init)
      throw new UsageError(
        "--resume continues a run with its own weights; --init starts a new run from another run's: give one",
      );
    file ??= join(resumeDir, 'model.net');
  }
  const checkpoint = resumeDir ? readCheckpoint(resumeDir) : null;
  let changes: string[] = [];
  if (resumeDir) resumeFlags(flags, resumeDir);
  if (!file) throw new UsageError('train needs a model file: fmgpu train model.net');
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  const source = readSource(file);
  const ir0 = parseNet(source, file);
  const ir: ModelIR = { ...ir0, train: applyTrainFlags(ir0.train, flags) };
  const init = flags.init ? readRun(String(flags.init)) : null;
  if (init) checkWeights(ir, init.weights, init.weightsFile);
  const data = loadData(flags, ir.train.validation);
  checkData(file, ir, data);
  const stepsPerEpoch = Math.floor(data.train.n / Math.min(ir.train.batch, data.train.n));
  if (resumeDir && checkpoint) {
    const state = checkpoint.state;
    checkSameNetwork(resumeDir, state, source, ir);
    changes = checkSameSettings(resumeDir, state, ir);
    checkSameData(resumeDir, state, data.train, stepsPerEpoch, join(checkpoint.folder, 'state.json'));
    checkWeights(ir, checkpoint.weights, join(checkpoint.folder, 'weights.safetensors'));
    if (checkpoint.best) checkWeights(ir, checkpoint.best, join(checkpoint.folder, 'best.safetensors'));
  }
  const dir = flags.out !== undefined ? String(flags.out) : (resumeDir ?? defaultRunDir(file));
  return {
    flags,
    file,
    source,
    ir,
    init,
    resume: resumeDir && checkpoint ? { dir: resumeDir, checkpoint, changes } : null,
    data,
    stepsPerEpoch,
    dir,
  };
}

/** Empty sets and a model that does not take the data's images are refused before the GPU is opened. */
function checkData(file: string, ir: ModelIR, data: Data): void {
  if (data.train.n === 0)
    throw new UsageError(
      `no training images${ir.train.validation > 0 ? ` are left after holding out validation ${ir.train.validation}` : ''} (${data.from})`,
    );
  if (data.test.n === 0) throw new UsageError(`the test set has no images (${data.from})`);
  if (ir.input.h !== data.train.rows || ir.input.w !== data.train.cols || ir.input.c !== 1) {
    throw new UsageError(
      `${file}: the model's input is ${ir.input.h}x${ir.input.w}x${ir.input.c} but the data is ${data.train.rows}x${data.train.cols}x1`,
    );
  }
}

/**
 * The run directory, locked: a new run in a new or empty folder; a resumed run in its own folder,
 * or, with --out elsewhere, in a copy of it (the original left as it was).
 */
function claim(job: Job): { run: RunDir; forked: boolean } {
  if (!job.resume) return { run: RunDir.create(job.dir), forked: false };
  if (resolve(job.dir) === resolve(job.resume.dir)) return { run: RunDir.open(job.dir), forked: false };
  const run = RunDir.create(job.dir);
  try {
    for (const f of ['model.net', 'run.json', 'history.json', 'history.csv'] as const) {
      try {
        run.write(f, readFileSync(join(job.resume.dir, f)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    const ck = job.resume.checkpoint;
    const bytes = (f: string): Uint8Array => readFileSync(join(ck.folder, f));
    const best = ck.best ? bytes('best.safetensors') : null;
    run.writeCheckpoint({
      weights: bytes('weights.safetensors'),
      best,
      optimizer: bytes('optimizer.safetensors'),
      state: ck.state,
    });
  } catch (e) {
    run.abandon();
    throw e;
  }
  return { run, forked: true };
}

export async function train(args: readonly string[], out: Out, hooks: TrainHooks = {}): Promise<number> {
  const job = prepare(args);
  const { run, forked } = claim(job);
  let gpu: Gpu, trainer: Trainer;
  try {
    gpu = await openCliGpu(job.flags.adapter ? String(job.flags.adapter) : undefined);
  } catch (e) {
    if (job.resume) run.release();
    else run.abandon();
    throw e;
  }
  try {
    // Buffers over the adapter's limits are refused before anything is printed or allocated: the
    // training batch's. Evaluation (validation, test) shrinks its chunks until they fit (fittingBatch).
    checkBatchFits(job.ir, Math.min(job.ir.train.batch, job.data.train.n), gpu.limits);
    trainer = new Trainer(gpu, job.ir, job.ir.train.seed);
  } catch (e) {
    gpu.destroy();
    if (job.resume) run.release();
    else run.abandon();
    throw e;
  }
  try {
    return await session(job, run, gpu, trainer, out, hooks, forked);
  } finally {
    trainer.release();
    gpu.destroy();
    run.release();
  }
}

function announce(job: Job, gpu: Gpu, progress: Progress, out: Out, forked: boolean): void {
  const { ir, data, dir } = job;
  progress.event('start', {
    adapter: adapterName(gpu.adapter),
    cpu: gpu.adapter.cpu,
    model: job.file,
    run: dir,
    params: ir.params.trainable + ir.params.nonTrainable,
    train: data.train.n,
    validation: data.val?.n ?? 0,
    test: data.test.n,
    version: VERSION,
  });
  if (job.flags.json) return;
  out.log(
    `adapter: ${adapterName(gpu.adapter)}${gpu.adapter.cpu ? ': no GPU in use, training is correct but slow' : ''}`,
  );
  out.log(summarize(ir));
  out.log(
    `data: ${data.train.n.toLocaleString('en-US')} training, ${(data.val?.n ?? 0).toLocaleString('en-US')} validation, ${data.test.n.toLocaleString('en-US')} test images (${data.from})`,
  );
  out.log(`run directory: ${dir}`);
  const r = job.resume;
  if (!r) return;
  const { epoch, step } = r.checkpoint.state;
  if (forked) out.log(`forking the run in ${r.dir} at epoch ${epoch} into ${dir} (${r.dir} is left as it was)`);
  if (epoch >= ir.train.epochs)
    out.log(`all ${ir.train.epochs} epochs are trained (${epoch} in the checkpoint): evaluating`);
  else
    out.log(
      `resuming at epoch ${epoch + 1} of ${ir.train.epochs}, step ${step - epoch * job.stepsPerEpoch} of ${job.stepsPerEpoch}`,
    );
  if (r.changes.length > 0) out.log(`changed since the checkpoint, from the next step on: ${r.changes.join(', ')}`);
}

/** Trains, checkpointing after every epoch, then writes the weights, the test metrics and the report. */
async function session(
  job: Job,
  run: RunDir,
  gpu: Gpu,
  trainer: Trainer,
  out: Out,
  hooks: TrainHooks,
  forked: boolean,
): Promise<number> {
  const { ir, data, dir, flags } = job;
  const config = ir.train;
  const progress = new Progress(out, !!flags.json);
  progress.batch = config.batch;
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    // On a terminal, first leave the progress bar's line.
    out.err(
      `${out.status ? '\n' : ''}fmgpu: stopping after the steps in flight, then writing a checkpoint (Ctrl-C again to quit now)`,
    );
  };
  process.on('SIGINT', onSigint);
  const resume = job.resume?.checkpoint ?? null;
  // What a fault mid-run reports: the last step seen, and the checkpoint kept on disk.
  let kept: Kept = resume ? { epoch: resume.state.epoch, step: resume.state.step } : null;
  let lastStep = resume?.state.step ?? 0;
  try {
    announce(job, gpu, progress, out, forked);
    const optimizer = optimizerConfig(config);
    trainer.prepareOptimizer(optimizer);
    let history: EpochLog[] = [];
    let best: CheckpointState['best'] = null;
    if (resume) {
      trainer.params.load(resume.weights, join(resume.folder, 'weights.safetensors'));
      trainer.loadStateTensors(resume.optimizer, join(resume.folder, 'optimizer.safetensors'));
      history = resume.state.history;
      best = resume.state.best;
    } else {
      if (job.init) trainer.params.load(job.init.weights, job.init.weightsFile);
      run.write('model.net', job.source);
      run.write(
        'run.json',
        JSON.stringify(
          {
            version: VERSION,
            model: job.file,
            seed: config.seed,
            adapter: adapterName(gpu.adapter),
            node: process.version,
            git: gitRevision(),
            flags: absolutePaths(flags),
            started: new Date().toISOString(),
          },
          null,
          2,
        ),
      );
    }
    const identity = runIdentity(job.source, ir, data.train, job.stepsPerEpoch);
    const metadata = {
      'fmgpu.source': job.source,
      'fmgpu.version': VERSION,
      'fmgpu.layout': 'conv weight [out, in, kh, kw]; dense weight [in, out]; tensors NCHW',
    };
    const weightsBytes = async (): Promise<Uint8Array> => encodeSafetensors(await trainer.params.read(), metadata);
    let bestBytes: Uint8Array | null = resume?.best ? encodeSafetensors(resume.best, metadata) : null;
    let saved = -1; // the step of the last checkpoint written
    const checkpoint = async (epoch: number): Promise<void> => {
      const state: CheckpointState = {
        epoch,
        step: await trainer.step(),
        seed: config.seed,
        optimizer: config.optimizer,
        best,
        monitor: trainer.monitor,
        history,
        ...identity,
      };
      if (state.step === saved) return;
      saved = state.step;
      run.writeCheckpoint({
        weights: await weightsBytes(),
        best: bestBytes,
        optimizer: encodeSafetensors(await trainer.stateTensors()),
        state,
      });
      kept = { epoch, step: state.step };
      run.write('history.json', JSON.stringify(history, null, 2));
      run.write('history.csv', historyCsv(history));
    };

    await trainer.fit(data.train, data.val, {
      epochs: config.epochs,
      batch: config.batch,
      lr: config.lr,
      optimizer,
      schedule: config.schedule,
      labelSmoothing: config.labelSmoothing,
      seed: config.seed,
      augment: ir.augment,
      ema: config.ema,
      initialStep: resume?.state.step ?? 0,
      initialBest: best?.value,
      initialBestWeights: resume?.best ?? undefined,
      initialMonitor: resume?.state.monitor,
      earlyStop:
        config.earlyStop > 0 ? { patience: config.earlyStop, monitor: 'val_loss', restoreBest: true } : undefined,
      // A macrotask between submits lets the SIGINT handler run: Ctrl-C stops after this submit.
      shouldStop: () => new Promise<boolean>((done) => setImmediate(() => done(interrupted))),
      onProgress: (p) => {
        lastStep = (p.epoch - 1) * p.steps + p.step;
        progress.step(p, config.epochs);
        hooks.afterProgress?.(gpu, lastStep);
      },
      onEpoch: async (log) => {
        history.push(log);
        progress.epoch(log, config.epochs);
        const value = log.val_loss ?? log.loss;
        if (!best || value < best.value) {
          best = { value, epoch: log.epoch };
          bestBytes = await weightsBytes();
        }
        await checkpoint(log.epoch);
        return interrupted ? 'stop' : undefined;
      },
    });
    if (interrupted) {
      await checkpoint(history.length);
      out.err(escapeControl(`fmgpu: interrupted; checkpoint written: resume with fmgpu train --resume ${dir}`));
      return 130;
    }
    run.write('weights.safetensors', await weightsBytes());
    const ev = await trainer.evaluate(data.test, undefined, { tta: config.tta });
    const metrics = {
      test_loss: ev.loss,
      test_accuracy: ev.accuracy,
      n: ev.n,
      tta: config.tta,
      per_class: perClass(ev.confusion),
      confusion: Array.from(ev.confusion),
    };
    run.write('metrics.json', JSON.stringify(metrics, null, 2));
    run.write('report.html', await runReport(trainer, dir, data.test, { metrics }));
    progress.event('test', { test_loss: ev.loss, test_accuracy: ev.accuracy, n: ev.n, tta: config.tta, run: dir });
    if (!flags.json)
      out.log(
        `test: loss ${ev.loss.toFixed(4)}  accuracy ${(ev.accuracy * 100).toFixed(2)}% (${ev.n.toLocaleString('en-US')} images${config.tta ? ', each averaged with its mirror image' : ''})  → ${dir}`,
      );
    return 0;
  } catch (e) {
    const overflow = e instanceof DivergedError && !gpu.lost ? await overflowAtStart(job, gpu).catch(() => null) : null;
    throw explainFault(e, gpu, { dir, kept, lastStep, lr: config.lr, overflow });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

type Kept = { epoch: number; step: number } | null;

/**
 * Where the weights the run started from already overflow on the first training images (null when
 * they do not): a loss that is NaN from the start is then the network's doing, not the rate's.
 * First an inference forward pass (an activation that overflows); when that is finite, one
 * training step without its update (a loss, a gradient, or a gradient whose square overflows).
 */
async function overflowAtStart(job: Job, gpu: Gpu): Promise<{ at: NonFinite | StepFault; from: string } | null> {
  const t = new Trainer(gpu, job.ir, job.ir.train.seed);
  try {
    const start = job.resume?.checkpoint ?? job.init;
    if (start) t.params.load(start.weights);
    const at = (await firstNonFinite(t, job.data.train, 4)) ?? (await firstNonFiniteGradient(t, job.data.train, 4));
    return (
      at && {
        at,
        from: job.resume
          ? "at the checkpoint's weights"
          : job.init
            ? `with the weights of ${job.init.dir}`
            : 'at initialisation',
      }
    );
  } finally {
    t.release();
  }
}

/** A magnitude in a message: 2.6e22, 1e26. */
const magnitude = (x: number): string => Math.abs(x).toExponential(1).replace(/\.0e/, 'e').replace('e+', 'e');

/** What overflowed first, for explainFault: "the activations overflow at initialisation: …". */
function overflowCause(at: NonFinite | StepFault, from: string): string {
  if (!('kind' in at))
    return `the activations overflow ${from}: ${at.layer} (${at.op}) gives ${at.value} on the first training images, before any training step`;
  const reach = at.largest ? `the activations reach ${magnitude(at.largest.value)} at ${at.largest.layer}` : '';
  switch (at.kind) {
    case 'activation':
      return `the activations overflow ${from}: ${at.layer} (${at.op}) gives ${at.value} at the first training step`;
    case 'loss':
      return `the loss overflows ${from}: it is ${at.value} at the first training step${reach ? ` (${reach})` : ''}`;
    case 'gradient':
      return `the gradients overflow ${from}: the gradient of ${at.param} holds ${at.value} at the first training step${reach ? ` (${reach})` : ''}`;
    case 'squared gradient': {
      const top =
        at.largestGradient && at.largestGradient.param !== at.param
          ? `the largest gradient is ${magnitude(at.largestGradient.value)}, of ${at.largestGradient.param}`
          : '';
      const notes = [top, reach].filter(Boolean).join('; ');
      return `the gradients overflow ${from}: the gradient of ${at.param} reaches ${magnitude(at.value)} at the first training step, too large for its square to fit in f32${notes ? ` (${notes})` : ''}`;
    }
  }
}

/**
 * A fault mid-run in one line: what happened, at which step, and what is kept on disk. A diverged
 * loss and a lost device; other errors pass as they are.
 */
function explainFault(
  e: unknown,
  gpu: Gpu,
  run: {
    dir: string;
    kept: Kept;
    lastStep: number;
    lr: number;
    overflow: { at: NonFinite | StepFault; from: string } | null;
  },
): unknown {
  const { dir, kept, overflow } = run;
  const where = kept
    ? `the checkpoint after epoch ${kept.epoch} (step ${kept.step}) in ${dir} is kept`
    : `no checkpoint was written to ${dir} yet`;
  if (e instanceof DivergedError && overflow) {
    return new FmgpuError(
      `${overflowCause(overflow.at, overflow.from)}, so the loss became ${e.loss}: the network needs normalisation (batchnorm) or fewer layers, not a lower learning rate; ${where}`,
      { cause: e },
    );
  }
  if (e instanceof DivergedError) {
    const resume = kept ? `: resume it with fmgpu train --resume ${dir} and a lower --lr` : '';
    return new FmgpuError(
      `the loss became ${e.loss} at epoch ${e.epoch}, by step ${e.step}: try a learning rate lower than --lr ${run.lr}; ${where}${resume}`,
      { cause: e },
    );
  }
  if (gpu.lost) {
    const what =
      e instanceof GpuError && e.message.startsWith('the GPU device was lost') ? e.message : 'the GPU device was lost';
    return new GpuError(
      `${what} after step ${run.lastStep}; ${where}${kept ? `: resume with fmgpu train --resume ${dir}` : ''}`,
      { cause: e },
    );
  }
  return e;
}

/** Path flags made absolute, so that `--resume` works from any directory. */
function absolutePaths(flags: Flags): Flags {
  const out = { ...flags };
  for (const k of ['data', 'csv', 'test-csv', 'init'])
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
