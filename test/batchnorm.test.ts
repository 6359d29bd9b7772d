import { describe, expect, it } from 'vitest';
import { useGpu, f32, spreadFromName } from './helpers/gpu.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import {
  batchnormBackward,
  batchnormForward,
  bnPartials,
  bnSlices,
  bnWhole,
  type BatchnormShape,
} from '../src/ops/batchnorm.ts';
import { actGradRef, actRef } from '../src/ops/act.ref.ts';
import type { Act } from '../dsl/ir.ts';
import { batchnormBackwardRef, batchnormForwardRef } from '../src/ops/batchnorm.ref.ts';
import { Rng } from '../src/util/rng.ts';
import { add } from '../src/ops/elementwise.ts';
import { expectSameBits } from './helpers/bits.ts';
import { ShapeError } from '../src/errors.ts';

// f32 sums over M ≤ ~600 elements per channel, then xhat scaled by invstd ≤ 1/sqrt(eps); the mean is
// rounded to f32, so x = 50 ± 0.5 loses ~1e-5 in xhat (measured 6e-6).
const TOL_Y = { atol: 2e-5, rtol: 1e-4 };
const TOL_STAT = { atol: 1e-5, rtol: 1e-5 };
const TOL_DX = { atol: 1e-5, rtol: 1e-4 };

interface Inputs {
  x: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
  runMean: Float64Array;
  runVar: Float64Array;
  dy: Float64Array;
  prior: Float64Array;
}

function inputs(s: BatchnormShape, seed: number, offset = 0, spread = 2): Inputs {
  const rng = new Rng(seed);
  const size = s.n * s.c * s.hw;
  const x = rng.floats(size, offset - spread, offset + spread);
  return {
    x,
    gamma: rng.floats(s.c, 0.5, 1.5),
    beta: rng.floats(s.c, -0.5, 0.5),
    runMean: rng.floats(s.c, -0.2, 0.2),
    runVar: rng.floats(s.c, 0.5, 1.5),
    dy: rng.floats(size),
    prior: rng.floats(size),
  };
}

const shapeOf = (s: BatchnormShape): number[] => (s.hw === 1 ? [s.n, s.c] : [s.n, s.c, s.hw]);

/** The fused kernels' oracle: act after the batchnorm reference, and its backward through act'(z). */
function fusedRef(inp: Inputs, s: BatchnormShape, act: Act) {
  const ref = batchnormForwardRef(inp.x, inp.gamma, inp.beta, inp.runMean, inp.runVar, s);
  const y = ref.y.map((z) => actRef(act, z));
  const dz = inp.dy.map((d, i) => d * actGradRef(act, ref.y[i] ?? 0));
  const grads = batchnormBackwardRef(dz, inp.x, inp.gamma, ref.mean, ref.invStd, s, inp.prior);
  return { ...ref, y, grads };
}

