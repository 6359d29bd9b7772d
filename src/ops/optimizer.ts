// Optimizer updates in place on the GPU: SGD (momentum, Nesterov), Adam, AdamW, each with the weight
// average (EMA) in the same pass, and the step counter. Formulas (Keras 3), buffers and layout:
// shaders/optimizer.wgsl. Gradients arrive already averaged. An update runs over `count` elements of
// byte ranges: one tensor, or a whole pack of them (src/gpu/packed.ts), so that one dispatch updates
// every parameter of a model (src/train/optimizer.ts).
//
// Per-step values live on the GPU so that many steps can be recorded into one submit:
//   counter: u32 buffer, word 0 = steps completed so far (t = counter[0] + 1 for the running step).
//            A training step's update ends the step (`endsStep`): it reads the step from word 1, the
//            snapshot the step's loss pass took (softmax_xent.ts), and sets word 0 to one more, in the
//            same pass: no dispatch of its own. advanceCounter() adds one, for a step with no update.
//   lrTable: f32 buffer, the learning rate of step counter[0] is lrTable[min(counter[0], length − 1)];
//            the host fills it with the whole schedule (and may rewrite it between submits); one
//            entry is a constant rate.
//
// Split-K gradients: where the planner left weight gradients as their GEMMs' split-K partial sums
// (src/graph/deferred.ts), the update sums them on its way (`sums`: the partials and their segments,
// lib/grad_sums.wgsl), in grad_reduce's fixed order, so the step stays deterministic and the gradients are
// the same bits as the separate pass's; it writes them into grad too. One dispatch either way.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { chainWork, f32Bytes, perThread, streamWork, treeBarriers, type Work } from '../gpu/work.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { segmentTable, type GradSegment } from './grad-reduce.ts';
import { xentTotal, type LossTotals } from './softmax_xent.ts';
import { bindsStorage } from '../gpu/pair.ts';

export interface StepBuffers {
  /** u32 [≥ 2], word 0 = completed steps (word 1: the running step's snapshot, with endsStep). */
  counter: BufferRef;
  /** f32 [L], learning rate per step, clamped to the last entry. */
  lrTable: BufferRef;
  /**
   * The update ends a training step: the step is counter[1] (the loss pass's snapshot), and the pass
   * sets counter[0] = counter[1] + 1 (shaders/optimizer.wgsl ENDS_STEP).
   */
  endsStep?: boolean;
}

/**
 * Weight-gradient split-K sums an update adds up on its way (src/graph/deferred.ts): the partials, and at
 * most SEGMENTS segments whose dW and db offsets count in floats from the start of the bound grad range.
 */
export interface UpdateSums {
  parts: BufferRef;
  segments: readonly GradSegment[];
}

/**
 * What a training step's update adds up on its way, besides its own gradients: the split-K sums of weight
 * gradients, and the loss's partial totals (into stats, as its totals pass would, when the adapter binds
 * the buffers; else that pass follows the update: the update's dispatches are one or two).
 */
export interface UpdateAdds {
  sums?: UpdateSums;
  totals?: LossTotals;
}

/** The weight average updated in the same pass (Keras use_ema): avg ← avg + (1 − decay)·(p − avg). */
export interface EmaIo {
  /** f32 [count], in the layout of param. */
  avg: BufferRef;
  decay: number;
}

export interface SgdOptions {
  /** Elements of the parameter tensor (or pack: padding between tensors included). */
  count: number;
  /** Tensors the range holds: for the label (default 1). */
  tensors?: number;
  /** μ ≥ 0; 0 (default) is plain SGD and needs no velocity buffer. */
  momentum?: number;
  /** Keras nesterov: p += μ·vel − lr·g instead of p += vel. */
  nesterov?: boolean;
  /** Decoupled weight decay wd ≥ 0: p −= lr·wd·p before the step (Keras 3 `weight_decay`). */
  weightDecay?: number;
}

