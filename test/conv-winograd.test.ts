// A 3×3, stride-1 conv's passes by Winograd's minimal filtering (src/ops/conv2d_winograd.ts): the forward
// and dX (F(2×2, 3×3), shaders/conv2d_winograd.wgsl, conv2d_winograd_dx.wgsl) and the weight and bias
// gradients (F(3×3, 2×2), conv2d_winograd_dw.wgsl) against the CPU references on both tiles, with the
// shapes' edges (odd outputs, channels not a multiple of the step, out-channels and tiles not a multiple
// of the tile); and the rules that choose them. The pooled forward: test/conv-pool.test.ts; dX running
// the chain below: test/dx-chain.test.ts; beside a GEMM: test/pair.test.ts.
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { f32, useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import {
  conv2dBackwardWeights,
  conv2dPlan,
  weightPartsLength,
  conv2dBackwardInput,
  conv2dForward,
  conv2dGeometry,
  forwardPartsLength,
  forwardPools,
  inputPartsLength,
  unsummedInputSplits,
  type Conv2dShape,
} from '../src/ops/conv2d.ts';
import { inputWinogradPlan, weightWinogradPlan, winogradPlan } from '../src/ops/conv2d_plan.ts';
import { conv2dBackwardInputRef, conv2dBackwardWeightsRef, conv2dRef } from '../src/ops/conv2d.ref.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';
import { add } from '../src/ops/elementwise.ts';
import { actRef } from '../src/ops/act.ref.ts';
import { expectSameBits } from './helpers/bits.ts';
import { conv3x3, uncoveredTo } from './helpers/conv.ts';

const conv = conv3x3;

interface Case {
  s: Conv2dShape;
  bias: boolean;
  act: Act;
}

const CASES: [string, Case][] = [
  ['same 8x8, 8 channels, 16 out, bias, relu', { s: conv(2, 8, 8, 8, 16), bias: true, act: { kind: 'relu' } }],
  // 7×7: the last tile row and column hold one output row (column); 5 channels: a step of one.
  ['same 7x7, 5 channels, 40 out, no bias, tanh', { s: conv(3, 5, 7, 7, 40), bias: false, act: { kind: 'tanh' } }],
  [
    'valid 10x13 -> 8x11, 3 channels, 20 out, leaky',
    { s: conv(2, 3, 10, 13, 20, { padding: 'valid' }), bias: true, act: { kind: 'leaky', alpha: 0.1 } },
  ],
  [
    'same 14x14, 32 channels, 64 out (whole tiles), linear',
    { s: conv(4, 32, 14, 14, 64), bias: true, act: { kind: 'linear' } },
  ],
  ['one output row: same 1x9, 4 channels, 8 out', { s: conv(2, 4, 1, 9, 8), bias: true, act: { kind: 'relu' } }],
  // What a pooling reads (Conv2dShape.covered): the forward's and dW's tiles cover it alone, the forward
  // writing 0 past it; dX covers all. 6 of 7 rows and columns (2×2 windows), 7 of 9 rows (3×3, stride 2).
  [
    'same 7x7 covered 6x6, 6 channels, 40 out, relu',
    { s: conv(3, 6, 7, 7, 40, { covered: [6, 6] }), bias: true, act: { kind: 'relu' } },
  ],
  [
    'same 9x10 covered 7x10, 3 channels, 20 out, sigmoid',
    { s: conv(2, 3, 9, 10, 20, { covered: [7, 10] }), bias: false, act: { kind: 'sigmoid' } },
  ],
];
const SIDES = [16, 32] as const;

function run(g: Gpu, ds: Dispatch[]): void {
  g.run(ds);
  g.free(ds);
}

function data(s: Conv2dShape) {
  const rng = new Rng(s.k * 11 + s.h * 3 + s.c);
  return {
    x: rng.floats(s.n * s.c * s.h * s.w, -1, 1),
    w: rng.floats(s.k * s.c * 9, -0.5, 0.5),
    b: rng.floats(s.k, -0.2, 0.2),
  };
}

describe('conv forward by Winograd F(2x2, 3x3)', () => {
  const gpu = useGpu();
  // The tiled kernels (what a GPU runs), whatever this adapter's own family.
  const tiled = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });
  const rows = SIDES.flatMap((side) => CASES.map(([name, c]) => [`${name} (tile ${side})`, c, side] as const));

  it.for(rows)('%s: the reference conv', async ([, c, side]) => {
    const g = tiled();
    const { s } = c;
    const d = data(s);
    const { oh, ow } = conv2dGeometry(s);
    const [x, w, b] = [g.upload(f32(d.x)), g.upload(f32(d.w)), g.upload(f32(d.b))];
    const y = g.upload(new Float32Array(s.n * s.k * oh * ow).fill(Number.NaN));
    const ds = conv2dForward(g, { x, w, b: c.bias ? b : undefined, y }, s, c.act, { winograd: side });
    expect(ds).toHaveLength(1);
    expect(ds[0]!.label).toContain('conv2d forward winograd');
    run(g, ds);
    const got = await g.readF32(y);
    const ref = uncoveredTo(conv2dRef(d.x, d.w, c.bias ? d.b : null, s, c.act), s, 0);
    expectAllclose('y (0 past what is covered)', got, ref, { atol: 2e-5, rtol: 2e-5 });
    if (s.covered) expect(ds[0]!.label).toContain(`winograd ${s.covered.join('x')} of `);
    for (const buf of [x, w, b, y]) g.release(buf);
  });

  it("runs where the busiest unit does at most 9/10 of the direct GEMM's work: 3x3 stride 1, tiled kernels", () => {
    const g = tiled();
    // reference.net's second and third convs at batch 256: 784 and 512 workgroups of the 32-side tile.
    const conv2 = conv(256, 32, 14, 14, 64);
    const conv3 = conv(256, 64, 7, 7, 128);
    expect(winogradPlan(g, conv2)).toMatchObject({ side: 32, rowTiles: 2, colTiles: 392, steps: 8 });
    expect(winogradPlan(g, conv3)).toMatchObject({ side: 32, rowTiles: 4, colTiles: 128, steps: 16 });
    // At batch 64 conv3's 32-side tile makes 128 workgroups, under 2 × 132: the 16-side tile's 512 fill.
    expect(winogradPlan(g, conv(64, 64, 7, 7, 128))).toMatchObject({ side: 16, rowTiles: 8, colTiles: 64 });
    // At batch 8: conv2 still (100 workgroups, against a direct GEMM split 18 ways), not conv3, whose 7×7
    // outputs waste 15 of 64 in 2×2 tiles (4×4 of them an image) and whose direct GEMM splits K to fill.
    expect(winogradPlan(g, conv(8, 32, 14, 14, 64))).toMatchObject({ side: 16 });
    expect(winogradPlan(g, conv(8, 64, 7, 7, 128))).toBeNull();
    // quick.net's conv2 at 64 (16 → 32, valid 13×13): its direct GEMM splits K 3 ways, whose partials cost
    // a pass (the pooling chain sums them), so Winograd's one pass is taken at more than 9/10 of its work.
    const quick2 = conv(64, 16, 13, 13, 32, { padding: 'valid' });
    expect(conv2dPlan(g, quick2, 'forward').splits).toBe(3);
    expect(winogradPlan(g, quick2)).toMatchObject({ side: 16 });
    // A 5×5 or strided window, the lane kernels, asked not to, or a Gpu tuned without it.
    expect(winogradPlan(g, conv(256, 32, 14, 14, 64, { kh: 5, kw: 5 }))).toBeNull();
    expect(winogradPlan(g, conv(256, 32, 14, 14, 64, { strideH: 2, strideW: 2 }))).toBeNull();
    expect(winogradPlan(gpu().withTuning({ lanes: 4 }), conv2)).toBeNull();
    expect(winogradPlan(g, conv2, { winograd: false })).toBeNull();
    expect(winogradPlan(g.withTuning({ winograd: false }), conv2)).toBeNull();
    expect(winogradPlan(g.withTuning({ winograd: false }), conv2, { winograd: 16 })).toMatchObject({ side: 16 });
    // Where it runs, the forward pools in its epilogue and needs no partial sums, whatever the direct GEMM's split.
    expect(forwardPools(g, conv3)).toBe(true);
    expect(forwardPartsLength(g, conv3)).toBe(0);
    expect(forwardPartsLength(g, conv(64, 64, 7, 7, 128))).toBe(0);
  });
});

