// What `fmgpu train` reads and checks before anything is written or the GPU is opened: the flags
// (a resumed run's own from its run.json), the model, the data, and for --resume that the run can
// continue exactly. Every refusal here exits 2.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseNet, type ModelIR } from '../../dsl/index.ts';
import { DEFAULT_DATA_DIR } from '../node/data.ts';
import { checkpointPosition, defaultRunDir, readCheckpoint, RunDir, type Checkpoint } from '../node/rundir.ts';
import type { RunInfo } from '../node/run-read.ts';
import { UsageError, parseArgs, type FlagSpec, type Flags } from './args.ts';
import {
  applyTrainFlags,
  checkWeights,
  openRun,
  readRunJson,
  readSource,
  recordedTrain,
  type RunJson,
} from './common.ts';
import {
  checkSameData,
  checkSameNetwork,
  checkSameSettings,
  checkSameValidation,
  scheduleChange,
  trainingImages,
  validationRecord,
  type TrainingImages,
} from './resume.ts';
import { epochShape, type LastBatch } from '../train/fit-options.ts';
import { checkOptimizerState, optimizerConfig } from '../train/optimizer.ts';
import { buildGraph } from '../model/build.ts';
import { checkData, loadData, type Data } from './train-data.ts';
import type { ValidationRecord } from '../node/state.ts';

export type { Data } from './train-data.ts';

/** Everything a run needs, read and checked before anything is written or the GPU is opened. */
export interface Job {
  flags: Flags;
  file: string;
  source: string;
  ir: ModelIR;
  init: RunInfo | null;
  /** The run being continued, its last checkpoint, and the model file it was trained from (its run.json's). */
  resume: { dir: string; checkpoint: Checkpoint; changes: string[]; trainedFrom: string } | null;
  data: Data;
  /** How the validation set was held out, and its hash: checked on --resume, recorded in checkpoints. */
  validation: ValidationRecord;
  /** The training images' count and hash: checked on --resume, recorded in checkpoints. */
  trainImages: TrainingImages;
  stepsPerEpoch: number;
  /** The epoch's last partial batch: trained (new runs) or dropped (runs checkpointed before that). */
  lastBatch: LastBatch;
  /** The run directory this invocation writes. */
  dir: string;
}

/**
 * The run's flags from run.json, unless given again; a data source given again replaces the saved one
 * whole. Returns the run.json, its flags those taken.
 */
function resumeFlags(flags: Flags, dir: string): RunJson {
  const saved = readRunJson(dir);
  // How this invocation reports (--json, --debug) and where it writes are its own.
  const DATA = ['data', 'csv', 'test-csv'];
  const VAL = ['val-data', 'val-csv', 'validation'];
  const source = DATA.some((k) => flags[k] !== undefined);
  const val = VAL.some((k) => flags[k] !== undefined);
  const taken: Flags = {};
  for (const [k, v] of Object.entries(saved.flags ?? {})) {
    const given = (source && DATA.includes(k)) || (val && VAL.includes(k));
    const own = ['resume', 'out', 'init', 'json', 'debug'].includes(k) || given;
    if (flags[k] === undefined && !own) flags[k] = taken[k] = v;
  }
  return { ...saved, flags: taken };
}

export function prepare(args: readonly string[]): Job {
  const { flags, positional } = parseArgs(args, TRAIN_FLAGS);
  const resumeDir = flags.resume === undefined ? null : String(flags.resume);
  if (resumeDir && flags.init)
    throw new UsageError(
      "--resume continues a run with its own weights; --init starts a new run from another run's: give one",
    );
  const file = positional[0] ?? (resumeDir ? join(resumeDir, 'model.net') : undefined);
  const checkpoint = resumeDir ? readCheckpoint(resumeDir) : null;
  const saved = resumeDir ? resumeFlags(flags, resumeDir) : null;
  if (!file) throw new UsageError('train needs a model file: fmgpu train model.net');
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  const source = readSource(file);
  const read = parseNet(source, file, { classes: null }); // its own errors before the data's
  const init = flags.init ? openRun(String(flags.init)) : null;
  if (saved && resumeDir) recordedTrain(read.train, saved, resumeDir); // its own flags' errors name run.json
  const loaded = loadData(flags, { ...read, train: applyTrainFlags(read.train, flags) }, checkpoint?.state ?? null);
  const data = loaded.data;
  // Checked again against the data: its class count, and its image shape for a file without `input`.
  const shape = { h: data.train.rows, w: data.train.cols, c: data.train.channels ?? 1 };
  const ir = { ...parseNet(source, file, { classes: data.classes.length, input: shape }), train: loaded.ir.train };
  if (init) checkWeights(ir, init.weights, init.weightsFile);
  checkData(file, ir, data);
  // A resumed run keeps its policy for the last partial batch: runs from before it dropped it.
  const lastBatch = checkpoint ? (checkpoint.state.lastBatch ?? 'drop') : 'train';
  const { stepsPerEpoch } = epochShape(data.train.n, ir.train.batch, lastBatch);
  const validation = validationRecord(data);
  const trainImages = trainingImages(data.train);
  const trainedFrom = typeof saved?.model === 'string' ? saved.model : file;
  const resume =
    resumeDir && checkpoint
      ? checkResume(resumeDir, checkpoint, { source, ir, trainImages, stepsPerEpoch, validation }, trainedFrom)
      : null;
  const dir = flags.out !== undefined ? String(flags.out) : (resumeDir ?? defaultRunDir(file));
  return { flags, file, source, ir, init, resume, data, validation, trainImages, stepsPerEpoch, lastBatch, dir };
}

