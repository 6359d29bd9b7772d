import { describe, expect, it } from 'vitest';
import { useGpu, f32, spreadFromName } from './helpers/gpu.ts';
import { expectAllclose, type Tol } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import {
  accumulate,
  activationBackward,
  activationBackwardSum,
  activationForward,
  add,
  copy,
  fill,
} from '../src/ops/elementwise.ts';
import { accumulateRef, activationBackwardRef, activationRef, addRef } from '../src/ops/elementwise.ref.ts';
import type { Act } from '../dsl/ir.ts';
import { actName as name, gradFromOutput } from '../src/ops/act.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { ADD } from '../src/ops/elementwise.ts';
import type { BackwardIO } from '../src/ops/op.ts';
import { Rng } from '../src/util/rng.ts';

// Tolerances per activation, forward and gradient alike (GPU f32 vs float64 on the same f32 inputs,
// |x| ≤ 100, |dy| ≤ 1). Measured on lavapipe, max |diff| over these inputs:
//  linear, relu: exact. leaky(0.1): 4e-8, one rounding of alpha·x (alpha rounded to f32).
//  sigmoid: 1e-7. tanh: 1.3e-7 forward (absolute, not relative: tanh(1e-30) comes back ≈ 3e-8);
//    gradient 2.8e-7: 1 − y² cancels near |y| = 1, so an ulp of y (6e-8) costs ~2 ulp of 1.
//  gelu: 4.5e-7 forward, 2.3e-7 gradient: erf by Abramowitz & Stegun 7.1.26 (≤ 1.5e-7) scaled by
//    x/2, plus rounding of a result near 3 (ulp 2.4e-7).
const TOL: { [K in Act['kind']]: Tol } = {
  linear: { atol: 0, rtol: 0 },
  relu: { atol: 0, rtol: 0 },
  leaky: { atol: 0, rtol: 2e-7 },
  sigmoid: { atol: 5e-7, rtol: 2e-6 },
  tanh: { atol: 5e-7, rtol: 2e-6 },
  gelu: { atol: 1e-6, rtol: 1e-5 },
};
// The gelu bound over [-10, 10] stated in the report: measured max |gpu − exact| stays below it.
const GELU_MAX_ABS = 1e-6;

const ACTS: Act[] = [
  { kind: 'linear' },
  { kind: 'relu' },
  { kind: 'leaky', alpha: 0.1 },
  { kind: 'sigmoid' },
  { kind: 'tanh' },
  { kind: 'gelu' },
];
const rows = (acts: Act[]): [string, Act][] => acts.map((a) => [name(a), a]);

/** Uniform in [-6, 6] plus the awkward values: ±100 (exp overflows in f32), ±20, ±10, tiny, 0. */
function inputs(rng: Rng, n: number): Float64Array {
  const special = [-100, 100, -50, 50, -20, 20, -10, 10, -3, 3, -1e-3, 1e-3, 0, -1e-30, 1e-30];
  const x = rng.floats(n, -6, 6);
  special.forEach((v, i) => (x[i * 7] = Math.fround(v)));
  return x;
}

const gpu = useGpu();

/** Uploads each input, runs the dispatches built on them, reads `out`'s first count floats. */
async function run1(
  g: Gpu,
  count: number,
  ins: Float64Array[],
  outInit: Float64Array | null,
  make: (bufs: GPUBuffer[], out: GPUBuffer) => Dispatch[],
): Promise<Float32Array> {
  const bufs = ins.map((a) => g.upload(f32(a)));
  // NaN: every element must be written.
  const out = g.upload(outInit ? f32(outInit) : new Float32Array(count).fill(NaN));
  const d = make(bufs, out);
  g.run(d);
  const r = await g.readF32(out, count);
  for (const b of [...bufs, out]) g.release(b);
  g.free(d);
  return r;
}

const finite = (a: ArrayLike<number>): number => Array.prototype.findIndex.call(a, (v: number) => !Number.isFinite(v));

