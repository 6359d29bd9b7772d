import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose, type Tol } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import {
  conv2dBackwardInput,
  conv2dBackwardWeights,
  weightPartsLength,
  weightSplits,
  conv2dForward,
  conv2dGeometry,
  type Conv2dShape,
} from '../src/ops/conv2d.ts';
import { conv2dBackwardInputRef, conv2dBackwardWeightsRef, conv2dRef } from '../src/ops/conv2d.ref.ts';
import type { Act, Padding } from '../dsl/ir.ts';
import { Rng } from '../src/util/rng.ts';
import { laneTile } from '../src/ops/lanes.ts';

// f32 sums of `terms` products of values in [-1,1] (C·KH·KW for y, K·KH·KW for dX, N·OH·OW for dW
// and db): the rounding error random-walks to about sqrt(terms)·|partial sums|·2⁻²⁴ ≲ terms·2e-8,
// so allow 1e-7 per term on top of the matmul tolerance.
const tol = (terms: number): Tol => ({ atol: 1e-5 + 1e-7 * terms, rtol: 1e-4 });

function shape(
  n: number,
  c: number,
  h: number,
  w: number,
  k: number,
  kh: number,
  kw: number,
  stride: number | [number, number],
  padding: Padding,
): Conv2dShape {
  const [strideH, strideW] = typeof stride === 'number' ? [stride, stride] : stride;
  return { n, c, h, w, k, kh, kw, strideH, strideW, padding };
}

interface Case {
  s: Conv2dShape;
  bias: boolean;
  act?: Act;
  accumulate?: boolean;
}
// Forward variants kept to four pipelines: bias+linear, no bias+linear, bias+relu, no bias+tanh.
const relu: Act = { kind: 'relu' };
const tanh: Act = { kind: 'tanh' };
const cases: [string, Case][] = [
  ['batch 1, 1→1 channel, 5×7, 3×3 same', { s: shape(1, 1, 5, 7, 1, 3, 3, 1, 'same'), bias: true }],
  [
    '1×1 valid, 67 out-channels (2 row tiles), relu',
    { s: shape(2, 5, 6, 9, 67, 1, 1, 1, 'valid'), bias: true, act: relu },
  ],
  ['7×7 same, 9×8 input', { s: shape(2, 3, 9, 8, 5, 7, 7, 1, 'same'), bias: true }],
  ['7×7 valid, no bias', { s: shape(1, 2, 10, 7, 4, 7, 7, 1, 'valid'), bias: false }],
  ['2×2 same stride 1 (pad 0 before, 1 after)', { s: shape(2, 3, 6, 7, 4, 2, 2, 1, 'same'), bias: true }],
  [
    '4×4 same stride 1 (pad 1 before, 2 after), relu',
    { s: shape(1, 4, 7, 6, 3, 4, 4, 1, 'same'), bias: true, act: relu },
  ],
  ['3×3 stride 2 same, odd input', { s: shape(2, 3, 9, 7, 6, 3, 3, 2, 'same'), bias: true }],
  [
    '3×3 stride 2 same, even input (pad 0 before), tanh',
    { s: shape(2, 2, 8, 10, 3, 3, 3, 2, 'same'), bias: false, act: tanh },
  ],
  ['5×5 stride 3 valid', { s: shape(1, 3, 13, 11, 4, 5, 5, 3, 'valid'), bias: true }],
  ['2×2 stride 3 same (phases without taps)', { s: shape(2, 2, 10, 8, 3, 2, 2, 3, 'same'), bias: false }],
  ['3×3 stride 4 valid', { s: shape(1, 2, 15, 13, 2, 3, 3, 4, 'valid'), bias: true }],
  ['7×7 stride 4 same', { s: shape(1, 3, 17, 12, 3, 7, 7, 4, 'same'), bias: true }],
  ['3×5 kernel, stride 2×1 same, tanh', { s: shape(2, 3, 8, 11, 5, 3, 5, [2, 1], 'same'), bias: false, act: tanh }],
  ['5×2 kernel, stride 1×3 valid', { s: shape(1, 2, 9, 14, 3, 5, 2, [1, 3], 'valid'), bias: true }],
  ['1×1 stride 2 valid (residual shortcut)', { s: shape(2, 8, 7, 7, 16, 1, 1, 2, 'valid'), bias: false }],
  [
    '3×3 same, 20→70 channels, 3×11×13 (ragged tiles in every dimension)',
    { s: shape(3, 20, 11, 13, 70, 3, 3, 1, 'same'), bias: true, act: relu },
  ],
  ['3×3 stride 2 same, 70→6 channels (2 row tiles in dX)', { s: shape(2, 70, 7, 9, 6, 3, 3, 2, 'same'), bias: false }],
  ['3×3 stride 2 same, dX accumulated', { s: shape(2, 3, 7, 6, 4, 3, 3, 2, 'same'), bias: true, accumulate: true }],
];