describe('batch normalization (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const relu: Act = { kind: 'relu' };
  const cases: [string, BatchnormShape, number?, number?][] = [
    // name, shape, x offset, x spread
    ['conv 2x3x5x5 training', { n: 2, c: 3, hw: 25, training: true }],
    ['conv 4x8x7x7 training', { n: 4, c: 8, hw: 49, training: true }],
    ['conv batch 1, 1x2x17x18 training (M > 256)', { n: 1, c: 2, hw: 306, training: true }],
    ['conv 3x4x6x6 training, momentum 0.9, eps 1e-5', { n: 3, c: 4, hw: 36, training: true, momentum: 0.9, eps: 1e-5 }],
    ['conv 2x3x4x4 training, x = 50 ± 0.5 (two-pass variance)', { n: 2, c: 3, hw: 16, training: true }, 50, 0.5],
    ['conv 2x3x3x3 training, backward accumulates into dx', { n: 2, c: 3, hw: 9, training: true, accumulate: true }],
    ['dense 16x10 training', { n: 16, c: 10, hw: 1, training: true }],
    ['dense 300x5 training (M > 256)', { n: 300, c: 5, hw: 1, training: true }],
    ['dense batch 1, 1x5 training (variance 0)', { n: 1, c: 5, hw: 1, training: true }],
    // Several slices per channel: the partial statistics and their fixed-tree combination.
    ['conv 3x2x300 training, 3 slices (last one short)', { n: 3, c: 2, hw: 300, training: true, slices: 3 }],
    ['conv 5x3x256 training, 5 slices, x = 50 ± 0.5', { n: 5, c: 3, hw: 256, training: true, slices: 5 }, 50, 0.5],
    [
      'dense 1000x3 training, 4 slices, accumulate',
      { n: 1000, c: 3, hw: 1, training: true, slices: 4, accumulate: true },
    ],
    // Fused with the activation after it: against act ∘ batchnorm and its backward through act'(z).
    ['conv 4x8x7x7 training + relu', { n: 4, c: 8, hw: 49, training: true, act: relu }],
    ['conv 3x2x300 training + relu, 3 slices', { n: 3, c: 2, hw: 300, training: true, slices: 3, act: relu }],
    ['dense 16x10 training + leaky(0.1)', { n: 16, c: 10, hw: 1, training: true, act: { kind: 'leaky', alpha: 0.1 } }],
    [
      'conv 2x3x25 training + gelu, accumulate',
      { n: 2, c: 3, hw: 25, training: true, act: { kind: 'gelu' }, accumulate: true },
    ],
    [
      'conv 2x3x25 training + tanh, 2 slices',
      { n: 2, c: 3, hw: 150, training: true, act: { kind: 'tanh' }, slices: 2 },
    ],
    ['conv 2x3x4x4 inference', { n: 2, c: 3, hw: 16, training: false }],
    ['dense 8x6 inference', { n: 8, c: 6, hw: 1, training: false }],
    ['dense batch 1, 1x5 inference', { n: 1, c: 5, hw: 1, training: false, eps: 1e-5 }],
    // Inference with the activation after it (the planner's choice at inference too).
    ['conv 2x3x4x4 inference + relu', { n: 2, c: 3, hw: 16, training: false, act: relu }],
    ['dense 8x6 inference + tanh', { n: 8, c: 6, hw: 1, training: false, act: { kind: 'tanh' } }],
    // One workgroup looping over every element: each thread's walk steps across planes and channels.
    ['conv 3x5x7x7 inference + relu in one workgroup', { n: 3, c: 5, hw: 49, training: false, act: relu }],
    ['dense 300x5 inference in one workgroup', { n: 300, c: 5, hw: 1, training: false }],
    ['conv 2x3x100 inference in one workgroup', { n: 2, c: 3, hw: 100, training: false }],
  ];
  // Each training case at a GPU's 256 threads a slice pass and at a CPU adapter's 16 (GpuTuning.treeThreads):
  // each thread's walk over its channel steps over image boundaries differently.
  const widths = cases.flatMap(
    ([name, s, offset = 0, spread = 2]): [string, BatchnormShape, number, number, number?][] =>
      s.training
        ? [256, 16].map((w) => [`${name}, ${w} threads a slice pass`, s, offset, spread, w])
        : [[name, s, offset, spread]],
  );
  it.each(widths)('%s', async (name, s, offset, spread, threads) => {
    const g = spreadFromName(threads ? gpu().withTuning({ treeThreads: threads }) : gpu(), name);
    const inp = inputs(s, s.n * 100 + s.c * 10 + s.hw, offset, spread);
    const size = s.n * s.c * s.hw;
    const ref = fusedRef(inp, s, s.act ?? { kind: 'linear' });
    if (s.slices) expect(bnSlices(g, s).slices).toBe(s.slices);
    const [xb, gb, bb, rmb, rvb, dyb, dxb] = [
      inp.x,
      inp.gamma,
      inp.beta,
      inp.runMean,
      inp.runVar,
      inp.dy,
      inp.prior,
    ].map((a) => g.upload(f32(a)));
    const yb = g.alloc(size * 4),
      smb = g.alloc(s.c * 4),
      sib = g.alloc(s.c * 4),
      dgb = g.alloc(s.c * 4),
      dbb = g.alloc(s.c * 4),
      pb = g.alloc(bnPartials(g, s) * 4);
    const fwd = batchnormForward(
      g,
      {
        x: xb!,
        gamma: gb!,
        beta: bb!,
        runMean: rmb!,
        runVar: rvb!,
        y: yb,
        saveMean: smb,
        saveInvStd: sib,
        partial: pb,
      },
      s,
    );
    const bwd = s.training
      ? batchnormBackward(
          g,
          {
            dy: dyb!,
            x: xb!,
            gamma: gb!,
            beta: bb!,
            saveMean: smb,
            saveInvStd: sib,
            dx: dxb!,
            dgamma: dgb,
            dbeta: dbb,
            partial: pb,
          },
          s,
        )
      : [];
    g.run([...fwd, ...bwd]);
    const y = await g.readF32(yb);
    expect(y.every(Number.isFinite)).toBe(true);
    expectAllclose('batchnorm y', y, ref.y, TOL_Y, shapeOf(s));
    expectAllclose('batchnorm running mean', await g.readF32(rmb!), ref.runMean, TOL_STAT, [s.c]);
    expectAllclose('batchnorm running var', await g.readF32(rvb!), ref.runVar, TOL_STAT, [s.c]);
    if (s.training) {
      expectAllclose('batchnorm saved mean', await g.readF32(smb), ref.mean, TOL_STAT, [s.c]);
      expectAllclose('batchnorm saved invstd', await g.readF32(sib), ref.invStd, { atol: 0, rtol: 1e-4 }, [s.c]);
      const dx = await g.readF32(dxb!);
      expect(dx.every(Number.isFinite)).toBe(true);
      expectAllclose('batchnorm dx', dx, ref.grads.dx, TOL_DX, shapeOf(s));
      expectAllclose('batchnorm dgamma', await g.readF32(dgb), ref.grads.dgamma, TOL_Y, [s.c]);
      expectAllclose('batchnorm dbeta', await g.readF32(dbb), ref.grads.dbeta, TOL_Y, [s.c]);
    }
    for (const b of [xb!, gb!, bb!, rmb!, rvb!, dyb!, dxb!, yb, smb, sib, dgb, dbb, pb]) g.release(b);
    g.free([...fwd, ...bwd]);
  });

  /** A training forward and backward of shape `base` with `o` over it: y, the saved statistics, dx, dgamma, dbeta. */
  const trainRun = async (g: Gpu, base: BatchnormShape, inp: ReturnType<typeof inputs>, o: Partial<BatchnormShape>) => {
    const s = { ...base, ...o };
    const made: GPUBuffer[] = [];
    const keep = (b: GPUBuffer): GPUBuffer => {
      made.push(b);
      return b;
    };
    const up = (a: ArrayLike<number>): GPUBuffer => keep(g.upload(f32(a)) as GPUBuffer);
    const alloc = (floats: number): GPUBuffer => keep(g.alloc(floats * 4));
    const [x, gamma, beta, dy, dx] = [up(inp.x), up(inp.gamma), up(inp.beta), up(inp.dy), up(inp.prior)];
    const [runMean, runVar] = [up(inp.runMean), up(inp.runVar)];
    const [y, saveMean, saveInvStd] = [alloc(base.n * base.c * base.hw), alloc(base.c), alloc(base.c)];
    const [dgamma, dbeta, partial] = [alloc(base.c), alloc(base.c), alloc(bnPartials(g, s))];
    const forward = batchnormForward(g, { x, gamma, beta, runMean, runVar, y, saveMean, saveInvStd, partial }, s);
    const backward = batchnormBackward(g, { dy, x, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, partial }, s);
    g.run([...forward, ...backward]);
    const got = await Promise.all(
      [y, saveMean, saveInvStd, runMean, runVar, dx, dgamma, dbeta].map((b) => g.readF32(b)),
    );
    for (const b of made) g.release(b);
    g.free([...forward, ...backward]);
    return { got, forward: forward.map((d) => d.label), backward: backward.map((d) => d.label) };
  };

  it('runs the same bits twice, and the same statistics whatever the slicing', async () => {
    const g = gpu();
    const base: BatchnormShape = { n: 4, c: 2, hw: 300, training: true, act: relu };
    const inp = inputs(base, 7);
    const a = (await trainRun(g, base, inp, { slices: 4 })).got;
    const b = (await trainRun(g, base, inp, { slices: 4 })).got;
    a.forEach((v, i) => expect(Array.from(b[i] ?? [])).toEqual(Array.from(v)));
    const one = (await trainRun(g, base, inp, { slices: 1 })).got;
    // Another slicing sums in another order: equal within f32 rounding, not bit for bit.
    expectAllclose('mean, 1 vs 4 slices', one[1] ?? [], a[1] ?? [], TOL_STAT, [base.c]);
    expectAllclose('dx, 1 vs 4 slices', one[5] ?? [], a[5] ?? [], TOL_DX, [base.n, base.c, base.hw]);
  });

  it('cuts channels into slices as the adapter needs', () => {
    const h100 = { units: 132, treeThreads: 256, adapter: { cpu: false } };
    const cpu = { units: 8, treeThreads: 16, adapter: { cpu: true } };
    const slices = (d: typeof cpu, n: number, c: number, hw: number, o: Partial<BatchnormShape> = {}) =>
      bnSlices(d, { n, c, hw, training: true, ...o }).slices;
    // A GPU: whole where a thread walks ≤ 16 elements, else two workgroups a unit, ≤ 64 elements a thread.
    expect(slices(h100, 64, 128, 49)).toBe(1);
    expect(slices(h100, 64, 64, 196)).toBe(5);
    expect(slices(h100, 256, 32, 784)).toBe(13);
    expect(slices(h100, 256, 512, 49)).toBe(1);
    // A CPU adapter: whole wherever the channels alone give each unit two workgroups, whatever M.
    expect(slices(cpu, 64, 32, 784)).toBe(1);
    expect(slices(cpu, 64, 8, 784)).toBe(2);
    expect(slices(cpu, 16, 3, 1)).toBe(1);
    // Tests force a count; bnWhole takes one slice whole unless told not to, and never a conv's partials.
    expect(slices(h100, 64, 128, 49, { slices: 3 })).toBe(3);
    expect(bnWhole(cpu, { n: 64, c: 32, hw: 784, training: true })).toBe(true);
    expect(bnWhole(cpu, { n: 64, c: 32, hw: 784, training: true, whole: false })).toBe(false);
    expect(bnWhole(cpu, { n: 64, c: 32, hw: 784, training: true }, true)).toBe(false);
    expect(bnWhole(h100, { n: 64, c: 64, hw: 196, training: true })).toBe(false);
  });

  // Whole channels (one slice: bnWhole): each way one pass that makes its statistics or sums first, bit for
  // bit the two passes it replaces (stats then forward_train, backward_sums then backward, with one slice).
  const wholeCases: [string, BatchnormShape][] = [
    ['conv 4x8x7x7 + relu', { n: 4, c: 8, hw: 49, training: true, act: relu }],
    ['conv batch 1, 1x2x17x18 (M > 256)', { n: 1, c: 2, hw: 306, training: true }],
    [
      'dense 16x10 + tanh, accumulate',
      { n: 16, c: 10, hw: 1, training: true, act: { kind: 'tanh' }, accumulate: true },
    ],
    ['conv 2x3x4x4, x = 50 ± 0.5', { n: 2, c: 3, hw: 16, training: true }],
    ['conv 2x3x5x5 + gelu', { n: 2, c: 3, hw: 25, training: true, act: { kind: 'gelu' } }],
  ];
  const wholeWidths = wholeCases.flatMap(([name, s]) => [256, 16].map((w) => [`${name}, ${w} threads`, s, w] as const));
  it.each(wholeWidths)('whole channels: %s, one pass each way, the bits of two', async (name, base, threads) => {
    const g = gpu().withTuning({ treeThreads: threads });
    const inp = name.includes('50 ± 0.5') ? inputs(base, 9, 50, 0.5) : inputs(base, 9);
    const whole = await trainRun(g, base, inp, { slices: 1 });
    const two = await trainRun(g, base, inp, { slices: 1, whole: false });
    expect(whole.forward).toEqual([expect.stringMatching(/^batchnorm stats\+train /)]);
    expect(whole.backward).toEqual([expect.stringMatching(/^batchnorm sums\+backward /)]);
    expect(two.forward).toEqual([
      expect.stringMatching(/^batchnorm stats /),
      expect.stringMatching(/^batchnorm train /),
    ]);
    expect(two.backward).toEqual([
      expect.stringMatching(/^batchnorm backward sums /),
      expect.stringMatching(/^batchnorm backward /),
    ]);
    const names = ['y', 'saved mean', 'saved 1/std', 'running mean', 'running variance', 'dx', 'dgamma', 'dbeta'];
    whole.got.forEach((v, i) => expectSameBits(names[i] ?? '', v, two.got[i] ?? new Float32Array()));
    // And the references (the reference of the two passes is the same function).
    const ref = fusedRef(inp, base, base.act ?? { kind: 'linear' });
    expectAllclose('y', whole.got[0] ?? [], ref.y, TOL_Y, shapeOf(base));
    expectAllclose('dx', whole.got[5] ?? [], ref.grads.dx, TOL_DX, shapeOf(base));
  });
});

