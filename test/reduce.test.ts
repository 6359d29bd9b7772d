import { describe, expect, it } from 'vitest';
import { useGpu, f32 } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import {
  argmaxRows,
  confusionAccumulate,
  countCorrect,
  mean,
  nonFiniteCheck,
  sum,
  sumChannels,
  sumRows,
} from '../src/ops/reduce.ts';
import {
  argmaxRowsRef,
  confusionRef,
  countCorrectRef,
  meanRef,
  nonFiniteRef,
  sumChannelsRef,
  sumRef,
  sumRowsRef,
} from '../src/ops/reduce.ref.ts';
import { Rng } from '../src/util/rng.ts';

// Integer-valued data sums exactly in f32 (totals < 2^24), so large reductions are checked exactly:
// a lost or doubled element cannot hide in a tolerance. Random floats get an f32 summation tolerance.
const EXACT = { atol: 0, rtol: 0 };
const TOL = { atol: 1e-5, rtol: 1e-5 };

function ints(rng: Rng, n: number, lo: number, hi: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + rng.int(hi - lo + 1);
  return out;
}

function data(rng: Rng, n: number, exact: boolean): Float64Array {
  return exact ? ints(rng, n, -4, 4) : rng.floats(n);
}

describe('sumRows [M,N] → [N]', () => {
  const gpu = useGpu();
  const rows: [string, number, number, boolean, boolean][] = [
    // name, m, n, accumulate, integer data
    ['1x1', 1, 1, false, false],
    ['M=1, 1x70', 1, 70, false, false],
    ['N=1, 70x1', 70, 1, false, false],
    ['33x17', 33, 17, false, false],
    ['accumulate 300x33', 300, 33, true, false],
    ['5000x10 (long columns, exact)', 5000, 10, false, true],
    ['3x1000 (many column blocks)', 3, 1000, true, false],
  ];
  it.each(rows)('%s', async (_name, m, n, accumulate, exact) => {
    const g = gpu();
    const rng = new Rng(m * 17 + n);
    const x = data(rng, m * n, exact),
      prior = data(rng, n, exact);
    const xb = g.upload(f32(x)),
      ob = g.upload(f32(prior));
    const d = sumRows(g, { x: xb, out: ob }, { m, n, accumulate });
    g.run([d]);
    expectAllclose(
      'sumRows',
      await g.readF32(ob),
      sumRowsRef(x, m, n, accumulate ? prior : undefined),
      exact ? EXACT : TOL,
      [n],
    );
    g.release(xb), g.release(ob), g.free([d]);
  });
});

describe('sumChannels NCHW → [C]', () => {
  const gpu = useGpu();
  const rows: [string, number, number, number, boolean, boolean][] = [
    // name, n, c, hw, accumulate, integer data
    ['1x1x1', 1, 1, 1, false, false],
    ['2x3x5x5', 2, 3, 25, false, false],
    ['accumulate 7x4x3x3', 7, 4, 9, true, false],
    ['64x2x28x28 (50k per channel, exact)', 64, 2, 784, false, true],
    ['3x70x1x1 (dense-shaped)', 3, 70, 1, false, false],
    ['1x5x15x20 (one sample, HW > 256)', 1, 5, 300, true, false],
  ];
  it.each(rows)('%s', async (_name, n, c, hw, accumulate, exact) => {
    const g = gpu();
    const rng = new Rng(n * 1000 + c * 10 + hw);
    const x = data(rng, n * c * hw, exact),
      prior = data(rng, c, exact);
    const xb = g.upload(f32(x)),
      ob = g.upload(f32(prior));
    const d = sumChannels(g, { x: xb, out: ob }, { n, c, hw, accumulate });
    g.run([d]);
    expectAllclose(
      'sumChannels',
      await g.readF32(ob),
      sumChannelsRef(x, n, c, hw, accumulate ? prior : undefined),
      exact ? EXACT : TOL,
      [c],
    );
    g.release(xb), g.release(ob), g.free([d]);
  });
});