type Pass = 'forward' | 'dX' | 'dW+db';
// Every case with the adapter's own kernels and the other family; the ones that exercise ragged
// and narrow tiles again with the tiled kernels' other workgroup side, and some with four lanes
// (helpers/gpu.ts).
const passes =
  (variant: GemmVariant) =>
  ([name, c]: [string, Case]): [string, Case, Pass, GemmVariant][] =>
    (['forward', 'dX', 'dW+db'] as Pass[]).map((p) => [
      `${name}: ${p}${variant === 'own' ? '' : `, ${variant}`}`,
      c,
      p,
      variant,
    ]);
const rows = [
  ...cases.flatMap(passes('own')),
  ...cases.flatMap(passes('other family')),
  ...cases.filter(([name]) => /ragged|row tiles|7×7 stride 4|5×2 kernel/.test(name)).flatMap(passes('other side')),
  ...cases.filter(([name]) => /ragged|row tiles|3×5 kernel|accumulated/.test(name)).flatMap(passes('four lanes')),
];

describe('conv2d (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  it.for(rows)('%s', async ([, { s, bias, act, accumulate }, pass, variant], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const { oh, ow } = conv2dGeometry(s);
    const xs = s.n * s.c * s.h * s.w,
      ws = s.k * s.c * s.kh * s.kw,
      ys = s.n * s.k * oh * ow;
    const rng = new Rng(xs * 31 + ws * 7 + ys);
    const x = rng.floats(xs),
      w = rng.floats(ws),
      b = rng.floats(s.k),
      dy = rng.floats(ys),
      dx0 = rng.floats(xs);
    const xShape = [s.n, s.c, s.h, s.w],
      yShape = [s.n, s.k, oh, ow];
    const bufs: GPUBuffer[] = [];
    const up = (a: Float64Array): GPUBuffer => {
      const q = g.upload(f32(a));
      bufs.push(q);
      return q;
    };
    if (pass === 'forward') {
      const yb = up(new Float64Array(ys).fill(NaN)); // every output must be written
      const d = conv2dForward(g, { x: up(x), w: up(w), b: bias ? up(b) : undefined, y: yb }, s, act);
      g.run(d);
      expectAllclose(
        'conv2d y',
        await g.readF32(yb),
        conv2dRef(x, w, bias ? b : null, s, act),
        tol(s.c * s.kh * s.kw),
        yShape,
      );
      g.free(d);
    } else if (pass === 'dX') {
      const dxb = up(accumulate ? dx0 : new Float64Array(xs).fill(NaN));
      const d = conv2dBackwardInput(g, { dy: up(dy), w: up(w), dx: dxb }, s, { accumulate });
      g.run(d);
      const ref = conv2dBackwardInputRef(dy, w, s);
      if (accumulate) ref.forEach((v, i) => (ref[i] = v + dx0[i]!));
      expectAllclose('conv2d dX', await g.readF32(dxb), ref, tol(s.k * s.kh * s.kw), xShape);
      g.free(d);
    } else {
      // Once as one workgroup per tile (no split), once split-K over the positions with a
      // fixed-order reduction of the partial sums.
      for (const target of [1, 64]) {
        const dwb = up(new Float64Array(ws).fill(NaN)),
          dbb = up(new Float64Array(s.k).fill(NaN));
        const len = weightPartsLength(g, s, { target });
        const parts = len > 0 ? up(new Float64Array(len).fill(NaN)) : undefined; // every partial must be written
        const d = conv2dBackwardWeights(g, { dy: up(dy), x: up(x), dw: dwb, db: bias ? dbb : undefined, parts }, s, {
          target,
        });
        const split = d.some((q) => q.label.includes('reduce'));
        expect(split).toBe(target > 1 && s.n * oh * ow >= 128);
        expect(d).toHaveLength(1 + (split ? 1 : 0) + (bias ? 1 : 0));
        g.run(d);
        const ref = conv2dBackwardWeightsRef(dy, x, s);
        expectAllclose(`conv2d dW (target ${target})`, await g.readF32(dwb), ref.dw, tol(s.n * oh * ow), [
          s.k,
          s.c,
          s.kh,
          s.kw,
        ]);
        if (bias) expectAllclose('conv2d db', await g.readF32(dbb), ref.db, tol(s.n * oh * ow), [s.k]);
        g.free(d);
      }
    }
    for (const q of bufs) g.release(q);
  });
});

