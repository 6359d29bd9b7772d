// Typed errors. Each carries a one-line, user-facing message; callers print `message` and exit.
// The base, FmgpuError, is the language's (dsl/errors.ts, beside DslError): the language imports
// nothing from the engine, and the engine's errors extend it from here.
import { FmgpuError } from '../dsl/errors.ts';

export { FmgpuError };

/** A flag, argument or file the user gave that cannot be used as given. */
export class UsageError extends FmgpuError {
  override name = 'UsageError';
}

/** No WebGPU adapter, a validation error, device loss, out of memory. */
export class GpuError extends FmgpuError {
  override name = 'GpuError';
}

/** Tensor shapes that do not fit an op or a plan. */
export class ShapeError extends FmgpuError {
  override name = 'ShapeError';
}

/** A file that could not be written (a full disk, a quota, a folder gone): named, nothing left half-written. */
export class WriteError extends FmgpuError {
  override name = 'WriteError';
}

/** Dataset, weights or image bytes that are missing or malformed. */
export class DataError extends FmgpuError {
  override name = 'DataError';
}
