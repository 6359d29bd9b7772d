// The trainer: a model's weights and training state on the GPU, and what runs on them. fit trains
// (plans built once per batch size, steps recorded many to a submit, see fit.ts), with a Monitor
// for early stopping, the plateau schedule and the best weights; evaluate / probabilities /
// predict / features run inference plans (inference.ts). The parts live beside it: plans.ts,
// ema.ts, schedule.ts (rates), optimizer.ts, monitor.ts, fit-options.ts.
import type { ModelIR } from '../../dsl/ir.ts';
import type { Dispatch, Gpu } from '../gpu/runtime.ts';
import { buildGraph, fittingBatch } from '../model/build.ts';
import { ParamStore } from '../model/params.ts';
import type { NamedTensor } from '../model/safetensors.ts';
import { uploadDataset, type GpuDataset } from '../data/batch.ts';
import type { Dataset } from '../data/dataset.ts';
import { matrix } from '../ops/geometry.ts';
import { hasAverages, OptimizerState, type OptimizerConfig } from './optimizer.ts';
import { LearningRates, lrTable } from './schedule.ts';
import { metricsFromProbabilities } from './metrics.ts';
import { WeightAverage } from './ema.ts';
import { Monitor } from './monitor.ts';
import { epochShape, monitorOptions, type EpochLog, type FitOptions } from './fit-options.ts';
import { trainEpoch, type EpochPlan, type EpochSums } from './fit.ts';
import { Inference, type EvalResult } from './inference.ts';
import {
  buildTrainPlan,
  InferencePlans,
  releaseTrainPlan,
  trainPlanKey,
  type StepSettings,
  type TrainPlan,
} from './plans.ts';

export { DivergedError } from './fit.ts';
export { fitOptions, type EpochLog, type FitEnd, type FitOptions, type Progress } from './fit-options.ts';
export type { EvalResult } from './inference.ts';
export { Monitor, type MonitorState } from './monitor.ts';

/** A fit's fixed facts: its plan, where it starts, and the pace of its epochs. */
interface FitRun {
  plan: TrainPlan;
  startStep: number;
  start: number;
  pace: Omit<EpochPlan, 'epoch' | 'first'>;
}

export class Trainer {
  readonly params: ParamStore;
  /** u32 word 0: completed training steps; the gather and the optimizer read it on the GPU. */
  readonly counter: GPUBuffer;
  /** The loss sum (f32) and correct count (u32) that every plan accumulates into. */
  readonly stats: GPUBuffer;
  /** The model's class count: the width of its output. */
  readonly classes: number;
  optimizer: OptimizerState | null = null;
  private readonly rates: LearningRates;
  private ema: WeightAverage | null = null;
  private cachedTrain: TrainPlan | null = null;
  private readonly plans: InferencePlans;
  private readonly inference: Inference;
  private readonly uploaded = new WeakMap<Dataset, GpuDataset>();
  private readonly uploads: GpuDataset[] = [];
  private stepsPerSubmit = 1;
  private evalChunkSize = 0;

  constructor(
    readonly gpu: Gpu,
    readonly ir: ModelIR,
    readonly seed = 0,
  ) {
    const built = buildGraph(ir, 1, { seed });
    this.classes = matrix(built.logits.shape, 'the logits')[1];
    this.params = new ParamStore(gpu, built.params);
    this.params.initialise(seed);
    this.counter = gpu.alloc(16, 'step counter');
    gpu.write(this.counter, new Uint32Array(4));
    this.stats = gpu.alloc(16, 'loss/accuracy accumulators');
    this.rates = new LearningRates(gpu);
    this.plans = new InferencePlans(gpu, ir, seed, this);
    this.inference = new Inference(gpu, this.plans, this.stats, this.classes);
  }

  /** The global step count (completed training steps). */
  async step(): Promise<number> {
    return (await this.gpu.readU32(this.counter, 1))[0]!;
  }
  setStep(step: number): void {
    this.gpu.write(this.counter, new Uint32Array([step, 0, 0, 0]));
  }

