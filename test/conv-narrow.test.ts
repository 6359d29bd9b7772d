// The weight gradient of a conv with few taps (C·KH·KW ≤ 11) on the tiled kernels (src/ops/conv2d_narrow.ts,
// shaders/conv2d_backward_weights_narrow.wgsl): dW and db against the CPU reference, split and summed,
// unsplit, without db, over the shapes' edges (out-channels not a multiple of a thread's 8 or a workgroup's
// 16, padding, strides, a chunk's last lane short, the part of the output a pooling reads); and the rule
// that chooses it.
import { describe, expect, it } from 'vitest';
import { f32, useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { conv2dBackwardWeights, conv2dGeometry, weightPartsLength, type Conv2dShape } from '../src/ops/conv2d.ts';
import { NARROW_TAPS, weightNarrowPlan, weightPartsLayout } from '../src/ops/conv2d_weights.ts';
import { conv2dBackwardWeightsRef } from '../src/ops/conv2d.ref.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';
import { conv3x3, uncoveredTo } from './helpers/conv.ts';

const conv = conv3x3;

const CASES: [string, Conv2dShape, number?][] = [
  ["a first layer's: 1 channel, same 28x28, 32 out", conv(3, 1, 28, 28, 32)],
  ['20 out (a block of 16 and a short one), valid 11x9', conv(2, 1, 11, 9, 20, { padding: 'valid' })],
  ['stride 2, same 13x13, 8 out', conv(4, 1, 13, 13, 8, { strideH: 2, strideW: 2 })],
  ['2 channels, 2x2 stride 2 (8 taps), 12 out', conv(3, 2, 10, 10, 12, { kh: 2, kw: 2, strideH: 2, strideW: 2 })],
  ['3 channels, 1x1 (3 taps), 24 out', conv(2, 3, 9, 9, 24, { kh: 1, kw: 1 })],
  ['1x11 (11 taps, the most), same 6x20, 16 out', conv(2, 1, 6, 20, 16, { kh: 1, kw: 11 })],
  // What a 2×2 pooling reads of a 7×7 output: 6×6; dY past it is nonzero and must not be read.
  ['the 6x6 of 7x7 a pooling reads, 40 out', conv(5, 1, 7, 7, 40, { covered: [6, 6] })],
  // 36 positions: one split, which writes dW and db itself; and split 5 ways (chunks not a multiple of 32).
  ['one split: 6x6, 16 out', conv(1, 1, 6, 6, 16)],
  ['5 splits (a target of 10 workgroups): 17 out', conv(4, 1, 12, 12, 17), 10],
];

describe('the weight gradient of a conv with few taps (narrow: 8 out-channels × 12 columns a thread)', () => {
  const gpu = useGpu();
  const tiled = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });

  it.for(CASES)('%s: the reference dW and db, split and summed, without db', async ([, s, target]) => {
    const g = tiled();
    const { oh, ow } = conv2dGeometry(s);
    const rng = new Rng(s.k * 7 + s.h);
    const dyv = rng.floats(s.n * s.k * oh * ow, -1, 1);
    const xv = rng.floats(s.n * s.c * s.h * s.w, -1, 1);
    const [dy, x] = [g.upload(f32(dyv)), g.upload(f32(xv))];
    const taps = s.c * s.kh * s.kw;
    const nan = (n: number): GPUBuffer => g.upload(new Float32Array(n).fill(Number.NaN));
    const [dw, db, dw2] = [nan(s.k * taps), nan(s.k), nan(s.k * taps)];
    const o = { target };
    const plan = weightNarrowPlan(g, s, { ...o, bias: true });
    expect(plan, 'narrow').not.toBeNull();
    const splits = plan?.splits ?? 0;
    const parts = g.alloc(4 * Math.max(1, weightPartsLength(g, s, { ...o, bias: true })));
    const withDb = conv2dBackwardWeights(g, { dy, x, dw, db, parts }, s, o);
    const bare = conv2dBackwardWeights(g, { dy, x, dw: dw2, parts }, s, o);
    const split = splits > 1 ? ` split ${splits}` : '';
    expect(withDb.map((d) => d.label)).toEqual(
      [
        expect.stringMatching(new RegExp(`^conv2d backward weights narrow .* \\+ bias grad${split}$`)),
        expect.stringMatching(/ reduce \d+ splits$/),
      ].slice(0, splits > 1 ? 2 : 1),
    );
    expect(withDb[0]?.workgroups).toEqual([splits, Math.ceil(s.k / 16), 1]);
    expect(bare[0]?.label).not.toMatch(/bias grad/);
    g.run([...withDb, ...bare]);
    // dY is 0 past what is covered (no window takes the gradient back there): what is there is not read.
    const ref = conv2dBackwardWeightsRef(uncoveredTo(dyv, s, 0), xv, s);
    const tol = { atol: 5e-5, rtol: 5e-5 };
    expectAllclose('dw', await g.readF32(dw), ref.dw, tol);
    expectAllclose('dw (no db)', await g.readF32(dw2), ref.dw, tol);
    expectAllclose('db', await g.readF32(db), ref.db, tol);
    g.free([...withDb, ...bare]);
    for (const b of [dy, x, dw, db, dw2, parts]) g.release(b);
  });

  it('its partials, left for the planner to sum, are laid out as the direct GEMM leaves them', async () => {
    const g = tiled();
    const s = conv(4, 1, 16, 16, 20); // 1,024 positions: 32 splits, a position a lane
    const layout = weightPartsLayout(g, s, { bias: true });
    const plan = weightNarrowPlan(g, s, { bias: true });
    expect(plan?.splits).toBe(32);
    expect(layout).toEqual({ splits: 32, rows: 20, cols: 10, sums: 'column' });
    const { oh, ow } = conv2dGeometry(s);
    const rng = new Rng(3);
    const dyv = rng.floats(s.n * s.k * oh * ow, -1, 1);
    const xv = rng.floats(s.n * s.h * s.w, -1, 1);
    const [dy, x, dw, db] = [g.upload(f32(dyv)), g.upload(f32(xv)), g.alloc(4 * 180), g.alloc(4 * 20)];
    const parts = g.alloc(4 * weightPartsLength(g, s, { bias: true }));
    const d = conv2dBackwardWeights(g, { dy, x, dw, db, parts }, s, { unsummed: true });
    expect(d).toHaveLength(1);
    g.run(d);
    const p = await g.readF32(parts);
    // parts[z][k][column]: tap columns 0–8, the bias gradient in column 9; summed over z, the reference.
    const summed = new Float64Array(20 * 10);
    for (let i = 0; i < p.length; i++) summed[i % 200] = summed[i % 200]! + p[i]!;
    const ref = conv2dBackwardWeightsRef(dyv, xv, s);
    const tol = { atol: 5e-5, rtol: 5e-5 };
    expectAllclose(
      'dw',
      summed.filter((_, i) => i % 10 < 9),
      ref.dw,
      tol,
    );
    expectAllclose(
      'db',
      summed.filter((_, i) => i % 10 === 9),
      ref.db,
      tol,
    );
    g.free(d);
    for (const b of [dy, x, dw, db, parts]) g.release(b);
  });

  it('takes convs of at most 11 taps on the tiled kernels, where a partial-sums buffer can be given', () => {
    const g = tiled();
    // reference.net's conv1 at batch 256: 200,704 positions in 132 splits (2 blocks of 16 out-channels:
    // 264 workgroups, 2 × 132 units), each lane 48 positions; at batch 8, 6,272
    // in 131 splits of 48 (a lane 1 or 2 positions).
    expect(weightNarrowPlan(g, conv(256, 1, 28, 28, 32), { bias: true })).toEqual({
      narrow: true,
      splits: 132,
      chunk: 1521,
      blocks: 2,
    });
    expect(weightNarrowPlan(g, conv(8, 1, 28, 28, 32), { bias: true })).toMatchObject({ splits: 131, chunk: 48 });
    expect(NARROW_TAPS).toBe(11);
    expect(weightNarrowPlan(g, conv(8, 2, 28, 28, 32), {}), '18 taps').toBeNull();
    expect(weightNarrowPlan(g, conv(8, 1, 28, 28, 32), { split: false }), 'no partials').toBeNull();
    expect(weightNarrowPlan(gpu().withTuning({ lanes: 8 }), conv(8, 1, 28, 28, 32), {}), 'lane kernels').toBeNull();
  });
});
