// The .net language: `parseNet(source, file)` turns a model file into a ModelIR or throws a
// DslError; `formatError` renders the error; `summarize` prints the Keras-style table.
import type { ModelIR } from './ir.ts';
import { DslError } from './errors.ts';
import { parseProgram } from './parser.ts';
import { check, type CheckOptions } from './checker.ts';

export * from './ir.ts';
export { DslError, formatError, escapeControl } from './errors.ts';
export { summarize, kerasShape, thousands } from './summary.ts';
export { TRAIN_KEYS, AUGMENT_KEYS, trainDefaults, AUGMENT_DEFAULTS, overrideTrain } from './options.ts';
export { DEFAULT_CLASSES, DEFAULT_INPUT, type CheckOptions } from './checker.ts';

/**
 * Parse and check a .net source. Throws DslError (the first error in source order: syntax and
 * ranges first, then shapes) and nothing else. The network must end in `o.classes` outputs
 * (default: Fashion-MNIST's 10).
 */
export function parseNet(source: string, file = 'model.net', o: CheckOptions = {}): ModelIR {
  return check(parseProgram(source, file), source, file, o);
}

/** The same, as a result: for callers that would rather branch than catch. */
export function tryParseNet(
  source: string,
  file = 'model.net',
  o: CheckOptions = {},
): { ok: true; ir: ModelIR } | { ok: false; error: DslError } {
  try {
    return { ok: true, ir: parseNet(source, file, o) };
  } catch (e) {
    if (e instanceof DslError) return { ok: false, error: e };
    throw e;
  }
}