// A residual add after the batchnorm, in its pass (forward_train_add, forward_infer_add; the planner's choice,
// src/graph/fuse-add.ts): y = act(z + shortcut), against the references composed (the batchnorm, the add, the
// activation) and bit for bit against the batchnorm's own pass and then the add kernel with its activation.
describe('batch normalization + a residual add (+ activation) in its pass', () => {
  const gpu = useGpu();
  const cases: [string, BatchnormShape][] = [
    ['conv 4x8x7x7 + add + relu', { n: 4, c: 8, hw: 49, training: true, act: { kind: 'relu' } }],
    ['conv 3x2x300 + add, 3 slices', { n: 3, c: 2, hw: 300, training: true, slices: 3 }],
    ['dense 16x10 + add + tanh', { n: 16, c: 10, hw: 1, training: true, act: { kind: 'tanh' } }],
    ['inference: conv 4x8x7x7 + add + relu', { n: 4, c: 8, hw: 49, training: false, act: { kind: 'relu' } }],
    ['inference: dense 5x3 + add', { n: 5, c: 3, hw: 1, training: false }],
    [
      'inference: conv 3x4x50 + add + relu in one workgroup',
      { n: 3, c: 4, hw: 50, training: false, act: { kind: 'relu' } },
    ],
  ];
  it.each(cases)('%s', async (name, s) => {
    const g = spreadFromName(gpu(), name);
    const inp = inputs(s, 11);
    const size = s.n * s.c * s.hw;
    const shortcut = new Rng(12).floats(size, -1, 1);
    const act: Act = s.act ?? { kind: 'linear' };
    const z = batchnormForwardRef(inp.x, inp.gamma, inp.beta, inp.runMean, inp.runVar, s).y;
    const want = z.map((v, i) => actRef(act, v + (shortcut[i] ?? 0)));
    const [x, gamma, beta, sc] = [inp.x, inp.gamma, inp.beta, shortcut].map((a) => g.upload(f32(a))) as GPUBuffer[];
    const made: GPUBuffer[] = [];
    const alloc = (floats: number): GPUBuffer => {
      const b = g.alloc(floats * 4);
      made.push(b);
      return b;
    };
    /** One batchnorm pass (its own running statistics) writing y, with the shortcut or not. */
    const pass = (y: GPUBuffer, shape: BatchnormShape, shortcut?: GPUBuffer) => {
      const [runMean, runVar] = [inp.runMean, inp.runVar].map((a) => g.upload(f32(a)));
      made.push(runMean as GPUBuffer, runVar as GPUBuffer);
      const io = { x: x as GPUBuffer, gamma: gamma as GPUBuffer, beta: beta as GPUBuffer, y, shortcut };
      const stats = { saveMean: alloc(s.c), saveInvStd: alloc(s.c), partial: alloc(bnPartials(g, s)) };
      return batchnormForward(
        g,
        { ...io, runMean: runMean as GPUBuffer, runVar: runVar as GPUBuffer, ...stats },
        shape,
      );
    };
    const [fused, z32, unfused] = [alloc(size), alloc(size), alloc(size)];
    const mine = pass(fused, s, sc);
    const ds = [
      ...mine,
      ...pass(z32, { ...s, act: undefined }),
      ...add(g, { a: z32, b: sc as GPUBuffer, c: unfused }, size, act),
    ];
    expect(mine.at(-1)?.label).toMatch(/^batchnorm (train|stats\+train|infer) \S+ \+ add/);
    g.run(ds);
    const got = await g.readF32(fused);
    expectAllclose('act(batchnorm(x) + shortcut)', got, want, TOL_Y, shapeOf(s));
    expectSameBits('the pass against the batchnorm and then the add kernel', got, await g.readF32(unfused));
    for (const b of [x, gamma, beta, sc, ...made]) g.release(b as GPUBuffer);
    g.free(ds);
  });

  it('refuses a shortcut with a pooling in the pass', () => {
    const g = gpu();
    const s: BatchnormShape = { n: 2, c: 2, hw: 16, training: true, act: { kind: 'relu' } };
    const pool = { kind: 'max' as const, shape: { n: 2, c: 2, h: 4, w: 4, kh: 2, kw: 2, strideH: 2, strideW: 2 } };
    const b = g.dummy;
    const io = { x: b, gamma: b, beta: b, runMean: b, runVar: b, y: b, saveMean: b, saveInvStd: b, partial: b };
    for (const training of [true, false])
      expect(() =>
        batchnormForward(g, { ...io, pooled: b, argmax: b, shortcut: b }, { ...s, pool, training } as BatchnormShape),
      ).toThrow(ShapeError);
  });
});

