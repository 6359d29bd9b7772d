// fit / evaluate / predict: plans built once per batch size, steps recorded many per submit,
// the host reads back only the loss and accuracy accumulators when it reports progress.
import type { ModelIR } from '../../dsl/ir.ts';
import { dispatchList, type Dispatch, type Gpu } from '../gpu/runtime.ts';
import { buildGraph, fittingBatch, type Built } from '../model/build.ts';
import { ParamStore } from '../model/params.ts';
import { plan, type Plan } from '../graph/plan.ts';
import { OptimizerState, type OptimizerConfig } from './optimizer.ts';
import { lrTable, type ScheduleName } from './schedule.ts';
import { metricsFromProbabilities } from './metrics.ts';
import { advanceCounter } from '../ops/optimizer.ts';
import { confusionAccumulate } from '../ops/reduce.ts';
import { softmax } from '../ops/softmax_xent.ts';
import { emaUpdate } from '../ops/elementwise.ts';
import {
  epochOrder,
  evalBatches,
  gatherEval,
  gatherTrain,
  uploadDataset,
  type AugmentParams,
  type GpuDataset,
} from '../data/batch.ts';
import type { Dataset } from '../data/dataset.ts';
import { DataError, FmgpuError } from '../errors.ts';
import type { NamedTensor } from '../model/safetensors.ts';

/** The loss summed so far in an epoch is NaN or ±Inf (read back as f32 bits, tested on the host). */
export class DivergedError extends FmgpuError {
  override name = 'DivergedError';
  constructor(
    readonly loss: number,
    readonly epoch: number,
    readonly step: number,
  ) {
    super(`the loss became ${loss} at epoch ${epoch}, by step ${step}: try a lower learning rate`);
  }
}

export interface FitOptions {
  epochs: number;
  batch: number;
  lr: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleName;
  labelSmoothing: number;
  seed: number;
  augment?: AugmentParams;
  /** Stop when the monitored validation metric has not improved for this many epochs (0: never). */
  earlyStop?: { patience: number; monitor: 'val_loss' | 'val_accuracy'; restoreBest: boolean };
  /** Steps recorded into one submit. */
  stepsPerSubmit?: number;
  /** Report progress every this many steps (rounded up to whole submits). */
  progressEvery?: number;
  onProgress?(p: Progress): void;
  /** Called after each epoch; return 'stop' to end training (Ctrl-C, a budget). */
  onEpoch?(log: EpochLog): undefined | 'stop' | Promise<undefined | 'stop'>;
  /** Polled between submits: true stops after the current submit (a page may await a pause). */
  shouldStop?(): boolean | Promise<boolean>;
  /** Epoch to start from (resume); the step counter and schedule continue from there. */
  initialEpoch?: number;
  /** Global step to start from (resume mid-epoch; wins over initialEpoch): the epoch's order is re-derived from the seed. */
  initialStep?: number;
  /** Early stopping's best monitored value so far (resume), in the monitor's direction (lower is better). */
  initialBest?: number;
  /** The weights that scored initialBest (resume): restored if early stopping ends the run without a better epoch. */
  initialBestWeights?: Weights;
  /** Epochs without improvement and the plateau schedule's learning-rate factor so far (resume). */
  initialMonitor?: MonitorState;
  /**
   * Decay of an exponential moving average of the trainable weights (0 or absent: off). As Keras's
   * use_ema: validation uses the averaged weights, and they replace the weights when fit ends.
   */
  ema?: number;
}

/** Early stopping's and the plateau schedule's memory, saved with a checkpoint so that resuming continues them. */
export interface MonitorState {
  /** Epochs since the monitored value last improved. */
  bad: number;
  /** Factor on the scheduled learning rate (halved by the plateau schedule). */
  lrScale: number;
}

type Weights = Awaited<ReturnType<ParamStore['read']>>;

export interface Progress {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSec: number;
}

export interface EpochLog {
  epoch: number;
  seconds: number;
  loss: number;
  accuracy: number;
  val_loss?: number;
  val_accuracy?: number;
  lr: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  /** Rows: true class; columns: predicted. */
  confusion: Uint32Array;
  n: number;
}

