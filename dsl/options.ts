// Value ranges for every option, the `train` and `augment` keys with their defaults, and the one
// function that checks a written value against its range (the parser and CLI overrides share it).
import type { AugmentConfig, AugmentKey, AugmentValues, TrainConfig, TrainKey, TrainValues } from './ir.ts';
import { suggest } from './errors.ts';
import { elsewhere } from './keras.ts';

export type ValueSpec =
  | { type: 'int'; min: number; max?: number }
  | { type: 'num'; min: number; max?: number; minOpen?: boolean; maxOpen?: boolean; words?: readonly string[] }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly [string, ...string[]] };

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string; suggestion?: string };

const INT_TEXT = /^-?\d+$/;

/** How a range reads in messages: `a whole number from 1 to 7`, `a number in [0, 1)`. */
export function rangeText(spec: ValueSpec): string {
  switch (spec.type) {
    case 'int':
      if (spec.max === undefined) return `a whole number ≥ ${spec.min}`;
      return `a whole number from ${spec.min} to ${spec.max}`;
    case 'num': {
      const or = spec.words ? spec.words.map((w) => ` or ${w}`).join('') : '';
      if (spec.max === undefined) return `a number ${spec.minOpen ? '>' : '≥'} ${spec.min}${or}`;
      return `a number in ${spec.minOpen ? '(' : '['}${spec.min}, ${spec.max}${spec.maxOpen ? ')' : ']'}${or}`;
    }
    case 'bool':
      return 'true or false';
    case 'enum':
      return spec.values.length === 1
        ? spec.values[0]
        : `${spec.values.slice(0, -1).join(', ')} or ${spec.values.at(-1)}`;
    default:
      return spec satisfies never;
  }
}

/**
 * Check one written value. `text` is the token's text, `isNumber` whether it lexed as a number,
 * `what` names it in the message, `found` is how the token is quoted.
 */
export function checkValue(
  spec: ValueSpec,
  text: string,
  isNumber: boolean,
  what: string,
  found: string,
): Checked<number | boolean | string> {
  const fail = (suggestion?: string): Checked<never> => ({
    ok: false,
    message: `expected ${rangeText(spec)} for ${what} but found ${found}`,
    suggestion,
  });
  switch (spec.type) {
    case 'int': {
      const v = Number(text);
      if (
        !isNumber ||
        !INT_TEXT.test(text) ||
        !Number.isSafeInteger(v) ||
        v < spec.min ||
        (spec.max !== undefined && v > spec.max)
      )
        return fail();
      return { ok: true, value: v };
    }
    case 'num': {
      if (!isNumber && spec.words?.includes(text)) return { ok: true, value: text };
      const v = Number(text);
      if (!isNumber && spec.words) return fail(suggest(text, spec.words));
      if (!isNumber || !Number.isFinite(v)) return fail();
      if (spec.minOpen ? v <= spec.min : v < spec.min) return fail();
      if (spec.max !== undefined && (spec.maxOpen ? v >= spec.max : v > spec.max)) return fail();
      return { ok: true, value: v };
    }
    case 'bool':
      if (!isNumber && (text === 'true' || text === 'false')) return { ok: true, value: text === 'true' };
      return fail(isNumber ? undefined : suggest(text, ['true', 'false']));
    case 'enum':
      if (!isNumber && spec.values.includes(text)) return { ok: true, value: text };
      return fail(isNumber ? undefined : suggest(text, spec.values));
    default:
      return spec satisfies never;
  }
}

interface KeySpec<F> {
  field: F;
  spec: ValueSpec;
}

const unit = { type: 'num', min: 0, max: 1, maxOpen: true } as const;

/** `train` keys as written in files (and as CLI flags), with their fields and ranges. */
export const TRAIN_KEYS: Readonly<Record<string, KeySpec<TrainKey>>> = {
  epochs: { field: 'epochs', spec: { type: 'int', min: 1 } },
  batch: { field: 'batch', spec: { type: 'int', min: 1 } },
  optimizer: { field: 'optimizer', spec: { type: 'enum', values: ['adam', 'adamw', 'sgd'] } },
  lr: { field: 'lr', spec: { type: 'num', min: 0, minOpen: true } },
  momentum: { field: 'momentum', spec: unit },
  nesterov: { field: 'nesterov', spec: { type: 'bool' } },
  weight_decay: { field: 'weightDecay', spec: { type: 'num', min: 0 } },
  validation: { field: 'validation', spec: { ...unit, words: ['test'] } },
  split: { field: 'split', spec: { type: 'enum', values: ['auto', 'last', 'random'] } },
  seed: { field: 'seed', spec: { type: 'int', min: 0, max: 4294967295 } },
  early_stop: { field: 'earlyStop', spec: { type: 'int', min: 0 } },
  label_smoothing: { field: 'labelSmoothing', spec: unit },
  schedule: { field: 'schedule', spec: { type: 'enum', values: ['constant', 'cosine', 'onecycle', 'plateau'] } },
  ema: { field: 'ema', spec: unit },
  tta: { field: 'tta', spec: { type: 'bool' } },
};

