// `fmgpu train model.net`: check everything, open the GPU, train with progress, checkpoint every
// epoch, evaluate on the test set, leave a run directory behind.
import { existsSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseNet, summarize, type ModelIR } from '../../dsl/index.ts';
import { adapterName } from '../gpu/device.ts';
import { DivergedError, Trainer, type EpochLog } from '../train/trainer.ts';
import { optimizerConfig } from '../train/optimizer.ts';
import { encodeSafetensors } from '../model/safetensors.ts';
import { loadFashionMnist, DEFAULT_DATA_DIR, loadCsv } from '../node/data.ts';
import { validationSplit, type Dataset } from '../data/dataset.ts';
import { perClass } from '../train/metrics.ts';
import { defaultRunDir, makeDir, historyCsv, readCheckpoint, readRun, writeCheckpoint, writeFileAtomic, type CheckpointState } from '../node/rundir.ts';
import { FmgpuError, GpuError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { UsageError, parseArgs, type FlagSpec, type Flags } from './args.ts';
import { Progress, type Out } from './progress.ts';
import { VERSION, applyTrainFlags, checkBatchFits, checkWeights, openCliGpu, readRunJson, readSource } from './common.ts';
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
  tta: { type: 'string', meta: 'BOOL', help: 'test-time augmentation: the test set is scored averaging each image with its mirror (true/false)' },
  seed: { type: 'string', meta: 'N', help: 'random seed (initialisation, shuffles, dropout, augmentation)' },
  validation: { type: 'string', meta: 'F', help: 'fraction of the training set held out, taken from its end (Keras)' },
  'early-stop': { type: 'string', meta: 'N', help: 'stop after N epochs without val_loss improving, restore the best (0: off)' },
  data: { type: 'string', meta: 'DIR', help: `Fashion-MNIST idx files (default ${DEFAULT_DATA_DIR})` },
  csv: { type: 'string', meta: 'FILE', help: "training data in Kaggle's CSV form (label,pixel1..pixel784)" },
  'test-csv': { type: 'string', meta: 'FILE', help: 'test data in the same CSV form' },
  subset: { type: 'int', min: 1, meta: 'N', help: 'keep the first N training images (the test set stays whole)' },
  out: { type: 'string', meta: 'DIR', help: 'run directory (default runs/<model>-<timestamp>)' },
  resume: { type: 'string', meta: 'DIR', help: 'continue an interrupted run from its last checkpoint' },
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
  if (flags.csv || flags['test-csv']) {
    if (!flags.csv || !flags['test-csv']) throw new UsageError('--csv and --test-csv go together');
    if (flags.data) throw new UsageError('--data and --csv are two sources of training data: give one');
    train = loadCsv(String(flags.csv));
    test = loadCsv(String(flags['test-csv']));
    from = `${flags.csv}, ${flags['test-csv']}`;
  } else {
    const dir = String(flags.data ?? DEFAULT_DATA_DIR);
    ({ train, test } = loadFashionMnist(dir));
    from = dir;
  }
  if (flags.subset) train = { ...train, n: Math.min(train.n, Number(flags.subset)), images: train.images.subarray(0, Number(flags.subset) * train.rows * train.cols), labels: train.labels.subarray(0, Number(flags.subset)) };
  if (validation > 0) {
    const s = validationSplit(train, validation);
    if (s.val.n === 0) throw new UsageError(`validation ${validation} of ${train.n} images leaves no validation images`);
    return { train: s.train, val: s.val, test, from };
  }
  return { train, val: null, test, from };
}

/** Tests' way into a run in progress (a fault injected mid-run); the CLI passes none. */
export interface TrainHooks {
  /** After each progress report, with the global step reached (1-based, counted across epochs). */
  afterProgress?(gpu: Gpu, step: number): void;
}