  /**
   * Trains for the epochs from `initialStep` (or `initialEpoch`) to `epochs`; returns their logs.
   * After every epoch the monitor judges it (before onEpoch, so that a checkpoint written there
   * holds the verdict). A fit that runs its course ends with the averaged weights (ema), then the
   * best ones (restoreBest: with ema, the best epoch's averages, the weights its validation scored);
   * an interrupted one (shouldStop) leaves the live weights. An epoch's last n mod batch images are
   * trained as a smaller step of their own unless `lastBatch` is `drop` (fit.ts, plans.ts TailPlan).
   */
  async fit(train: Dataset, val: Dataset | null, o: FitOptions): Promise<EpochLog[]> {
    const monitor = o.monitor ?? new Monitor(monitorOptions(o));
    const run = this.startFit(train, o, monitor.lrScale);
    const { stepsPerEpoch } = run.pace;
    const history: EpochLog[] = [];
    let interrupted = false;
    try {
      // A resumed run that early stopping ended trains no further (unless its patience grew).
      for (let epoch = run.start; epoch < o.epochs && !monitor.halted; epoch++) {
        const first = epoch === run.start ? run.startStep - run.start * stepsPerEpoch : 0;
        const before = first > 0 && o.partial?.step === run.startStep ? o.partial : undefined;
        const sums = await trainEpoch(this.gpu, run.plan, this.stats, { ...run.pace, epoch, first, before }, o);
        const log = await this.epochLog(sums, epoch, stepsPerEpoch, val, o);
        history.push(log);
        interrupted = sums.interrupted;
        if (interrupted) {
          // Sums that begin at the epoch's start (not at a resume that had none to carry) can be carried on.
          const { lossSum, correct, seconds } = sums;
          if (first === 0 || before)
            o.onInterrupt?.({ step: epoch * stepsPerEpoch + sums.done, lossSum, correct, seconds });
          break;
        }
        // The best weights kept are the ones scored: validation scores the averages (ema), the loss the live ones.
        const averaged = !!o.ema && log.val_loss !== undefined;
        const scored = () => (averaged ? this.withEmaWeights(() => this.params.read()) : this.params.read());
        const verdict = await monitor.observe(log, scored);
        if (verdict.rescaled) this.rates.rescale(monitor.lrScale);
        if ((await o.onEpoch?.(log)) === 'stop' || verdict.stop) break;
        // A stop asked for as the epoch ended: the epoch is whole, its checkpoint written (onEpoch); no more.
        interrupted = (await o.shouldStop?.()) === true;
        if (interrupted) break;
      }
    } finally {
      await this.gpu.sync().catch(() => undefined);
    }
    if (interrupted) return history;
    if (o.ema && this.ema) this.ema.apply();
    const restore = o.earlyStop?.restoreBest ? monitor.bestWeights : null;
    if (restore) this.params.load(restore);
    o.onEnd?.({
      stopped: monitor.stopped,
      best: monitor.best?.epoch ?? null,
      restored: restore ? (monitor.best?.epoch ?? null) : null,
    });
    return history;
  }

