// Why a loss diverged. "The loss became NaN" says that something overflowed; these say where.
//   firstNonFinite: one inference forward pass of the current weights that keeps every node's
//     output, a non-finite check per output on the GPU (one flag word each, one read-back), then
//     the first flagged output read back to find its first bad value: the first layer, in graph
//     order, whose output is not finite.
//   firstNonFiniteGradient: the same for one training step (forward, loss, backward; no update),
//     which also finds a gradient that overflows, or one whose square does (Adam's second moment),
//     when the forward is finite, and the largest activation and gradient on the way.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { buildGraph } from '../model/build.ts';
import { numel, type Node } from '../graph/graph.ts';
import { plan, type Plan } from '../graph/plan.ts';
import { nonFiniteCheck } from '../ops/reduce.ts';
import { gatherEval, uploadDataset, type GpuDataset } from '../data/batch.ts';
import { subset, type Dataset } from '../data/dataset.ts';
import type { Trainer } from './trainer.ts';
import { must, mustAt } from '../util/must.ts';

export interface NonFinite {
  /** The layer as the summary names it (`conv37`, `res12.conv2`, `res12` for its add). */
  layer: string;
  /** The graph op that produced it (`conv2d`, `add`, `activation`, …). */
  op: string;
  /** Flat index into the output [batch, …] (NCHW): the first value that is NaN or ±Inf. */
  index: number;
  value: number;
}

/**
 * The first node, in graph order, whose output on the first `batch` images of `ds` holds NaN or
 * ±Inf (an inference pass: dropout off, batch norm on its running statistics), or null if none
 * does. Every activation of the batch is kept at once, so a small batch (a few images) is enough.
 */
export async function firstNonFinite(trainer: Trainer, ds: Dataset, batch: number): Promise<NonFinite | null> {
  const n = Math.min(batch, ds.n);
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`firstNonFinite needs at least one image, got batch ${batch} of ${ds.n}`);
  const gpu = trainer.gpu;
  const built = buildGraph(trainer.ir, n, { seed: trainer.seed });
  const nodes = built.graph.nodes;
  const p = plan(gpu, built.graph, {
    training: false,
    logits: built.logits,
    labels: null,
    persistent: trainer.params.buffers,
    counter: trainer.counter,
    stats: trainer.stats,
    keep: nodes.map((node) => node.out),
  });
  const words = Math.max(1, nodes.length);
  const flags = gpu.alloc(words * 4, 'non-finite flags');
  const labels = gpu.alloc(n * 4, 'labels (unused)');
  let data: GpuDataset | null = null;
  let own: Dispatch[] = [];
  try {
    data = uploadDataset(gpu, subset(ds, n));
    gpu.write(flags, new Uint32Array(words));
    const gather = gatherEval(gpu, { data, x: p.buffer(built.x), labels }, { batch: n, offset: 0 });
    const checks = nodes.flatMap((node, i) =>
      nonFiniteCheck(gpu, { x: p.buffer(node.out), flag: flags }, { n: numel(node.out.shape), index: i }),
    );
    own = [...gather, ...checks];
    gpu.run([...gather, ...p.forward, ...checks]);
    const flagged = (await gpu.readU32(flags, nodes.length)).findIndex((f) => f !== 0);
    const node = nodes[flagged];
    if (!node) return null;
    const r = p.buffer(node.out);
    const values =
      'buffer' in r
        ? await gpu.readF32(r.buffer, numel(node.out.shape), (r.offset ?? 0) / 4)
        : await gpu.readF32(r, numel(node.out.shape));
    return { layer: node.layer ?? node.op, op: node.op, ...firstBadIn(values, `the output of ${node.op}`) };
  } finally {
    gpu.free(own);
    gpu.release(flags);
    gpu.release(labels);
    data?.release();
    p.release();
  }
}

/** The largest finite magnitude seen in a pass, and where. */
export interface Largest {
  /** The layer as the summary names it (`res300`, `res12.conv1`), or the parameter's layer. */
  layer: string;
  /** The graph op that produced it (activations). */
  op?: string;
  /** The parameter whose gradient it is (gradients). */
  param?: string;
  /** The largest finite |value|. */
  value: number;
}

