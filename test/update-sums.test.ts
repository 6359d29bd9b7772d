// The update that adds up the weight gradients' split-K sums on its way (shaders/optimizer.wgsl sgd_sums,
// adam_sums; src/ops/optimizer.ts `sums`): bit for bit the separate sums pass (shaders/grad_reduce.wgsl)
// and then the plain update, for every optimizer form, over ranges bound at an offset into their buffers
// (the segments' offsets count from the range), the elements no segment writes updated from grad. And the
// update that also adds the loss's partial totals into stats (the _sums_totals entries; `totals`): bit for
// bit the totals pass (shaders/softmax_xent.wgsl total), or that pass after it where too few buffers bind.
import { describe, expect, it } from 'vitest';
import { useGpu, f32 } from './helpers/gpu.ts';
import { expectSameBits } from './helpers/bits.ts';
import { adamUpdate, sgdUpdate, type UpdateAdds } from '../src/ops/optimizer.ts';
import { xentTotal } from '../src/ops/softmax_xent.ts';
import { reduceGradients, splitLength, writtenLengths, type GradSegment } from '../src/ops/grad-reduce.ts';
import { sumsOfRuns, type Run } from '../src/train/optimizer.ts';
import type { BufferRef, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

const COUNT = 700;
/** Floats before the bound ranges: the segments' offsets count from the range, not the buffer. */
const AT = 64;
/** A conv's dW with db in the last column, a dense layer's with db in the last row, a dW alone (many splits). */
const LAYOUTS: [string, GradSegment['layout'], number, number][] = [
  ['conv', { splits: 20, rows: 4, cols: 10, sums: 'column' }, 16, 60],
  ['dense', { splits: 3, rows: 6, cols: 8, sums: 'row' }, 200, 260],
  ['dense2', { splits: 700, rows: 5, cols: 7, sums: 'none' }, 400, 0],
];

function segments(): GradSegment[] {
  let parts = 0;
  return LAYOUTS.map(([label, layout, dw, db]) => {
    const s = { layout, parts, dw, db, label };
    parts += splitLength(layout);
    return s;
  });
}

type Update = (g: Gpu, io: Record<string, BufferRef>, adds?: UpdateAdds) => ReturnType<typeof adamUpdate>;
const step = (io: Record<string, BufferRef>) => ({
  counter: io.counter!,
  lrTable: io.lrTable!,
  endsStep: true,
});

const FORMS: [string, Update][] = [
  [
    'adam + ema',
    (g, io, adds) =>
      adamUpdate(
        g,
        {
          ...step(io),
          param: io.param!,
          grad: io.grad!,
          m: io.m!,
          v: io.v!,
          ema: { avg: io.avg!, decay: 0.9 },
          ...adds,
        },
        { count: COUNT, tensors: 3 },
      ),
  ],
  [
    'adamw, weight decay',
    (g, io, adds) =>
      adamUpdate(
        g,
        { ...step(io), param: io.param!, grad: io.grad!, m: io.m!, v: io.v!, ...adds },
        { count: COUNT, weightDecay: 0.01, decoupled: true },
      ),
  ],
  ['sgd', (g, io, adds) => sgdUpdate(g, { ...step(io), param: io.param!, grad: io.grad!, ...adds }, { count: COUNT })],
  [
    'sgd nesterov, weight decay + ema',
    (g, io, adds) =>
      sgdUpdate(
        g,
        { ...step(io), param: io.param!, grad: io.grad!, velocity: io.m!, ema: { avg: io.avg!, decay: 0.5 }, ...adds },
        { count: COUNT, momentum: 0.9, nesterov: true, weightDecay: 0.05 },
      ),
  ],
];

/**
 * Runs `form` twice from the same state: the sums pass, the update, and the totals pass (with `totals` pairs
 * of the loss's partial totals); and the update that adds them on its way (on `on`, else the same adapter).
 */
async function both(g: Gpu, form: Update, o: { totals?: number; sums?: boolean; on?: Gpu } = {}) {
  const rng = new Rng(7);
  const segs = o.sums === false ? [] : segments();
  const parts = f32(
    rng.floats(
      Math.max(
        1,
        segs.reduce((a, s) => a + splitLength(s.layout), 0),
      ),
    ),
  );
  // The gradients the sums write start as NaN: an update that read one before its sum was written would
  // turn its parameter into NaN, whatever order the workgroups ran in.
  const param = f32(rng.floats(AT + COUNT));
  const grad = f32(rng.floats(AT + COUNT));
  for (const s of segs) {
    const n = writtenLengths(s.layout);
    grad.fill(Number.NaN, AT + s.dw, AT + s.dw + n.dw);
    grad.fill(Number.NaN, AT + s.db, AT + s.db + n.db);
  }
  const state = {
    param,
    grad,
    m: f32(rng.floats(AT + COUNT, 0, 0.1)),
    v: f32(rng.floats(AT + COUNT, 0, 0.1)),
    avg: f32(rng.floats(AT + COUNT)),
  };
  // Each 64 rows' loss sum (f32 bits) and correct count, as a loss leaves them; stats already hold a sum.
  const groups = o.totals ?? 0;
  const pairs = new Uint32Array(2 * Math.max(1, groups));
  for (let i = 0; i < groups; i++) {
    pairs[2 * i] = new Uint32Array(f32([rng.floats(1, 0, 150)[0]!]).buffer)[0]!;
    pairs[2 * i + 1] = rng.int(65);
  }
  const run = async (fused: boolean) => {
    const on = fused ? (o.on ?? g) : g;
    const bufs = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, g.upload(v)]));
    const [p, counter, lrTable] = [g.upload(parts), g.upload(new Uint32Array([4, 4])), g.upload(f32([0.05]))];
    const [partials, stats] = [g.upload(pairs), g.upload(new Uint32Array([0x3f800000, 3]))];
    const range = (b: GPUBuffer): BufferRef => ({ buffer: b, offset: 4 * AT, size: 4 * COUNT });
    const io = { ...Object.fromEntries(Object.entries(bufs).map(([k, b]) => [k, range(b)])), counter, lrTable };
    const absolute = segs.map((s) => ({ ...s, dw: s.dw + AT, db: s.db + AT }));
    const totals = groups > 0 ? { partials, groups, stats } : undefined;
    const sums = segs.length > 0 ? { parts: p, segments: segs } : undefined;
    const reduce = segs.length > 0 ? reduceGradients(g, { parts: p, grads: bufs.grad! }, absolute) : [];
    const d = fused
      ? form(on, io, { sums, totals })
      : [...reduce, ...form(g, io), ...(totals ? xentTotal(g, totals) : [])];
    g.run(d);
    const out = Object.fromEntries(
      await Promise.all(Object.entries(bufs).map(async ([k, b]) => [k, await g.readF32(b)])),
    );
    const [steps, words] = [await g.readU32(counter), await g.readU32(stats)];
    g.free(d);
    for (const b of [...Object.values(bufs), p, counter, lrTable, partials, stats]) g.release(b);
    return { out: out as Record<string, Float32Array>, steps, stats: words, labels: d.map((q) => q.label) };
  };
  return { fused: await run(true), plain: await run(false) };
}