export const AUGMENT_KEYS: Readonly<Record<string, KeySpec<AugmentKey>>> = {
  shift: { field: 'shift', spec: { type: 'int', min: 0, max: 8 } },
  flip: { field: 'flip', spec: { type: 'bool' } },
  rotate: { field: 'rotate', spec: { type: 'num', min: 0, max: 45 } },
  zoom: { field: 'zoom', spec: { type: 'num', min: 0, max: 0.5 } },
  erase: { field: 'erase', spec: { type: 'num', min: 0, max: 1 } },
};

/** Keras's defaults where Keras has one (Adam at 0.001, batch 32, AdamW's weight decay 0.004). */
export function trainDefaults(optimizer: TrainValues['optimizer'] = 'adam'): TrainValues {
  return {
    epochs: 10,
    batch: 32,
    optimizer,
    lr: 0.001,
    momentum: 0,
    nesterov: false,
    weightDecay: optimizer === 'adamw' ? 0.004 : 0,
    validation: 0,
    split: 'auto',
    seed: 0,
    earlyStop: 0,
    labelSmoothing: 0,
    schedule: 'constant',
    ema: 0,
    tta: false,
  };
}

export const AUGMENT_DEFAULTS: Readonly<AugmentValues> = { shift: 0, flip: false, rotate: 0, zoom: 0, erase: 0 };

/** Defaults filled around the keys that were set. */
export function resolveTrain(set: Partial<TrainValues>): TrainConfig {
  const explicit = (Object.keys(set) as TrainKey[]).filter((k) => set[k] !== undefined);
  return { ...trainDefaults(set.optimizer), ...set, explicit } as TrainConfig;
}

export function resolveAugment(set: Partial<AugmentValues>): AugmentConfig {
  const explicit = (Object.keys(set) as AugmentKey[]).filter((k) => set[k] !== undefined);
  return { ...AUGMENT_DEFAULTS, ...set, explicit } as AugmentConfig;
}

/** Settings that contradict each other: [the key to blame, the message]. */
export function trainConflicts(t: TrainValues): [TrainKey, string][] {
  const out: [TrainKey, string][] = [];
  if (t.optimizer !== 'sgd' && t.momentum !== 0)
    out.push(['momentum', `momentum applies only to optimizer=sgd but the optimizer is ${t.optimizer}`]);
  if (t.optimizer !== 'sgd' && t.nesterov)
    out.push(['nesterov', `nesterov applies only to optimizer=sgd but the optimizer is ${t.optimizer}`]);
  if (t.split !== 'auto' && !(typeof t.validation === 'number' && t.validation > 0))
    out.push(['split', `split applies only to a validation fraction but validation is ${t.validation}`]);
  return out;
}

/**
 * Apply one `key=value` override (a CLI flag such as `--lr 0.01`, keys as in files) to a resolved
 * config; unset keys keep following their defaults (e.g. AdamW's weight decay).
 */
export function overrideTrain(
  config: TrainConfig,
  key: string,
  text: string,
): { ok: true; config: TrainConfig } | { ok: false; message: string } {
  const k = TRAIN_KEYS[key];
  if (!Object.hasOwn(TRAIN_KEYS, key) || !k) {
    const s = suggest(key, Object.keys(TRAIN_KEYS));
    const message = elsewhere(`unknown train option ${JSON.stringify(key)}`, key);
    return { ok: false, message: `${message}${s ? ` (did you mean "${s}"?)` : ''}` };
  }
  const isNumber = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(text);
  const v = checkValue(k.spec, text, isNumber, key, JSON.stringify(text));
  if (!v.ok) return { ok: false, message: v.message + (v.suggestion ? ` (did you mean "${v.suggestion}"?)` : '') };
  const set: Partial<TrainValues> = {};
  for (const e of config.explicit) (set as Record<string, unknown>)[e] = config[e];
  (set as Record<string, unknown>)[k.field] = v.value;
  const next = resolveTrain(set);
  const conflict = trainConflicts(next)[0];
  return conflict ? { ok: false, message: conflict[1] } : { ok: true, config: next };
}