  /** What a fit sets up before its first step: optimizer, rates, averages, plan and position. */
  private startFit(train: Dataset, o: FitOptions, lrScale: number): FitRun {
    const shape = epochShape(train.n, o.batch, o.lastBatch);
    const { batch, fullSteps, tail, stepsPerEpoch } = shape;
    this.optimizer ??= new OptimizerState(this.gpu, this.params, o.optimizer);
    this.rates.set(lrTable(o.schedule, o.lr, stepsPerEpoch * o.epochs), lrScale);
    if (o.ema && o.ema > 0) this.ema ??= new WeightAverage(this.gpu, this.params);
    const settings = { batch, fullSteps, tail, seed: o.seed, labelSmoothing: o.labelSmoothing, augment: o.augment };
    const plan = this.trainPlan(train, settings, o.ema ?? 0, this.optimizer);
    const perSubmit = Math.max(1, o.stepsPerSubmit ?? (this.gpu.adapter.cpu ? 8 : 50));
    this.stepsPerSubmit = perSubmit;
    const startStep = o.initialStep ?? (o.initialEpoch ?? 0) * stepsPerEpoch;
    this.setStep(startStep);
    const reportEvery = Math.max(perSubmit, o.progressEvery ?? 50);
    return {
      plan,
      startStep,
      start: Math.floor(startStep / stepsPerEpoch),
      pace: { seed: o.seed, ...shape, perSubmit, reportEvery },
    };
  }

  /** An epoch's log: its sums as means, the rate at its last step, and the validation metrics. */
  private async epochLog(
    s: EpochSums,
    epoch: number,
    stepsPerEpoch: number,
    val: Dataset | null,
    o: FitOptions,
  ): Promise<EpochLog> {
    const log: EpochLog = {
      epoch: epoch + 1,
      seconds: s.seconds,
      loss: s.lossSum / Math.max(1, s.seen),
      accuracy: s.correct / Math.max(1, s.seen),
      lr: this.rates.at((epoch + 1) * stepsPerEpoch - 1),
    };
    if (val && val.n > 0) {
      const v = o.ema ? await this.withEmaWeights(() => this.evaluate(val)) : await this.evaluate(val);
      log.val_loss = v.loss;
      log.val_accuracy = v.accuracy;
    }
    return log;
  }

  /** The training plan for this data and these settings: kept while they stay the same. */
  private trainPlan(train: Dataset, s: StepSettings, ema: number, optimizer: OptimizerState): TrainPlan {
    const key = trainPlanKey(s, train.n, ema);
    const data = this.data(train);
    const rates = this.rates.buffer;
    const t = this.cachedTrain;
    if (t && t.key === key && t.data === data && t.rates === rates) return t;
    this.releaseTrainPlan();
    const averages = ema > 0 && this.ema ? { averages: this.ema.averages, decay: ema } : undefined;
    this.cachedTrain = buildTrainPlan(this.gpu, this.ir, { ...this.shared(), data, rates }, s, {
      key,
      update: (p, step) => optimizer.updates(this.params, p, step, averages),
    });
    return this.cachedTrain;
  }

  private releaseTrainPlan(): void {
    if (this.cachedTrain) releaseTrainPlan(this.gpu, this.cachedTrain);
    this.cachedTrain = null;
  }

  private shared(): { params: ParamStore; counter: GPUBuffer; stats: GPUBuffer } {
    return { params: this.params, counter: this.counter, stats: this.stats };
  }

  /** What the current training plan costs: for benchmarks and logs. */
  planInfo(): { dispatchesPerStep: number; submitsPerStep: number; plannedBytes: number } {
    const t = this.cachedTrain;
    return {
      dispatchesPerStep: t?.step.length ?? 0,
      submitsPerStep: 1 / this.stepsPerSubmit,
      plannedBytes: t?.plan.plannedBytes ?? 0,
    };
  }

  /** The dispatches of one training step of the current plan, in order: for profiling. */
  stepDispatches(): readonly Dispatch[] {
    return this.cachedTrain?.step ?? [];
  }

  /** The dataset on the GPU, uploaded on first use and kept while the Dataset object lives. */
  private data(ds: Dataset): GpuDataset {
    let d = this.uploaded.get(ds);
    if (!d) {
      d = uploadDataset(this.gpu, ds);
      this.uploaded.set(ds, d);
      this.uploads.push(d);
    }
    return d;
  }

  /** Runs `fn` with the moving averages standing in for the trainable weights. */
  async withEmaWeights<T>(fn: () => Promise<T>): Promise<T> {
    return this.ema ? this.ema.standIn(fn) : fn();
  }