export async function train(args: readonly string[], out: Out, hooks: TrainHooks = {}): Promise<number> {
  const { flags, positional } = parseArgs(args, TRAIN_FLAGS);
  // Resume: the run's own model.net and flags, unless given again.
  let file = positional[0];
  let resume: ReturnType<typeof readCheckpoint> | null = null;
  let dir: string;
  if (flags.resume) {
    dir = String(flags.resume);
    resume = readCheckpoint(dir);
    file ??= join(dir, 'model.net');
    const saved = readRunJson(dir);
    // The run's flags, unless given again; a data source given again replaces the saved one whole.
    // How this invocation reports (--json, --debug) is its own.
    const DATA = ['data', 'csv', 'test-csv'];
    const source = DATA.some((k) => flags[k] !== undefined);
    for (const [k, v] of Object.entries(saved.flags ?? {})) {
      if (flags[k] !== undefined || ['resume', 'out', 'init', 'json', 'debug'].includes(k) || (source && DATA.includes(k))) continue;
      flags[k] = v;
    }
  }
  if (!file) throw new UsageError('train needs a model file: fmgpu train model.net');
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  const source = readSource(file);
  const ir0 = parseNet(source, file);
  const config = applyTrainFlags(ir0.train, flags);
  const ir: ModelIR = { ...ir0, train: config };
  const init = flags.init ? readRun(String(flags.init)) : null;
  if (init) checkWeights(ir, init.weights, init.weightsFile);
  if (resume) {
    checkWeights(ir, resume.weights, join(String(flags.resume), 'checkpoint/weights.safetensors'));
    if (resume.best) checkWeights(ir, resume.best, join(String(flags.resume), 'checkpoint/best.safetensors'));
  }
  const data = loadData(flags, config.validation);
  if (ir.input.h !== data.train.rows || ir.input.w !== data.train.cols || ir.input.c !== 1) {
    throw new UsageError(`${file}: the model's input is ${ir.input.h}x${ir.input.w}x${ir.input.c} but the data is ${data.train.rows}x${data.train.cols}x1`);
  }
  dir = flags.resume ? String(flags.resume) : String(flags.out ?? defaultRunDir(file));
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`--out ${dir}: a file is in the way of the run directory`);
  if (!flags.resume && existsSync(join(dir, 'checkpoint'))) throw new UsageError(`${dir} already holds a run: use --resume ${dir} to continue it, or another --out`);
  const fresh = !existsSync(dir);
  try {
    makeDir(dir);
  } catch (e) {
    throw new UsageError(`cannot create the run directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }

  // A refusal before training leaves no empty run directory behind (rmdir removes only an empty one).
  const unmake = (): void => {
    if (!fresh) return;
    try {
      rmdirSync(dir);
    } catch {
      // not empty after all: leave it
    }
  };
  // Everything is checked: now the GPU.
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined).catch((e: unknown) => {
    unmake();
    throw e;
  });
  let trainer: Trainer;
  try {
    // Buffers over the adapter's limits are refused before anything is printed or allocated: the
    // training batch's. Evaluation (validation, test) shrinks its chunks until they fit (fittingBatch).
    checkBatchFits(ir, Math.min(config.batch, data.train.n), gpu.limits);
    trainer = new Trainer(gpu, ir, config.seed);
  } catch (e) {
    gpu.destroy();
    unmake();
    throw e;
  }
  const progress = new Progress(out, !!flags.json);
  progress.batch = config.batch;
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    // On a terminal, first leave the progress bar's line.
    out.err(`${out.status ? '\n' : ''}fmgpu: stopping after the steps in flight, then writing a checkpoint (Ctrl-C again to quit now)`);
  };
  process.on('SIGINT', onSigint);
  // What a fault mid-run reports: the last step seen, and the checkpoint kept on disk.
  let kept: Kept = resume ? { epoch: resume.state.epoch, step: resume.state.step } : null;
  let lastStep = resume?.state.step ?? 0;
  try {
    progress.event('start', { adapter: adapterName(gpu.adapter), cpu: gpu.adapter.cpu, model: file, run: dir, params: ir.params.trainable + ir.params.nonTrainable, train: data.train.n, validation: data.val?.n ?? 0, test: data.test.n, version: VERSION });
    if (!flags.json) {
      out.log(`adapter: ${adapterName(gpu.adapter)}${gpu.adapter.cpu ? ': no GPU in use, training is correct but slow' : ''}`);
      out.log(summarize(ir));
      out.log(`data: ${data.train.n.toLocaleString('en-US')} training, ${(data.val?.n ?? 0).toLocaleString('en-US')} validation, ${data.test.n.toLocaleString('en-US')} test images (${data.from})`);
      out.log(`run directory: ${dir}`);
    }
    const optimizer = optimizerConfig(config);
    trainer.prepareOptimizer(optimizer);
    let history: EpochLog[] = [];
    let best: CheckpointState['best'] = null;
    let startStep = 0;
    if (resume) {
      trainer.params.load(resume.weights, join(dir, 'checkpoint/weights.safetensors'));
      trainer.loadStateTensors(resume.optimizer, join(dir, 'checkpoint/optimizer.safetensors'));
      history = resume.state.history;
      best = resume.state.best;
      startStep = resume.state.step;
      if (!flags.json) out.log(`resuming at epoch ${resume.state.epoch + 1}, step ${startStep}`);
    } else {
      if (init) trainer.params.load(init.weights, init.weightsFile);
      writeFileSync(join(dir, 'model.net'), source);
      writeFileAtomic(join(dir, 'run.json'), JSON.stringify({ version: VERSION, model: file, seed: config.seed, adapter: adapterName(gpu.adapter), node: process.version, git: gitRevision(), flags: absolutePaths(flags), started: new Date().toISOString() }, null, 2));
    }
    const metadata = { 'fmgpu.source': source, 'fmgpu.version': VERSION, 'fmgpu.layout': 'conv weight [out, in, kh, kw]; dense weight [in, out]; tensors NCHW' };
    const weightsBytes = async (): Promise<Uint8Array> => encodeSafetensors(await trainer.params.read(), metadata);
    let bestBytes: Uint8Array | null = resume?.best ? encodeSafetensors(resume.best, metadata) : null;
    let saved = -1; // the step of the last checkpoint written
    const checkpoint = async (epoch: number): Promise<void> => {
      const state: CheckpointState = { epoch, step: await trainer.step(), seed: config.seed, optimizer: config.optimizer, best, monitor: trainer.monitor, history };
      if (state.step === saved) return;
      saved = state.step;
      writeCheckpoint(dir, { weights: await weightsBytes(), best: bestBytes, optimizer: encodeSafetensors(await trainer.stateTensors()), state });
      kept = { epoch, step: state.step };
      writeFileAtomic(join(dir, 'history.json'), JSON.stringify(history, null, 2));
      writeFileAtomic(join(dir, 'history.csv'), historyCsv(history));
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
      initialStep: startStep,
      initialBest: best?.value,
      initialBestWeights: resume?.best ?? undefined,
      initialMonitor: resume?.state.monitor,
      earlyStop: config.earlyStop > 0 ? { patience: config.earlyStop, monitor: 'val_loss', restoreBest: true } : undefined,
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
      out.err(`fmgpu: interrupted; checkpoint written: resume with fmgpu train --resume ${dir}`);
      return 130;
    }
    writeFileAtomic(join(dir, 'weights.safetensors'), await weightsBytes());
    const ev = await trainer.evaluate(data.test, undefined, { tta: config.tta });
    const metrics = { test_loss: ev.loss, test_accuracy: ev.accuracy, n: ev.n, tta: config.tta, per_class: perClass(ev.confusion), confusion: Array.from(ev.confusion) };
    writeFileAtomic(join(dir, 'metrics.json'), JSON.stringify(metrics, null, 2));
    writeFileAtomic(join(dir, 'report.html'), await runReport(trainer, dir, data.test, { metrics }));
    progress.event('test', { test_loss: ev.loss, test_accuracy: ev.accuracy, n: ev.n, tta: config.tta, run: dir });
    if (!flags.json) out.log(`test: loss ${ev.loss.toFixed(4)}  accuracy ${(ev.accuracy * 100).toFixed(2)}% (${ev.n.toLocaleString('en-US')} images${config.tta ? ', each averaged with its mirror image' : ''})  → ${dir}`);
    return 0;
  } catch (e) {
    throw explainFault(e, gpu, { dir, kept, lastStep, lr: config.lr });
  } finally {
    process.off('SIGINT', onSigint);
    trainer.release();
    gpu.destroy();
  }
}

type Kept = { epoch: number; step: number } | null;

/**
 * A fault mid-run in one line: what happened, at which step, and what is kept on disk. A diverged
 * loss and a lost device; other errors pass as they are.
 */
function explainFault(e: unknown, gpu: Gpu, run: { dir: string; kept: Kept; lastStep: number; lr: number }): unknown {
  const { dir, kept } = run;
  const where = kept ? `the checkpoint after epoch ${kept.epoch} (step ${kept.step}) in ${dir} is kept` : `no checkpoint was written to ${dir} yet`;
  if (e instanceof DivergedError) {
    const resume = kept ? `: resume it with fmgpu train --resume ${dir} and a lower --lr` : '';
    return new FmgpuError(`the loss became ${e.loss} at epoch ${e.epoch}, by step ${e.step}: try a learning rate lower than --lr ${run.lr}; ${where}${resume}`, { cause: e });
  }
  if (gpu.lost) {
    const what = e instanceof GpuError && e.message.startsWith('the GPU device was lost') ? e.message : 'the GPU device was lost';
    return new GpuError(`${what} after step ${run.lastStep}; ${where}${kept ? `: resume with fmgpu train --resume ${dir}` : ''}`, { cause: e });
  }
  return e;
}

/** Path flags made absolute, so that `--resume` works from any directory. */
function absolutePaths(flags: Flags): Flags {
  const out = { ...flags };
  for (const k of ['data', 'csv', 'test-csv', 'init']) if (typeof out[k] === 'string') out[k] = resolve(out[k] as string);
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