/**
 * What one training step of the current weights makes overflow first, for a CLI to phrase:
 *   - 'activation': a node's output in the training forward is NaN or ±Inf (`layer`, `op`; dropout
 *     on, batch norm on the batch's statistics: the forward the first step runs);
 *   - 'loss': every activation is finite but the batch's summed cross-entropy is not (`layer` and
 *     `op`: the node of the logits; `value`: the mean loss, as training reports it);
 *   - 'gradient': a parameter's gradient holds NaN or ±Inf, the first in backward order (the last
 *     layer's first, as they are computed): `param` (`res12.conv1.weight`), `layer` (`res12.conv1`);
 *   - 'squared gradient': every gradient is finite but one's square is not (|g| > 1.8e19, f32's
 *     range is 3.4e38), the first in backward order: Adam's second moment becomes Infinity at this
 *     step and NaN at the next, and SGD's step lr·g outgrows the weights at any usable rate.
 * `index` is the flat index of that value in the tensor (absent for the loss). `largest` is the
 * largest finite |activation| of the forward pass and its layer ("the activations reach 1e26 at
 * res300"); `largestGradient` the largest finite |gradient| and its parameter (null after a
 * non-finite activation, whose gradients mean nothing).
 */
export interface StepFault {
  kind: 'activation' | 'loss' | 'gradient' | 'squared gradient';
  layer: string;
  op?: string;
  param?: string;
  index?: number;
  value: number;
  largest: Largest | null;
  largestGradient: Largest | null;
}

/** Bytes read back to the host per submit when scanning tensors for their largest value. */
const READBACK_CHUNK = 64 * 2 ** 20;

/** The layer a parameter belongs to: its name less the last part (`res12.conv1.weight` → `res12.conv1`). */
const layerOf = (param: string): string => param.replace(/\.[^.]*$/, '');

/** Whether v·v is past f32's range (v finite): |v| above about 1.8e19. */
const squareOverflows = (v: number): boolean => Math.fround(v * v) === Infinity;

/**
 * Why a training step of the current weights gives a non-finite loss or update (StepFault), or
 * null when its activations, loss, gradients and squared gradients are all finite: one training
 * step on the first `batch` images of `ds` (gathered in order, not augmented) as fit runs it —
 * forward, loss, backward — without the optimizer's update (its plan sums the weight gradients in a pass
 * of its own, so that they are all there to check). Every node's output and every
 * gradient is checked on the GPU (one flag word each); the activations and gradients are then
 * read back to the host (at most 64 MiB at a time) for the largest of each. Every activation of
 * the batch is kept at once, so a small batch (a few images) is enough. The trainer is left as it
 * was: its weights and step counter are only read; the batch-norm running statistics a training
 * forward updates, and the loss accumulators, are copies; every buffer made here is released.
 */
