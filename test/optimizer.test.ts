import { describe, expect, it } from 'vitest';
import { useGpu, f32, spreadFromName } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { adamUpdate, advanceCounter, sgdUpdate, type AdamOptions, type SgdOptions } from '../src/ops/optimizer.ts';
import { adamRef, sgdRef } from '../src/ops/optimizer.ref.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

// A few f32 roundings per step on values of order 1 and steps of order lr: ulp-level drift.
const TOL = { atol: 2e-6, rtol: 1e-5 };

type Opt = { kind: 'sgd'; o: Omit<SgdOptions, 'count'> } | { kind: 'adam'; o: Omit<AdamOptions, 'count'> };
interface Case {
  count: number;
  steps: number;
  lr: number[];
  /** counter[0] before the first step; > 0 also starts from random optimizer state (a resume). */
  start?: number;
  /** A second submit of as many steps after the host rewrites the lr table with this one (same length). */
  rewrite?: number[];
}

const LR = [0.1, 0.05, 0.02, 0.01];

interface State {
  param: Float64Array;
  s1: Float64Array;
  s2: Float64Array;
}

function reference(opt: Opt, st: State, grads: Float64Array[], lrTable: number[], start: number): State {
  const base = { param: st.param, grads, lrTable, startStep: start };
  if (opt.kind === 'sgd') {
    const r = sgdRef({ ...base, velocity: st.s1 }, { count: st.param.length, ...opt.o });
    return { param: r.param, s1: r.velocity, s2: st.s2 };
  }
  const r = adamRef({ ...base, m: st.s1, v: st.s2 }, { count: st.param.length, ...opt.o });
  return { param: r.param, s1: r.m, s2: r.v };
}

/** Records update + advanceCounter for each gradient buffer: the steps of one submit. */
function record(
  g: Gpu,
  opt: Opt,
  bufs: { param: GPUBuffer; s1: GPUBuffer; s2: GPUBuffer; counter: GPUBuffer; lrTable: GPUBuffer },
  grads: GPUBuffer[],
  count: number,
): Dispatch[] {
  const ds: Dispatch[] = [];
  for (const grad of grads) {
    const io = { param: bufs.param, grad, counter: bufs.counter, lrTable: bufs.lrTable };
    ds.push(
      ...(opt.kind === 'sgd'
        ? sgdUpdate(g, { ...io, velocity: opt.o.momentum ? bufs.s1 : undefined }, { count, ...opt.o })
        : adamUpdate(g, { ...io, m: bufs.s1, v: bufs.s2 }, { count, ...opt.o })),
    );
    ds.push(...advanceCounter(g, { counter: bufs.counter }));
  }
  return ds;
}