/** Keras' Adam defaults: the one home of these numbers (the reference and the trainer read them here). */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-7 } as const;

export interface AdamOptions {
  count: number;
  tensors?: number;
  /** Defaults: ADAM_DEFAULTS. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** wd ≥ 0 (default 0). */
  weightDecay?: number;
  /** true: AdamW, p −= lr·wd·p (decoupled); false: Adam with L2, g += wd·p. */
  decoupled?: boolean;
}

/**
 * An update of `count` elements that reads `tensors` and writes `written` of them (the average: one
 * more of each, 3 more ops): the step counter, then the rate it indexes, then the element's
 * tensors, three dependent loads.
 */
function updateWork(
  count: number,
  workgroups: readonly number[],
  tensors: number,
  written: number,
  ops: number,
  ema: boolean,
): Work {
  const more = ema ? 1 : 0;
  return streamWork({
    flops: (ops + 3 * more) * count,
    bytesRead: f32Bytes((tensors + more) * count, 2),
    bytesWritten: f32Bytes((written + more) * count),
    perThread: perThread(count, workgroups),
    loads: 3,
  });
}

/** The uniform fields and label suffix of the average, checked. */
function emaParams(ema: EmaIo | undefined): { ema: number; emaDecay: { f32: number }; label: string } {
  if (!ema) return { ema: 0, emaDecay: { f32: 0 }, label: '' };
  checkRange('ema decay', ema.decay, 0, 1, false);
  return { ema: 1, emaDecay: { f32: ema.decay }, label: ` + ema ${ema.decay}` };
}

const endsLabel = (io: { endsStep?: boolean }): string => (io.endsStep ? ' + step end' : '');

const countLabel = (o: { count: number; tensors?: number }): string =>
  `${o.count}${(o.tensors ?? 1) > 1 ? ` (${o.tensors} tensors)` : ''}`;

function checkCount(count: number, what: string): void {
  if (!Number.isInteger(count) || count < 1)
    throw new ShapeError(`${what} needs a positive element count, got ${count}`);
}

function checkRange(name: string, v: number, lo: number, hi: number, hiOpen: boolean): void {
  if (!(v >= lo && (hiOpen ? v < hi : v <= hi)))
    throw new RangeError(`${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${v}`);
}

/** Every field of the optimizer's uniform (shaders/optimizer.wgsl Params): each update fills its own. */
const NO_FIELDS = {
  count: 0,
  weightDecay: { f32: 0 },
  ema: 0,
  emaDecay: { f32: 0 },
  momentum: { f32: 0 },
  nesterov: 0,
  beta1: { f32: 0 },
  beta2: { f32: 0 },
  eps: { f32: 0 },
  decoupled: 0,
  lnBeta1: { f32: 0 },
  lnBeta2: { f32: 0 },
};

/**
 * The update's dispatch: `entry` over `count` elements, or with `sums` its _sums entry, whose first
 * workgroups add up the segments' partials (and update those elements) and the rest update the others;
 * with `totals`, its _sums_totals entry, whose workgroup 0 first adds the loss's partial totals into stats,
 * where the adapter binds that many storage buffers (else the loss's totals pass follows the update).
 */
