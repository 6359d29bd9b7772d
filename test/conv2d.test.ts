import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose, type Tol } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import {
  conv2dBackwardInput,
  conv2dBackwardWeights,
  conv2dForward,
  conv2dGeometry,
  conv2dPlan,
  forwardPartsLength,
  inputPartsLength,
  weightPartsLength,
  weightSplits,
  type Conv2dShape,
  type ConvOptions,
} from '../src/ops/conv2d.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { conv2dBackwardInputRef, conv2dBackwardWeightsRef, conv2dRef } from '../src/ops/conv2d.ref.ts';
import type { Act, Padding } from '../dsl/ir.ts';
import { Rng } from '../src/util/rng.ts';
import { laneTile } from '../src/ops/lanes.ts';
import { uncoveredTo } from './helpers/conv.ts';
import { expectSameBits } from './helpers/bits.ts';
import { add } from '../src/ops/elementwise.ts';
import { actRef } from '../src/ops/act.ref.ts';

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
  ['3×3 stride 3 same over 2×2 (phases without inputs)', { s: shape(2, 3, 2, 2, 4, 3, 3, 3, 'same'), bias: true }],
  ['3×3 stride 4 valid', { s: shape(1, 2, 15, 13, 2, 3, 3, 4, 'valid'), bias: true }],
  ['7×7 stride 4 same', { s: shape(1, 3, 17, 12, 3, 7, 7, 4, 'same'), bias: true }],
  ['3×5 kernel, stride 2×1 same, tanh', { s: shape(2, 3, 8, 11, 5, 3, 5, [2, 1], 'same'), bias: false, act: tanh }],
  ['5×2 kernel, stride 1×3 valid', { s: shape(1, 2, 9, 14, 3, 5, 2, [1, 3], 'valid'), bias: true }],
  ['1×1 stride 2 valid (residual shortcut)', { s: shape(2, 8, 7, 7, 16, 1, 1, 2, 'valid'), bias: false }],
  [
    '3×3 same, 20→70 channels, 3×11×13 (ragged tiles in every dimension)',
    { s: shape(3, 20, 11, 13, 70, 3, 3, 1, 'same'), bias: true, act: relu },
  ],
  [
    '1×1 valid, 64→32 channels, 2×4×8 (every pass fills whole 16×64 lane tiles)',
    { s: shape(2, 64, 4, 8, 32, 1, 1, 1, 'valid'), bias: true },
  ],
  ['3×3 stride 2 same, 70→6 channels (2 row tiles in dX)', { s: shape(2, 70, 7, 9, 6, 3, 3, 2, 'same'), bias: false }],
  // What its pooling reads alone (Conv2dShape.covered): no weight gradient reads dY past it (0 there in a
  // network); y is compared there alone (Winograd and the pooled lane forward write 0 past it).
  [
    '3×3 same, 7×7 of which 6×6 covered, 5→20 channels (ragged tiles)',
    { s: { ...shape(3, 5, 7, 7, 20, 3, 3, 1, 'same'), covered: [6, 6] }, bias: true, act: relu },
  ],
  ['3×3 stride 2 same, dX accumulated', { s: shape(2, 3, 7, 6, 4, 3, 3, 2, 'same'), bias: true, accumulate: true }],
];

type Pass = 'forward' | 'dX' | 'dW+db';
// Every case with the adapter's own kernels and the other family; the ones that exercise ragged
// and narrow tiles again with the tiled kernels' other workgroup side, some with four lanes, and
// some with the tiles and splits an H100 gets (helpers/gpu.ts).
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
  ...cases
    .filter(([name]) => /ragged|row tiles|7×7 same|stride 3 same|accumulated/.test(name))
    .flatMap(passes('gpu tiles')),
];

/** Uploads as f32, keeping the buffers for release. */
function uploader(g: Gpu) {
  const bufs: GPUBuffer[] = [];
  const up = (a: Float64Array | number[]): GPUBuffer => {
    const q = g.upload(f32(a));
    bufs.push(q);
    return q;
  };
  return { up, release: () => bufs.forEach((q) => g.release(q)) };
}