describe('optimizers (several steps in one submit, GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const rows: [string, Opt, Case][] = [
    ['sgd plain, 1 element', { kind: 'sgd', o: {} }, { count: 1, steps: 3, lr: LR }],
    ['sgd plain + weight decay, 1003', { kind: 'sgd', o: { weightDecay: 0.01 } }, { count: 1003, steps: 4, lr: LR }],
    ['sgd momentum 0.9, 65', { kind: 'sgd', o: { momentum: 0.9 } }, { count: 65, steps: 4, lr: LR }],
    [
      'sgd momentum 0.9 nesterov, 1003',
      { kind: 'sgd', o: { momentum: 0.9, nesterov: true } },
      { count: 1003, steps: 4, lr: LR },
    ],
    [
      'sgd momentum 0.5 nesterov + weight decay, resume at step 7',
      { kind: 'sgd', o: { momentum: 0.5, nesterov: true, weightDecay: 0.05 } },
      { count: 63, steps: 3, lr: [0.3, 0.2, 0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02], start: 7 },
    ],
    [
      'sgd momentum, lr table shorter than the run (last entry repeats)',
      { kind: 'sgd', o: { momentum: 0.9 } },
      { count: 100, steps: 5, lr: [0.1, 0.03] },
    ],
    [
      'sgd momentum, lr table rewritten between submits',
      { kind: 'sgd', o: { momentum: 0.8 } },
      { count: 130, steps: 3, lr: [0.1, 0.05, 0.02, 7, 7, 7], rewrite: [9, 9, 9, 0.4, 0.3, 0.2] },
    ],
    [
      'sgd momentum, 64·65535+37 elements (2-D grid)',
      { kind: 'sgd', o: { momentum: 0.9 } },
      { count: 64 * 65535 + 37, steps: 3, lr: LR },
    ],
    ['adam (Keras defaults), 1', { kind: 'adam', o: {} }, { count: 1, steps: 4, lr: LR }],
    [
      'adam, 1003 elements in one workgroup (grid-stride loop)',
      { kind: 'adam', o: {} },
      { count: 1003, steps: 3, lr: LR },
    ],
    ['adam (Keras defaults), 1003', { kind: 'adam', o: {} }, { count: 1003, steps: 4, lr: [1e-3, 2e-3, 3e-3, 4e-3] }],
    [
      'adam + L2 weight decay 0.01 (g += wd·p), 257',
      { kind: 'adam', o: { weightDecay: 0.01, decoupled: false } },
      { count: 257, steps: 4, lr: LR },
    ],
    [
      'adamw weight decay 0.004 (p −= lr·wd·p), 257',
      { kind: 'adam', o: { weightDecay: 0.004, decoupled: true } },
      { count: 257, steps: 4, lr: LR },
    ],
    [
      'adamw wd 0.1, resume at step 5 (bias correction past t = 5)',
      { kind: 'adam', o: { weightDecay: 0.1, decoupled: true } },
      { count: 100, steps: 3, lr: [0.01], start: 5 },
    ],
    [
      'adam, resume at step 1000 (β^t near 0)',
      { kind: 'adam', o: {} },
      { count: 99, steps: 3, lr: [0.01], start: 1000 },
    ],
    [
      'adam β1 0, β2 0.99, ε 1e-3 (ε placement matters)',
      { kind: 'adam', o: { beta1: 0, beta2: 0.99, eps: 1e-3 } },
      { count: 77, steps: 4, lr: LR },
    ],
    [
      'adam β1 0.5, β2 0.9, lr table rewritten between submits',
      { kind: 'adam', o: { beta1: 0.5, beta2: 0.9 } },
      { count: 70, steps: 3, lr: [0.1, 0.05, 0.02, 7, 7, 7], rewrite: [1, 1, 1, 0.2, 0.1, 0.05] },
    ],
  ];
  it.each(rows)('%s', async (name, opt, c) => {
    const g = spreadFromName(gpu(), name);
    const rng = new Rng(c.count * 31 + c.steps + (c.start ?? 0));
    const start = c.start ?? 0;
    const n = c.count;
    const fresh = start === 0;
    let st: State = {
      param: rng.floats(n),
      s1: fresh ? new Float64Array(n) : rng.floats(n, -0.1, 0.1),
      s2: fresh ? new Float64Array(n) : rng.floats(n, 0, 0.2),
    };
    const bufs = {
      param: g.upload(f32(st.param)),
      s1: g.upload(f32(st.s1)),
      s2: g.upload(f32(st.s2)),
      counter: g.upload(new Uint32Array([start])),
      lrTable: g.upload(f32(c.lr)),
    };
    const submits = c.rewrite ? [c.lr, c.rewrite] : [c.lr];
    const all: Dispatch[] = [];
    const gradBufs: GPUBuffer[] = [];
    let done = start;
    for (const table of submits) {
      if (table !== c.lr) g.write(bufs.lrTable, f32(table));
      const grads = Array.from({ length: c.steps }, () => rng.floats(n));
      const gb = grads.map((x) => g.upload(f32(x)));
      const ds = record(g, opt, bufs, gb, n);
      g.run(ds);
      st = reference(opt, st, grads, table, done);
      done += c.steps;
      all.push(...ds);
      gradBufs.push(...gb);
    }
    const [param, s1, s2, counter] = await Promise.all([
      g.readF32(bufs.param),
      g.readF32(bufs.s1),
      g.readF32(bufs.s2),
      g.readU32(bufs.counter),
    ]);
    expect(counter[0], 'counter after the run').toBe(done);
    expectAllclose(`${opt.kind} param`, param, st.param, TOL, [n]);
    if (opt.kind === 'adam') {
      expectAllclose('adam m', s1, st.s1, TOL, [n]);
      expectAllclose('adam v', s2, st.s2, TOL, [n]);
    } else if (opt.o.momentum) {
      expectAllclose('sgd velocity', s1, st.s1, TOL, [n]);
    }
    for (const b of [...Object.values(bufs), ...gradBufs]) g.release(b);
    g.free(all);
  });
});