describe('the update that sums the weight gradients on its way', () => {
  const gpu = useGpu();
  it.each(FORMS)('%s: bit for bit the sums pass, then the update', async (_name, form) => {
    const { fused, plain } = await both(gpu(), form);
    expect(fused.labels).toHaveLength(1);
    expect(fused.labels[0]).toMatch(/\+ weight gradient sums: conv 20, dense 3, dense2 700 splits$/);
    expect(plain.labels).toHaveLength(2);
    for (const k of Object.keys(plain.out)) expectSameBits(k, fused.out[k]!, plain.out[k]!);
    expect([...fused.steps], 'the step ended once').toEqual([5, 4]);
    // And the update moved every element of the range, those the sums wrote and the others alike.
    const before = new Rng(7);
    before.floats(LAYOUTS.reduce((a, [, l]) => a + splitLength(l), 0));
    const param = before.floats(AT + COUNT);
    const moved = fused.out.param!.filter((p, i) => i >= AT && p !== Math.fround(param[i]!)).length;
    expect(moved).toBe(COUNT);
    expect(fused.out.param!.slice(0, AT), 'nothing before the range').toEqual(f32(param.slice(0, AT)));
    expect(fused.out.param!.every(Number.isFinite), 'no NaN gradient read').toBe(true);
  });

  // A loss that leaves partial totals (bands of the logits' GEMM, a batch over 256 rows): the update adds
  // them into stats as it ends the step, the same bits as the totals pass, with or without sums to add.
  it.each(FORMS)('%s: adds the loss totals as it ends the step, bit for bit the totals pass', async (_name, form) => {
    for (const [groups, sums] of [
      [5, true],
      [300, false],
    ] as const) {
      const { fused, plain } = await both(gpu(), form, { totals: groups, sums });
      expect(fused.labels).toHaveLength(1);
      expect(fused.labels[0]).toMatch(new RegExp(`\\+ loss totals ${groups}$`));
      expect(fused.labels[0]?.includes('weight gradient sums')).toBe(sums);
      expect(plain.labels.at(-1)).toBe(`softmax_xent totals ${groups} groups`);
      expect([...fused.stats], 'loss sum bits and correct count').toEqual([...plain.stats]);
      expect(fused.stats[1]).toBeGreaterThan(3);
      for (const k of Object.keys(plain.out)) expectSameBits(k, fused.out[k]!, plain.out[k]!);
      expect([...fused.steps], 'the step ended once').toEqual([5, 4]);
    }
  });

  it('leaves the totals to their pass after the update where the adapter binds too few storage buffers', async () => {
    const g = gpu();
    const limits = new Proxy(g.limits, {
      get: (t, k) => (k === 'maxStorageBuffersPerShaderStage' ? 8 : Reflect.get(t, k)),
    });
    const on = Object.assign(Object.create(g) as Gpu, { limits });
    const [, form] = FORMS[0]!;
    const { fused, plain } = await both(g, form, { totals: 5, on });
    expect(fused.labels).toHaveLength(2);
    expect(fused.labels[0]).toMatch(/weight gradient sums: conv 20, dense 3, dense2 700 splits$/);
    expect(fused.labels[1]).toBe('softmax_xent totals 5 groups');
    expect([...fused.stats]).toEqual([...plain.stats]);
    for (const k of Object.keys(plain.out)) expectSameBits(k, fused.out[k]!, plain.out[k]!);
  });

  it("gives each run the segments in its range, offsets from the run's start; refuses one across runs", () => {
    const [a, b] = [{} as GPUBuffer, {} as GPUBuffer];
    // Two runs of one gradient buffer (a tensor without a gradient between them), one of another.
    const runs: Run[] = [
      { pack: 0, offset: 0, bytes: 4 * 300, tensors: 2, grad: a, gradOffset: 0 },
      { pack: 0, offset: 4 * 320, bytes: 4 * 500, tensors: 3, grad: a, gradOffset: 4 * 320 },
      { pack: 1, offset: 0, bytes: 4 * 200, tensors: 1, grad: b, gradOffset: 0 },
    ];
    const seg = (label: string, dw: number, db: number, sums: 'column' | 'none' = 'column'): GradSegment => ({
      layout: { splits: 4, rows: 4, cols: 10, sums },
      ...{ parts: 0, dw, db, label },
    });
    const parts = {} as GPUBuffer;
    const sums = (segments: GradSegment[], grads = a) => ({ parts, groups: [{ grads, segments }] });
    const got = sumsOfRuns(runs, sums([seg('x', 10, 46), seg('y', 400, 436), seg('z', 700, 0, 'none')]));
    expect(got.get(runs[0]!)?.segments.map((s) => [s.label, s.dw, s.db])).toEqual([['x', 10, 46]]);
    expect(got.get(runs[1]!)?.segments.map((s) => [s.label, s.dw, s.db])).toEqual([
      ['y', 80, 116],
      ['z', 380, 0],
    ]);
    expect(got.has(runs[2]!)).toBe(false);
    expect(sumsOfRuns(runs, sums([seg('w', 10, 46)], b)).get(runs[2]!)?.segments).toHaveLength(1);
    // dW (36 floats) running past the first run's end; db in the other run; a buffer no run has.
    expect(() => sumsOfRuns(runs, sums([seg('over', 280, 10)]))).toThrow(/over: .* not in one update's range/);
    expect(() => sumsOfRuns(runs, sums([seg('split', 10, 400)]))).toThrow(/split/);
    expect(() => sumsOfRuns(runs, sums([seg('lost', 10, 46)], {} as GPUBuffer))).toThrow(/lost/);
    expect(sumsOfRuns(runs, null).size).toBe(0);
  });

  it('refuses more segments than a pass holds', () => {
    const g = gpu();
    const b = g.upload(new Float32Array(16));
    const many = Array.from({ length: 33 }, () => segments()[0]!);
    const io = { counter: b, lrTable: b, param: b, grad: b, sums: { parts: b, segments: many } };
    expect(() => sgdUpdate(g, io, { count: 16 })).toThrow(/32 segments/);
    g.release(b);
  });
});