describe('batch normalization reference gradients (finite differences)', () => {
  const cases: [string, BatchnormShape][] = [
    ['conv 2x2x3', { n: 2, c: 2, hw: 3, training: true }],
    ['dense 4x3', { n: 4, c: 3, hw: 1, training: true }],
    ['dense batch 1 (variance 0)', { n: 1, c: 3, hw: 1, training: true }],
  ];
  it.each(cases)('%s: dx, dgamma, dbeta through the batch statistics', (_name, s) => {
    const inp = inputs(s, 31 + s.n);
    const fwd = (x: Float64Array, gamma: Float64Array, beta: Float64Array): number =>
      dot(batchnormForwardRef(x, gamma, beta, inp.runMean, inp.runVar, s).y, inp.dy);
    const ref = batchnormForwardRef(inp.x, inp.gamma, inp.beta, inp.runMean, inp.runVar, s);
    const grads = batchnormBackwardRef(inp.dy, inp.x, inp.gamma, ref.mean, ref.invStd, s);
    checkGradFd('batchnorm dx', inp.x, (x) => fwd(x, inp.gamma, inp.beta), grads.dx);
    checkGradFd('batchnorm dgamma', inp.gamma, (gm) => fwd(inp.x, gm, inp.beta), grads.dgamma);
    checkGradFd('batchnorm dbeta', inp.beta, (bt) => fwd(inp.x, inp.gamma, bt), grads.dbeta);
  });
});

