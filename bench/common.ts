// What the benchmarks share: command-line options, the slice of Fashion-MNIST a run
// trains on, and fmgpu's measurement (bench/train.ts alone, bench/peer_tfjs.ts beside its peer).
import type { Gpu } from '../src/gpu/runtime.ts';
import { adapterName } from '../src/gpu/device.ts';
import type { ModelIR } from '../dsl/index.ts';
import { subset, type Dataset } from '../src/data/dataset.ts';
import { Trainer } from '../src/train/trainer.ts';
import { optimizerConfig } from '../src/train/optimizer.ts';

/** `--name VALUE` from argv, or `dflt`. */
export function option(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

/** The command line every bench reads: `--name VALUE` options, the .net file given (default the reference network), --json. */
export function benchArgs(argv: readonly string[] = process.argv.slice(2)): {
  args: readonly string[];
  opt: (name: string, dflt: string) => string;
  file: string;
  json: boolean;
} {
  return {
    args: argv,
    opt: (name, dflt) => option(argv, name, dflt),
    file: argv.find((a) => a.endsWith('.net')) ?? 'examples/reference.net',
    json: argv.includes('--json'),
  };
}

/**
 * The first steps·batch training images (fewer steps when the set is smaller): every system
 * measured trains on exactly these, in whole batches.
 */
export function benchData(train: Dataset, steps: number, batch: number): Dataset {
  return subset(train, Math.min(steps, Math.floor(train.n / batch)) * batch);
}

export interface FmgpuTrainRow {
  bench: 'train';
  adapter: string;
  model: string;
  date: string;
  batch: number;
  steps: number;
  first_epoch_images_per_s: number;
  images_per_s: number;
  dispatches_per_step: number;
  submits_per_step: number;
  planned_bytes: number;
}

/**
 * fmgpu's Trainer on `data` (steps·batch images): two "epochs" of `steps` steps each, the first
 * reported apart because it pays for pipeline compilation.
 */
export async function measureFmgpu(
  gpu: Gpu,
  ir: ModelIR,
  model: string,
  data: Dataset,
  batch: number,
  date: string,
): Promise<FmgpuTrainRow> {
  const steps = Math.floor(data.n / batch);
  const t = new Trainer(gpu, ir, 1);
  try {
    const times: number[] = [];
    await t.fit(data, null, {
      epochs: 2,
      batch,
      lr: ir.train.lr,
      optimizer: optimizerConfig(ir.train),
      schedule: 'constant',
      labelSmoothing: 0,
      seed: 1,
      stepsPerSubmit: gpu.adapter.cpu ? 4 : 50,
      progressEvery: 1e9,
      onEpoch: (l) => void times.push(l.seconds),
    });
    const info = t.planInfo();
    return {
      bench: 'train',
      adapter: adapterName(gpu.adapter),
      model,
      date,
      batch,
      steps,
      first_epoch_images_per_s: Math.round((steps * batch) / times[0]!),
      images_per_s: Math.round((steps * batch) / times[1]!),
      dispatches_per_step: info.dispatchesPerStep,
      submits_per_step: info.submitsPerStep,
      planned_bytes: info.plannedBytes,
    };
  } finally {
    t.release();
  }
}

/** The table line for people: `fmgpu train batch=64: 47 images/s (first epoch 30), …`. */
export function fmgpuLine(row: FmgpuTrainRow): string {
  return `fmgpu train batch=${row.batch}: ${row.images_per_s.toLocaleString('en-US')} images/s (first epoch ${row.first_epoch_images_per_s.toLocaleString('en-US')}), ${row.dispatches_per_step} dispatches/step, ${row.submits_per_step.toFixed(3)} submits/step, planned ${(row.planned_bytes / 2 ** 20).toFixed(1)} MiB`;
}

export interface FmgpuInferRow {
  bench: 'infer';
  adapter: string;
  model: string;
  date: string;
  images: number;
  chunk: number;
  first_pass_images_per_s: number;
  images_per_s: number;
}

/**
 * Inference over `test` as `fmgpu eval` runs it (Trainer.evaluate: GPU gather, forward in the
 * largest chunks that fit, loss, accuracy and confusion accumulated on the GPU, one read-back): a
 * first pass that compiles the pipelines, then the mean of `reps` passes. The weights are the
 * initial ones: the speed does not depend on them.
 */
export async function measureInference(
  gpu: Gpu,
  ir: ModelIR,
  model: string,
  test: Dataset,
  date: string,
  reps: number,
): Promise<FmgpuInferRow> {
  const t = new Trainer(gpu, ir, 1);
  try {
    let t0 = performance.now();
    await t.evaluate(test);
    const first = (performance.now() - t0) / 1000;
    t0 = performance.now();
    for (let i = 0; i < reps; i++) await t.evaluate(test);
    const mean = (performance.now() - t0) / 1000 / reps;
    return {
      bench: 'infer',
      adapter: adapterName(gpu.adapter),
      model,
      date,
      images: test.n,
      chunk: Math.min(t.evalChunk, test.n),
      first_pass_images_per_s: Math.round(test.n / first),
      images_per_s: Math.round(test.n / mean),
    };
  } finally {
    t.release();
  }
}

/** The table line for people: `fmgpu infer: 1,234 images/s (10,000 test images in chunks of 1,000; first pass 987)`. */
export function inferLine(row: FmgpuInferRow): string {
  return `fmgpu infer: ${row.images_per_s.toLocaleString('en-US')} images/s (${row.images.toLocaleString('en-US')} test images in chunks of ${row.chunk.toLocaleString('en-US')}; first pass ${row.first_pass_images_per_s.toLocaleString('en-US')})`;
}