describe('weightSplits', () => {
  const gpu = useGpu();
  it('a split weight gradient without its partial-sums buffer is refused, naming the size', () => {
    const s: Conv2dShape = { n: 4, c: 1, h: 28, w: 28, k: 32, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
    const g = gpu();
    const len = weightPartsLength(g, s, { target: 64 });
    expect(len).toBeGreaterThan(0);
    expect(() => conv2dBackwardWeights(g, { dy: g.dummy, x: g.dummy, dw: g.dummy }, s, { target: 64 })).toThrow(
      `needs a partial-sums buffer of ${len} floats`,
    );
    expect(weightPartsLength(g, s, { target: 1 })).toBe(0);
  });

  it.each([
    [50, 1, 1024],
    [200704, 1, 1024],
    [50176, 5, 1024],
    [12544, 18, 1024],
    [1000, 3, 16],
    [129, 1, 64],
  ])(
    'inner %i, %i tiles, target %i: chunks of ≥ 64 (or all) positions, a multiple of 16, covering inner once',
    (inner, tiles, target) => {
      const { splits, chunk } = weightSplits(inner, tiles, target);
      expect(chunk % 16).toBe(0);
      expect(splits * chunk).toBeGreaterThanOrEqual(inner);
      expect((splits - 1) * chunk).toBeLessThan(inner);
      if (splits > 1) expect(chunk).toBeGreaterThanOrEqual(64);
      expect(splits * tiles).toBeLessThanOrEqual(Math.max(tiles, target + tiles));
    },
  );
});

describe('conv2d reference', () => {
  it('pins TF same padding: 2×2 kernel at stride 1 pads only after', () => {
    // x = 1..9 as 3×3, w = ones(2×2): y[i,j] = sum of x[i..i+1, j..j+1] clipped at the bottom/right.
    const s = shape(1, 1, 3, 3, 1, 2, 2, 1, 'same');
    expect(conv2dGeometry(s)).toEqual({ oh: 3, ow: 3, padTop: 0, padLeft: 0 });
    const y = conv2dRef([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 1, 1], null, s);
    expect(Array.from(y)).toEqual([12, 16, 9, 24, 28, 15, 15, 17, 9]);
  });

  it('pins TF same padding at stride 2: 4×4 input, 3×3 kernel pads 0 before, 1 after', () => {
    const s = shape(1, 1, 4, 4, 1, 3, 3, 2, 'same');
    expect(conv2dGeometry(s)).toEqual({ oh: 2, ow: 2, padTop: 0, padLeft: 0 });
    const x = Array.from({ length: 16 }, (_, i) => i);
    // windows at rows/cols {0,1,2} and {2,3}
    expect(Array.from(conv2dRef(x, new Array(9).fill(1), [0.5], s))).toEqual([45.5, 39.5, 66.5, 50.5]);
  });

  const fdCases: [string, Conv2dShape][] = [
    ['3×3 same stride 1', shape(1, 2, 5, 4, 2, 3, 3, 1, 'same')],
    ['2×2 same stride 1 (asymmetric)', shape(2, 1, 4, 5, 2, 2, 2, 1, 'same')],
    ['3×2 same stride 2', shape(1, 2, 7, 6, 3, 3, 2, 2, 'same')],
    ['3×3 valid stride 3', shape(1, 2, 8, 7, 2, 3, 3, 3, 'valid')],
    ['4×3 same strides 3×2', shape(1, 2, 7, 5, 2, 4, 3, [3, 2], 'same')],
  ];
  it.each(fdCases)('backward by finite differences: %s', (_name, s) => {
    const { oh, ow } = conv2dGeometry(s);
    const rng = new Rng(s.h * 100 + s.w);
    const x = rng.floats(s.n * s.c * s.h * s.w),
      w = rng.floats(s.k * s.c * s.kh * s.kw),
      b = rng.floats(s.k);
    const g = rng.floats(s.n * s.k * oh * ow);
    const { dw, db } = conv2dBackwardWeightsRef(g, x, s);
    checkGradFd('conv2d dX', x, (v) => dot(conv2dRef(v, w, b, s), g), conv2dBackwardInputRef(g, w, s));
    checkGradFd('conv2d dW', w, (v) => dot(conv2dRef(x, v, b, s), g), dw);
    checkGradFd('conv2d db', b, (v) => dot(conv2dRef(x, w, v, s), g), db);
  });
});

describe('laneTile (the lane kernels’ tile)', () => {
  it.each([
    // lanes, rows, cols → row groups, columns per lane
    [8, 64, 50176, 2, 4], // a wide conv forward: the 16×32 default
    [8, 32, 9, 4, 2], // a first layer's weight gradient: 9 columns fill 16, rows fill 32
    [8, 128, 10, 4, 2], // a dense layer's weight gradient into 10 classes
    [8, 1, 1, 1, 1],
    [8, 1000, 3, 4, 1], // few columns: at most four row groups
    [4, 64, 50176, 4, 4], // four lanes (SwiftShader): 16 accumulators of 4 lanes each
  ])('%i lanes, %i×%i → %i row groups × %i columns per lane', (lanes, rows, cols, rg, cv) => {
    const t = laneTile(lanes, rows, cols);
    expect(t).toEqual({ rowGroups: rg, cols: cv });
    expect(t.rowGroups * t.cols * lanes).toBeLessThanOrEqual(64); // the kernels' 64 accumulators per lane
  });
});