function updateKernel(
  gpu: Gpu,
  o: {
    entry: 'sgd' | 'adam';
    fields: Partial<typeof NO_FIELDS> & { count: number };
    bindings: BufferRef[];
    io: StepBuffers & UpdateAdds;
    label: string;
    work: (workgroups: readonly number[]) => Work;
  },
): Dispatch[] {
  const constants = { ENDS_STEP: o.io.endsStep ? 1 : 0 };
  const segments = o.io.sums?.segments ?? [];
  const totals = o.io.totals && addsTotals(gpu, o.entry) ? o.io.totals : undefined;
  const after = o.io.totals && !totals ? xentTotal(gpu, o.io.totals) : [];
  if (segments.length === 0 && !totals) {
    const workgroups = gpu.spread(o.fields.count);
    const params = { ...NO_FIELDS, ...o.fields, segs: 0, reduceGroups: 0, lossGroups: 0, seg: [] };
    const spec = { shader: 'optimizer' as const, entry: o.entry, params, constants, bindings: o.bindings };
    return [gpu.kernel({ ...spec, workgroups, label: o.label, work: o.work(workgroups) }), ...after];
  }
  const t = segmentTable(segments);
  const rest = Math.max(1, Math.min(ceilDiv(o.fields.count, 256), gpu.spreadLimit));
  const workgroups = grid(t.groups + rest);
  const update = o.work([4 * rest]); // the update's part as 64-thread workgroups would take it
  const loads = update.shape.kind === 'stream' ? update.shape.loads : 1;
  // No sums: the partials' binding reads the totals' (both read-only).
  const parts = o.io.sums?.parts ?? totals?.partials ?? gpu.dummy;
  const lossGroups = totals?.groups ?? 0;
  const pads = Array<null>(7 - o.bindings.length).fill(null);
  const sumsLabel = segments.length > 0 ? ` + weight gradient sums: ${t.list}` : '';
  return [
    gpu.kernel({
      shader: 'optimizer',
      entry: `${o.entry}_sums${totals ? '_totals' : ''}`,
      params: { ...NO_FIELDS, ...o.fields, segs: segments.length, reduceGroups: t.groups, lossGroups, seg: t.table },
      constants,
      bindings: [...o.bindings, ...pads, parts, ...(totals ? [totals.partials, totals.stats] : [])],
      workgroups,
      label: `${o.label}${sumsLabel}${totals ? ` + loss totals ${totals.groups}` : ''}`,
      // The sums' chains and tree (as grad_reduce's), then the update's loads; workgroup 0 first adds the
      // loss's totals (a slot's pairs in order, then the 256-slot tree).
      work: chainWork({
        flops: t.flops + update.flops + 2 * lossGroups,
        bytesRead: f32Bytes(t.flops, 2 * lossGroups) + update.bytesRead,
        bytesWritten: f32Bytes(t.outputs, totals ? 2 : 0) + update.bytesWritten,
        threads: 256,
        // Workgroup 0's chain: the totals before its segment's sums.
        depth: Math.max(t.depth + loads + (totals ? ceilDiv(lossGroups, 256) + 1 : 0), loads * perThreadOf(update)),
        barriers: t.barriers + (totals ? treeBarriers(256) : 0),
        sharedBytes: 1024 + (totals ? 2048 : 0),
      }),
    }),
    ...after,
  ];
}

/** Elements each thread of a stream's update visits. */
const perThreadOf = (w: Work): number => (w.shape.kind === 'stream' ? w.shape.perThread : 1);

/** Whether this adapter binds the storage buffers of the update that adds the loss's totals. */
const addsTotals = (gpu: Gpu, entry: 'sgd' | 'adam'): boolean =>
  bindsStorage(gpu, { shader: 'optimizer', entry: `${entry}_sums_totals` });

/**
 * One dispatch: param (and velocity, when momentum > 0; the average, with `ema`) updated in place
 * from grad. velocity: f32 [count], zero-initialised by the caller; required when momentum > 0.
 */
