// A checkpoint's state.json: where training stands and what it was doing, checked field by field
// on load so that a damaged or hand-edited file is refused in one line naming the field, never
// half-used (a wrong type failing an epoch later, a step past the end training nothing).
import { DataError } from '../errors.ts';
import type { EpochLog, MonitorState } from '../train/trainer.ts';
import type { LastBatch } from '../train/fit-options.ts';

/** The training settings a resumed run must keep (the rest, epochs, early stopping, tta, may change). */
export const KEPT_SETTINGS = [
  'batch',
  'optimizer',
  'lr',
  'momentum',
  'nesterov',
  'weightDecay',
  'validation',
  'seed',
  'labelSmoothing',
  'schedule',
  'ema',
] as const;
export type KeptSettings = Record<(typeof KEPT_SETTINGS)[number], number | string | boolean>;

/**
 * The validation set a run used: held out of the training set (`last`: Keras's last fraction,
 * `random`: seeded, of each class), the test set, a file of its own, or none; and its images' hash.
 */
export interface ValidationRecord {
  set: 'none' | 'last' | 'random' | 'test' | 'file';
  images: number;
  hash: string;
}
const VALIDATION_SETS: readonly string[] = ['none', 'last', 'random', 'test', 'file'];

export interface CheckpointState {
  /** Epochs completed. */
  epoch: number;
  /** Training steps completed (the GPU step counter): within epoch `epoch + 1` after a Ctrl-C. */
  step: number;
  seed: number;
  optimizer: string;
  best: { value: number; epoch: number } | null;
  /** Early stopping's and the plateau schedule's state (`stopped`: the epoch early stopping ended the run). */
  monitor?: MonitorState;
  history: EpochLog[];
  /** Steps in one epoch: the position within an epoch is step − epoch·stepsPerEpoch. */
  stepsPerEpoch?: number;
  /**
   * The epoch's last, partial batch: trained as a step of its own, or dropped (absent: `drop`, what
   * runs checkpointed before issue 18 did; a resumed run keeps its own).
   */
  lastBatch?: LastBatch;
  /** Hex SHA-256 of the model.net the run trains. */
  model?: string;
  /**
   * The training images: how many, and a hash of their pixels and labels (after subset and
   * validation split); and the validation set (absent in checkpoints older than it: then a
   * validation fraction was the last one).
   */
  data?: { images: number; hash: string; validation?: ValidationRecord };
  settings?: KeptSettings;
  /** The epochs the run was to train when this was written: its schedule's span (absent in older checkpoints). */
  epochs?: number;
  /**
   * A checkpoint within an epoch (Ctrl-C): the epoch's sums from its start to `step`, which a resume carries on
   * so that the epoch's loss, accuracy and seconds are an unbroken epoch's (absent: not known, older checkpoints).
   */
  partial?: { lossSum: number; correct: number; seconds: number };
}

/** A field's check: null when the value is good, else what it should have been (with a nested path). */
type Check = (v: unknown) => string | null;
const show = (v: unknown): string => (v === undefined ? 'missing' : (JSON.stringify(v) ?? String(v)).slice(0, 40));
const is =
  (ok: (v: unknown) => boolean, what: string): Check =>
  (v) =>
    ok(v) ? null : `must be ${what}, not ${show(v)}`;
const int = (min: number): Check =>
  is((v) => typeof v === 'number' && Number.isInteger(v) && v >= min, `a whole number ≥ ${min}`);
const finite: Check = is((v) => typeof v === 'number' && Number.isFinite(v), 'a finite number');
const optional =
  (c: Check): Check =>
  (v) =>
    v === undefined ? null : c(v);
const record =
  (fields: Record<string, Check>): Check =>
  (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return `must be an object, not ${show(v)}`;
    for (const [k, c] of Object.entries(fields)) {
      const bad = c((v as Record<string, unknown>)[k]);
      if (bad) return `.${k}${bad.startsWith('.') || bad.startsWith('[') ? '' : ' '}${bad}`;
    }
    return null;
  };