/** A resume must continue the run exactly: the same network, settings that shape a step, data and position. */
function checkResume(
  dir: string,
  checkpoint: Checkpoint,
  job: Pick<Job, 'source' | 'ir' | 'trainImages' | 'stepsPerEpoch' | 'validation'>,
  trainedFrom: string,
): NonNullable<Job['resume']> {
  const { state, folder } = checkpoint;
  checkSameNetwork(dir, state, job.source, job.ir, checkpoint.source);
  const changes = checkSameSettings(dir, state, job.ir);
  checkSameValidation(dir, state, job.validation);
  checkSameData(dir, state, job.trainImages, job.stepsPerEpoch, join(folder, 'state.json'));
  checkWeights(job.ir, checkpoint.weights, join(folder, 'weights.safetensors'));
  if (checkpoint.best) checkWeights(job.ir, checkpoint.best, join(folder, 'best.safetensors'));
  const optimizer = join(folder, 'optimizer.safetensors');
  checkOptimizerState(buildGraph(job.ir, 1).params, optimizerConfig(job.ir.train), checkpoint.optimizer, optimizer);
  const stretched = scheduleChange(state, job.ir.train, job.stepsPerEpoch);
  return { dir, checkpoint, changes: stretched ? [...changes, stretched] : changes, trainedFrom };
}

/**
 * The run directory, locked: a new run in a new or empty folder; a resumed run in its own folder,
 * or, with --out elsewhere, in a copy of it (the original left as it was).
 */
export function claim(job: Job): { run: RunDir; forked: boolean } {
  if (!job.resume) return { run: RunDir.create(job.dir), forked: false };
  if (resolve(job.dir) === resolve(job.resume.dir)) {
    const run = RunDir.open(job.dir);
    try {
      unchanged(job.resume, 'checked');
    } catch (e) {
      run.release();
      throw e;
    }
    return { run, forked: false };
  }
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
    // The source run is not locked (it may be training): its checkpoint still the one checked, the files copied
    // are that checkpoint's (each switch moves the step on).
    unchanged(job.resume, 'copied');
  } catch (e) {
    run.discard();
    throw e;
  }
  return { run, forked: true };
}

/** Refuses a resume whose checkpoint moved on since it was checked (the run trained by another fmgpu meanwhile). */
function unchanged(resume: NonNullable<Job['resume']>, what: string): void {
  const { epoch, step } = resume.checkpoint.state;
  const now = checkpointPosition(resume.dir);
  if (now?.epoch !== epoch || now.step !== step)
    throw new UsageError(
      `${resume.dir}: its checkpoint changed while it was ${what} (is it being trained?): resume it again`,
    );
}

export const TRAIN_FLAGS: Record<string, FlagSpec> = {
  epochs: { type: 'string', meta: 'N', help: 'epochs to train (overrides the file)' },
  batch: { type: 'string', meta: 'N', help: 'batch size' },
  lr: { type: 'string', meta: 'X', help: 'learning rate' },
  optimizer: { type: 'string', meta: 'NAME', help: 'adam, adamw or sgd' },
  momentum: { type: 'string', meta: 'X', help: 'SGD momentum' },
  nesterov: { type: 'bool', help: 'SGD Nesterov momentum (--no-nesterov: not)' },
  'weight-decay': { type: 'string', meta: 'X', help: 'weight decay (sgd, adamw: decoupled; adam: L2 in the gradient)' },
  schedule: { type: 'string', meta: 'NAME', help: 'constant, cosine, onecycle or plateau' },
  'label-smoothing': { type: 'string', meta: 'X', help: 'label smoothing in [0, 1)' },
  ema: { type: 'string', meta: 'X', help: 'decay of a moving average of the weights (0: off)' },
  tta: {
    type: 'bool',
    help: 'test-time augmentation: the test set is scored averaging each image with its mirror (--no-tta: not)',
  },
  seed: { type: 'string', meta: 'N', help: 'random seed (initialisation, shuffles, dropout, augmentation)' },
  validation: {
    type: 'string',
    meta: 'F',
    help: 'fraction of the training set held out (as --split says), or "test": the test set validates',
  },
  split: {
    type: 'string',
    meta: 'HOW',
    help: 'last (Keras: the last fraction), random (seeded, of each class) or auto (random when sorted by class)',
  },
  'val-data': {
    type: 'string',
    meta: 'DIR',
    help: 'validation images: idx files as for --data (t10k-*, else train-*)',
  },
  'val-csv': { type: 'string', meta: 'FILE', help: 'validation images in the same CSV form as --csv' },
  'early-stop': {
    type: 'string',
    meta: 'N',
    help: 'stop after N epochs without val_loss (without validation: the loss) improving, restore the best (0: off)',
  },
  data: {
    type: 'string',
    meta: 'DIR',
    help:
      'idx files, CIFAR-10/100 binary batches or class folders of images ' +
      `(default ${DEFAULT_DATA_DIR}: Fashion-MNIST)`,
  },
  csv: {
    type: 'string',
    meta: 'FILE',
    help: "training data in Kaggle's CSV form (label,pixel1..pixel784; the input line's H×W×C pixels)",
  },
  'test-csv': { type: 'string', meta: 'FILE', help: 'test data in the same CSV form' },
  subset: { type: 'int', min: 1, meta: 'N', help: 'keep the first N training images (the test set stays whole)' },
  out: {
    type: 'string',
    meta: 'DIR',
    help:
      'run directory: a new or empty folder (default runs/<model>-<timestamp>); ' +
      'with --resume, a copy of the run continues there',
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
