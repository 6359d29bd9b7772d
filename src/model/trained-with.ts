// What a weights file says of the data its network was trained on, beside its .net source: the class names in
// label order and the per-channel normalisation of its inputs. `fmgpu train` and the page write them, so that
// weights downloaded from the page, or a run's weights.safetensors uploaded to it, are read with the classes and
// the normalisation they were trained with (a run directory keeps them in run.json as well).
import { DataError } from '../errors.ts';
import type { Dataset } from '../data/dataset.ts';

export const CLASSES_KEY = 'fmgpu.classes';
export const NORMALIZE_KEY = 'fmgpu.normalize';

export interface TrainedWith {
  /** The class names in label order. */
  classes?: readonly string[];
  /** How pixels became the network's input (absent: pixel / 255). */
  normalize?: NonNullable<Dataset['normalize']>;
}

/** The metadata entries that record `t` (none for what it leaves out). */
export function trainedWithMetadata(t: TrainedWith): Record<string, string> {
  return {
    ...(t.classes ? { [CLASSES_KEY]: JSON.stringify(t.classes) } : {}),
    ...(t.normalize ? { [NORMALIZE_KEY]: JSON.stringify(t.normalize) } : {}),
  };
}

/** What a weights file's metadata records; an entry that is not what fmgpu writes is refused, naming `file`. */
export function trainedWith(metadata: Record<string, string>, file: string): TrainedWith {
  const read = (key: string, ok: (v: unknown) => boolean, what: string): unknown => {
    const text = metadata[key];
    if (text === undefined) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      v = undefined;
    }
    if (!ok(v)) throw new DataError(`${file}: metadata "${key}" is not ${what}`);
    return v;
  };
  const names = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === 'string');
  const numbers = (v: unknown, ok: (x: number) => boolean): boolean =>
    (typeof v === 'number' && ok(v)) ||
    (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && ok(x)));
  const norm = (v: unknown): boolean => {
    const n = v as { mean?: unknown; std?: unknown } | null;
    return (
      typeof n === 'object' &&
      n !== null &&
      numbers(n.mean, Number.isFinite) &&
      numbers(n.std, (x) => Number.isFinite(x) && x > 0)
    );
  };
  const classes = read(CLASSES_KEY, names, 'a list of class names') as string[] | undefined;
  const normalize = read(NORMALIZE_KEY, norm, 'a mean and a std > 0 per channel') as TrainedWith['normalize'];
  return { ...(classes ? { classes } : {}), ...(normalize ? { normalize } : {}) };
}