describe('argmaxRows [M,N] → u32[M], first max on ties', () => {
  const gpu = useGpu();
  const rows: [string, number, number, (rng: Rng, k: number) => Float64Array][] = [
    ['1x1', 1, 1, (r, k) => r.floats(k)],
    ['M=1, 1x10', 1, 10, (r, k) => r.floats(k)],
    ['N=1, 100x1', 100, 1, (r, k) => r.floats(k)],
    ['37x10 with ties (values in {0,1,2})', 37, 10, (r, k) => ints(r, k, 0, 2)],
    ['130x3 all equal: index 0', 130, 3, (_r, k) => new Float64Array(k).fill(0.5)],
    ['300x7 all negative', 300, 7, (r, k) => r.floats(k, -9, -1)],
  ];
  it.each(rows)('%s', async (_name, m, n, make) => {
    const g = gpu();
    const x = make(new Rng(m + n), m * n);
    const xb = g.upload(f32(x)),
      ob = g.alloc(m * 4);
    const d = argmaxRows(g, { x: xb, out: ob }, { m, n });
    g.run([d]);
    expect(Array.from(await g.readU32(ob))).toEqual(Array.from(argmaxRowsRef(x, m, n)));
    g.release(xb), g.release(ob), g.free([d]);
  });
});

describe('countCorrect: counter[index] += #{pred == label}', () => {
  const gpu = useGpu();
  const rows: [string, number, number, number][] = [
    // name, m, classes, index
    ['1 sample', 1, 1, 0],
    ['1 sample, 2 classes', 1, 2, 0],
    ['1000 samples into word 1', 1000, 3, 1],
    ['70000 samples', 70000, 10, 0],
  ];
  it.each(rows)('%s', async (_name, m, classes, index) => {
    const g = gpu();
    const rng = new Rng(m + classes);
    const pred = Uint32Array.from(ints(rng, m, 0, classes - 1)),
      labels = Uint32Array.from(ints(rng, m, 0, classes - 1));
    const prior = new Uint32Array([7, 11, 13]);
    const pb = g.upload(pred),
      lb = g.upload(labels),
      cb = g.upload(prior);
    const d = countCorrect(g, { predictions: pb, labels: lb, counter: cb }, { m, index });
    g.run([d, d]); // twice: it adds
    const expected = Array.from(prior);
    expected[index]! += 2 * countCorrectRef(pred, labels);
    expect(Array.from(await g.readU32(cb))).toEqual(expected);
    g.release(pb), g.release(lb), g.release(cb), g.free([d]);
  });
});

describe('confusionAccumulate: [true label, predicted] += 1', () => {
  const gpu = useGpu();
  const rows: [string, number, number, number][] = [
    // name, m, classes, largest label (≥ classes: skipped)
    ['1 sample, 1 class', 1, 1, 0],
    ['200 samples, 10 classes, ties in scores', 200, 10, 9],
    ['50 samples, 3 classes, some labels out of range (skipped)', 50, 3, 4],
    ['1000 samples, 2 classes', 1000, 2, 1],
  ];
  it.each(rows)('%s', async (_name, m, classes, maxLabel) => {
    const g = gpu();
    const rng = new Rng(m * 7 + classes);
    const labels = Uint32Array.from(ints(rng, m, 0, maxLabel)),
      scores = ints(rng, m * classes, 0, 3);
    const prior = Uint32Array.from(ints(rng, classes * classes, 0, 5));
    // 8 guard words past the matrix, where an unskipped out-of-range label would land.
    const guard = new Array<number>(8).fill(0xabcd);
    const lb = g.upload(labels),
      sb = g.upload(f32(scores)),
      cb = g.upload(Uint32Array.from([...prior, ...guard]));
    const d = confusionAccumulate(g, { labels: lb, scores: sb, confusion: cb }, { m, classes });
    g.run([d, d]); // twice: it accumulates
    const expected = confusionRef(labels, scores, classes, confusionRef(labels, scores, classes, prior));
    expect(Array.from(await g.readU32(cb))).toEqual([...expected, ...guard]);
    g.release(lb), g.release(sb), g.release(cb), g.free([d]);
  });
});