/** Partial sums of `len` floats, NaN so that every partial must be written; none when 0. */
const partsOf = (up: (a: number[]) => GPUBuffer, len: number): GPUBuffer | undefined =>
  len > 0 ? up(new Array<number>(len).fill(NaN)) : undefined;

interface Data {
  x: Float64Array;
  w: Float64Array;
  b: Float64Array;
  dy: Float64Array;
  dx0: Float64Array;
}

function data(s: Conv2dShape): Data {
  const { oh, ow } = conv2dGeometry(s);
  const [xs, ws, ys] = [s.n * s.c * s.h * s.w, s.k * s.c * s.kh * s.kw, s.n * s.k * oh * ow];
  const rng = new Rng(xs * 31 + ws * 7 + ys);
  return { x: rng.floats(xs), w: rng.floats(ws), b: rng.floats(s.k), dy: rng.floats(ys), dx0: rng.floats(xs) };
}

/** One pass on `g` with the partial sums it asks for: its outputs and its dispatches' labels. */
async function runPass(
  g: Gpu,
  c: Case,
  pass: Pass,
  d: Data,
  o: ConvOptions = {},
): Promise<{ out: Float32Array[]; labels: string[] }> {
  const { s, bias, act, accumulate } = c;
  const { up, release } = uploader(g);
  const { oh, ow } = conv2dGeometry(s);
  const nan = (n: number): GPUBuffer => up(new Array<number>(n).fill(NaN)); // every output must be written
  let outs: GPUBuffer[];
  let ds: Dispatch[];
  if (pass === 'forward') {
    outs = [nan(s.n * s.k * oh * ow)];
    const io = { x: up(d.x), w: up(d.w), b: bias ? up(d.b) : undefined, y: outs[0]! };
    ds = conv2dForward(g, { ...io, parts: partsOf(up, forwardPartsLength(g, s, o)) }, s, act, o);
  } else if (pass === 'dX') {
    outs = [accumulate ? up(d.dx0) : nan(d.x.length)];
    const io = { dy: up(d.dy), w: up(d.w), dx: outs[0]!, parts: partsOf(up, inputPartsLength(g, s, o)) };
    ds = conv2dBackwardInput(g, io, s, { ...o, accumulate });
  } else {
    outs = [nan(d.w.length), nan(s.k)];
    const parts = partsOf(up, weightPartsLength(g, s, { ...o, bias }));
    const io = { dy: up(d.dy), x: up(d.x), dw: outs[0]!, db: bias ? outs[1] : undefined, parts };
    ds = conv2dBackwardWeights(g, io, s, o);
  }
  g.run(ds);
  const out = await Promise.all(outs.map((q) => g.readF32(q)));
  g.free(ds);
  release();
  return { out, labels: ds.map((q) => q.label) };
}

/** A pass's outputs against the float64 references. */
function expectPass(c: Case, pass: Pass, d: Data, out: Float32Array[], what = ''): void {
  const { s, bias, act, accumulate } = c;
  const { oh, ow } = conv2dGeometry(s);
  const [xShape, yShape] = [
    [s.n, s.c, s.h, s.w],
    [s.n, s.k, oh, ow],
  ];
  const [first = new Float32Array(), second = new Float32Array()] = out;
  if (pass === 'forward') {
    const ref = uncoveredTo(conv2dRef(d.x, d.w, bias ? d.b : null, s, act), s, 0);
    expectAllclose(`conv2d y${what}`, uncoveredTo(first, s, 0), ref, tol(s.c * s.kh * s.kw), yShape);
  } else if (pass === 'dX') {
    const ref = conv2dBackwardInputRef(d.dy, d.w, s);
    if (accumulate) ref.forEach((v, i) => (ref[i] = v + d.dx0[i]!));
    expectAllclose(`conv2d dX${what}`, first, ref, tol(s.k * s.kh * s.kw), xShape);
  } else {
    // dY past what is covered (nonzero here) is not read: it is 0 where a pooling reads that part alone.
    const ref = conv2dBackwardWeightsRef(uncoveredTo(d.dy, s, 0), d.x, s);
    expectAllclose(`conv2d dW${what}`, first, ref.dw, tol(s.n * oh * ow), [s.k, s.c, s.kh, s.kw]);
    if (bias) expectAllclose(`conv2d db${what}`, second, ref.db, tol(s.n * oh * ow), [s.k]);
  }
}