interface TrainPlan {
  built: Built;
  plan: Plan;
  batch: number;
  step: Dispatch[];
  data: GpuDataset;
  indices: GPUBuffer;
}

export class Trainer {
  readonly params: ParamStore;
  readonly counter: GPUBuffer;
  readonly stats: GPUBuffer;
  optimizer: OptimizerState | null = null;
  private lrBuffer: GPUBuffer | null = null;
  /** Moving averages of the trainable weights, and a place to keep the live weights while they stand in. */
  private ema: { avg: Map<string, GPUBuffer>; keep: Map<string, GPUBuffer> } | null = null;
  private readonly uploaded = new WeakMap<Dataset, GpuDataset>();
  private readonly uploads: GpuDataset[] = [];
  private readonly evalPlans = new Map<string, { built: Built; plan: Plan }>();

  constructor(
    readonly gpu: Gpu,
    readonly ir: ModelIR,
    readonly seed = 0,
  ) {
    const specs = buildGraph(ir, 1, { seed }).params;
    this.params = new ParamStore(gpu, specs);
    this.params.initialise(seed);
    this.counter = gpu.alloc(16, 'step counter');
    gpu.write(this.counter, new Uint32Array(4));
    this.stats = gpu.alloc(16, 'loss/accuracy accumulators');
  }

  /** The global step count (completed training steps). */
  async step(): Promise<number> {
    return (await this.gpu.readU32(this.counter, 1))[0]!;
  }
  setStep(step: number): void {
    this.gpu.write(this.counter, new Uint32Array([step, 0, 0, 0]));
  }

  private data(ds: Dataset): GpuDataset {
    let d = this.uploaded.get(ds);
    if (!d) {
      d = uploadDataset(this.gpu, ds);
      this.uploaded.set(ds, d);
      this.uploads.push(d);
    }
    return d;
  }

  private resetStats(): void {
    this.gpu.write(this.stats, new Uint32Array(4));
  }
  private async readStats(): Promise<{ lossSum: number; correct: number }> {
    const raw = await this.gpu.read(this.stats, 8);
    return { lossSum: new Float32Array(raw)[0]!, correct: new Uint32Array(raw)[1]! };
  }