  /** Creates the optimizer's state (before loading a checkpoint into it). */
  prepareOptimizer(config: OptimizerConfig): void {
    this.optimizer ??= new OptimizerState(this.gpu, this.params, config);
    if (this.optimizer.config.name !== config.name)
      throw new Error(`optimizer is ${this.optimizer.config.name}, not ${config.name}`);
  }

  /** Optimizer slots and weight averages, by name (`<param>.m`, `<param>.ema`, …), for checkpoints. */
  async stateTensors(): Promise<Map<string, NamedTensor>> {
    const out = new Map<string, NamedTensor>(await this.optimizer?.tensors());
    for (const [name, t] of (await this.ema?.tensors()) ?? []) out.set(name, t);
    return out;
  }

  loadStateTensors(tensors: ReadonlyMap<string, NamedTensor>, file = 'optimizer.safetensors'): void {
    this.optimizer?.load(tensors, file);
    if (hasAverages(tensors)) {
      this.ema ??= new WeightAverage(this.gpu, this.params);
      this.ema.load(tensors, file);
    }
  }

  /** Images per evaluation/prediction chunk: 1000, or fewer where that would not bind (fittingBatch). */
  get evalChunk(): number {
    if (this.evalChunkSize === 0) this.evalChunkSize = fittingBatch(this.ir, 1000, this.gpu.limits);
    return this.evalChunkSize;
  }

  /**
   * Test loss (mean cross-entropy, no smoothing), accuracy and the confusion matrix over every sample.
   * With `tta`, of the class probabilities averaged over each image and its mirror image.
   */
  async evaluate(ds: Dataset, maxBatch = this.evalChunk, o: { tta?: boolean } = {}): Promise<EvalResult> {
    if (!o.tta) return this.inference.evaluate(this.data(ds), maxBatch);
    const p = await this.probabilities(ds, { tta: true, maxBatch });
    return { ...metricsFromProbabilities(p, ds.labels, this.classes), n: ds.n };
  }

  /**
   * Class probabilities [n, classes] of every sample of a dataset, gathered on the GPU as evaluation
   * does; with `tta`, the mean of the probabilities for each image and its mirror image.
   */
  probabilities(ds: Dataset, o: { tta?: boolean; maxBatch?: number } = {}): Promise<Float32Array> {
    return this.inference.probabilities(this.data(ds), o.maxBatch ?? this.evalChunk, !!o.tta);
  }

  /**
   * Class probabilities [n, classes] for images already normalised to [0, 1], n×H×W×C in NCHW order; with
   * `tta`, the mean over each image and its mirror image, as `probabilities` makes it.
   */
  predict(images: Float32Array, n: number, maxBatch = this.evalChunk, tta = false): Promise<Float32Array> {
    return this.inference.predict(tta ? [images, mirrored(images, this.ir.input.w)] : [images], n, maxBatch);
  }

  /**
   * Penultimate features [n, F] (the input of the last dense layer; the logits when the model has
   * none) for images normalised to [0, 1], n×H×W×C in NCHW order: for projections such as PCA.
   */
  features(images: Float32Array, n: number, maxBatch = this.evalChunk): Promise<Float32Array> {
    return this.inference.features(images, n, maxBatch);
  }

  release(): void {
    this.releaseTrainPlan();
    this.plans.release();
    for (const d of this.uploads) d.release();
    this.optimizer?.release();
    this.ema?.release();
    this.ema = null;
    this.rates.release();
    this.params.release();
    this.gpu.release(this.counter);
    this.gpu.release(this.stats);
  }
}

/** Images whose rows are `width` long, each row reversed (a left–right mirror image). */
function mirrored(x: Float32Array, width: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let row = 0; row < x.length; row += width)
    for (let i = 0; i < width; i++) out[row + i] = x[row + width - 1 - i]!;
  return out;
}