export async function firstNonFiniteGradient(trainer: Trainer, ds: Dataset, batch: number): Promise<StepFault | null> {
  const n = Math.min(batch, ds.n);
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`firstNonFiniteGradient needs at least one image, got batch ${batch} of ${ds.n}`);
  const gpu = trainer.gpu;
  const built = buildGraph(trainer.ir, n, { seed: trainer.seed });
  const nodes = built.graph.nodes;
  const owned: GPUBuffer[] = [];
  const mine = (bytes: number, label: string): GPUBuffer => {
    const b = gpu.alloc(bytes, label);
    owned.push(b);
    return b;
  };
  let p: Plan | null = null;
  let data: GpuDataset | null = null;
  let own: Dispatch[] = [];
  try {
    const stats = mine(16, 'loss/accuracy accumulators (diagnosis)');
    gpu.write(stats, new Uint32Array(4));
    const persistent = diagnosisState(trainer, mine);
    p = plan(gpu, built.graph, {
      training: true,
      logits: built.logits,
      labels: built.labels,
      persistent,
      counter: trainer.counter,
      stats,
      keep: nodes.map((node) => node.out),
    });
    const step = p;
    const activations = nodes.map(
      (node): Scanned => ({
        ref: step.buffer(node.out),
        count: numel(node.out.shape),
        where: { layer: node.layer ?? node.op, op: node.op },
      }),
    );
    // In the order the backward computes them: the gradient of the last layer first.
    const shapes = new Map(trainer.params.specs.map((s) => [s.name, s.shape]));
    const grads: Scanned[] = [...p.grads].map(([name, ref]) => ({
      ref,
      count: numel(must(shapes, name, `parameter "${name}"`)),
      where: { layer: layerOf(name), param: name },
    }));
    const words = Math.max(1, activations.length + grads.length);
    const flags = mine(words * 4, 'non-finite flags');
    gpu.write(flags, new Uint32Array(words));
    data = uploadDataset(gpu, subset(ds, n));
    const gather = gatherEval(
      gpu,
      { data, x: p.buffer(built.x), labels: p.buffer(built.labels) },
      { batch: n, offset: 0 },
    );
    const checks = [...activations, ...grads].flatMap((t, i) =>
      nonFiniteCheck(gpu, { x: t.ref, flag: flags }, { n: t.count, index: i }),
    );
    own = [...gather, ...checks];
    gpu.run([...gather, ...p.forward, ...p.backward, ...checks]);
    const flagged = await gpu.readU32(flags, words);
    const loss = new DataView(await gpu.read(stats, 4)).getFloat32(0, true) / n;
    const logits = p.buffer(built.logits);
    const last =
      [...nodes].reverse().find((node) => step.buffer(node.out) === logits) ??
      mustAt(nodes, nodes.length - 1, 'node of the logits');
    return await judgeStep(gpu, { activations, grads, flagged, loss, logits: last });
  } finally {
    gpu.free(own);
    for (const b of owned) gpu.release(b);
    data?.release();
    p?.release();
  }
}

/**
 * The weights and state a diagnosis step runs on: the trainable weights themselves (only read),
 * copies of the rest (batch norm's running statistics, which a training forward updates).
 */
function diagnosisState(trainer: Trainer, mine: (bytes: number, label: string) => GPUBuffer): Map<string, BufferRef> {
  const persistent = new Map<string, BufferRef>();
  const state = trainer.params.state;
  const copies = state.buffers.map((b) => mine(b.size, 'parameter state (diagnosis)'));
  const enc = trainer.gpu.device.createCommandEncoder();
  state.buffers.forEach((b, i) => {
    enc.copyBufferToBuffer(b, 0, mustAt(copies, i, 'state copy'), 0, b.size);
  });
  trainer.gpu.device.queue.submit([enc.finish()]);
  for (const s of trainer.params.specs) {
    if (s.trainable) persistent.set(s.name, trainer.params.buffer(s.name));
    else {
      const e = state.entry(s.name);
      persistent.set(s.name, { buffer: mustAt(copies, e.pack, 'state copy'), offset: e.offset, size: e.count * 4 });
    }
  }
  return persistent;
}

/** The verdict on a checked step: the first non-finite activation, loss, gradient or squared gradient. */
async function judgeStep(
  gpu: Gpu,
  s: { activations: Scanned[]; grads: Scanned[]; flagged: Uint32Array; loss: number; logits: Node },
): Promise<StepFault | null> {
  const { activations, grads, flagged } = s;
  let largest: Largest | null = null;
  await scan(gpu, activations, (values, t) => {
    const m = largestIn(values, largest?.value ?? -1);
    if (m !== null) largest = { ...t.where, value: m };
  });
  const badNode = activations.find((_, i) => flagged[i]);
  if (badNode) {
    return { kind: 'activation', ...badNode.where, ...(await firstBad(gpu, badNode)), largest, largestGradient: null };
  }
  let largestGradient: Largest | null = null;
  let squared: { t: Scanned; index: number; value: number } | null = null;
  await scan(gpu, grads, (values, t) => {
    const m = largestIn(values, largestGradient?.value ?? -1);
    if (m !== null) largestGradient = { ...t.where, value: m };
    if (!squared) {
      const index = values.findIndex((v) => Number.isFinite(v) && squareOverflows(v));
      const value = values[index];
      if (value !== undefined) squared = { t, index, value };
    }
  });
  if (!Number.isFinite(s.loss)) {
    const { layer, op } = s.logits;
    return { kind: 'loss', layer: layer ?? op, op, value: s.loss, largest, largestGradient };
  }
  const badGrad = grads.find((_, i) => flagged[activations.length + i]);
  if (badGrad) {
    return { kind: 'gradient', ...badGrad.where, ...(await firstBad(gpu, badGrad)), largest, largestGradient };
  }
  const sq = squared as { t: Scanned; index: number; value: number } | null;
  if (sq)
    return { kind: 'squared gradient', ...sq.t.where, index: sq.index, value: sq.value, largest, largestGradient };
  return null;
}

