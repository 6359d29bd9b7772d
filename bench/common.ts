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

/**
 * The command line every bench reads: `--name VALUE` options, the .net file given (default the
 * reference network), --json.
 */
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
  /** Steps timed (after the first epoch). */
  steps: number;
  /** Seconds the timed steps took. */
  seconds?: number;
  /** Steps of the first epoch, when it was a shorter warm-up (a time-bounded run). */
  warmup_steps?: number;
  first_epoch_images_per_s: number;
  images_per_s: number;
  dispatches_per_step: number;
  submits_per_step: number;
  planned_bytes: number;
}

/** How long a time-bounded measurement may take: bench/gpu-check.sh runs each part in a time box. */
export interface TimeBound {
  /** Seconds of training (or inference) to time, at most; the steps given stay the other bound. */
  seconds: number;
}

/**
 * A shouldStop for Trainer.fit that keeps at most one submit in flight (each call waits for the
 * submit before the last), counts the steps submitted, and stops once `seconds` have passed: the
 * time then bounds GPU work, not only what the CPU has queued.
 */
function boundedSteps(
  gpu: Gpu,
  seconds: number,
  stepsPerEpoch: number,
  perSubmit: number,
  maxSteps: number,
): { shouldStop: () => Promise<boolean>; steps: () => number } {
  const t0 = performance.now();
  let prev: Promise<void> | null = null;
  let inEpoch = 0,
    total = 0;
  return {
    shouldStop: async () => {
      const n = Math.min(perSubmit, stepsPerEpoch - inEpoch);
      inEpoch = inEpoch + n === stepsPerEpoch ? 0 : inEpoch + n;
      total += n;
      const mine = gpu.device.queue.onSubmittedWorkDone();
      if (prev) await prev;
      prev = mine;
      return total >= maxSteps || performance.now() - t0 > seconds * 1000;
    },
    steps: () => total,
  };
}

/**
 * fmgpu's Trainer on `data` (steps·batch images): two "epochs" of `steps` steps each, the first
 * reported apart because it pays for pipeline compilation. With a time bound: a first epoch of
 * a few steps (the warm-up, compilation included), then up to `steps` steps over `data`, epoch
 * after epoch, stopped once `bound.seconds` have passed.
 */
export async function measureFmgpu(
  gpu: Gpu,
  ir: ModelIR,
  model: string,
  data: Dataset,
  batch: number,
  date: string,
  bound?: TimeBound & { steps: number },
): Promise<FmgpuTrainRow> {
  const stepsPerEpoch = Math.floor(data.n / batch);
  const perSubmit = gpu.adapter.cpu ? 4 : 50;
  const t = new Trainer(gpu, ir, 1);
  const options = {
    batch,
    lr: ir.train.lr,
    optimizer: optimizerConfig(ir.train),
    schedule: 'constant' as const,
    labelSmoothing: 0,
    seed: 1,
    stepsPerSubmit: perSubmit,
    progressEvery: 1e9,
  };
  try {
    let first: { steps: number; seconds: number };
    let timed: { steps: number; seconds: number };
    let warmup: number | undefined;
    if (!bound) {
      const times: number[] = [];
      await t.fit(data, null, { ...options, epochs: 2, onEpoch: (l) => void times.push(l.seconds) });
      first = { steps: stepsPerEpoch, seconds: times[0]! };
      timed = { steps: stepsPerEpoch, seconds: times[1]! };
    } else {
      // Warm-up: a few small submits, so that a slow adapter still stops near its time bound.
      warmup = Math.min(stepsPerEpoch, 2 * Math.min(perSubmit, 10));
      const small = Math.min(perSubmit, 10);
      const w = boundedSteps(gpu, bound.seconds, warmup, small, warmup);
      const wl = await t.fit(benchData(data, warmup, batch), null, {
        ...options,
        stepsPerSubmit: small,
        epochs: 1,
        shouldStop: w.shouldStop,
      });
      first = { steps: w.steps(), seconds: wl.reduce((a, l) => a + l.seconds, 0) };
      const r = boundedSteps(gpu, bound.seconds, stepsPerEpoch, perSubmit, bound.steps);
      const logs = await t.fit(data, null, {
        ...options,
        epochs: Math.max(1, Math.ceil(bound.steps / stepsPerEpoch)),
        shouldStop: r.shouldStop,
      });
      timed = { steps: r.steps(), seconds: logs.reduce((a, l) => a + l.seconds, 0) };
    }
    const info = t.planInfo();
    return {
      bench: 'train',
      adapter: adapterName(gpu.adapter),
      model,
      date,
      batch,
      steps: timed.steps,
      ...(bound ? { seconds: +timed.seconds.toFixed(3), warmup_steps: warmup } : {}),
      first_epoch_images_per_s: Math.round((first.steps * batch) / first.seconds),
      images_per_s: Math.round((timed.steps * batch) / timed.seconds),
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
  const n = (x: number): string => x.toLocaleString('en-US');
  return (
    `fmgpu train batch=${row.batch}: ${n(row.images_per_s)} images/s ` +
    `(first epoch ${n(row.first_epoch_images_per_s)}), ${row.dispatches_per_step} dispatches/step, ` +
    `${row.submits_per_step.toFixed(3)} submits/step, ` +
    `planned ${(row.planned_bytes / 2 ** 20).toFixed(1)} MiB`
  );
}

export interface FmgpuInferRow {
  bench: 'infer';
  adapter: string;
  model: string;
  date: string;
  images: number;
  chunk: number;
  /** Passes timed. */
  reps?: number;
  first_pass_images_per_s: number;
  images_per_s: number;
}

/**
 * Inference over `test` as `fmgpu eval` runs it (Trainer.evaluate: GPU gather, forward in the
 * largest chunks that fit, loss, accuracy and confusion accumulated on the GPU, one read-back): a
 * first pass that compiles the pipelines, then the mean of `reps` passes (with a time bound: of
 * those that started inside it, at least one). The weights are the initial ones: the speed does not
 * depend on them.
 */
export async function measureInference(
  gpu: Gpu,
  ir: ModelIR,
  model: string,
  test: Dataset,
  date: string,
  reps: number,
  bound?: TimeBound,
): Promise<FmgpuInferRow> {
  const t = new Trainer(gpu, ir, 1);
  try {
    let t0 = performance.now();
    await t.evaluate(test);
    const first = (performance.now() - t0) / 1000;
    t0 = performance.now();
    let done = 0;
    while (done < reps && (done === 0 || !bound || performance.now() - t0 < bound.seconds * 1000)) {
      await t.evaluate(test);
      done++;
    }
    const mean = (performance.now() - t0) / 1000 / done;
    return {
      bench: 'infer',
      adapter: adapterName(gpu.adapter),
      model,
      date,
      images: test.n,
      chunk: Math.min(t.evalChunk, test.n),
      ...(bound ? { reps: done } : {}),
      first_pass_images_per_s: Math.round(test.n / first),
      images_per_s: Math.round(test.n / mean),
    };
  } finally {
    t.release();
  }
}

/** The table line for people: `fmgpu infer: 1,234 images/s (10,000 test images in chunks of 1,000; first pass 987)`. */
export function inferLine(row: FmgpuInferRow): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  return (
    `fmgpu infer: ${n(row.images_per_s)} images/s (${n(row.images)} test images in chunks of ${n(row.chunk)}; ` +
    `first pass ${n(row.first_pass_images_per_s)})`
  );
}
