// The optimizer as planned dispatches: its slots (Adam's m and v, SGD's velocity) packed in the
// trainable parameters' layout (src/gpu/packed.ts), and one update dispatch per run of tensors whose
// gradients lie alike (the planner packs them so: one run per pack, one dispatch for the model),
// with the weight average in the same pass. Step count and learning rate come from GPU buffers, so a
// whole submit of steps runs without the host.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { Packed, rangeOf, type PackEntry } from '../gpu/packed.ts';
import {
  adamUpdate,
  advanceCounter,
  sgdUpdate,
  type EmaIo,
  type StepBuffers,
  type UpdateSums,
} from '../ops/optimizer.ts';
import type { GradSums } from '../graph/deferred.ts';
import { numel } from '../ops/geometry.ts';
import { writtenLengths } from '../ops/grad-reduce.ts';
import { xentTotal, type LossTotals } from '../ops/softmax_xent.ts';
import type { ParamStore } from '../model/params.ts';
import type { NamedTensor } from '../model/safetensors.ts';
import type { TrainValues } from '../../dsl/ir.ts';
import { DataError } from '../errors.ts';
import { must, mustAt } from '../util/must.ts';

export type OptimizerName = 'adam' | 'adamw' | 'sgd';

export interface OptimizerConfig {
  name: OptimizerName;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** The optimizer a model file's (or the flags') train settings ask for. */
export function optimizerConfig(
  t: Pick<TrainValues, 'optimizer' | 'momentum' | 'nesterov' | 'weightDecay'>,
): OptimizerConfig {
  return { name: t.optimizer, momentum: t.momentum, nesterov: t.nesterov, weightDecay: t.weightDecay };
}

/**
 * Tensors of one pack, consecutive in the layout, whose gradients lie in one buffer at the same
 * distances apart as the tensors: one dispatch updates them as one range.
 */
export interface Run {
  pack: number;
  /** Byte range in the pack (the padding between its tensors included). */
  offset: number;
  bytes: number;
  tensors: number;
  grad: GPUBuffer;
  gradOffset: number;
}

/** The runs of `entries` (in layout order) that have gradients; a tensor without one is not updated. */
export function updateRuns(entries: readonly PackEntry[], grads: ReadonlyMap<string, BufferRef>): Run[] {
  const runs: Run[] = [];
  let cur: Run | null = null;
  for (const e of entries) {
    const g = grads.get(e.name);
    if (!g) {
      cur = null;
      continue;
    }
    const { buffer, offset } = rangeOf(g);
    if (cur && cur.pack === e.pack && cur.grad === buffer && offset - cur.gradOffset === e.offset - cur.offset) {
      cur.bytes = e.offset + e.count * 4 - cur.offset;
      cur.tensors++;
      continue;
    }
    cur = { pack: e.pack, offset: e.offset, bytes: e.count * 4, tensors: 1, grad: buffer, gradOffset: offset };
    runs.push(cur);
  }
  return runs;
}

/**
 * A training plan's gradients (src/graph/plan.ts Plan): by parameter name, the sums left to the update, and
 * the loss's partial totals left to it (added into stats by the first update, as the step ends).
 */
export interface PlanGradients {
  grads: ReadonlyMap<string, BufferRef>;
  gradSums?: GradSums | null;
  totals?: LossTotals | null;
}

/**
 * The split-K sums each run's update adds up: the segments whose gradients lie in its range, their offsets
 * made relative to it. Every segment belongs to one run (its layer's tensors are trainable, in one pack).
 */
export function sumsOfRuns(runs: readonly Run[], sums: GradSums | null | undefined): Map<Run, UpdateSums> {
  const out = new Map<Run, UpdateSums>();
  if (!sums) return out;
  for (const { grads, segments } of sums.groups)
    for (const s of segments) {
      const n = writtenLengths(s.layout);
      // Both the dW and the db range wholly inside the run's gradient range (floats).
      const holds = (q: Run, at: number, len: number) =>
        at * 4 >= q.gradOffset && (at + len) * 4 <= q.gradOffset + q.bytes;
      const r = runs.find((q) => q.grad === grads && holds(q, s.dw, n.dw) && (n.db === 0 || holds(q, s.db, n.db)));
      if (!r) throw new Error(`${s.label}: its weight and bias gradients are not in one update's range`);
      const base = r.gradOffset / 4;
      const rel = { ...s, dw: s.dw - base, db: s.layout.sums === 'none' ? 0 : s.db - base };
      out.set(r, { parts: sums.parts, segments: [...(out.get(r)?.segments ?? []), rel] });
    }
  return out;
}

/** Optimizer state on the GPU: each slot one Packed in the trainable parameters' layout. */
export class OptimizerState {
  /** By slot name (`m`, `v`, `velocity`); a checkpoint names each tensor's `<param>.<slot>`. */
  readonly slots = new Map<string, Packed>();
  constructor(
    private readonly gpu: Gpu,
    params: ParamStore,
    readonly config: OptimizerConfig,
  ) {
    for (const slot of slotNames(config)) this.slots.set(slot, new Packed(gpu, params.trainable.layout, slot));
  }

