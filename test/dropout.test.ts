import { describe, expect, it } from 'vitest';
import { useGpu, f32, spreadFromName } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import { dropoutBackward, dropoutForward, type DropoutShape } from '../src/ops/dropout.ts';
import { dropoutBackwardRef, dropoutMaskRef, dropoutRef } from '../src/ops/dropout.ref.ts';
import { Rng } from '../src/util/rng.ts';

// Kept values are x·f32(1/(1−p)) on the GPU against x/(1−p) in float64: one rounding apart.
const TOL = { atol: 0, rtol: 2e-7 };

/** Nonzero inputs of both signs, so a zero output means exactly a dropped element. */
function nonzero(rng: Rng, n: number): Float64Array {
  const x = rng.floats(n, 0.5, 1.5);
  for (let i = 0; i < n; i += 2) x[i] = -x[i]!;
  return x;
}

/** First index where the kept/dropped pattern of `out` differs from `mask`, or -1. */
function maskMismatch(out: ArrayLike<number>, mask: Uint8Array): number {
  for (let i = 0; i < mask.length; i++) if ((out[i] !== 0 ? 1 : 0) !== mask[i]) return i;
  return -1;
}

describe('dropout (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const cases: [string, number, number, number, number][] = [
    // name, count, rate, seed, counter
    ['rate 0 keeps everything', 1000, 0, 1, 0],
    ['rate 0.25', 4099, 0.25, 2, 5],
    ['rate 0.5', 4099, 0.5, 3, 6],
    ['rate 0.1 (not a binary fraction)', 5003, 0.1, 4, 7],
    ['a single element', 1, 0.5, 5, 8],
    ['rate 0.25, 2^20 elements: fraction kept ≈ 0.75', 1 << 20, 0.25, 6, 123456],
    ['rate 0.5, 64·65535+100 elements: 2-D grid, fraction kept ≈ 0.5', 64 * 65535 + 100, 0.5, 0xdeadbeef, 0xfffffff0],
    ['rate 0.25, 5003 elements in one workgroup (grid-stride loop)', 5003, 0.25, 9, 3],
  ];
  it.each(cases)('%s', async (name, count, rate, seed, step) => {
    const g = spreadFromName(gpu(), name);
    const rng = new Rng(count + seed);
    const x = nonzero(rng, count),
      dy = nonzero(rng, count);
    const s: DropoutShape = { count, rate, seed };
    const xb = g.upload(f32(x)),
      dyb = g.upload(f32(dy)),
      counter = g.upload(new Uint32Array([step]));
    // NaN, so that an element left unwritten fails (a dropped one must be written as 0).
    const yb = g.upload(new Float32Array(count).fill(NaN)),
      dxb = g.upload(new Float32Array(count).fill(NaN));
    const ds = [
      ...dropoutForward(g, { x: xb, counter, y: yb }, s),
      ...dropoutBackward(g, { dy: dyb, counter, dx: dxb }, s),
    ];
    g.run(ds);
    const y = await g.readF32(yb),
      dx = await g.readF32(dxb);
    const mask = dropoutMaskRef(count, rate, seed, step);
    expect(maskMismatch(y, mask), 'forward mask mismatch at').toBe(-1);
    expect(maskMismatch(dx, mask), 'backward mask mismatch at').toBe(-1);
    expectAllclose('dropout y', y, dropoutRef(x, step, s), TOL, [count]);
    expectAllclose('dropout dx', dx, dropoutBackwardRef(dy, step, s), TOL, [count]);
    if (count >= 1 << 20) {
      const kept = mask.reduce((a, b) => a + b, 0) / count;
      // 5 standard deviations of a binomial fraction.
      expect(Math.abs(kept - (1 - rate))).toBeLessThan(5 * Math.sqrt((rate * (1 - rate)) / count));
    }
    for (const b of [xb, dyb, counter, yb, dxb]) g.release(b);
    g.free(ds);
  });

  it('the mask follows the counter buffer: same step same mask, new step or seed new mask', async () => {
    const g = gpu();
    const count = 2048,
      rate = 0.5;
    const x = nonzero(new Rng(1), count);
    const xb = g.upload(f32(x)),
      counter = g.upload(new Uint32Array([3])),
      yb = g.alloc(count * 4);
    // One recorded dispatch, replayed while the step in the counter buffer changes (as in training).
    const ds = dropoutForward(g, { x: xb, counter, y: yb }, { count, rate, seed: 42 });
    const runAt = async (step: number): Promise<Float32Array> => {
      g.write(counter, new Uint32Array([step]));
      g.run(ds);
      return g.readF32(yb);
    };
    const a = await runAt(3),
      b = await runAt(3),
      c = await runAt(4);
    expect(b).toEqual(a);
    const differ = (p: ArrayLike<number>, q: ArrayLike<number>): number => {
      let d = 0;
      for (let i = 0; i < count; i++) if ((p[i] === 0) !== (q[i] === 0)) d++;
      return d;
    };
    // Independent masks at p = 0.5 disagree on about half the elements.
    expect(differ(a, c)).toBeGreaterThan(count * 0.4);
    expect(maskMismatch(c, dropoutMaskRef(count, rate, 42, 4))).toBe(-1);
    const other = dropoutForward(g, { x: xb, counter, y: yb }, { count, rate, seed: 43 });
    g.write(counter, new Uint32Array([3]));
    g.run(other);
    expect(differ(a, await g.readF32(yb))).toBeGreaterThan(count * 0.4);
    for (const buf of [xb, counter, yb]) g.release(buf);
    g.free([...ds, ...other]);
  });

  it('backward accumulates into dx', async () => {
    const g = gpu();
    const count = 777,
      step = 9;
    const rng = new Rng(77);
    const dy = nonzero(rng, count),
      prior = rng.floats(count);
    const s: DropoutShape = { count, rate: 0.25, seed: 11, accumulate: true };
    const dyb = g.upload(f32(dy)),
      dxb = g.upload(f32(prior)),
      counter = g.upload(new Uint32Array([step]));
    const ds = dropoutBackward(g, { dy: dyb, counter, dx: dxb }, s);
    g.run(ds);
    expectAllclose(
      'dropout dx accumulated',
      await g.readF32(dxb),
      dropoutBackwardRef(dy, step, s, prior),
      { atol: 1e-7, rtol: 2e-7 },
      [count],
    );
    for (const b of [dyb, dxb, counter]) g.release(b);
    g.free(ds);
  });
});

describe('dropout reference gradient (finite differences)', () => {
  it.each([0, 0.25, 0.5])('rate %s: dx = dy·mask/(1 − p)', (rate) => {
    const rng = new Rng(3);
    const s = { count: 40, rate, seed: 8 };
    const x = rng.floats(40),
      gy = rng.floats(40);
    checkGradFd('dropout dx', x, (v) => dot(dropoutRef(v, 2, s), gy), dropoutBackwardRef(gy, 2, s));
  });
});