/** A tensor to check or scan: where it lives, how many f32 values, and whose it is. */
interface Scanned {
  ref: BufferRef;
  count: number;
  where: Omit<Largest, 'value'>;
}

const split = (r: BufferRef): { buffer: GPUBuffer; offset: number } =>
  'buffer' in r ? { buffer: r.buffer, offset: r.offset ?? 0 } : { buffer: r, offset: 0 };

/** The largest finite magnitude of `values` where it exceeds `above`; null if none does. */
function largestIn(values: Float32Array, above: number): number | null {
  let m: number | null = null;
  for (const v of values) {
    const a = Math.abs(v);
    if (a > (m ?? above) && a !== Infinity) m = a;
  }
  return m;
}

/** The first NaN or ±Inf of `what`'s values, which a check on the GPU has flagged. */
function firstBadIn(values: Float32Array, what: string): { index: number; value: number } {
  const index = values.findIndex((v) => !Number.isFinite(v));
  const value = values[index];
  if (value === undefined) throw new Error(`internal error: ${what} was flagged as not finite but reads back finite`);
  return { index, value };
}

/** The first NaN or ±Inf of a tensor, read back. */
async function firstBad(gpu: Gpu, t: Scanned): Promise<{ index: number; value: number }> {
  const { buffer, offset } = split(t.ref);
  return firstBadIn(await gpu.readF32(buffer, t.count, offset / 4), t.where.param ?? t.where.layer);
}

/**
 * Reads the tensors back to the host, in order, and calls `visit` with each one's values: several
 * at a time, copied into one staging buffer of at most READBACK_CHUNK bytes per read (a larger
 * tensor is read on its own). Tensors that share storage (aliases) are visited once.
 */
async function scan(
  gpu: Gpu,
  tensors: readonly Scanned[],
  visit: (values: Float32Array, t: Scanned) => void,
): Promise<void> {
  const seen = new Map<GPUBuffer, Set<number>>();
  const unique = tensors.filter((t) => {
    const { buffer, offset } = split(t.ref);
    const at = seen.get(buffer) ?? new Set<number>();
    seen.set(buffer, at);
    if (at.has(offset)) return false;
    at.add(offset);
    return true;
  });
  const total = unique.reduce((a, t) => a + t.count * 4, 0);
  if (total === 0) return;
  const staging = gpu.alloc(Math.min(total, READBACK_CHUNK), 'tensors (diagnosis read-back)');
  try {
    for (const run of runs(unique, staging.size)) {
      const count = run.reduce((a, t) => a + t.count, 0);
      if (count * 4 > staging.size) {
        // One tensor larger than the staging buffer, alone in its run: read on its own.
        for (const t of run) {
          const { buffer, offset } = split(t.ref);
          visit(await gpu.readF32(buffer, t.count, offset / 4), t);
        }
        continue;
      }
      const chunk: { at: number; t: Scanned }[] = [];
      let at = 0;
      const enc = gpu.device.createCommandEncoder();
      for (const t of run) {
        const { buffer, offset } = split(t.ref);
        enc.copyBufferToBuffer(buffer, offset, staging, at * 4, t.count * 4);
        chunk.push({ at, t });
        at += t.count;
      }
      gpu.device.queue.submit([enc.finish()]);
      const values = await gpu.readF32(staging, count);
      for (const { at, t } of chunk) visit(values.subarray(at, at + t.count), t);
    }
  } finally {
    gpu.release(staging);
  }
}

/** `tensors` in order, in runs that fit `capacity` bytes together; one larger than that is a run of its own. */
function runs(tensors: readonly Scanned[], capacity: number): Scanned[][] {
  const runs: Scanned[][] = [];
  let run: Scanned[] = [];
  let bytes = 0;
  for (const t of tensors) {
    if (run.length > 0 && bytes + t.count * 4 > capacity) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(t);
    bytes += t.count * 4;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