// A residual add in the forward's store (src/graph/fuse-add.ts AddActFusion.layer; lib/conv_put_add.wgsl): y =
// act(conv + b + shortcut), against the references composed (the conv, linear; the add; the activation) and bit
// for bit against the conv's own pass and then the add kernel with the activation, on Winograd's kernel (tiled)
// and the lane kernels.
describe("a residual add in the conv forward's store", () => {
  const gpu = useGpu();
  const variants = [
    ['Winograd, tile 16', (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 }), 16],
    ['lane kernels', (): Gpu => gpu(), undefined],
  ] as const;
  const rows = variants.flatMap(([v, g, side]) =>
    CASES.filter(([, c]) => !c.s.covered).map(([name, c]) => [`${name} (${v})`, c, g, side] as const),
  );
  it.for(rows)('%s', async ([, c, make, side], { skip }) => {
    const g = make();
    if (side === undefined && g.lanes === 0) skip('this adapter runs no lane kernels');
    const { s } = c;
    const d = data(s);
    const { oh, ow } = conv2dGeometry(s);
    const size = s.n * s.k * oh * ow;
    const sc = new Rng(5).floats(size, -1, 1);
    const [x, w, b, shortcut] = [d.x, d.w, d.b, sc].map((a) => g.upload(f32(a)));
    const [y, z, unfused] = [0, 1, 2].map(() => g.upload(new Float32Array(size).fill(Number.NaN)));
    const io = { x: x!, w: w!, b: c.bias ? b : undefined };
    const o = side ? { winograd: side } : {};
    const ds = conv2dForward(g, { ...io, y: y!, shortcut }, s, c.act, o);
    expect(ds).toHaveLength(1);
    expect(ds[0]!.label).toMatch(side ? /^conv2d forward winograd .* \+ add$/ : /^conv2d forward .* \+ add$/);
    const plain = [...conv2dForward(g, { ...io, y: z! }, s, { kind: 'linear' }, o)];
    run(g, [...ds, ...plain, ...add(g, { a: z!, b: shortcut!, c: unfused! }, size, c.act)]);
    const got = await g.readF32(y!);
    const conv = conv2dRef(d.x, d.w, c.bias ? d.b : null, s, { kind: 'linear' });
    const want = conv.map((v, i) => actRef(c.act, v + (sc[i] ?? 0)));
    expectAllclose('act(conv + b + shortcut)', got, want, { atol: 2e-5, rtol: 2e-5 });
    expectSameBits('the store against the conv and then the add kernel', got, await g.readF32(unfused!));
    for (const buf of [x, w, b, shortcut, y, z, unfused]) g.release(buf!);
  });

  it('refuses a shortcut with a pooling or over part of the output', () => {
    const g = gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });
    const s = conv(2, 4, 8, 8, 8);
    const d = g.dummy;
    const pool = { pooled: d, argmax: d, counter: d };
    const io = { x: d, w: d, y: d, shortcut: d };
    expect(() => conv2dForward(g, { ...io, pool }, s, undefined, { winograd: 16 })).toThrow(/shortcut/);
    const covered = conv(2, 4, 7, 7, 8, { covered: [6, 6] });
    expect(() => conv2dForward(g, io, covered, undefined, { winograd: 16 })).toThrow(/shortcut/);
  });
});

