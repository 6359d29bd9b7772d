// Planning: a graph becomes fixed lists of dispatches, once per (model, batch size, mode).
//   1. steps: the forward nodes in order, the loss, then (training) the backward nodes in reverse,
//      each naming the tensors it reads and writes;
//   2. buffers: persistent tensors get their own; the rest share pooled buffers by liveness (a
//      buffer is reused once the last step reading its tensor has passed);
//   3. dispatches: each step's kernels, created once with their bind groups.
// A training step is then just: record plan.forward, plan.backward (+ optimizer) into a pass.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { accumulate } from '../ops/elementwise.ts';
import { numel, type Graph, type Tensor } from './graph.ts';
import { OPS, lossDispatches, type BackwardIO, type ForwardIO, type OpDef, type OpName } from './ops.ts';

export interface PlanOptions {
  training: boolean;
  logits: Tensor;
  /** Labels tensor: with it the plan computes the loss (and, training, the gradients). */
  labels: Tensor | null;
  smoothing?: number;
  /** Buffers of param and state tensors, by tensor name. */
  persistent: ReadonlyMap<string, GPUBuffer>;
  counter: GPUBuffer;
  stats: GPUBuffer;
  /** Parameter names that are frozen (no gradient). */
  frozen?: ReadonlySet<string>;
  /** More tensors whose buffers stay valid after a step (e.g. the penultimate features). */
  keep?: Tensor[];
}

export interface Plan {
  forward: Dispatch[];
  backward: Dispatch[];
  /** Where a tensor lives (input, labels, logits, loss stay valid after a step). */
  buffer(t: Tensor): BufferRef;
  /** Gradient buffers of trainable parameters, by name (training plans). */
  grads: Map<string, BufferRef>;
  /** Bytes of the buffers this plan allocated (activations, gradients, saved values). */
  plannedBytes: number;
  release(): void;
}

interface Step {
  reads: Tensor[];
  writes: Tensor[];
  scratch: number[][];
  emit(buf: (t: Tensor) => BufferRef, scratch: BufferRef[]): Dispatch[];
}

const bytesOf = (t: Tensor): number => numel(t.shape) * 4;