describe('activations (GPU vs CPU reference)', () => {
  const N = 1037;
  it.each(rows(ACTS))('forward %s', async (_n, act) => {
    const g = gpu();
    const x = inputs(new Rng(1), N);
    const y = await run1(g, N, [x], null, ([xb], yb) => activationForward(g, { x: xb!, y: yb }, N, act));
    expect(finite(y), `${name(act)} non-finite output at`).toBe(-1);
    expectAllclose(`${name(act)} y`, y, activationRef(x, act), TOL[act.kind], [N]);
  });

  it.each(rows(ACTS))('backward %s from the input', async (_n, act) => {
    const g = gpu();
    const rng = new Rng(2);
    const x = inputs(rng, N),
      dy = rng.floats(N);
    const dx = await run1(g, N, [dy, x], null, ([dyb, xb], dxb) =>
      activationBackward(g, { dy: dyb!, saved: xb!, dx: dxb }, N, act, 'input'),
    );
    expect(finite(dx), `${name(act)} non-finite gradient at`).toBe(-1);
    expectAllclose(`${name(act)} dx`, dx, activationBackwardRef(dy, x, act, 'input'), TOL[act.kind], [N]);
  });

  it.each(rows(ACTS.filter(gradFromOutput)))('backward %s from the output', async (_n, act) => {
    const g = gpu();
    const rng = new Rng(3);
    const x = inputs(rng, N),
      dy = rng.floats(N);
    // The saved output as a fused forward would have stored it: f32.
    const y = Float64Array.from(activationRef(x, act), Math.fround);
    const dx = await run1(g, N, [dy, y], null, ([dyb, yb], dxb) =>
      activationBackward(g, { dy: dyb!, saved: yb!, dx: dxb }, N, act, 'output'),
    );
    expect(finite(dx), `${name(act)} non-finite gradient at`).toBe(-1);
    expectAllclose(`${name(act)} dx`, dx, activationBackwardRef(dy, y, act, 'output'), TOL[act.kind], [N]);
  });

  // The planner's add + activation (src/graph/fuse-add.ts): one pass, the same bits as the two; the op's own
  // backward (where an input is a parameter) applies act' from the output before passing the gradient on.
  it.each(rows(ACTS.filter((a) => a.kind !== 'linear' && gradFromOutput(a))))(
    'add with the activation after it (%s): bit for bit the add then the activation; backward dY · act′(Y)',
    async (_n, act) => {
      const g = gpu();
      const n = 1037;
      const rng = new Rng(11);
      const [a, b, dy] = [inputs(rng, n), rng.floats(n, -6, 6), rng.floats(n, -1, 1)];
      const fused = await run1(g, n, [a, b], null, ([ab, bb], c) => add(g, { a: ab!, b: bb!, c }, n, act));
      const sum = await run1(g, n, [a, b], null, ([ab, bb], c) => add(g, { a: ab!, b: bb!, c }, n));
      const apart = await run1(g, n, [Float64Array.from(sum)], null, ([s], y) =>
        activationForward(g, { x: s!, y }, n, act),
      );
      expect(fused).toEqual(apart);
      const y = Float64Array.from(fused);
      const want = activationBackwardRef(dy, y, act, 'output');
      for (const i of [0, 1]) {
        const dx = await run1(g, n, [y, dy], null, ([yb, dyb], out) => {
          const dIn = i === 0 ? [out, null] : [null, out];
          const io = { out: yb!, outShape: [n], dOut: dyb!, dIn } as unknown as BackwardIO;
          return ADD.backward(g, io, { act });
        });
        expectAllclose(`add+${name(act)} dIn[${i}]`, dx, want, TOL[act.kind], [n]);
      }
    },
  );

  // Two contributions to a residual block's input gradient and the act' of the add before it in one pass
  // (src/graph/fuse-add.ts actGradient): the bits of the sum, then the derivative from the output.
  it.each(rows(ACTS.filter((a) => a.kind !== 'linear' && gradFromOutput(a))))(
    'act_backward_sum (%s): bit for bit the add, then the derivative from the output',
    async (_n, act) => {
      const g = gpu();
      const n = 1037;
      const rng = new Rng(13);
      const [y, d1, d2] = [activationRef(inputs(rng, n), act), rng.floats(n, -1, 1), rng.floats(n, -1, 1)];
      const yf = Float64Array.from(f32(y));
      const fused = await run1(g, n, [d1, d2, yf], null, ([a, b, s], dx) =>
        activationBackwardSum(g, { dy: a!, dy2: b!, saved: s!, dx }, n, act),
      );
      const sum = await run1(g, n, [d1, d2], null, ([a, b], c) => add(g, { a: a!, b: b!, c }, n));
      const apart = await run1(g, n, [Float64Array.from(sum), yf], null, ([a, s], dx) =>
        activationBackward(g, { dy: a!, saved: s!, dx }, n, act, 'output'),
      );
      expect(fused).toEqual(apart);
    },
  );

  it('gelu from the output is refused (its gradient needs the input)', () => {
    expect(() =>
      activationBackward(
        gpu(),
        { dy: gpu().dummy, saved: gpu().dummy, dx: gpu().dummy },
        4,
        { kind: 'gelu' },
        'output',
      ),
    ).toThrow(/cannot be computed from its output/);
  });

  it('backward accumulates into dx (tanh from the output)', async () => {
    const g = gpu();
    const act: Act = { kind: 'tanh' };
    const rng = new Rng(4);
    const y = Float64Array.from(activationRef(inputs(rng, N), act), Math.fround),
      dy = rng.floats(N),
      prior = rng.floats(N);
    const dx = await run1(g, N, [dy, y], prior, ([dyb, yb], dxb) =>
      activationBackward(g, { dy: dyb!, saved: yb!, dx: dxb }, N, act, 'output', true),
    );
    expectAllclose('tanh dx accumulated', dx, activationBackwardRef(dy, y, act, 'output', prior), TOL.tanh, [N]);
  });

  const gelu = `gelu over [-10, 10] (200001 points): max |gpu − exact erf gelu| < ${GELU_MAX_ABS}, forward, gradient`;
  it(gelu, async () => {
    const g = gpu();
    const act: Act = { kind: 'gelu' };
    const n = 200001;
    const x = Float64Array.from({ length: n }, (_, i) => Math.fround(-10 + i * 1e-4));
    const ones = new Float64Array(n).fill(1);
    const y = await run1(g, n, [x], null, ([xb], yb) => activationForward(g, { x: xb!, y: yb }, n, act));
    const dx = await run1(g, n, [ones, x], null, ([dyb, xb], dxb) =>
      activationBackward(g, { dy: dyb!, saved: xb!, dx: dxb }, n, act, 'input'),
    );
    // A NaN anywhere is an infinite error (a comparison with NaN is false: it would pass unseen).
    const maxErr = (a: ArrayLike<number>, e: ArrayLike<number>): [number, number] => {
      let m = 0,
        at = 0;
      for (let i = 0; i < n; i++) {
        const d = Math.abs(a[i]! - e[i]!);
        if (!(d <= m)) [m, at] = [Number.isNaN(d) ? Infinity : d, x[i]!];
      }
      return [m, at];
    };
    const [fe, fat] = maxErr(y, activationRef(x, act));
    const [be, bat] = maxErr(dx, activationBackwardRef(ones, x, act, 'input'));
    console.log(
      `gelu max abs error over [-10, 10]: forward ${fe.toExponential(2)} at x=${fat.toFixed(4)}, ` +
        `gradient ${be.toExponential(2)} at x=${bat.toFixed(4)}`,
    );
    expect(fe).toBeLessThan(GELU_MAX_ABS);
    expect(be).toBeLessThan(GELU_MAX_ABS);
  });
});