describe('conv backward input by Winograd F(2x2, 3x3): the correlation of dY with the flipped filters', () => {
  const gpu = useGpu();
  const tiled = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });
  const rows = SIDES.flatMap((side) => CASES.map(([name, c]) => [`${name} (tile ${side})`, c.s, side] as const));

  it.for(rows)('%s: the reference dX, written and added to', async ([, s, side]) => {
    const g = tiled();
    const { oh, ow } = conv2dGeometry(s);
    const rng = new Rng(s.k * 5 + s.w);
    const dyv = rng.floats(s.n * s.k * oh * ow, -1, 1);
    const wv = rng.floats(s.k * s.c * 9, -0.5, 0.5);
    const before = rng.floats(s.n * s.c * s.h * s.w, -1, 1);
    const [dy, w] = [g.upload(f32(dyv)), g.upload(f32(wv))];
    const dx = g.upload(new Float32Array(before.length).fill(Number.NaN));
    const acc = g.upload(f32(before));
    const ds = [
      ...conv2dBackwardInput(g, { dy, w, dx }, s, { winograd: side }),
      ...conv2dBackwardInput(g, { dy, w, dx: acc }, s, { winograd: side, accumulate: true }),
    ];
    expect(ds.map((d) => d.label)).toEqual(Array(2).fill(expect.stringContaining('conv2d backward input winograd')));
    run(g, ds);
    const ref = conv2dBackwardInputRef(dyv, wv, s);
    expectAllclose('dx', await g.readF32(dx), ref, { atol: 2e-5, rtol: 2e-5 });
    const added = Float64Array.from(ref, (v, i) => v + (before[i] as number));
    expectAllclose('dx added to', await g.readF32(acc), added, { atol: 2e-5, rtol: 2e-5 });
    for (const buf of [dy, w, dx, acc]) g.release(buf);
  });

  it("runs where the forward would (a tenth of the busiest unit's work saved), and leaves no partial sums", () => {
    const g = tiled();
    // reference.net's conv3 and conv2 at batch 256: dX of 128 → 64 and 64 → 32 channels. conv3's would make
    // 256 workgroups of the 32-side tile, under 2 × 132: the 16-side tile's 1,024.
    const conv3 = conv(256, 64, 7, 7, 128);
    const conv2 = conv(256, 32, 14, 14, 64);
    expect(inputWinogradPlan(g, conv3)).toMatchObject({ side: 16, cin: 128, cout: 64, rowTiles: 4, steps: 32 });
    expect(inputWinogradPlan(g, conv2)).toMatchObject({ side: 32, cin: 64, cout: 32, rowTiles: 1, steps: 16 });
    expect(inputPartsLength(g, conv3)).toBe(0);
    expect(unsummedInputSplits(g, conv3)).toBe(0);
    // A strided conv's dX runs by stride phases on the direct GEMM; so does every dX with Winograd off.
    expect(inputWinogradPlan(g, conv(256, 32, 14, 14, 64, { strideH: 2, strideW: 2 }))).toBeNull();
    expect(inputWinogradPlan(g.withTuning({ winograd: false }), conv3)).toBeNull();
    expect(unsummedInputSplits(g.withTuning({ winograd: false }), conv3)).toBeGreaterThan(1);
  });
});