  async fit(train: Dataset, val: Dataset | null, o: FitOptions): Promise<EpochLog[]> {
    const gpu = this.gpu;
    const batch = Math.min(o.batch, train.n);
    const stepsPerEpoch = Math.floor(train.n / batch); // the last partial batch is dropped, as tf.data's drop_remainder
    const total = stepsPerEpoch * o.epochs;
    this.optimizer ??= new OptimizerState(gpu, this.params, o.optimizer);
    const table = lrTable(o.schedule, o.lr, total);
    this.lrBuffer ??= gpu.alloc(table.byteLength, 'learning rates');
    if (this.lrBuffer.size < table.byteLength) {
      gpu.release(this.lrBuffer);
      this.lrBuffer = gpu.alloc(table.byteLength, 'learning rates');
    }
    gpu.write(this.lrBuffer, table);

    if (o.ema && o.ema > 0) this.startEma();
    const tp = this.trainPlan(train, batch, stepsPerEpoch, o);
    const perSubmit = Math.max(1, o.stepsPerSubmit ?? (gpu.adapter.cpu ? 8 : 50));
    this.stepsPerSubmit = perSubmit;
    const reportEvery = Math.max(perSubmit, o.progressEvery ?? 50);
    const history: EpochLog[] = [];
    let best = {
      value: o.initialBest ?? Infinity,
      epoch: -1,
      weights: (o.earlyStop?.restoreBest ? (o.initialBestWeights ?? null) : null) as Weights | null,
    };
    let bad = o.initialMonitor?.bad ?? 0;
    let lrScale = o.initialMonitor?.lrScale ?? 1;
    if (lrScale !== 1)
      gpu.write(
        this.lrBuffer,
        table.map((x) => x * lrScale),
      );
    this.monitor = { bad, lrScale };
    const startStep = o.initialStep ?? (o.initialEpoch ?? 0) * stepsPerEpoch;
    const start = Math.floor(startStep / stepsPerEpoch);
    this.setStep(startStep);

    try {
      for (let epoch = start; epoch < o.epochs; epoch++) {
        const t0 = performance.now();
        gpu.write(tp.indices, epochOrder(train.n, o.seed, epoch));
        this.resetStats();
        const first = epoch === start ? startStep - start * stepsPerEpoch : 0;
        let done = first,
          lastReport = first,
          stopped = false;
        while (done < stepsPerEpoch) {
          const n = Math.min(perSubmit, stepsPerEpoch - done);
          const enc = gpu.device.createCommandEncoder();
          const pass = enc.beginComputePass();
          for (let s = 0; s < n; s++) gpu.encode(pass, tp.step);
          pass.end();
          gpu.device.queue.submit([enc.finish()]);
          done += n;
          if (await o.shouldStop?.()) {
            stopped = true;
            break;
          }
          if (done - lastReport >= reportEvery || done === stepsPerEpoch) {
            lastReport = done;
            const st = await this.readStats();
            const seen = (done - first) * batch;
            if (!Number.isFinite(st.lossSum))
              throw new DivergedError(st.lossSum, epoch + 1, epoch * stepsPerEpoch + done);
            o.onProgress?.({
              epoch: epoch + 1,
              step: done,
              steps: stepsPerEpoch,
              loss: st.lossSum / seen,
              accuracy: st.correct / seen,
              imagesPerSec: seen / ((performance.now() - t0) / 1000),
            });
          }
        }
        const st = await this.readStats();
        const seen = (done - first) * batch;
        if (!Number.isFinite(st.lossSum)) throw new DivergedError(st.lossSum, epoch + 1, epoch * stepsPerEpoch + done);
        const log: EpochLog = {
          epoch: epoch + 1,
          seconds: (performance.now() - t0) / 1000,
          loss: st.lossSum / Math.max(1, seen),
          accuracy: st.correct / Math.max(1, seen),
          lr: table[Math.min(table.length - 1, (epoch + 1) * stepsPerEpoch - 1)]! * lrScale,
        };
        if (val && val.n > 0) {
          const v = o.ema ? await this.withEmaWeights(() => this.evaluate(val)) : await this.evaluate(val);
          log.val_loss = v.loss;
          log.val_accuracy = v.accuracy;
        }
        history.push(log);
        if (stopped) break;

        // Early stopping and plateau schedule, on the monitored validation metric; decided before
        // onEpoch so that a checkpoint written there holds this epoch's verdict.
        const monitor = o.earlyStop?.monitor ?? 'val_loss';
        const value =
          monitor === 'val_loss' ? log.val_loss : log.val_accuracy === undefined ? undefined : -log.val_accuracy;
        let patienceOut = false;
        if (value !== undefined) {
          if (value < best.value) {
            best = { value, epoch, weights: o.earlyStop?.restoreBest ? await this.params.read() : null };
            bad = 0;
          } else {
            bad++;
            if (o.schedule === 'plateau' && bad % 2 === 0) {
              lrScale *= 0.5;
              gpu.write(
                this.lrBuffer,
                table.map((x) => x * lrScale),
              );
            }
            patienceOut = !!o.earlyStop && o.earlyStop.patience > 0 && bad >= o.earlyStop.patience;
          }
        }
        this.monitor = { bad, lrScale };
        const verdict = await o.onEpoch?.(log);
        if (verdict === 'stop' || patienceOut) break;
      }
    } finally {
      await gpu.sync().catch(() => undefined);
    }
    if (o.ema && this.ema) this.copyWeights(this.ema.avg, this.params.buffers);
    if (best.weights) this.params.load(best.weights);
    return history;
  }

  /** Early stopping's and the plateau schedule's state after the last epoch of fit (for checkpoints). */
  monitor: MonitorState = { bad: 0, lrScale: 1 };
  private cachedTrain: (TrainPlan & { key: string }) | null = null;
  private stepsPerSubmit = 1;

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

