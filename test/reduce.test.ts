import { describe, expect, it } from 'vitest';
import { useGpu, f32, spreadFromName } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { confusionAccumulate, nonFiniteCheck, sumRows, sumRowsLanes } from '../src/ops/reduce.ts';
import { confusionRef, nonFiniteRef, sumRowsRef } from '../src/ops/reduce.ref.ts';
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
    ['64x128 (16 row lanes)', 64, 128, false, false],
    ['256x130 (64 row lanes, a partial column block)', 256, 130, true, false],
    ['1025x3 (256 row lanes, exact)', 1025, 3, false, true],
  ];
  it.each(rows)('%s', async (_name, m, n, accumulate, exact) => {
    const g = gpu();
    const rng = new Rng(m * 17 + n);
    const x = data(rng, m * n, exact),
      prior = data(rng, n, exact);
    const xb = g.upload(f32(x)),
      ob = g.upload(f32(prior));
    const d = sumRows(g, { x: xb, out: ob }, { m, n, accumulate });
    g.run(d);
    expectAllclose(
      'sumRows',
      await g.readF32(ob),
      sumRowsRef(x, m, n, accumulate ? prior : undefined),
      exact ? EXACT : TOL,
      [n],
    );
    g.release(xb), g.release(ob), g.free(d);
  });
});

describe('sumRows: lanes and determinism', () => {
  const gpu = useGpu();

  it('each row lane sums at most 4 rows up to 1,024 rows, then 256 lanes', () => {
    expect([1, 4, 5, 64, 65, 256, 1024, 1025, 5000].map(sumRowsLanes)).toEqual([1, 1, 2, 16, 32, 64, 256, 256, 256]);
  });

  it('is bit-identical run to run (random floats, 3000 rows: many lanes and column blocks)', async () => {
    const g = gpu();
    const m = 3000,
      n = 37;
    const x = new Rng(4).floats(m * n);
    const xb = g.upload(f32(x));
    const runs: number[][] = [];
    for (let r = 0; r < 3; r++) {
      const ob = g.alloc(n * 4);
      const d = sumRows(g, { x: xb, out: ob }, { m, n });
      g.run(d);
      runs.push(Array.from(await g.readF32(ob)));
      g.release(ob), g.free(d);
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    expectAllclose('sumRows', runs[0]!, sumRowsRef(x, m, n), { atol: 1e-4, rtol: 1e-5 }, [n]);
    g.release(xb);
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
    ['3000 samples, 10 classes (12 workgroups, each counting into its own bins)', 3000, 10, 10],
    ['2000 samples, 40 classes (1,600 bins: straight into the matrix)', 2000, 40, 41],
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
    g.run([...d, ...d]); // twice: it accumulates
    const expected = confusionRef(labels, scores, classes, confusionRef(labels, scores, classes, prior));
    expect(Array.from(await g.readU32(cb))).toEqual([...expected, ...guard]);
    g.release(lb), g.release(sb), g.release(cb), g.free(d);
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
      'NaN at element 4,000 of 5,000, one workgroup',
      () => bits(new Array<number>(5000).fill(1).fill(NaN, 4000, 4001)),
      0,
      2,
      1,
    ],
    ['5,000 finite, one workgroup', () => bits(new Array<number>(5000).fill(-3.5)), 0, 1, 0],
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
  it.each(rows)('%s', async (name, make, prior, index, expected) => {
    const g = spreadFromName(gpu(), name);
    const x = make();
    // Every row with a clear prior flag is decided by the data alone.
    if (prior === 0) expect(nonFiniteRef(new Float32Array(x.buffer)) ? 1 : 0, 'reference').toBe(expected);
    const xb = g.upload(x),
      fb = g.upload(new Uint32Array([prior, prior, prior, prior]));
    const d = nonFiniteCheck(g, { x: xb, flag: fb }, { n: x.length, index });
    g.run(d);
    const flags = Array.from(await g.readU32(fb));
    const want = [prior, prior, prior, prior];
    want[index] = expected;
    expect(flags).toEqual(want);
    g.release(xb), g.release(fb), g.free(d);
  });
});