describe('conv2d (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  it.for(rows)('%s', async ([, c, pass, variant], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const d = data(c.s);
    if (pass !== 'dW+db') {
      expectPass(c, pass, d, (await runPass(g, c, pass, d)).out);
      return;
    }
    // Once as one workgroup per tile (no split; the lane kernels aim at one workgroup), once
    // split-K over the positions with a fixed-order reduction of the partial sums.
    for (const o of [{ split: false, target: 1 }, { target: 64 }]) {
      const { out, labels } = await runPass(g, c, pass, d, o);
      const split = weightPartsLength(g, c.s, { ...o, bias: c.bias }) > 0;
      expect(labels.some((l) => l.includes('reduce'))).toBe(split);
      // Both families compute db in the weight gradient's pass (and its reduction when split).
      expect(labels).toHaveLength(1 + (split ? 1 : 0));
      expectPass(c, pass, d, out, ` (target ${o.target})`);
      if (!split) continue;
      // The partials (db's among them) are summed in a fixed order: a second run is bit-identical.
      const again = await runPass(g, c, pass, d, o);
      again.out.forEach((q, i) => expect(new Uint32Array(q.buffer)).toEqual(new Uint32Array(out[i]!.buffer)));
    }
  });
});

describe('conv2d on the tiled kernels as an H100 gets them: split-K in every pass, unchecked tiles, db in dW', () => {
  const gpu = useGpu();
  // [name, case, passes that must split, passes that must be unchecked]
  const splits: [string, Case, Pass[], Pass[]][] = [
    [
      "the reference network's 32→64 14×14 layer at batch 2",
      { s: shape(2, 32, 14, 14, 64, 3, 3, 1, 'same'), bias: true, act: relu },
      ['forward', 'dX', 'dW+db'],
      [],
    ],
    [
      'shapes that divide the tiles: 16→64 8×8 at batch 2',
      { s: shape(2, 16, 8, 8, 64, 3, 3, 1, 'same'), bias: false },
      ['forward', 'dX'],
      ['forward', 'dX'],
    ],
    [
      'stride 2 phases, dX accumulated: 8→48 9×9',
      { s: shape(2, 8, 9, 9, 48, 3, 3, 2, 'same'), bias: true, accumulate: true },
      ['dX'],
      [],
    ],
  ];
  const rows = splits.flatMap(([name, c, split, exact]) =>
    (['forward', 'dX', 'dW+db'] as Pass[]).map((p): [string, Case, Pass, boolean, boolean] => [
      `${name}: ${p}`,
      c,
      p,
      split.includes(p),
      exact.includes(p),
    ]),
  );
  it.for(rows)('%s', async ([, c, pass, split, exact]) => {
    // The direct GEMMs' splits (the Winograd passes have their own: test/conv-winograd.test.ts).
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined).withTuning({ winograd: false });
    const plan = conv2dPlan(g, c.s, pass === 'dW+db' ? 'dW' : pass, { bias: c.bias });
    expect(plan.splits > 1, 'split-K').toBe(split);
    if (exact) expect(plan.checked, 'bounds checked').toBe(false);
    expect(plan.chunk / 16, 'K-steps a workgroup').toBeLessThanOrEqual(64);
    const d = data(c.s);
    const first = await runPass(g, c, pass, d);
    expectPass(c, pass, d, first.out);
    if (pass === 'dW+db') expect(first.labels).toHaveLength(split ? 2 : 1); // db inside the weight gradient
    if (!split) return;
    // The partials are summed in a fixed order: a second run is bit-identical.
    const again = await runPass(g, c, pass, d);
    again.out.forEach((o, i) => expect(new Uint32Array(o.buffer)).toEqual(new Uint32Array(first.out[i]!.buffer)));
  });
});