describe('sum / mean of a whole buffer', () => {
  const gpu = useGpu();
  const rows: [string, 'sum' | 'mean', number, boolean, boolean, number][] = [
    // name, op, n, integer data, accumulate, index
    ['sum of 1', 'sum', 1, false, false, 0],
    ['sum of 255', 'sum', 255, false, false, 0],
    ['sum of 257', 'sum', 257, false, false, 0],
    ['sum of 100000 (exact)', 'sum', 100000, true, false, 0],
    ['sum of 100003 floats', 'sum', 100003, false, false, 0],
    ['mean of 1000', 'mean', 1000, false, false, 0],
    ['mean of 1', 'mean', 1, false, false, 0],
    ['mean of 777, accumulated into word 2', 'mean', 777, false, true, 2],
  ];
  it.each(rows)('%s', async (_name, op, n, exact, accumulate, index) => {
    const g = gpu();
    const rng = new Rng(n);
    const x = data(rng, n, exact),
      prior = [0.5, 1.5, 2.5, 3.5];
    const xb = g.upload(f32(x)),
      ob = g.upload(f32(prior));
    const d = (op === 'sum' ? sum : mean)(g, { x: xb, out: ob }, { n, accumulate, index });
    g.run([d]);
    const expected = prior.slice();
    expected[index] = (accumulate ? prior[index]! : 0) + (op === 'sum' ? sumRef(x) : meanRef(x));
    // f32 partial sums of up to n/256 terms of magnitude ≤ 1.
    expectAllclose(op, await g.readF32(ob), expected, exact ? EXACT : { atol: 1e-5 + 1e-7 * n, rtol: 1e-5 });
    g.release(xb), g.release(ob), g.free([d]);
  });

  it('is bit-identical from run to run (fixed order)', async () => {
    const g = gpu();
    const n = 50001;
    const xb = g.upload(f32(new Rng(3).floats(n, -1e3, 1e3))),
      ob = g.alloc(8);
    const ds = [sum(g, { x: xb, out: ob }, { n }), sum(g, { x: xb, out: ob }, { n, index: 1 })];
    g.run(ds);
    const [a, b] = await g.readU32(ob);
    expect(a).toBe(b);
    g.release(xb), g.release(ob), g.free(ds);
  });
});

describe('nonFiniteCheck: flag = 1 on NaN or ±Inf (bit patterns)', () => {
  const gpu = useGpu();
  const MAX = 3.4028234663852886e38;
  const finite = [0, -0, 1, -1, MAX, -MAX, 1e-45, -1e-45, 1.17549435e-38, 123.5];
  /** f32 values as u32 bit patterns. */
  const bits = (values: number[]): Uint32Array => new Uint32Array(Float32Array.from(values).buffer);
  const rows: [string, () => Uint32Array, number, number, number][] = [
    // name, data bits, prior flag, index, expected flag
    ['all finite: zeros, ±max f32, subnormals', () => bits(finite), 0, 0, 0],
    ['NaN at index 0', () => bits([NaN, ...finite]), 0, 0, 1],
    ['+Inf at the end of 1000', () => bits([...new Array<number>(999).fill(2), Infinity]), 0, 0, 1],
    ['-Inf in the middle', () => bits([...finite, -Infinity, ...finite]), 0, 0, 1],
    ['signalling NaN 0x7f800001', () => Uint32Array.from([0x3f800000, 0x7f800001]), 0, 0, 1],
    ['negative quiet NaN 0xffc00000', () => Uint32Array.from([0xffc00000, 0]), 0, 0, 1],
    ['NaN 0x7fffffff', () => Uint32Array.from([0x7fffffff]), 0, 0, 1],
    [
      'largest finite 0x7f7fffff / 0xff7fffff are not flagged',
      () => Uint32Array.from([0x7f7fffff, 0xff7fffff]),
      0,
      0,
      0,
    ],
    ['sticky: a set flag stays set on finite data', () => bits(finite), 1, 0, 1],
    ['flag word 3 of 4', () => bits([1, 2, NaN]), 0, 3, 1],
    [
      '64·65535+10 elements, Inf last (2-D grid)',
      () => {
        const b = new Uint32Array(64 * 65535 + 10).fill(0x3f800000);
        b[b.length - 1] = 0x7f800000;
        return b;
      },
      0,
      0,
      1,
    ],
  ];
  it.each(rows)('%s', async (_name, make, prior, index, expected) => {
    const g = gpu();
    const x = make();
    // Every row with a clear prior flag is decided by the data alone.
    if (prior === 0) expect(nonFiniteRef(new Float32Array(x.buffer)) ? 1 : 0, 'reference').toBe(expected);
    const xb = g.upload(x),
      fb = g.upload(new Uint32Array([prior, prior, prior, prior]));
    const d = nonFiniteCheck(g, { x: xb, flag: fb }, { n: x.length, index });
    g.run([d]);
    const flags = Array.from(await g.readU32(fb));
    const want = [prior, prior, prior, prior];
    want[index] = expected;
    expect(flags).toEqual(want);
    g.release(xb), g.release(fb), g.free([d]);
  });
});
