// A fault in the middle of `fmgpu train`, told in one line: what happened, at which step, and what
// is kept on disk. A loss that is NaN from the very start is traced to the network when its
// activations or gradients already overflow at the weights it started from.
import { shellWord } from '../util/shell.ts';
import type { ModelIR } from '../../dsl/index.ts';
import type { Dataset } from '../data/dataset.ts';
import { FmgpuError, GpuError, WriteError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { NamedTensor } from '../model/safetensors.ts';
import { firstNonFinite, firstNonFiniteGradient, type NonFinite, type StepFault } from '../train/diagnose.ts';
import { DivergedError, Trainer } from '../train/trainer.ts';

/** The checkpoint on disk: the epochs it completed and its step. */
export type Kept = { epoch: number; step: number } | null;

export interface Overflow {
  at: NonFinite | StepFault;
  /** Which weights: "at initialisation", "at the checkpoint's weights", … */
  from: string;
}

/**
 * Where the weights the run started from already overflow on the first training images (null when
 * they do not): a loss that is NaN from the start is then the network's doing, not the rate's.
 * First an inference forward pass (an activation that overflows); when that is finite, one
 * training step without its update (a loss, a gradient, or a gradient whose square overflows).
 */
export async function overflowAtStart(
  gpu: Gpu,
  ir: ModelIR,
  train: Dataset,
  start: { weights: ReadonlyMap<string, NamedTensor> | null; from: string },
): Promise<Overflow | null> {
  const t = new Trainer(gpu, ir, ir.train.seed);
  try {
    if (start.weights) t.params.load(start.weights);
    const at = (await firstNonFinite(t, train, 4)) ?? (await firstNonFiniteGradient(t, train, 4));
    return at && { at, from: start.from };
  } finally {
    t.release();
  }
}

/** A magnitude in a message: 2.6e22, 1e26. */
const magnitude = (x: number): string => Math.abs(x).toExponential(1).replace(/\.0e/, 'e').replace('e+', 'e');

/** What overflowed first, for explainFault: "the activations overflow at initialisation: …". */
function overflowCause({ at, from }: Overflow): string {
  if (!('kind' in at))
    return (
      `the activations overflow ${from}: ${at.layer} (${at.op}) gives ${at.value} on the first training images, ` +
      'before any training step'
    );
  const reach = at.largest ? ` (the activations reach ${magnitude(at.largest.value)} at ${at.largest.layer})` : '';
  switch (at.kind) {
    case 'activation':
      return `the activations overflow ${from}: ${at.layer} (${at.op}) gives ${at.value} at the first training step`;
    case 'loss':
      return `the loss overflows ${from}: it is ${at.value} at the first training step${reach}`;
    case 'gradient':
      return (
        `the gradients overflow ${from}: the gradient of ${at.param} holds ${at.value} ` +
        `at the first training step${reach}`
      );
    case 'squared gradient': {
      const top =
        at.largestGradient && at.largestGradient.param !== at.param
          ? `the largest gradient is ${magnitude(at.largestGradient.value)}, of ${at.largestGradient.param}`
          : '';
      const activations = at.largest
        ? `the activations reach ${magnitude(at.largest.value)} at ${at.largest.layer}`
        : '';
      const notes = [top, activations].filter(Boolean).join('; ');
      return (
        `the gradients overflow ${from}: the gradient of ${at.param} reaches ${magnitude(at.value)} ` +
        `at the first training step, too large for its square to fit in f32${notes ? ` (${notes})` : ''}`
      );
    }
  }
}

/**
 * A fault mid-run in one line: what happened, at which step, and what is kept on disk. A diverged
 * loss, a lost device and a file that could not be written (a full disk); other errors pass as they are.
 */
export function explainFault(
  e: unknown,
  gpu: Gpu,
  run: { dir: string; kept: Kept; lastStep: number; lr: number; overflow: Overflow | null },
): unknown {
  const { dir, kept, overflow } = run;
  const where = kept
    ? `the checkpoint after epoch ${kept.epoch} (step ${kept.step}) in ${dir} is kept`
    : `no checkpoint was written to ${dir} yet`;
  if (e instanceof DivergedError && overflow) {
    const fix = 'the network needs normalisation (batchnorm) or fewer layers, not a lower learning rate';
    return new FmgpuError(`${overflowCause(overflow)}, so the loss became ${e.loss}: ${fix}; ${where}`, { cause: e });
  }
  if (e instanceof DivergedError) {
    const resume = kept ? `: resume it with fmgpu train --resume ${shellWord(dir)} and a lower --lr` : '';
    const what = `the loss became ${e.loss} at epoch ${e.epoch}, by step ${e.step}`;
    return new FmgpuError(`${what}: try a learning rate lower than --lr ${run.lr}; ${where}${resume}`, { cause: e });
  }
  if (e instanceof WriteError) {
    const resume = kept ? `: free space, then resume with fmgpu train --resume ${shellWord(dir)}` : '';
    return new WriteError(`${e.message}; ${where}${resume}`, { cause: e });
  }
  if (gpu.lost) {
    const what =
      e instanceof GpuError && e.message.startsWith('the GPU device was lost') ? e.message : 'the GPU device was lost';
    const resume = kept ? `: resume with fmgpu train --resume ${shellWord(dir)}` : '';
    return new GpuError(`${what} after step ${run.lastStep}; ${where}${resume}`, { cause: e });
  }
  return e;
}
