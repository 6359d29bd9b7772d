// What `fmgpu train --resume RUN` must hold to continue a run exactly: the same network, the same
// training data and settings, and a position that lies within the run. Each refusal names what
// differs and exits 2, before anything is written or the GPU opened.
import { shellWord } from '../util/shell.ts';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseNet, type ModelIR } from '../../dsl/index.ts';
import { differenceText, networkDifference } from '../../dsl/compare.ts';
import type { Dataset } from '../data/dataset.ts';
import type { LastBatch } from '../train/fit-options.ts';
import { lrTable } from '../train/schedule.ts';
import { UsageError } from '../errors.ts';
import {
  checkPosition,
  KEPT_SETTINGS,
  type CheckpointState,
  type KeptSettings,
  type ValidationRecord,
} from '../node/state.ts';
import { readSource } from './common.ts';
import type { Data } from './train-data.ts';

export const sha256 = (...parts: (string | Uint8Array)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** The training images as a checkpoint records them: their count and the hash of pixels and labels. */
export interface TrainingImages {
  images: number;
  hash: string;
}

/** Hashes the training images once a run: the checkpoints and a resume's check both read it. */
export const trainingImages = (train: Dataset): TrainingImages => ({
  images: train.n,
  hash: sha256(train.images, train.labels),
});

/** What a checkpoint records of the validation set: how it was chosen, and its images as trainingImages hashes them. */
export function validationRecord(data: Pick<Data, 'val' | 'validation'>): ValidationRecord {
  if (!data.val || !data.validation) return { set: 'none', images: 0, hash: '' };
  return { set: data.validation.set, ...trainingImages(data.val) };
}

/** What a checkpoint records of the run so that a resume can be checked against it. */
export function runIdentity(
  source: string,
  ir: ModelIR,
  train: TrainingImages,
  epoch: { stepsPerEpoch: number; lastBatch: LastBatch },
  validation?: ValidationRecord,
): Pick<CheckpointState, 'model' | 'data' | 'settings' | 'stepsPerEpoch' | 'lastBatch' | 'epochs'> {
  const settings = Object.fromEntries(KEPT_SETTINGS.map((k) => [k, ir.train[k]])) as KeptSettings;
  return {
    model: sha256(source),
    data: { ...train, ...(validation ? { validation } : {}) },
    settings,
    stepsPerEpoch: epoch.stepsPerEpoch,
    lastBatch: epoch.lastBatch,
    epochs: ir.train.epochs,
  };
}

/**
 * A resume given other `--epochs` stretches a cosine or one-cycle schedule over the new count from where the run
 * stands, so the rate jumps: said, with the rates either side, or null when nothing changes.
 */
export function scheduleChange(state: CheckpointState, train: ModelIR['train'], stepsPerEpoch: number): string | null {
  const was = state.epochs;
  const { schedule, lr, epochs } = train;
  if (was === undefined || was === epochs || state.epoch >= epochs || state.step === 0) return null;
  if (schedule !== 'cosine' && schedule !== 'onecycle') return null;
  // The last step's rate by the checkpoint's own settings (--lr and --schedule may change too).
  const before = { schedule, lr, ...state.settings } as { schedule: typeof schedule; lr: number };
  const last = lrTable(before.schedule, before.lr, was * stepsPerEpoch)[state.step - 1] ?? 0;
  const next = lrTable(schedule, lr, epochs * stepsPerEpoch)[state.step] ?? 0;
  const rate = (v: number): string => v.toPrecision(3);
  return (
    `--epochs ${was} → ${epochs}: the ${schedule} schedule now spans ${epochs} epochs, its rate ${rate(last)} at ` +
    `the last step and ${rate(next)} at the next`
  );
}

/** The resumed model must be the run's network: comments, spacing and train settings may differ. */
export function checkSameNetwork(
  runDir: string,
  state: CheckpointState,
  source: string,
  ir: ModelIR,
  trainedFrom: string | null,
): void {
  if (state.model === sha256(source)) return;
  // As trained: the source its weights keep (RUN/model.net may have been edited since), else RUN/model.net.
  const runFile = join(runDir, 'model.net');
  const trained = parseNet(trainedFrom ?? readSource(runFile), runFile, { classes: null, input: ir.input });
  const d = networkDifference(trained, ir);
  if (!d) return;
  let at = ir.file;
  if (d.bOffset !== null) {
    const before = source.slice(0, d.bOffset);
    at += `:${before.split('\n').length}:${d.bOffset - before.lastIndexOf('\n')}`;
  }
  const init = `--init ${shellWord(runDir)}`;
  const instead = `resume with the run's own model, or start a new run from its weights with ${init}`;
  throw new UsageError(`${at}: ${differenceText(d, `the run in ${runDir}`)}: ${instead}`);
}

const FLAG: Record<string, string> = { weightDecay: 'weight-decay', labelSmoothing: 'label-smoothing' };
const flag = (k: string): string => FLAG[k] ?? k;
/** What a step's shape and state depend on: batch, optimizer (its state), data split, shuffles, weight averages. */
const FIXED = new Set<string>(['batch', 'optimizer', 'validation', 'seed', 'ema']);

/**
 * The settings that shape every step (batch, optimizer, split, seed, weight averaging) must be the
 * run's. Rates (lr, momentum, decay, smoothing, schedule) may change from the next step on: returned
 * as `flag old → new` for the user to see. Epochs, early stopping and tta are free.
 */
export function checkSameSettings(runDir: string, state: CheckpointState, ir: ModelIR): string[] {
  const trained: Partial<KeptSettings> = state.settings ?? { optimizer: state.optimizer, seed: state.seed };
  const changed = Object.entries(trained).filter(([k, v]) => ir.train[k as keyof KeptSettings] !== v);
  const now = (k: string): string => String(ir.train[k as keyof KeptSettings]);
  const fixed = changed.filter(([k]) => FIXED.has(k));
  if (fixed.length > 0) {
    const was = fixed.map(([k, v]) => `${flag(k)} ${v}`).join(', ');
    const not = fixed.map(([k]) => `${flag(k)} ${now(k)}`).join(', ');
    const keeps = 'a resumed run keeps its batch, optimizer, validation split, seed and ema';
    throw new UsageError(
      `--resume ${runDir}: the run was trained with ${was}, not ${not}: ${keeps}; ` +
        `start a new run from its weights with --init ${shellWord(runDir)}`,
    );
  }
  return changed.map(([k, v]) => `${flag(k)} ${v} → ${now(k)}`);
}

/** The same training images, and a position within them. */
export function checkSameData(
  runDir: string,
  state: CheckpointState,
  train: TrainingImages,
  stepsPerEpoch: number,
  stateFile: string,
): void {
  if (state.data) {
    const count = (n: number): string => n.toLocaleString('en-US');
    if (state.data.images !== train.images)
      throw new UsageError(
        `--resume ${runDir}: the run trains on ${count(state.data.images)} images, this data gives ` +
          `${count(train.images)} (check --subset, --validation and the data source)`,
      );
    if (state.data.hash !== train.hash)
      throw new UsageError(
        `--resume ${runDir}: the training images are not the ones the run was trained on ` +
          '(same count, other pixels or labels)',
      );
  }
  if (state.stepsPerEpoch !== undefined && state.stepsPerEpoch !== stepsPerEpoch)
    throw new UsageError(
      `--resume ${runDir}: the run has ${state.stepsPerEpoch} steps an epoch, this would give ${stepsPerEpoch}`,
    );
  checkPosition(state, stepsPerEpoch, stateFile);
}

const SET_TEXT: Record<ValidationRecord['set'], string> = {
  none: 'no validation set',
  last: 'the last fraction of the training images (split=last)',
  random: 'a random fraction of each class (split=random)',
  test: 'the test set (validation=test)',
  file: 'a validation set of its own (--val-data or --val-csv)',
};

/**
 * The same validation set: held out the same way (the checkpoint's split is the one a resume uses
 * when none is given), or the same test set or file. Checkpoints older than the record pass.
 */
export function checkSameValidation(runDir: string, state: CheckpointState, now: ValidationRecord): void {
  const was = state.data?.validation;
  if (!was) return;
  if (was.set !== now.set)
    throw new UsageError(
      `--resume ${runDir}: the run was validated on ${SET_TEXT[was.set]}, not ${SET_TEXT[now.set]}: ` +
        'a resumed run keeps its validation set',
    );
  if (was.images !== now.images || was.hash !== now.hash)
    throw new UsageError(
      `--resume ${runDir}: the validation images are not the ones the run was validated on ` +
        `(${was.images.toLocaleString('en-US')} images then, ${now.images.toLocaleString('en-US')} now: ` +
        'check --subset, --validation and the data source)',
    );
}