describe('conv2d whose tiles have fewer threads than columns (8×8 blocks of 32 rows)', () => {
  const gpu = useGpu();
  // 32 rows (out-channels forward and dW, in-channels dX) in 8×8 blocks: 32×64 or 32×128 tiles of 32 or
  // 64 threads. The forward's and dX's threads fetch two columns each (lib/gemm.wgsl fetch order 2); dW's
  // decode its column table two columns each. Target 1 takes the tiles with the most FMAs per word
  // unsplit; target 8 splits K (over 8 steps) to reach it with them.
  const cases: [string, Case, Pass[], number[]][] = [
    [
      '16→32 8×8 same (tiles divide it)',
      { s: shape(2, 16, 8, 8, 32, 3, 3, 1, 'same'), bias: true, act: relu },
      ['forward'],
      [1, 8],
    ],
    // dW's inner, N·OH·OW = 128, is 8 steps: not split.
    ['16→32 8×8 same', { s: shape(2, 16, 8, 8, 32, 3, 3, 1, 'same'), bias: true, act: relu }, ['dW+db'], [1]],
    [
      '3→32 7×9 5×5 same (ragged)',
      { s: shape(2, 3, 7, 9, 32, 5, 5, 1, 'same'), bias: false },
      ['forward', 'dW+db'],
      [1],
    ],
    ['32→8 9×9 stride 2 same (dX phases)', { s: shape(2, 32, 9, 9, 8, 3, 3, 2, 'same'), bias: true }, ['dX'], [1]],
    ['32→16 8×8 same (tiles divide it)', { s: shape(2, 32, 8, 8, 16, 3, 3, 1, 'same'), bias: true }, ['dX'], [1, 8]],
    [
      '32→32 14×14 same',
      { s: shape(2, 32, 14, 14, 32, 3, 3, 1, 'same'), bias: true, act: relu },
      ['forward', 'dX', 'dW+db'],
      [1, 8],
    ],
  ];
  const rows = cases.flatMap(([name, c, passes, targets]) =>
    passes.flatMap((pass) =>
      targets.map((target): [string, Case, Pass, number] => [`${name}: ${pass}, target ${target}`, c, pass, target]),
    ),
  );
  it.for(rows)('%s', async ([, c, pass, target]) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined);
    const split = target > 1;
    const o = { target, ...(pass === 'dW+db' && !split ? { split: false } : {}) };
    const plan = conv2dPlan(g, c.s, pass === 'dW+db' ? 'dW' : pass, { ...o, bias: c.bias });
    if (pass === 'dW+db') expect(plan.threads, 'fewer threads than columns').toBeLessThan(plan.tile.bn);
    else expect(plan.tile.bn, 'two columns a thread').toBe(2 * plan.threads);
    expect(plan.tile.rb * plan.tile.cb, '8×8 blocks').toBe(4);
    expect(plan.splits > 1, 'split-K').toBe(split);
    const d = data(c.s);
    const { out } = await runPass(g, c, pass, d, o);
    expectPass(c, pass, d, out, ` (target ${target})`);
  });
});

