// The .net language: `parseNet(source, file)` turns a model file into a ModelIR or throws a
// DslError; `formatError` renders the error; `summarize` prints the Keras-style table.
import type { ModelIR } from './ir.ts';
import { DslError } from './errors.ts';
import { parseProgram } from './parser.ts';
import { check } from './checker.ts';

export * from './ir.ts';
export { DslError, formatError, escapeControl } from './errors.ts';
export { summarize, kerasShape, thousands } from './summary.ts';
export { TRAIN_KEYS, AUGMENT_KEYS, trainDefaults, AUGMENT_DEFAULTS, overrideTrain } from './options.ts';

/**
 * Parse and check a .net source. Throws DslError (the first error in source order: syntax and
 * ranges first, then shapes) and nothing else.
 */
export function parseNet(source: string, file = 'model.net'): ModelIR {
  return check(parseProgram(source, file), source, file);
}

/** The same, as a result: for callers that would rather branch than catch. */
export function tryParseNet(
  source: string,
  file = 'model.net',
): { ok: true; ir: ModelIR } | { ok: false; error: DslError } {
  try {
    return { ok: true, ir: parseNet(source, file) };
  } catch (e) {
    if (e instanceof DslError) return { ok: false, error: e };
    throw e;
  }
}