describe("an update that ends a training step (endsStep): the step from the loss pass's snapshot", () => {
  const gpu = useGpu();
  const kinds: Opt[] = [
    { kind: 'adam', o: {} },
    { kind: 'sgd', o: { momentum: 0.9, nesterov: true } },
  ];
  it.each(kinds)(
    '$kind: reads counter[1], sets counter[0] = counter[1] + 1; the same values as counter[0] = the step',
    async (opt) => {
      const g = gpu();
      const n = 50;
      const rng = new Rng(12);
      const [p0, grads] = [rng.floats(n), [rng.floats(n), rng.floats(n), rng.floats(n)]];
      const run = async (ends: boolean) => {
        const bufs = {
          param: g.upload(f32(p0)),
          s1: g.upload(new Float32Array(n)),
          s2: g.upload(new Float32Array(n)),
          counter: g.upload(new Uint32Array(4)),
          lrTable: g.upload(f32(LR)),
        };
        const words: number[][] = [];
        for (const [s, gr] of grads.entries()) {
          // Word 0 wrong on purpose where the update must read the snapshot in word 1.
          g.write(bufs.counter, new Uint32Array(ends ? [999, s + 1, 0, 0] : [s + 1, 0, 0, 0]));
          const grad = g.upload(f32(gr));
          const io = { param: bufs.param, grad, counter: bufs.counter, lrTable: bufs.lrTable, endsStep: ends };
          const ds =
            opt.kind === 'sgd'
              ? sgdUpdate(g, { ...io, velocity: bufs.s1 }, { count: n, ...opt.o })
              : adamUpdate(g, { ...io, m: bufs.s1, v: bufs.s2 }, { count: n, ...opt.o });
          g.run(ds);
          words.push([...(await g.readU32(bufs.counter))]);
          g.free(ds);
          g.release(grad);
        }
        const param = await g.readF32(bufs.param);
        for (const b of Object.values(bufs)) g.release(b);
        return { param, words };
      };
      const ends = await run(true);
      const plain = await run(false);
      expect(ends.words).toEqual([
        [2, 1, 0, 0],
        [3, 2, 0, 0],
        [4, 3, 0, 0],
      ]);
      expect(ends.param).toEqual(plain.param);
      expect(ends.param).not.toEqual(f32(p0));
    },
  );
});

describe('optimizer references (against independent formulations)', () => {
  const rng = new Rng(11);
  const p0 = rng.floats(20),
    grads = [rng.floats(20), rng.floats(20), rng.floats(20)];

  it.each([false, true])('sgd momentum, nesterov %s, constant lr: same as PyTorch (buf = μ·buf + g)', (nesterov) => {
    const lr = 0.05,
      mu = 0.9;
    const keras = sgdRef({ param: p0, grads, lrTable: [lr] }, { count: 20, momentum: mu, nesterov });
    const p = Float64Array.from(p0),
      buf = new Float64Array(20);
    for (const g of grads) {
      for (let i = 0; i < 20; i++) {
        buf[i] = mu * buf[i]! + g[i]!;
        p[i] = p[i]! - lr * (nesterov ? g[i]! + mu * buf[i]! : buf[i]!);
      }
    }
    expectAllclose('sgd param', keras.param, p, { atol: 1e-14, rtol: 1e-12 });
    expectAllclose(
      'sgd velocity = −lr·buf',
      keras.velocity,
      buf.map((b) => -lr * b),
      { atol: 1e-14, rtol: 1e-12 },
    );
  });

  it('adam first step: p −= lr·g/(|g| + ε/sqrt(1 − β2))', () => {
    const lr = 0.01,
      eps = 1e-7;
    const r = adamRef({ param: p0, grads: [grads[0]!], lrTable: [lr] }, { count: 20 });
    const expected = p0.map(
      (p, i) => p - (lr * grads[0]![i]!) / (Math.abs(grads[0]![i]!) + eps / Math.sqrt(1 - 0.999)),
    );
    expectAllclose('adam param', r.param, expected, { atol: 1e-15, rtol: 1e-12 });
  });

  it('adamw = adam − lr·wd·p; adam L2 = adam on g + wd·p (one step)', () => {
    const lr = 0.02,
      wd = 0.3,
      g = grads[0]!;
    const plain = adamRef({ param: p0, grads: [g], lrTable: [lr] }, { count: 20 });
    const w = adamRef({ param: p0, grads: [g], lrTable: [lr] }, { count: 20, weightDecay: wd, decoupled: true });
    expectAllclose(
      'adamw param',
      w.param,
      plain.param.map((p, i) => p - lr * wd * p0[i]!),
      { atol: 1e-15, rtol: 1e-12 },
    );
    const l2 = adamRef({ param: p0, grads: [g], lrTable: [lr] }, { count: 20, weightDecay: wd, decoupled: false });
    const shifted = adamRef({ param: p0, grads: [g.map((x, i) => x + wd * p0[i]!)], lrTable: [lr] }, { count: 20 });
    expectAllclose('adam L2 param', l2.param, shifted.param, { atol: 1e-15, rtol: 1e-12 });
  });
});