export function plan(gpu: Gpu, graph: Graph, o: PlanOptions): Plan {
  const root = new Map<number, Tensor>(); // storage aliasing: tensor id → tensor that owns the storage
  const storage = (t: Tensor): Tensor => root.get(t.id) ?? t;
  const fwdSteps: Step[] = [];
  const bwdSteps: Step[] = [];
  const savedOf = new Map<number, Tensor[]>();

  // Which tensors carry a gradient back to a trainable parameter.
  const needsGrad = new Set<number>();
  if (o.training) {
    for (const t of graph.tensors) if (t.kind === 'param' && !o.frozen?.has(t.name!)) needsGrad.add(t.id);
    for (const n of graph.nodes) if (n.inputs.some((i) => needsGrad.has(i.id))) needsGrad.add(n.out.id);
  }

  const ioFor = (n: (typeof graph.nodes)[number], buf: (t: Tensor) => BufferRef): ForwardIO => ({
    inputs: n.inputs.map(buf),
    inShapes: n.inputs.map((i) => i.shape),
    out: buf(n.out),
    outShape: n.out.shape,
    saved: (savedOf.get(n.out.id) ?? []).map(buf),
    state: n.state.map(buf),
    training: o.training,
    counter: o.counter,
    stats: o.stats,
  });

  for (const n of graph.nodes) {
    const def = OPS[n.op as OpName] as OpDef<unknown>;
    if (def.alias?.(n.attrs, o.training)) {
      root.set(n.out.id, storage(n.inputs[0]!));
      continue;
    }
    const saved = (
      def.saved?.(
        n.inputs.map((i) => i.shape),
        n.attrs,
        o.training,
      ) ?? []
    ).map((s) => graph.tensor(s.shape, 'temp', s.dtype));
    savedOf.set(n.out.id, saved);
    fwdSteps.push({
      reads: [...n.inputs, ...n.state],
      writes: [n.out, ...saved],
      scratch: [],
      emit: (buf) => def.forward(gpu, ioFor(n, buf), n.attrs),
    });
  }

  // The loss seeds the backward: dL/dlogits comes out of the loss kernel itself.
  const grads = new Map<number, Tensor>();
  if (o.labels) {
    const n = o.logits.shape[0]!,
      classes = o.logits.shape[1]!;
    const loss = graph.tensor([n], 'temp');
    const dlogits = o.training && needsGrad.has(o.logits.id) ? graph.tensor(o.logits.shape, 'temp') : null;
    if (dlogits) grads.set(o.logits.id, dlogits);
    fwdSteps.push({
      reads: [o.logits, o.labels],
      writes: dlogits ? [loss, dlogits] : [loss],
      scratch: [],
      emit: (buf) =>
        lossDispatches(
          gpu,
          {
            logits: buf(o.logits),
            labels: buf(o.labels!),
            loss: buf(loss),
            dlogits: dlogits ? buf(dlogits) : null,
            stats: o.stats,
          },
          n,
          classes,
          o.smoothing ?? 0,
        ),
    });
  }

  const paramGrads = new Map<string, Tensor>();
  if (o.training) {
    for (const n of [...graph.nodes].reverse()) {
      const dOut = grads.get(n.out.id);
      if (!dOut) continue;
      const def = OPS[n.op as OpName] as OpDef<unknown>;
      const wants = n.inputs.map((i) => needsGrad.has(i.id));
      if (def.alias?.(n.attrs, true)) {
        // Same storage both ways: the input's gradient is the output's.
        const inp = n.inputs[0]!;
        if (wants[0]) contribute(inp, dOut);
        continue;
      }
      if (!def.backward) throw new Error(`op ${n.op} has no backward`);
      // Each wanted input gets a fresh tensor; if it already had a gradient, the fresh one is added in.
      const targets = n.inputs.map((inp, i) => (wants[i] ? graph.tensor(inp.shape, 'temp') : null));
      const scratch =
        def.scratch?.(
          n.inputs.map((i) => i.shape),
          n.out.shape,
          n.attrs,
          gpu,
        ) ?? [];
      const saved = savedOf.get(n.out.id) ?? [];
      const backward = def.backward;
      bwdSteps.push({
        reads: [...n.inputs, n.out, ...saved, dOut],
        writes: targets.filter((t): t is Tensor => t !== null),
        scratch,
        emit: (buf, scr): Dispatch[] => {
          const io: BackwardIO = {
            ...ioFor(n, buf),
            dOut: buf(dOut),
            dIn: targets.map((t) => (t ? buf(t) : null)),
            scratch: scr,
          };
          return backward(gpu, io, n.attrs);
        },
      });
      n.inputs.forEach((inp, i) => {
        if (targets[i]) contribute(inp, targets[i]!);
      });
    }
  }

  function contribute(t: Tensor, g: Tensor): void {
    const prev = grads.get(t.id);
    if (!prev) {
      grads.set(t.id, g);
      if (t.kind === 'param') paramGrads.set(t.name!, g);
      return;
    }
    bwdSteps.push({
      reads: [g, prev],
      writes: [prev],
      scratch: [],
      emit: (buf) => [accumulate(gpu, { a: buf(g), c: buf(prev) }, numel(g.shape))],
    });
  }

  // --- buffers by liveness -------------------------------------------------------------
  const steps = [...fwdSteps, ...bwdSteps];
  checkLimits(
    graph,
    gpu.limits,
    steps.flatMap((s) => s.scratch),
  );
  const lastUse = new Map<number, number>();
  const keep = new Set<number>([storage(o.logits).id]);
  for (const g of paramGrads.values()) keep.add(g.id);
  for (const t of o.keep ?? []) keep.add(storage(t).id);
  steps.forEach((s, i) => {
    for (const t of [...s.reads, ...s.writes]) lastUse.set(storage(t).id, i);
  });

  const owned: GPUBuffer[] = [];
  const free: GPUBuffer[] = [];
  const where = new Map<number, BufferRef>();
  let plannedBytes = 0;
  const take = (bytes: number, label: string): GPUBuffer => {
    let best = -1;
    for (let i = 0; i < free.length; i++)
      if (free[i]!.size >= bytes && (best < 0 || free[i]!.size < free[best]!.size)) best = i;
    if (best >= 0) return free.splice(best, 1)[0]!;
    const b = gpu.alloc(bytes, label);
    owned.push(b);
    plannedBytes += b.size;
    return b;
  };
  const place = (t: Tensor): void => {
    const s = storage(t);
    if (where.has(s.id)) return;
    if (s.kind === 'param' || s.kind === 'state') {
      const b = o.persistent.get(s.name!);
      if (!b) throw new Error(`no buffer for ${s.kind} ${s.name}`);
      where.set(s.id, b);
      return;
    }
    const bytes = bytesOf(s);
    where.set(s.id, { buffer: take(bytes, s.kind === 'temp' ? `t${s.id}` : s.kind), size: Math.ceil(bytes / 4) * 4 });
  };
  const buf = (t: Tensor): BufferRef => {
    const r = where.get(storage(t).id);
    if (!r) throw new Error(`tensor ${t.id} has no buffer`);
    return r;
  };
  // Inputs and labels first, persistent for the plan's life.
  for (const t of graph.tensors) if (t.kind === 'input' || t.kind === 'label') place(t);
  if (o.labels) place(o.labels);

  const dispatches: Dispatch[][] = [];
  steps.forEach((s, i) => {
    for (const t of s.reads) place(t); // e.g. params
    for (const t of s.writes) place(t);
    const scratch = s.scratch.map((shape) => ({ buffer: take(numel(shape) * 4, 'scratch'), size: numel(shape) * 4 }));
    dispatches.push(s.emit(buf, scratch));
    for (const sc of scratch) free.push(sc.buffer);
    for (const t of [...s.reads, ...s.writes]) {
      const st = storage(t);
      if (st.kind !== 'temp' || keep.has(st.id) || lastUse.get(st.id) !== i) continue;
      const r = where.get(st.id);
      if (r && 'buffer' in r) free.push(r.buffer);
      lastUse.delete(st.id);
    }
  });

  const forward = dispatches.slice(0, fwdSteps.length).flat();
  const backward = dispatches.slice(fwdSteps.length).flat();
  const gradRefs = new Map<string, BufferRef>();
  for (const [name, g] of paramGrads) gradRefs.set(name, buf(g));
  return {
    forward,
    backward,
    buffer: buf,
    grads: gradRefs,
    plannedBytes,
    release() {
      gpu.free([...forward, ...backward]);
      for (const b of owned) gpu.release(b);
    },
  };
}