export function sgdUpdate(
  gpu: Gpu,
  io: StepBuffers & UpdateAdds & { param: BufferRef; grad: BufferRef; velocity?: BufferRef; ema?: EmaIo },
  o: SgdOptions,
): Dispatch[] {
  checkCount(o.count, 'sgd');
  const momentum = o.momentum ?? 0;
  const wd = o.weightDecay ?? 0;
  checkRange('sgd momentum', momentum, 0, Infinity, true);
  checkRange('sgd weight decay', wd, 0, Infinity, true);
  // Without momentum and average both would be dummies: the velocity's is the second one.
  const velocity = momentum > 0 ? io.velocity : gpu.dummy2;
  if (!velocity) throw new RangeError('sgd with momentum needs a velocity buffer');
  const ema = emaParams(io.ema);
  const label = `sgd ${countLabel(o)}${momentum > 0 ? ` μ=${momentum}${o.nesterov ? ' nesterov' : ''}` : ''}`;
  return updateKernel(gpu, {
    entry: 'sgd',
    fields: {
      count: o.count,
      momentum: { f32: momentum },
      weightDecay: { f32: wd },
      nesterov: o.nesterov ? 1 : 0,
      ema: ema.ema,
      emaDecay: ema.emaDecay,
    },
    bindings: [io.counter, io.lrTable, io.param, io.grad, io.ema?.avg ?? gpu.dummy, velocity],
    io,
    label: `${label}${wd ? ` wd=${wd}` : ''}${ema.label}${endsLabel(io)}`,
    work: (w) => updateWork(o.count, w, momentum > 0 ? 3 : 2, momentum > 0 ? 2 : 1, 6, !!io.ema),
  });
}

/**
 * ln β for 1 − β^t on the GPU, of the f32 β the shader's m and v updates use, so that bias correction
 * matches them (at t = 1 the first step is exactly lr·g/(|g| + ε/sqrt(1 − β2))). Clamped so that
 * β = 0 stays finite (e^(−80t) is 0 in f32).
 */
const lnBeta = (b: number): number => Math.max(Math.log(Math.fround(b)), -80);

/**
 * One dispatch: param, m and v (f32 [count] each, m and v zero-initialised) updated in place, and
 * the average with `ema`.
 */
export function adamUpdate(
  gpu: Gpu,
  io: StepBuffers & UpdateAdds & { param: BufferRef; grad: BufferRef; m: BufferRef; v: BufferRef; ema?: EmaIo },
  o: AdamOptions,
): Dispatch[] {
  checkCount(o.count, 'adam');
  const beta1 = o.beta1 ?? ADAM_DEFAULTS.beta1,
    beta2 = o.beta2 ?? ADAM_DEFAULTS.beta2,
    eps = o.eps ?? ADAM_DEFAULTS.eps,
    wd = o.weightDecay ?? 0;
  checkRange('adam beta1', beta1, 0, 1, true);
  checkRange('adam beta2', beta2, 0, 1, true);
  checkRange('adam epsilon', eps, 0, Infinity, true);
  checkRange('adam weight decay', wd, 0, Infinity, true);
  const decoupled = o.decoupled ?? false;
  const ema = emaParams(io.ema);
  return updateKernel(gpu, {
    entry: 'adam',
    fields: {
      count: o.count,
      beta1: { f32: beta1 },
      beta2: { f32: beta2 },
      eps: { f32: eps },
      weightDecay: { f32: wd },
      decoupled: decoupled ? 1 : 0,
      lnBeta1: { f32: lnBeta(beta1) },
      lnBeta2: { f32: lnBeta(beta2) },
      ema: ema.ema,
      emaDecay: ema.emaDecay,
    },
    bindings: [io.counter, io.lrTable, io.param, io.grad, io.ema?.avg ?? gpu.dummy, io.m, io.v],
    io,
    label: `${decoupled ? 'adamw' : 'adam'} ${countLabel(o)}${wd ? ` wd=${wd}` : ''}${ema.label}${endsLabel(io)}`,
    work: (w) => updateWork(o.count, w, 4, 3, 14, !!io.ema),
  });
}

/** One dispatch: counter[0] += 1, at the end of a training step whose update does not end it (endsStep). */
export function advanceCounter(gpu: Gpu, io: { counter: BufferRef }): Dispatch[] {
  return [
    gpu.kernel({
      shader: 'optimizer',
      entry: 'advance_counter',
      bindings: [io.counter],
      workgroups: 1,
      label: 'advance counter',
      work: chainWork({ flops: 1, bytesRead: 4, bytesWritten: 4, threads: 1, depth: 1 }),
    }),
  ];
}