const list =
  (c: Check): Check =>
  (v) => {
    if (!Array.isArray(v)) return `must be a list, not ${show(v)}`;
    for (let i = 0; i < v.length; i++) {
      const bad = c(v[i]);
      if (bad) return `[${i}]${bad.startsWith('.') ? '' : ' '}${bad}`;
    }
    return null;
  };
const setting: Check = is(
  (v) => (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string' || typeof v === 'boolean',
  'a number, a name or true/false',
);

const EPOCH_LOG = record({
  epoch: int(1),
  seconds: finite,
  loss: finite,
  accuracy: finite,
  val_loss: optional(finite),
  val_accuracy: optional(finite),
  lr: finite,
});

const FIELDS: Record<keyof CheckpointState, Check> = {
  epoch: int(0),
  step: int(0),
  seed: int(0),
  optimizer: is((v) => v === 'adam' || v === 'adamw' || v === 'sgd', 'adam, adamw or sgd'),
  best: (v) => (v === null ? null : record({ value: finite, epoch: int(0) })(v)),
  monitor: optional(
    record({
      bad: int(0),
      lrScale: is((v) => typeof v === 'number' && v > 0 && Number.isFinite(v), 'a number > 0'),
      stopped: optional(int(1)),
    }),
  ),
  history: list(EPOCH_LOG),
  stepsPerEpoch: optional(int(1)),
  lastBatch: optional(is((v) => v === 'train' || v === 'drop', 'train or drop')),
  model: optional(is((v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v), 'a SHA-256 in hex')),
  data: optional(
    record({
      images: int(1),
      hash: is((v) => typeof v === 'string', 'a string'),
      validation: optional(
        record({
          set: is((v) => VALIDATION_SETS.includes(v as string), 'none, last, random, test or file'),
          images: int(0),
          hash: is((v) => typeof v === 'string', 'a string'),
        }),
      ),
    }),
  ),
  settings: optional(record(Object.fromEntries(KEPT_SETTINGS.map((k) => [k, setting])))),
  epochs: optional(int(1)),
  partial: optional(
    record({ lossSum: finite, correct: int(0), seconds: is((v) => typeof v === 'number' && v >= 0, 'seconds ≥ 0') }),
  ),
};

/** state.json's text as a CheckpointState, or a DataError naming the file and the first bad field. */
export function parseState(text: string, file: string): CheckpointState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${file}: unreadable (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new DataError(`${file}: unreadable (not a JSON object)`);
  const o = raw as Record<string, unknown>;
  for (const [key, check] of Object.entries(FIELDS)) {
    const bad = check(o[key]);
    if (bad) throw new DataError(`${file}: "${key}"${bad.startsWith('.') || bad.startsWith('[') ? '' : ' '}${bad}`);
  }
  const s = o as unknown as CheckpointState;
  s.history.forEach((h, i) => {
    if (h.epoch !== i + 1) throw new DataError(`${file}: "history"[${i}] is for epoch ${h.epoch}, not ${i + 1}`);
  });
  if (s.history.length !== s.epoch)
    throw new DataError(`${file}: "epoch" is ${s.epoch} but the history holds ${s.history.length} epochs`);
  if (s.stepsPerEpoch !== undefined) checkPosition(s, s.stepsPerEpoch, file);
  return s;
}

/**
 * The step must lie within the epoch after the completed ones: a checkpoint is written at an
 * epoch's end or on Ctrl-C.
 */
export function checkPosition(s: Pick<CheckpointState, 'epoch' | 'step'>, stepsPerEpoch: number, file: string): void {
  const first = s.epoch * stepsPerEpoch;
  if (s.step < first || s.step >= first + stepsPerEpoch) {
    throw new DataError(
      `${file}: step ${s.step} is not within epoch ${s.epoch + 1} ` +
        `(steps ${first}–${first + stepsPerEpoch - 1} at ${stepsPerEpoch} steps an epoch)`,
    );
  }
}
