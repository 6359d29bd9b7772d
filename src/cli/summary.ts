// `fmgpu summary model.net [--cost DEVICE] [--fusions]`: the Keras-style table with the multiply-adds
// per image, with --cost the training images/s the cost model predicts on a GPU, with --fusions the
// chains of ops the planner runs as one kernel in a training step. No GPU is used.
import { parseNet, shapeSize, summarize, type ModelIR } from '../../dsl/index.ts';
import { NUM_CLASSES } from '../data/classes.ts';
import { predictStep, type StepCost } from '../gpu/cost.ts';
import { profileLimits, type DeviceProfile } from '../gpu/profile.ts';
import { installGlobals } from '../node/gpu.ts';
import { loadProfile, profileNames } from '../node/profiles.ts';
import { deviceLines, planTrainStep, fusionLines } from '../train/step-plan.ts';
import { parseArgs, UsageError, type FlagSpec } from './args.ts';
import { readSource } from './common.ts';
import type { Out } from './progress.ts';
import { GpuError, ShapeError } from '../errors.ts';

export const SUMMARY_FLAGS: Record<string, FlagSpec> = {
  cost: {
    type: 'string',
    meta: 'DEVICE',
    help: `also the training images/s the cost model predicts on a GPU (${profileNames().join(', ')}): a prediction`,
  },
  batch: { type: 'int', min: 1, max: 65535, meta: 'N', help: "the batch size for --cost (default: the file's)" },
  fusions: {
    type: 'bool',
    help:
      'also the fused kernels of a training step and of inference: one line per kernel, the layers and ops it joins ' +
      '(with --cost, also what that device plans: where it gathers the batch, its GEMM pairs, its batch norms ' +
      'taking channels whole…)',
  },
};

export function summary(args: readonly string[], out: Out): number {
  const { flags, positional: files } = parseArgs(args, SUMMARY_FLAGS);
  const [file] = files;
  if (file === undefined) throw new UsageError('summary needs a model file: fmgpu summary model.net');
  if (files.length > 1) throw new UsageError(`summary takes one file, not ${files.length}`);
  if (flags.batch !== undefined && flags.cost === undefined) throw new UsageError('--batch goes with --cost DEVICE');
  // A model file alone: any class count (train checks it against the data's).
  const ir = parseNet(readSource(file), file, { classes: null });
  // Every input is checked before anything is printed: the device profile too, and the plan on it.
  const profile = flags.cost === undefined ? null : loadProfile(String(flags.cost)).profile;
  const batch = Number(flags.batch ?? ir.train.batch);
  const planned = profile ? { profile, step: plannedStep(ir, profile, batch, file) } : null;
  out.log(summarize(ir));
  // What train will check it against: the data's classes (Fashion-MNIST's 10 without --data).
  const outputs = shapeSize(ir.output);
  if (outputs !== NUM_CLASSES)
    out.log(
      `note: the network ends in ${outputs} outputs: it trains on data of ${outputs} classes ` +
        `(Fashion-MNIST, the default data, has ${NUM_CLASSES})`,
    );
  if (planned) out.log(costLine(planned.profile, predictStep(planned.step, batch, planned.profile), batch));
  if (flags.fusions === true) out.log(fusionLines(ir).join('\n'));
  // With a device, where its plan gathers the batch and the GEMMs it runs side by side (they depend on the
  // device and the batch).
  if (flags.fusions === true && planned) out.log(deviceLines(planned.step, batch).join('\n'));
  return 0;
}

/** The training step planned on a device profile; refused (exit 2) where the model exceeds the profile's limits. */
function plannedStep(ir: ModelIR, profile: DeviceProfile, batch: number, file: string) {
  installGlobals(); // GPUBufferUsage, which planning reads
  try {
    return planTrainStep(ir, batch, profileLimits(profile));
  } catch (e) {
    if (!(e instanceof GpuError || e instanceof ShapeError)) throw e;
    const why = e.message.replace(/\bthe adapter\b|\bthis adapter\b/g, `${profile.name}`);
    throw new UsageError(`${file} at batch ${batch} does not fit ${profile.name}: ${why}`);
  }
}

/** `Cost model, h100: 34,290 training images/s at batch 64, 53 dispatches a step (a prediction, …)`. */
function costLine(profile: DeviceProfile, cost: StepCost, batch: number): string {
  const images = Math.round(cost.imagesPerSecond).toLocaleString('en-US');
  return (
    `Cost model, ${profile.name}: ${images} training images/s at batch ${batch}, ` +
    `${cost.dispatches.length} dispatches a step (a prediction, not a measurement: bench/RESULTS.md)`
  );
}