export type BufferLimits = Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize'>;

/**
 * Every tensor of a plan gets a storage buffer bound whole, so each must fit both the adapter's
 * buffer size and its binding size. Checked before anything is allocated: a clear refusal that
 * names the tensor and the limit, not a bind-group validation error once training has started.
 * `scratch` adds the shapes of the backward's scratch buffers.
 */
export function checkLimits(graph: Graph, limits: BufferLimits, scratch: readonly (readonly number[])[] = []): void {
  const producer = new Map<number, { op: string; layer: string | null }>();
  for (const n of graph.nodes) {
    // A node's layer is the prefix of its parameters' names (conv1.weight → conv1).
    const param = n.inputs.find((i) => i.kind === 'param' && i.name);
    producer.set(n.out.id, {
      op: n.op,
      layer: param ? param.name!.replace(/\.[^.]*$/, '').replace(/\.proj$/, '') : null,
    });
  }
  const describe = (t: Tensor): string => {
    if (t.kind === 'param' || t.kind === 'state') return `parameter "${t.name}"`;
    if (t.kind === 'input') return 'the input batch';
    if (t.kind === 'label') return 'the batch labels';
    const p = producer.get(t.id);
    if (p) return `the output of ${p.layer ? `${p.layer} (${p.op})` : p.op}`;
    return 'a temporary buffer';
  };
  const items = [
    ...graph.tensors.map((t) => ({
      what: describe(t),
      shape: t.shape,
      persistent: t.kind === 'param' || t.kind === 'state',
    })),
    ...scratch.map((shape) => ({ what: 'a scratch buffer', shape, persistent: false })),
  ];
  for (const { what, shape, persistent } of items) {
    const bytes = numel(shape) * 4;
    const [limit, name] =
      bytes > limits.maxBufferSize
        ? [limits.maxBufferSize, 'maxBufferSize']
        : [limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize'];
    if (bytes <= limit) continue;
    const n = (x: number): string => x.toLocaleString('en-US');
    throw new ShapeError(
      `${what} [${shape.join(', ')}] needs ${n(bytes)} bytes but this adapter's ${name} is ${n(limit)}: ${persistent ? 'use a smaller layer' : 'use a smaller batch or smaller layers'}`,
    );
  }
}
