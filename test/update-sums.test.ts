// The update that adds up the weight gradients' split-K sums on its way (shaders/optimizer.wgsl sgd_sums,
// adam_sums; src/ops/optimizer.ts `sums`): bit for bit the separate sums pass (shaders/grad_reduce.wgsl)
// and then the plain update, for every optimizer form, over ranges bound at an offset into their buffers
// (the segments' offsets count from the range), the elements no segment writes updated from grad.
import { describe, expect, it } from 'vitest';
import { useGpu, f32 } from './helpers/gpu.ts';
import { expectSameBits } from './helpers/bits.ts';
import { adamUpdate, sgdUpdate, type UpdateSums } from '../src/ops/optimizer.ts';
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

type Update = (g: Gpu, io: Record<string, BufferRef>, sums?: UpdateSums) => ReturnType<typeof adamUpdate>;
const step = (io: Record<string, BufferRef>) => ({
  counter: io.counter!,
  lrTable: io.lrTable!,
  endsStep: true,
});

const FORMS: [string, Update][] = [
  [
    'adam + ema',
    (g, io, sums) =>
      adamUpdate(
        g,
        {
          ...step(io),
          param: io.param!,
          grad: io.grad!,
          m: io.m!,
          v: io.v!,
          ema: { avg: io.avg!, decay: 0.9 },
          sums,
        },
        { count: COUNT, tensors: 3 },
      ),
  ],
  [
    'adamw, weight decay',
    (g, io, sums) =>
      adamUpdate(
        g,
        { ...step(io), param: io.param!, grad: io.grad!, m: io.m!, v: io.v!, sums },
        { count: COUNT, weightDecay: 0.01, decoupled: true },
      ),
  ],
  ['sgd', (g, io, sums) => sgdUpdate(g, { ...step(io), param: io.param!, grad: io.grad!, sums }, { count: COUNT })],
  [
    'sgd nesterov, weight decay + ema',
    (g, io, sums) =>
      sgdUpdate(
        g,
        { ...step(io), param: io.param!, grad: io.grad!, velocity: io.m!, ema: { avg: io.avg!, decay: 0.5 }, sums },
        { count: COUNT, momentum: 0.9, nesterov: true, weightDecay: 0.05 },
      ),
  ],
];

/** Runs `form` twice from the same state: the sums pass then the update, and the update with the sums. */
async function both(g: Gpu, form: Update) {
  const rng = new Rng(7);
  const segs = segments();
  const parts = f32(rng.floats(segs.reduce((a, s) => a + splitLength(s.layout), 0)));
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
  const run = async (fused: boolean) => {
    const bufs = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, g.upload(v)]));
    const [p, counter, lrTable] = [g.upload(parts), g.upload(new Uint32Array([4, 4])), g.upload(f32([0.05]))];
    const range = (b: GPUBuffer): BufferRef => ({ buffer: b, offset: 4 * AT, size: 4 * COUNT });
    const io = { ...Object.fromEntries(Object.entries(bufs).map(([k, b]) => [k, range(b)])), counter, lrTable };
    const absolute = segs.map((s) => ({ ...s, dw: s.dw + AT, db: s.db + AT }));
    const d = fused
      ? form(g, io, { parts: p, segments: segs })
      : [...reduceGradients(g, { parts: p, grads: bufs.grad! }, absolute), ...form(g, io)];
    g.run(d);
    const out = Object.fromEntries(
      await Promise.all(Object.entries(bufs).map(async ([k, b]) => [k, await g.readF32(b)])),
    );
    const steps = await g.readU32(counter);
    g.free(d);
    for (const b of [...Object.values(bufs), p, counter, lrTable]) g.release(b);
    return { out: out as Record<string, Float32Array>, steps, labels: d.map((q) => q.label) };
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