  private trainPlan(train: Dataset, batch: number, stepsPerEpoch: number, o: FitOptions): TrainPlan {
    const key = `${batch}:${stepsPerEpoch}:${o.labelSmoothing}:${JSON.stringify(o.augment ?? {})}:${train.n}:${o.ema ?? 0}`;
    if (this.cachedTrain?.key === key && this.uploaded.get(train) === this.cachedTrain.data) return this.cachedTrain;
    this.releaseTrainPlan();
    const gpu = this.gpu;
    const built = buildGraph(this.ir, batch, { seed: o.seed });
    const p = plan(gpu, built.graph, {
      training: true,
      logits: built.logits,
      labels: built.labels,
      smoothing: o.labelSmoothing,
      persistent: this.params.buffers,
      counter: this.counter,
      stats: this.stats,
    });
    const data = this.data(train);
    const indices = gpu.alloc(train.n * 4, 'epoch order');
    const gather = gatherTrain(
      gpu,
      { data, indices, counter: this.counter, x: p.buffer(built.x), labels: p.buffer(built.labels) },
      { batch, stepsPerEpoch, seed: o.seed, augment: o.augment },
    );
    const averages = o.ema && this.ema ? this.emaDispatches(o.ema) : [];
    const step = [
      ...dispatchList(gather),
      ...p.forward,
      ...p.backward,
      ...this.optimizer!.updates(this.params, p.grads, this.counter, this.lrBuffer!),
      ...averages,
      ...dispatchList(advanceCounter(gpu, { counter: this.counter })),
    ];
    this.cachedTrain = { key, built, plan: p, batch, step, data, indices };
    return this.cachedTrain;
  }

  private releaseTrainPlan(): void {
    const t = this.cachedTrain;
    if (!t) return;
    const own = t.step.filter((d) => !t.plan.forward.includes(d) && !t.plan.backward.includes(d));
    this.gpu.free(own);
    t.plan.release();
    this.gpu.release(t.indices);
    this.cachedTrain = null;
  }

  private startEma(): void {
    if (this.ema) return;
    const avg = new Map<string, GPUBuffer>(),
      keep = new Map<string, GPUBuffer>();
    for (const s of this.params.specs) {
      if (!s.trainable) continue;
      const size = this.params.buffers.get(s.name)!.size;
      avg.set(s.name, this.gpu.alloc(size, `${s.name}.ema`));
      keep.set(s.name, this.gpu.alloc(size, `${s.name}.live`));
    }
    this.ema = { avg, keep };
    this.copyWeights(this.params.buffers, avg);
  }

  private emaDispatches(decay: number): Dispatch[] {
    return [...this.ema!.avg].map(([name, avg]) =>
      emaUpdate(this.gpu, { x: this.params.buffers.get(name)!, avg }, avg.size / 4, decay),
    );
  }

  /** Copies the named buffers of `from` over those of `to` (names present in both). */
  private copyWeights(from: ReadonlyMap<string, GPUBuffer>, to: ReadonlyMap<string, GPUBuffer>): void {
    const enc = this.gpu.device.createCommandEncoder();
    for (const [name, dst] of to) {
      const src = from.get(name);
      if (src) enc.copyBufferToBuffer(src, 0, dst, 0, dst.size);
    }
    this.gpu.device.queue.submit([enc.finish()]);
  }