describe('batch normalization + activation reference gradients (finite differences)', () => {
  const cases: [string, BatchnormShape][] = [
    ['conv 2x2x3 + leaky(0.1)', { n: 2, c: 2, hw: 3, training: true, act: { kind: 'leaky', alpha: 0.1 } }],
    ['dense 4x3 + gelu', { n: 4, c: 3, hw: 1, training: true, act: { kind: 'gelu' } }],
    ['dense 5x2 + tanh', { n: 5, c: 2, hw: 1, training: true, act: { kind: 'tanh' } }],
  ];
  it.each(cases)('%s: the fused backward’s oracle is the gradient of act ∘ batchnorm', (_name, s) => {
    const act = s.act ?? { kind: 'linear' };
    const inp = { ...inputs(s, 41 + s.n), prior: undefined as unknown as Float64Array };
    const fwd = (x: Float64Array, gamma: Float64Array, beta: Float64Array): number =>
      dot(
        batchnormForwardRef(x, gamma, beta, inp.runMean, inp.runVar, s).y.map((z) => actRef(act, z)),
        inp.dy,
      );
    const { grads } = fusedRef(inp, { ...s, accumulate: false }, act);
    checkGradFd('batchnorm+act dx', inp.x, (x) => fwd(x, inp.gamma, inp.beta), grads.dx);
    checkGradFd('batchnorm+act dgamma', inp.gamma, (gm) => fwd(inp.x, gm, inp.beta), grads.dgamma);
    checkGradFd('batchnorm+act dbeta', inp.beta, (bt) => fwd(inp.x, inp.gamma, bt), grads.dbeta);
  });
});