describe('conv backward weights by Winograd F(3x3, 2x2): each 2x2 tile of dY against its 4x4 patch of x', () => {
  const gpu = useGpu();
  const tiled = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 132 });
  const rows = SIDES.flatMap((side) => CASES.map(([name, c]) => [`${name} (tile ${side})`, c.s, side] as const));

  it.for(rows)('%s: the reference dW and db, split and summed, in one pass, without db', async ([, s, side]) => {
    const g = tiled();
    const { oh, ow } = conv2dGeometry(s);
    const rng = new Rng(s.k * 3 + s.h);
    const dyv = rng.floats(s.n * s.k * oh * ow, -1, 1);
    const xv = rng.floats(s.n * s.c * s.h * s.w, -1, 1);
    const [dy, x] = [g.upload(f32(dyv)), g.upload(f32(xv))];
    const nan = (n: number): GPUBuffer => g.upload(new Float32Array(n).fill(Number.NaN));
    const [dw, db, dw1, db1, dw2] = [nan(s.k * s.c * 9), nan(s.k), nan(s.k * s.c * 9), nan(s.k), nan(s.k * s.c * 9)];
    const o = { winograd: side } as const;
    const parts = g.alloc(4 * Math.max(1, weightPartsLength(g, s, { ...o, bias: true })));
    const split = conv2dBackwardWeights(g, { dy, x, dw, db, parts }, s, o);
    const one = conv2dBackwardWeights(g, { dy, x, dw: dw1, db: db1 }, s, { ...o, split: false });
    const bare = conv2dBackwardWeights(g, { dy, x, dw: dw2 }, s, { ...o, split: false });
    const splits = weightWinogradPlan(g, s, { ...o, bias: true })?.splits ?? 0;
    expect(split.map((d) => d.label)).toEqual(
      [
        expect.stringMatching(/^conv2d backward weights winograd .* \+ bias grad split \d+$/),
        expect.stringMatching(/ reduce \d+ splits$/),
      ].slice(0, splits > 1 ? 2 : 1),
    );
    expect([...one, ...bare].map((d) => d.label)).toEqual([
      expect.stringMatching(/winograd .* \+ bias grad$/),
      expect.not.stringMatching(/bias grad/),
    ]);
    run(g, [...split, ...one, ...bare]);
    // dY is 0 past what is covered (no window takes the gradient back there): what is there is not read.
    const ref = conv2dBackwardWeightsRef(uncoveredTo(dyv, s, 0), xv, s);
    const tol = { atol: 5e-5, rtol: 5e-5 };
    for (const [name, b] of [
      ['split', dw],
      ['one pass', dw1],
      ['no db', dw2],
    ] as const)
      expectAllclose(`dw (${name})`, await g.readF32(b), ref.dw, tol);
    expectAllclose('db (split)', await g.readF32(db), ref.db, tol);
    expectAllclose('db (one pass)', await g.readF32(db1), ref.db, tol);
    for (const b of [dy, x, dw, db, dw1, db1, dw2, parts]) g.release(b);
  });

  it('splits as many ways as fill the device, chunks as even as whole steps allow; beside its dX, its tile', () => {
    const g = tiled();
    // reference.net's conv2 at batch 256: 12,544 tiles, 3,136 steps of 4. The 32-side tile's 2 tiles split
    // 132 ways (264 workgroups, 2 × 132 units), chunks of 23 and 24 steps; whole chunks of 24 would make 131.
    const conv2 = conv(256, 32, 14, 14, 64);
    expect(weightWinogradPlan(g, conv2, { bias: true })).toMatchObject({ side: 32, splits: 132, steps: 24 });
    // conv3 over the 6×6 its pooling reads, at 64: 576 tiles. Its dX by Winograd (16-side tile, 256 workgroups)
    // does not fill the device alone, so its dW takes the same tile, and the two pair (9 splits of 32 tiles).
    const conv3 = conv(64, 64, 7, 7, 128, { covered: [6, 6] });
    expect(inputWinogradPlan(g, conv3)).toMatchObject({ side: 16, rowTiles: 4, colTiles: 64 });
    expect(weightWinogradPlan(g, conv3, { bias: true })).toMatchObject({ side: 16, splits: 9, steps: 16 });
    // Over all 7×7 (16 tiles an image, 64 outputs for 49) the direct GEMM does less work.
    expect(weightWinogradPlan(g, { ...conv3, covered: undefined }, { bias: true })).toBeNull();
  });
});