  /**
   * One step's updates of every trainable tensor that has a gradient in `grads`, and of the
   * averages when `ema` is given (Packed in the same layout); with `step.endsStep` they end the step
   * (the counter's advance, after the loss pass's snapshot: src/ops/optimizer.ts). The gradients come as a
   * training plan gives them: by name, and the split-K sums it left to the update (`gradSums`), which the
   * updates then add up on their way; the two travel together so that no caller can drop the sums.
   */
  updates(
    params: ParamStore,
    gradients: PlanGradients,
    step: StepBuffers,
    ema?: { averages: Packed; decay: number },
  ): Dispatch[] {
    const trainable = params.trainable;
    const runs = updateRuns(trainable.layout.entries, gradients.grads);
    const summed = sumsOfRuns(runs, gradients.gradSums);
    const totals = gradients.totals ?? undefined;
    // A step that updates nothing still ends: its counter advances on its own, its loss totals by their pass.
    if (runs.length === 0)
      return [...(step.endsStep ? advanceCounter(this.gpu, step) : []), ...(totals ? xentTotal(this.gpu, totals) : [])];
    return runs.flatMap((r, i) => {
      const at = (p: Packed): BufferRef => ({
        buffer: mustAt(p.buffers, r.pack, 'pack'),
        offset: r.offset,
        size: r.bytes,
      });
      const io = {
        ...step,
        sums: summed.get(r),
        totals: i === 0 ? totals : undefined,
        param: at(trainable),
        grad: { buffer: r.grad, offset: r.gradOffset, size: r.bytes },
        ema: ema ? ({ avg: at(ema.averages), decay: ema.decay } satisfies EmaIo) : undefined,
      };
      const shape = { count: r.bytes / 4, tensors: r.tensors };
      const c = this.config;
      if (c.name === 'sgd') {
        const velocity = this.slots.get('velocity');
        const o = { ...shape, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay };
        return sgdUpdate(this.gpu, { ...io, velocity: velocity && at(velocity) }, o);
      }
      const slot = (s: string): Packed => must(this.slots, s, `optimizer slot "${s}"`);
      // Unset betas and ε: adamUpdate's ADAM_DEFAULTS (src/ops/optimizer.ts).
      const o = { ...shape, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay };
      return adamUpdate(
        this.gpu,
        { ...io, m: at(slot('m')), v: at(slot('v')) },
        { ...o, decoupled: c.name === 'adamw' },
      );
    });
  }

  /** Every slot of every tensor as `<param>.<slot>`, shape [count]: what optimizer.safetensors holds. */
  async tensors(): Promise<Map<string, NamedTensor>> {
    const read = new Map<string, Map<string, { data: Float32Array }>>();
    for (const [slot, p] of this.slots) read.set(slot, await p.read());
    const out = new Map<string, NamedTensor>();
    const entries = [...this.slots.values()][0]?.layout.entries ?? [];
    for (const e of entries)
      for (const [slot, values] of read)
        out.set(`${e.name}.${slot}`, { shape: [e.count], data: must(values, e.name, e.name).data });
    return out;
  }

  /** Loads every slot of every tensor from `tensors` (`<param>.<slot>`, [count] values each). */
  load(tensors: ReadonlyMap<string, NamedTensor>, file: string): void {
    const entries = [...this.slots.values()][0]?.layout.entries ?? [];
    for (const e of entries)
      for (const slot of this.slots.keys()) slotValues(tensors, `${e.name}.${slot}`, e.count, file);
    for (const [slot, p] of this.slots) p.writeAll((e) => slotValues(tensors, `${e.name}.${slot}`, e.count, file));
  }

  release(): void {
    for (const p of this.slots.values()) p.release();
    this.slots.clear();
  }
}

/** The name a parameter's moving average is kept under in optimizer state (optimizer.safetensors). */
export const averageName = (param: string): string => `${param}.ema`;

/** Whether optimizer state holds moving averages (a run with ema=). */
export const hasAverages = (tensors: ReadonlyMap<string, unknown>): boolean =>
  [...tensors.keys()].some((k) => k.endsWith('.ema'));

/**
 * Refuses optimizer state (optimizer.safetensors) that lacks a slot of a trainable tensor or holds one of another
 * size, without a device, as Optimizer.load and WeightAverage.load would refuse it (their `.ema` averages where
 * it holds any): so that a resume is refused before the GPU is opened.
 */
export function checkOptimizerState(
  params: readonly { name: string; shape: readonly number[]; trainable: boolean }[],
  config: OptimizerConfig,
  tensors: ReadonlyMap<string, NamedTensor>,
  file: string,
): void {
  const ema = hasAverages(tensors);
  const slots = [...slotNames(config), ...(ema ? ['ema'] : [])];
  for (const p of params.filter((q) => q.trainable)) {
    for (const slot of slots) slotValues(tensors, `${p.name}.${slot}`, numel(p.shape), file);
  }
}

/** The values of tensor `name`, which must hold `count` of them. */
export function slotValues(
  tensors: ReadonlyMap<string, NamedTensor>,
  name: string,
  count: number,
  file: string,
): Float32Array {
  const t = tensors.get(name);
  if (!t || t.data.length !== count) {
    const why = t ? `tensor "${name}" has ${t.data.length} values, not ${count}` : `no tensor "${name}"`;
    throw new DataError(`${file}: ${why}`);
  }
  return t.data;
}

function slotNames(c: OptimizerConfig): string[] {
  if (c.name === 'sgd') return c.momentum > 0 ? ['velocity'] : [];
  return ['m', 'v'];
}