  /** Runs `fn` with the moving averages standing in for the trainable weights. */
  async withEmaWeights<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.ema) return fn();
    this.copyWeights(this.params.buffers, this.ema.keep);
    this.copyWeights(this.ema.avg, this.params.buffers);
    try {
      return await fn();
    } finally {
      this.copyWeights(this.ema.keep, this.params.buffers);
    }
  }

  /** Creates the optimizer's state (before loading a checkpoint into it). */
  prepareOptimizer(config: OptimizerConfig): void {
    this.optimizer ??= new OptimizerState(this.gpu, this.params, config);
    if (this.optimizer.config.name !== config.name)
      throw new Error(`optimizer is ${this.optimizer.config.name}, not ${config.name}`);
  }

  /** Optimizer slots and weight averages, by name (`<param>.m`, `<param>.ema`, …), for checkpoints. */
  async stateTensors(): Promise<Map<string, NamedTensor>> {
    const out = new Map<string, NamedTensor>();
    const add = async (name: string, b: GPUBuffer): Promise<void> =>
      void out.set(name, { shape: [b.size / 4], data: await this.gpu.readF32(b) });
    for (const [name, b] of this.optimizer?.slots ?? []) await add(name, b);
    for (const [name, b] of this.ema?.avg ?? []) await add(`${name}.ema`, b);
    return out;
  }

  loadStateTensors(tensors: ReadonlyMap<string, NamedTensor>, file = 'optimizer.safetensors'): void {
    const targets: [string, GPUBuffer][] = [...(this.optimizer?.slots ?? [])];
    if ([...tensors.keys()].some((k) => k.endsWith('.ema'))) {
      this.startEma();
      for (const [n, b] of this.ema!.avg) targets.push([`${n}.ema`, b]);
    }
    for (const [name, b] of targets) {
      const t = tensors.get(name);
      if (!t || t.data.length * 4 !== b.size)
        throw new DataError(
          `${file}: ${t ? `tensor "${name}" has ${t.data.length} values, not ${b.size / 4}` : `no tensor "${name}"`}`,
        );
      this.gpu.write(b, t.data);
    }
  }

  private evalChunkSize = 0;
  /** Images per evaluation/prediction chunk: 1000, or fewer where that would not bind (fittingBatch). */
  get evalChunk(): number {
    if (this.evalChunkSize === 0) this.evalChunkSize = fittingBatch(this.ir, 1000, this.gpu.limits);
    return this.evalChunkSize;
  }

  /** Inference plans by batch size; `withLoss` adds the loss and accuracy accumulation. */
  private evalPlan(batch: number, withLoss: boolean): { built: Built; plan: Plan } {
    const key = `${batch}:${withLoss}`;
    let e = this.evalPlans.get(key);
    if (!e) {
      const built = buildGraph(this.ir, batch, { seed: this.seed });
      const labels = withLoss ? built.labels : null;
      e = {
        built,
        plan: plan(this.gpu, built.graph, {
          training: false,
          logits: built.logits,
          labels,
          persistent: this.params.buffers,
          counter: this.counter,
          stats: this.stats,
        }),
      };
      this.evalPlans.set(key, e);
    }
    return e;
  }

  /**
   * Test loss (mean cross-entropy, no smoothing), accuracy and the confusion matrix over every sample.
   * With `tta`, of the class probabilities averaged over each image and its mirror image.
   */
  async evaluate(ds: Dataset, maxBatch = this.evalChunk, o: { tta?: boolean } = {}): Promise<EvalResult> {
    if (o.tta)
      return { ...metricsFromProbabilities(await this.probabilities(ds, { tta: true, maxBatch }), ds.labels), n: ds.n };
    const gpu = this.gpu;
    const data = this.data(ds);
    const classes = 10;
    const confusion = gpu.alloc(classes * classes * 4, 'confusion');
    gpu.write(confusion, new Uint32Array(classes * classes));
    this.resetStats();
    const chunks = evalBatches(ds.n, Math.min(maxBatch, ds.n));
    const temp: Dispatch[] = [];
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const c of chunks) {
      const e = this.evalPlan(c.size, true);
      const g = dispatchList(
        gatherEval(
          gpu,
          { data, x: e.plan.buffer(e.built.x), labels: e.plan.buffer(e.built.labels) },
          { batch: c.size, offset: c.offset },
        ),
      );
      const conf = dispatchList(
        confusionAccumulate(
          gpu,
          { labels: e.plan.buffer(e.built.labels), scores: e.plan.buffer(e.built.logits), confusion },
          { m: c.size, classes },
        ),
      );
      temp.push(...g, ...conf);
      gpu.encode(pass, [...g, ...e.plan.forward, ...conf]);
    }
    pass.end();
    gpu.device.queue.submit([enc.finish()]);
    const st = await this.readStats();
    const conf = await gpu.readU32(confusion);
    gpu.free(temp);
    gpu.release(confusion);
    return { loss: st.lossSum / ds.n, accuracy: st.correct / ds.n, confusion: conf, n: ds.n };
  }

  /**
   * Class probabilities [n, 10] of every sample of a dataset, gathered on the GPU as evaluation does;
   * with `tta`, the mean of the probabilities for each image and its mirror image.
   */
  async probabilities(ds: Dataset, o: { tta?: boolean; maxBatch?: number } = {}): Promise<Float32Array> {
    const gpu = this.gpu;
    const data = this.data(ds);
    const out = new Float32Array(ds.n * 10);
    const views = o.tta ? [false, true] : [false];
    for (const c of evalBatches(ds.n, Math.min(o.maxBatch ?? this.evalChunk, ds.n))) {
      const e = this.evalPlan(c.size, false);
      const labels = gpu.alloc(c.size * 4, 'labels (unused)');
      for (const flip of views) {
        const g = dispatchList(
          gatherEval(gpu, { data, x: e.plan.buffer(e.built.x), labels }, { batch: c.size, offset: c.offset, flip }),
        );
        const p = await this.runProbabilities(e, c.size, g);
        for (let i = 0; i < p.length; i++) out[c.offset * 10 + i] = out[c.offset * 10 + i]! + p[i]! / views.length;
        gpu.free(g);
      }
      gpu.release(labels);
    }
    return out;
  }

  /** Class probabilities [n, 10] for images already normalised to [0, 1], n×H×W×C in NCHW order. */
  async predict(images: Float32Array, n: number, maxBatch = this.evalChunk): Promise<Float32Array> {
    const per = images.length / n;
    const out = new Float32Array(n * 10);
    for (const c of evalBatches(n, Math.min(maxBatch, n))) {
      const e = this.evalPlan(c.size, false);
      const x = e.plan.buffer(e.built.x);
      this.gpu.write('buffer' in x ? x.buffer : x, images.subarray(c.offset * per, (c.offset + c.size) * per));
      out.set(await this.runProbabilities(e, c.size, []), c.offset * 10);
    }
    return out;
  }

  /** Runs `before` (which fills the plan's input), the inference plan and a softmax: probabilities [size, 10]. */
  private async runProbabilities(
    e: { built: Built; plan: Plan },
    size: number,
    before: readonly Dispatch[],
  ): Promise<Float32Array> {
    const gpu = this.gpu;
    const probs = gpu.alloc(size * 10 * 4, 'probabilities');
    const sm = dispatchList(softmax(gpu, { logits: e.plan.buffer(e.built.logits), probs }, size, 10));
    gpu.run([...before, ...e.plan.forward, ...sm]);
    const p = await gpu.readF32(probs, size * 10);
    gpu.free(sm);
    gpu.release(probs);
    return p;
  }

  /**
   * Penultimate features [n, F] (the input of the last dense layer; the logits when the model has
   * none) for images normalised to [0, 1], n×H×W×C in NCHW order: for projections such as PCA.
   */
  async features(images: Float32Array, n: number, maxBatch = this.evalChunk): Promise<Float32Array> {
    const gpu = this.gpu;
    const per = images.length / n;
    let out = new Float32Array(0);
    for (const { offset: off, size } of evalBatches(n, Math.min(maxBatch, n))) {
      let e = this.evalPlans.get(`${size}:features`);
      if (!e) {
        const built = buildGraph(this.ir, size, { seed: this.seed });
        e = {
          built,
          plan: plan(gpu, built.graph, {
            training: false,
            logits: built.logits,
            labels: null,
            persistent: this.params.buffers,
            counter: this.counter,
            stats: this.stats,
            keep: [built.features ?? built.logits],
          }),
        };
        this.evalPlans.set(`${size}:features`, e);
      }
      const f = e.built.features ?? e.built.logits;
      const width = f.shape[1]!;
      if (off === 0) out = new Float32Array(n * width);
      const x = e.plan.buffer(e.built.x);
      gpu.write('buffer' in x ? x.buffer : x, images.subarray(off * per, (off + size) * per));
      gpu.run(e.plan.forward);
      const r = e.plan.buffer(f);
      out.set(
        'buffer' in r
          ? await gpu.readF32(r.buffer, size * width, (r.offset ?? 0) / 4)
          : await gpu.readF32(r, size * width),
        off * width,
      );
    }
    return out;
  }

  release(): void {
    this.releaseTrainPlan();
    for (const e of this.evalPlans.values()) e.plan.release();
    this.evalPlans.clear();
    for (const d of this.uploads) d.release();
    this.optimizer?.release();
    if (this.ema) for (const b of [...this.ema.avg.values(), ...this.ema.keep.values()]) this.gpu.release(b);
    this.ema = null;
    if (this.lrBuffer) this.gpu.release(this.lrBuffer);
    this.params.release();
    this.gpu.release(this.counter);
    this.gpu.release(this.stats);
  }
}
