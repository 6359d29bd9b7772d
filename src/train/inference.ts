// Evaluation and prediction on the GPU: a dataset already there is gathered in chunks (several
// chunks to a submit where nothing is read back between them); images from the host are written
// into the plan's input. `classes` is the model's output width.
import type { Dispatch, Gpu } from '../gpu/runtime.ts';
import { confusionAccumulate } from '../ops/reduce.ts';
import { matrix } from '../ops/geometry.ts';
import { softmax } from '../ops/softmax_xent.ts';
import { evalBatches, gatherEval, type GpuDataset } from '../data/batch.ts';
import { readStats, resetStats, type InferencePlan, type InferencePlans } from './plans.ts';

export interface EvalResult {
  loss: number;
  accuracy: number;
  /** Rows: true class; columns: predicted. */
  confusion: Uint32Array;
  n: number;
}

export class Inference {
  constructor(
    private readonly gpu: Gpu,
    private readonly plans: InferencePlans,
    private readonly stats: GPUBuffer,
    readonly classes: number,
  ) {}

  /** Mean cross-entropy (no smoothing), accuracy and the confusion matrix, accumulated on the GPU. */
  async evaluate(data: GpuDataset, maxBatch: number): Promise<EvalResult> {
    const { gpu, classes } = this;
    const confusion = gpu.alloc(classes * classes * 4, 'confusion');
    gpu.write(confusion, new Uint32Array(classes * classes));
    resetStats(gpu, this.stats);
    const temp: Dispatch[] = [];
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const c of evalBatches(data.n, Math.min(maxBatch, data.n))) {
      const e = this.plans.get(c.size, 'loss');
      const labels = e.plan.buffer(e.built.labels);
      const g = gatherEval(gpu, { data, x: e.plan.buffer(e.built.x), labels }, { batch: c.size, offset: c.offset });
      const scores = e.plan.buffer(e.built.logits);
      const conf = confusionAccumulate(gpu, { labels, scores, confusion }, { m: c.size, classes });
      temp.push(...g, ...conf);
      gpu.encode(pass, [...g, ...e.plan.forward, ...conf]);
    }
    pass.end();
    gpu.device.queue.submit([enc.finish()]);
    const st = await readStats(gpu, this.stats);
    const counts = await gpu.readU32(confusion);
    gpu.free(temp);
    gpu.release(confusion);
    return { loss: st.lossSum / data.n, accuracy: st.correct / data.n, confusion: counts, n: data.n };
  }

  /** Class probabilities [n, classes]; with `tta`, the mean over each image and its mirror image. */
  async probabilities(data: GpuDataset, maxBatch: number, tta: boolean): Promise<Float32Array> {
    const { gpu, classes } = this;
    const out = new Float32Array(data.n * classes);
    const views = tta ? [false, true] : [false];
    for (const c of evalBatches(data.n, Math.min(maxBatch, data.n))) {
      const e = this.plans.get(c.size, 'scores');
      const labels = gpu.alloc(c.size * 4, 'labels (unused)');
      for (const flip of views) {
        const x = e.plan.buffer(e.built.x);
        const g = gatherEval(gpu, { data, x, labels }, { batch: c.size, offset: c.offset, flip });
        const p = await this.softmaxOf(e, c.size, g);
        const at = c.offset * classes;
        for (let i = 0; i < p.length; i++) out[at + i] = out[at + i]! + p[i]! / views.length;
        gpu.free(g);
      }
      gpu.release(labels);
    }
    return out;
  }

  /**
   * Class probabilities [n, classes] for images normalised to [0, 1], n×H×W×C in NCHW order: the mean over
   * `views` of them (one; with tta, the images and their mirror images), summed as `probabilities` sums them.
   */
  async predict(views: readonly Float32Array[], n: number, maxBatch: number): Promise<Float32Array> {
    const out = new Float32Array(n * this.classes);
    for (const c of evalBatches(n, Math.min(maxBatch, n))) {
      const e = this.plans.get(c.size, 'scores');
      for (const images of views) {
        this.writeInput(e, images, c.offset, c.size, n);
        const p = await this.softmaxOf(e, c.size, []);
        const at = c.offset * this.classes;
        for (let i = 0; i < p.length; i++) out[at + i] = out[at + i]! + p[i]! / views.length;
      }
    }
    return out;
  }

  /** Penultimate features [n, F] (the last dense layer's input, else the logits) of images as predict takes them. */
  async features(images: Float32Array, n: number, maxBatch: number): Promise<Float32Array> {
    const gpu = this.gpu;
    let out = new Float32Array(0);
    for (const { offset, size } of evalBatches(n, Math.min(maxBatch, n))) {
      const e = this.plans.get(size, 'features');
      const f = e.built.features ?? e.built.logits;
      const [, width] = matrix(f.shape, 'the features');
      if (offset === 0) out = new Float32Array(n * width);
      this.writeInput(e, images, offset, size, n);
      gpu.run(e.plan.forward);
      const r = e.plan.buffer(f);
      const values =
        'buffer' in r
          ? await gpu.readF32(r.buffer, size * width, (r.offset ?? 0) / 4)
          : await gpu.readF32(r, size * width);
      out.set(values, offset * width);
    }
    return out;
  }

  /** Images offset … offset+size−1 of `images` (n of them) into the plan's input. */
  private writeInput(e: InferencePlan, images: Float32Array, offset: number, size: number, n: number): void {
    const per = images.length / n;
    const x = e.plan.buffer(e.built.x);
    this.gpu.write('buffer' in x ? x.buffer : x, images.subarray(offset * per, (offset + size) * per));
  }

  /** Runs `before` (which fills the plan's input), the plan and a softmax: probabilities [size, classes]. */
  private async softmaxOf(e: InferencePlan, size: number, before: readonly Dispatch[]): Promise<Float32Array> {
    const { gpu, classes } = this;
    const probs = gpu.alloc(size * classes * 4, 'probabilities');
    const sm = softmax(gpu, { logits: e.plan.buffer(e.built.logits), probs }, size, classes);
    gpu.run([...before, ...e.plan.forward, ...sm]);
    const p = await gpu.readF32(probs, size * classes);
    gpu.free(sm);
    gpu.release(probs);
    return p;
  }
}