// A residual add in the forward's store (src/graph/fuse-add.ts AddActFusion.layer; lib/conv_put_add.wgsl): y =
// act(conv + b + shortcut) on every forward kernel, the tiled ones whole and split (the reduction adds it),
// against the references composed and bit for bit against the conv's own pass and then the add kernel. The
// Winograd forward's: test/conv-winograd.test.ts.
describe("a residual add in the conv forward's store, on the direct kernels", () => {
  const gpu = useGpu();
  const plain = cases.filter(([, c]) => !c.s.covered);
  const tiles = plain.filter(([name]) => /ragged|row tiles|stride 2 same, odd|shortcut|5×2 kernel/.test(name));
  const wide: [string, Case] = [
    '32→64 14×14 same at batch 2',
    { s: shape(2, 32, 14, 14, 64, 3, 3, 1, 'same'), bias: true },
  ];
  const rows: [string, Case, GemmVariant, ConvOptions][] = [
    ...plain.map(([name, c]): [string, Case, GemmVariant, ConvOptions] => [name, c, 'own', {}]),
    ...plain.map(([name, c]): [string, Case, GemmVariant, ConvOptions] => [
      `${name}, other family`,
      c,
      'other family',
      {},
    ]),
    ...tiles.map(([name, c]): [string, Case, GemmVariant, ConvOptions] => [
      `${name}, gpu tiles whole`,
      c,
      'gpu tiles',
      { split: false },
    ]),
    ...[...tiles, wide]
      .filter(([name]) => /ragged|row tiles in dX|batch 2/.test(name))
      .map(([name, c]): [string, Case, GemmVariant, ConvOptions] => [
        `${name}, gpu tiles split`,
        c,
        'gpu tiles',
        { target: 132 },
      ]),
  ];
  it.for(rows)('%s', async ([, c, variant, o], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why)).withTuning({ winograd: false });
    const { s } = c;
    const { oh, ow } = conv2dGeometry(s);
    const size = s.n * s.k * oh * ow;
    const d = data(s);
    const sc = new Rng(size).floats(size);
    const { up, release } = uploader(g);
    const [x, w, b, shortcut] = [d.x, d.w, d.b, sc].map(up);
    const [y, z, unfused] = [0, 1, 2].map(() => up(new Array<number>(size).fill(NaN)));
    const io = { x: x!, w: w!, b: c.bias ? b : undefined, parts: partsOf(up, forwardPartsLength(g, s, o)) };
    const act = c.act ?? relu;
    const ds = conv2dForward(g, { ...io, y: y!, shortcut }, s, act, o);
    const split = forwardPartsLength(g, s, o) > 0;
    if (variant === 'gpu tiles') expect(split, 'split-K').toBe('target' in o);
    expect(ds.map((q) => q.label.includes(' + add'))).toEqual(split ? [true, true] : [true]);
    const linear = conv2dForward(g, { ...io, y: z! }, s, { kind: 'linear' }, o);
    g.run([...ds, ...linear, ...add(g, { a: z!, b: shortcut!, c: unfused! }, size, act)]);
    const got = await g.readF32(y!);
    const conv = conv2dRef(d.x, d.w, c.bias ? d.b : null, s, { kind: 'linear' });
    const want = conv.map((v, i) => actRef(act, v + (sc[i] ?? 0)));
    expectAllclose('act(conv + b + shortcut)', got, want, tol(s.c * s.kh * s.kw), [s.n, s.k, oh, ow]);
    expectSameBits('the store against the conv and then the add kernel', got, await g.readF32(unfused!));
    g.free([...ds, ...linear]);
    release();
  });

  it('refuses a shortcut whose sum is left split for a reader to sum, or in the conv gathering the batch', () => {
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined).withTuning({ winograd: false });
    const s = shape(2, 32, 14, 14, 64, 3, 3, 1, 'same');
    const q = g.dummy;
    const io = { x: q, w: q, y: q, parts: q, shortcut: q };
    expect(() => conv2dForward(g, io, s, undefined, { unsummed: true })).toThrow(/shortcut/);
    const gather = {} as Parameters<typeof conv2dForward>[1]['gather'];
    expect(() => conv2dForward(g, { ...io, parts: undefined, gather }, s)).toThrow(/shortcut/);
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
    [8, 64, 50176, 8, 8], // a wide conv forward: the 64×64 tile
    [8, 128, 576, 8, 8], // a wide weight gradient
    [8, 32, 9, 4, 2], // a first layer's weight gradient: 9 columns fill 16, rows fill 32
    [8, 128, 10, 8, 2], // a dense layer's weight gradient into 10 classes
    [8, 1, 1, 1, 1],
    [8, 1000, 3, 8, 1], // few columns: at most eight row groups
    [4, 64, 50176, 8, 8], // four lanes (SwiftShader): 32 rows × 32 columns
  ])('%i lanes, %i×%i → %i row groups × %i columns per lane', (lanes, rows, cols, rg, cv) => {
    const t = laneTile(lanes, rows, cols);
    expect(t).toEqual({ rowGroups: rg, cols: cv });
    expect(t.rowGroups * t.cols * lanes).toBeLessThanOrEqual(512); // the step's 512 accumulators a lane at most
  });

  it('has no tile for more than 8 lanes (the step is written for at most 8: src/gpu/lane-step.ts)', () => {
    expect(() => laneTile(16, 64, 1000)).toThrow(/at most 8 lanes/);
  });
});