describe('add, accumulate, copy, fill (GPU vs CPU reference)', () => {
  const N = 1000 + 37;
  // Sums of two f32 values: one rounding.
  const SUM = { atol: 0, rtol: 6e-8 };
  const big = 64 * 65535 + 100;
  it.each([
    ['1037 elements', N],
    ['1 element', 1],
    [`${big} elements (2-D grid)`, big],
    ['1037 elements in one workgroup (grid-stride loop)', N],
  ] as const)('add, %s', async (name, n) => {
    const g = spreadFromName(gpu(), name);
    const rng = new Rng(n);
    const a = rng.floats(n),
      b = rng.floats(n);
    const c = await run1(g, n, [a, b], null, ([ab, bb], cb) => add(g, { a: ab!, b: bb!, c: cb }, n));
    expectAllclose('add c', c, addRef(a, b), SUM, [n]);
  });

  it('accumulate: c += a', async () => {
    const g = gpu();
    const rng = new Rng(5);
    const a = rng.floats(N),
      c0 = rng.floats(N);
    const c = await run1(g, N, [a], c0, ([ab], cb) => accumulate(g, { a: ab!, c: cb }, N));
    expectAllclose('accumulate c', c, accumulateRef(a, c0), SUM, [N]);
  });

  it('copy: dst = src, bit for bit, the rest of dst untouched', async () => {
    const g = gpu();
    const rng = new Rng(6);
    const src = rng.floats(N),
      dst0 = rng.floats(N + 5);
    const out = await run1(g, N + 5, [src], dst0, ([sb], db) => copy(g, { src: sb!, dst: db }, N));
    expect(Array.from(out)).toEqual([...Array.from(f32(src)), ...Array.from(f32(dst0.subarray(N)))]);
  });

  it('fill: dst = value (zeroing and a non-integer), the rest of dst untouched', async () => {
    const g = gpu();
    const dst0 = new Rng(7).floats(N + 3);
    for (const v of [0, -1.25, 0.1]) {
      const out = await run1(g, N + 3, [], dst0, (_b, db) => fill(g, { dst: db }, N, v));
      expect(Array.from(out)).toEqual([...new Array(N).fill(Math.fround(v)), ...Array.from(f32(dst0.subarray(N)))]);
    }
  });
});

describe('activation reference gradients (finite differences)', () => {
  it.each(rows(ACTS))('%s: from the input', (_n, act) => {
    const rng = new Rng(8);
    // Away from relu/leaky's kink at 0 by more than the step.
    const x = rng.floats(40, -4, 4).map((v) => (Math.abs(v) < 1e-3 ? 0.5 : v));
    const gy = rng.floats(40);
    checkGradFd(
      `${name(act)} dx`,
      x,
      (v) => dot(activationRef(v, act), gy),
      activationBackwardRef(gy, x, act, 'input'),
    );
  });
  it.each(rows(ACTS.filter(gradFromOutput)))('%s: from the output', (_n, act) => {
    const rng = new Rng(9);
    const x = rng.floats(40, -4, 4).map((v) => (Math.abs(v) < 1e-3 ? 0.5 : v));
    const gy = rng.floats(40);
    checkGradFd(
      `${name(act)} dx`,
      x,
      (v) => dot(activationRef(v, act), gy),
      activationBackwardRef(gy, activationRef(x, act), act, 'output'),
    );
  });
});
