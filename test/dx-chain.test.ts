// A dense layer's or a conv's dX that runs the backward chain below it as it stores, pooling included
// (shaders/lib/chain_store.wgsl through lib/matmul_out_chain.wgsl and lib/conv_dx_chain.wgsl): bit for bit
// the plain dX and then the chain kernel (shaders/chain.wgsl), and against the composition of the CPU
// references (the dX, dropoutᵀ, unpooling, act'), in both kernel families, split-K reduce passes included.
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { expectSameBits } from './helpers/bits.ts';
import { matmul, matmulPartsLength, type MatmulShape } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import { conv2dBackwardInput, conv2dGeometry, inputPartsLength, type Conv2dShape } from '../src/ops/conv2d.ts';
import { conv2dBackwardInputRef } from '../src/ops/conv2d.ref.ts';
import { backwardChain, type EpilogueChain, type EpilogueChainIO, type PoolKind } from '../src/ops/chain.ts';
import { activationBackwardSum, add } from '../src/ops/elementwise.ts';
import { poolGeometry, type PoolShape } from '../src/ops/pool.ts';
import { avgPoolBackwardRef, maxPoolBackwardRef, maxPoolForwardRef } from '../src/ops/pool.ref.ts';
import { dropoutRef } from '../src/ops/dropout.ref.ts';
import { actGradRef, actRef } from '../src/ops/act.ref.ts';
import { FmgpuError } from '../src/errors.ts';
import type { BufferRef, Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

const STEP = 3;
const SEED = 29;
const VARIANTS: GemmVariant[] = ['own', 'other family', 'gpu tiles'];

/** The layer below: its output (the pool's input) is planes × h × w, pooled by a k×k window of stride s. */
interface Below {
  name: string;
  kind: PoolKind | null;
  h: number;
  w: number;
  k: number;
  s: number;
  padding: 'valid' | 'same';
  act: Act;
  from: 'output' | 'input';
  rate: number | null;
}

const BELOW: Below[] = [
  {
    name: 'max 2x2 over 6x6, relu',
    kind: 'max',
    h: 6,
    w: 6,
    k: 2,
    s: 2,
    padding: 'valid',
    act: { kind: 'relu' },
    from: 'output',
    rate: 0.25,
  },
  {
    name: 'max 2x2 over 7x7 (a row and column no window covers), tanh',
    kind: 'max',
    h: 7,
    w: 7,
    k: 2,
    s: 2,
    padding: 'valid',
    act: { kind: 'tanh' },
    from: 'output',
    rate: null,
  },
  {
    name: "max 2x2 'same' over 7x7, gelu from its input",
    kind: 'max',
    h: 7,
    w: 7,
    k: 2,
    s: 2,
    padding: 'same',
    act: { kind: 'gelu' },
    from: 'input',
    rate: 0.5,
  },
  {
    name: 'avg 3x3 stride 3 over 7x7, leaky',
    kind: 'avg',
    h: 7,
    w: 7,
    k: 3,
    s: 3,
    padding: 'valid',
    act: { kind: 'leaky', alpha: 0.1 },
    from: 'output',
    rate: 0.3,
  },
  {
    name: 'no pooling, relu',
    kind: null,
    h: 3,
    w: 3,
    k: 1,
    s: 1,
    padding: 'valid',
    act: { kind: 'relu' },
    from: 'output',
    rate: 0.25,
  },
  {
    name: 'max 2x2 stride 3 over 8x8 (cells between windows), relu',
    kind: 'max',
    h: 8,
    w: 8,
    k: 2,
    s: 3,
    padding: 'valid',
    act: { kind: 'relu' },
    from: 'output',
    rate: 0.25,
  },
  {
    name: "avg 2x2 'same' over 7x7 (a clipped window), sigmoid",
    kind: 'avg',
    h: 7,
    w: 7,
    k: 2,
    s: 2,
    padding: 'same',
    act: { kind: 'sigmoid' },
    from: 'output',
    rate: null,
  },
  {
    name: 'max 2x2 over 6x6, a linear head (no saved values bound)',
    kind: 'max',
    h: 6,
    w: 6,
    k: 2,
    s: 2,
    padding: 'valid',
    act: { kind: 'linear' },
    from: 'output',
    rate: 0.5,
  },
];

/** The chain of `b` over `planes` = n·c planes, and the shape of its pooling. */
function chainOf(b: Below, n: number, c: number): { chain: EpilogueChain; pool: PoolShape | null; out: number } {
  const shape: PoolShape = { n, c, h: b.h, w: b.w, kh: b.k, kw: b.k, strideH: b.s, strideW: b.s, padding: b.padding };
  const dropout = b.rate === null ? undefined : { rate: b.rate, seed: SEED };
  if (!b.kind) return { chain: { act: b.act, from: b.from, dropout }, pool: null, out: n * c * b.h * b.w };
  const g = poolGeometry(shape);
  const chain = { act: b.act, from: b.from, dropout, pool: { kind: b.kind, shape } };
  return { chain, pool: shape, out: n * c * g.oh * g.ow };
}

/** The layer below's pre-activation z, what its act' reads (Y or X) and the max pooling's argmax (of Y). */
function belowValues(b: Below, pool: PoolShape | null, count: number, rng: Rng) {
  const z = rng.floats(count, -2, 2);
  const y = z.map((v) => actRef(b.act, v));
  const argmax = pool && b.kind === 'max' ? maxPoolForwardRef(y, pool).argmax : new Uint32Array(1);
  return { z, saved: f32(b.from === 'output' ? y : z), argmax };
}

/** dz = act'(z) ⊙ unpool(dropoutᵀ(dx)) in float64: the chain's CPU references composed. */
function chainRef(
  dx: ArrayLike<number>,
  b: Below,
  c: ReturnType<typeof chainOf>,
  below: ReturnType<typeof belowValues>,
) {
  const dropped = c.chain.dropout ? dropoutRef(dx, STEP, { count: c.out, ...c.chain.dropout }) : Float64Array.from(dx);
  const s = c.pool;
  const unpooled = !s
    ? dropped
    : b.kind === 'max'
      ? maxPoolBackwardRef(dropped, below.argmax, s)
      : avgPoolBackwardRef(dropped, s);
  return unpooled.map((v, i) => v * actGradRef(b.act, below.z[i]!));
}

/**
 * `dx(out, chain?)`'s dispatches run twice: with the chain in its store (into a NaN-filled chain input), and
 * plain (into a NaN-filled dX) followed by the chain kernel; both results read back.
 */
async function fusedAndPlain(
  g: Gpu,
  c: ReturnType<typeof chainOf>,
  below: ReturnType<typeof belowValues>,
  dx: (
    out: BufferRef,
    chain?: { chain: EpilogueChain; io: { counter: BufferRef; saved?: BufferRef; argmax: BufferRef } },
  ) => Dispatch[],
): Promise<{ fused: Float32Array; plain: Float32Array; labels: string[] }> {
  const count = below.z.length;
  const nan = (n: number) => g.upload(new Float32Array(n).fill(Number.NaN));
  const bufs = {
    counter: g.upload(new Uint32Array([STEP])),
    saved: g.upload(below.saved),
    argmax: g.upload(below.argmax),
    fused: nan(count),
    mid: nan(c.out),
    plain: nan(count),
  };
  // A linear head's chain reads no saved values: its binding is left to the stand-in.
  const io = {
    counter: bufs.counter,
    saved: c.chain.act.kind === 'linear' ? undefined : bufs.saved,
    argmax: bufs.argmax,
  };
  const pool = c.chain.pool;
  const d = [
    ...dx(bufs.fused, { chain: c.chain, io }),
    ...dx(bufs.mid),
    ...backwardChain(
      g,
      { dy: bufs.mid, dx: bufs.plain, ...io, argmax: pool?.kind === 'max' ? bufs.argmax : undefined },
      { ...c.chain, count },
    ),
  ];
  g.run(d);
  const out = { fused: await g.readF32(bufs.fused), plain: await g.readF32(bufs.plain), labels: d.map((q) => q.label) };
  g.free(d);
  for (const q of Object.values(bufs)) g.release(q);
  return out;
}

/** A dense layer's dX (dZ·Wᵀ, shape `s`) into `out`, through `chain` as it stores where given; `release` frees. */
function denseDx(g: Gpu, s: MatmulShape, x: { a: Float64Array; b: Float64Array }) {
  const [a, w] = [g.upload(f32(x.a)), g.upload(f32(x.b))];
  const len = matmulPartsLength(g, s);
  const parts = len > 0 ? g.upload(new Float32Array(len)) : undefined;
  const run = (out: BufferRef, chain?: { chain: EpilogueChain; io: EpilogueChainIO }): Dispatch[] =>
    chain
      ? matmul(
          g,
          { a, b: w, c: out, parts, epi: chain.io.saved, ...chain.io },
          { ...s, epilogue: { kind: 'chain', ...chain.chain } },
        )
      : matmul(g, { a, b: w, c: out, parts }, s);
  return { run, release: () => [a, w, parts].forEach((q) => q && g.release(q)) };
}

describe("a dense layer's dX running the chain below it (dropoutᵀ, unpooling, act') as it stores", () => {
  const gpu = useGpu();
  // dX [batch, F] = dZ [batch, U] · Wᵀ, W stored [F, U]; F = the pooled (then flattened) features.
  const cases = BELOW.flatMap((b) =>
    VARIANTS.flatMap((v) => [
      [b.name, v, 10] as const,
      [`${b.name}, 700 units (split on gpu tiles)`, v, 700] as const,
    ]).map(([name, v, units]) => [name, v, b, units] as const),
  );
  it.for(cases)('%s, %s', async ([, variant, b, units], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const [n, c] = [3, 4];
    const ch = chainOf(b, n, c);
    const s = { m: n, n: ch.out / n, k: units, transB: true };
    const rng = new Rng(units + b.h * 31 + b.k);
    const x = { a: rng.floats(s.m * s.k), b: rng.floats(s.n * s.k) };
    const below = belowValues(b, ch.pool, ch.pool ? n * c * b.h * b.w : ch.out, rng);
    const dx = denseDx(g, s, x);
    const r = await fusedAndPlain(g, ch, below, dx.run);
    dx.release();
    if (variant === 'gpu tiles' && units === 700)
      expect(r.labels[1], 'the reduce pass runs the chain').toMatch(/reduce \d+ splits/);
    expect(r.fused.every(Number.isFinite), 'every cell of the chain input written').toBe(true);
    expectSameBits('the plain dX then the chain kernel', r.fused, r.plain);
    const want = chainRef(matmulRef(x.a, x.b, null, s), b, ch, below);
    expectAllclose('the chain of the reference dX', r.fused, want, { atol: 1e-5, rtol: 2e-4 });
  });
});

describe("a conv's dX running the chain below it as it stores", () => {
  const gpu = useGpu();
  // The conv reads the pooled tensor [N, C, OH, OW]: dX has that shape, the chain writes [N, C, H, W].
  const convs: [string, (pooled: { n: number; c: number; h: number; w: number }) => Conv2dShape][] = [
    ['3x3 same, 5 kernels', (p) => ({ ...p, k: 5, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' })],
    [
      '3x3 same, 96 kernels (split on gpu tiles)',
      (p) => ({ ...p, k: 96, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' }),
    ],
  ];
  // Readers whose dX runs stride phases (some with no taps) or a 'valid' window, for two of the chains.
  const strided: typeof convs = [
    ['3x3 stride 2 same', (p) => ({ ...p, k: 4, kh: 3, kw: 3, strideH: 2, strideW: 2, padding: 'same' })],
    [
      '1x1 stride 2 valid (phases with no taps)',
      (p) => ({ ...p, k: 4, kh: 1, kw: 1, strideH: 2, strideW: 2, padding: 'valid' }),
    ],
    ['2x2 valid, stride 1x2', (p) => ({ ...p, k: 4, kh: 2, kw: 2, strideH: 1, strideW: 2, padding: 'valid' })],
  ];
  // And the 3×3 convs' dX by Winograd's F(2×2, 3×3) on the GPU tiles (conv2d_winograd.ts): the 5-kernel
  // conv on the 16-side tile, the 96-kernel one on the 32-side tile (each pipeline costs seconds to compile).
  const winograd = [16, 32] as const;
  const cases = [
    ...[
      ...BELOW.flatMap((b) => convs.map(([name, conv]) => [b, name, conv] as const)),
      ...[BELOW[0]!, BELOW[3]!].flatMap((b) => strided.map(([name, conv]) => [b, name, conv] as const)),
    ].flatMap(([b, name, conv]) => VARIANTS.map((v) => [`${b.name}, ${name}`, v, b, conv, undefined] as const)),
    ...BELOW.flatMap((b) =>
      convs.map(([name, conv], i) => {
        const side = winograd[i % 2]!;
        return [`${b.name}, ${name}, Winograd ${side}`, 'gpu tiles', b, conv, side] as const;
      }),
    ),
  ];
  it.for(cases)('%s, %s', async ([, variant, b, conv, side], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const [n, c] = [2, 3];
    const ch = chainOf(b, n, c);
    const g0 = ch.pool ? poolGeometry(ch.pool) : { oh: b.h, ow: b.w };
    const s = conv({ n, c, h: g0.oh, w: g0.ow });
    const rng = new Rng(s.k * 7 + b.h);
    const out = conv2dGeometry(s);
    const x = { dy: rng.floats(n * s.k * out.oh * out.ow), w: rng.floats(s.k * c * s.kh * s.kw) };
    const below = belowValues(b, ch.pool, n * c * b.h * b.w, rng);
    const [dy, w] = [g.upload(f32(x.dy)), g.upload(f32(x.w))];
    const len = inputPartsLength(g, s);
    const parts = len > 0 ? g.upload(new Float32Array(len)) : undefined;
    const r = await fusedAndPlain(g, ch, below, (out, chain) =>
      conv2dBackwardInput(g, { dy, w, dx: out, parts, chain: chain?.io }, s, { chain: chain?.chain, winograd: side }),
    );
    for (const q of [dy, w, parts]) if (q) g.release(q);
    if (side)
      expect(r.labels.slice(0, 2), 'one pass each').toEqual([expect.stringContaining('winograd'), expect.anything()]);
    if (variant === 'gpu tiles' && s.k === 96 && !side)
      expect(r.labels[1], 'the reduce pass runs the chain').toMatch(/reduce \d+ splits/);
    expect(r.fused.every(Number.isFinite), 'every cell of the chain input written').toBe(true);
    expectSameBits('the plain dX then the chain kernel', r.fused, r.plain);
    const want = chainRef(conv2dBackwardInputRef(x.dy, x.w, s), b, ch, below);
    expectAllclose('the chain of the reference dX', r.fused, want, { atol: 1e-5, rtol: 2e-4 });
  });

  it('refuses overlapping windows, a max unpooling without argmax, a chain of another size, accumulation', () => {
    const g = gpu();
    const buf = g.upload(new Float32Array(16));
    const io = { counter: buf, saved: buf, argmax: buf };
    const s: Conv2dShape = { n: 1, c: 2, h: 3, w: 3, k: 2, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
    const pool = {
      kind: 'max' as const,
      shape: { n: 1, c: 2, h: 6, w: 6, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'valid' as const },
    };
    const chain: EpilogueChain = { act: { kind: 'relu' }, from: 'output', pool };
    const dx = (o: Partial<typeof io>, c: EpilogueChain, extra = {}) =>
      conv2dBackwardInput(g, { dy: buf, w: buf, dx: buf, chain: { ...io, ...o } }, s, { chain: c, ...extra });
    expect(() => dx({}, chain)).not.toThrow();
    expect(() => dx({}, { ...chain, pool: { ...pool, shape: { ...pool.shape, kh: 3, kw: 3 } } })).toThrow(/overlap/);
    expect(() => dx({ argmax: undefined }, chain)).toThrow(/argmax/);
    expect(() => dx({ saved: undefined }, chain)).toThrow(/saved/);
    expect(() => dx({}, { ...chain, pool: { ...pool, shape: { ...pool.shape, h: 8, w: 8 } } })).toThrow(FmgpuError);
    expect(() => dx({}, chain, { accumulate: true })).toThrow(/whole/);
    expect(() => conv2dBackwardInput(g, { dy: buf, w: buf, dx: buf }, s, { chain })).toThrow(/buffers/);
    g.release(buf);
  });
});

// A dX completing a gradient two layers give (src/graph/junction.ts): the earlier gradient (the term) added as it
// stores, then act' from the writer's output, or nothing more (linear). Bit for bit the plain dX and then the
// unfused pass the plan would run (elementwise act_backward_sum, or add), and against the references.
describe("a dX adding the earlier gradient, then act', as it stores (a junction)", () => {
  const gpu = useGpu();
  const ACTS: Act[] = [{ kind: 'relu' }, { kind: 'tanh' }, { kind: 'linear' }];

  /** `dx(out, chain?)` run with the term in its store, and plain followed by the unfused pass; both read back. */
  async function termAndPlain(
    g: Gpu,
    v: { z: Float64Array; term: Float64Array; act: Act },
    dx: (out: BufferRef, chain?: { chain: EpilogueChain; io: EpilogueChainIO }) => Dispatch[],
  ): Promise<{ fused: Float32Array; plain: Float32Array; labels: string[] }> {
    const count = v.z.length;
    const nan = () => g.upload(new Float32Array(count).fill(Number.NaN));
    const y = f32(v.z.map((q) => actRef(v.act, q)));
    const bufs = { counter: g.upload(new Uint32Array([STEP])), y: g.upload(y), term: g.upload(f32(v.term)) };
    const out = { fused: nan(), mid: nan(), plain: nan() };
    const linear = v.act.kind === 'linear';
    const io = { counter: bufs.counter, saved: linear ? undefined : bufs.y, term: bufs.term };
    const after = linear
      ? add(g, { a: bufs.term, b: out.mid, c: out.plain }, count)
      : activationBackwardSum(g, { dy: bufs.term, dy2: out.mid, saved: bufs.y, dx: out.plain }, count, v.act);
    const d = [...dx(out.fused, { chain: { act: v.act, from: 'output', term: true }, io }), ...dx(out.mid), ...after];
    g.run(d);
    const r = { fused: await g.readF32(out.fused), plain: await g.readF32(out.plain), labels: d.map((q) => q.label) };
    g.free(d);
    for (const q of [...Object.values(bufs), ...Object.values(out)]) g.release(q);
    return r;
  }

  /** (term + dX) · act'(z) in float64. */
  const junctionRef = (dx: ArrayLike<number>, v: { z: Float64Array; term: Float64Array; act: Act }) =>
    v.term.map((t, i) => (t + dx[i]!) * actGradRef(v.act, v.z[i]!));

  const denseCases = [10, 700].flatMap((units) =>
    VARIANTS.flatMap((variant) => ACTS.map((act) => [`${units} units`, variant, act.kind, units, act] as const)),
  );
  it.for(denseCases)("a dense layer's dX, %s, %s, %s", async ([, variant, , units, act], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const s = { m: 5, n: 12, k: units, transB: true };
    const rng = new Rng(units * 3 + act.kind.length);
    const x = { a: rng.floats(s.m * s.k), b: rng.floats(s.n * s.k) };
    const v = { z: rng.floats(s.m * s.n, -2, 2), term: rng.floats(s.m * s.n), act };
    const dx = denseDx(g, s, x);
    const r = await termAndPlain(g, v, dx.run);
    dx.release();
    expect(r.labels[0]).toContain(act.kind === 'linear' ? ' + sum' : ` + sum+${act.kind}'`);
    if (variant === 'gpu tiles' && units === 700)
      expect(r.labels[1], 'the reduce pass adds').toMatch(/reduce \d+ splits/);
    expectSameBits('the plain dX then the unfused pass', r.fused, r.plain);
    expectAllclose('the reference', r.fused, junctionRef(matmulRef(x.a, x.b, null, s), v), { atol: 1e-5, rtol: 2e-4 });
  });

  const convs: [string, Conv2dShape, (16 | 32)?][] = [
    ['3x3 same, 5 kernels', { n: 2, c: 3, h: 6, w: 6, k: 5, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' }],
    [
      '3x3 same, 96 kernels (split on gpu tiles)',
      { n: 2, c: 3, h: 6, w: 6, k: 96, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' },
    ],
    ['3x3 stride 2 same', { n: 2, c: 3, h: 7, w: 7, k: 4, kh: 3, kw: 3, strideH: 2, strideW: 2, padding: 'same' }],
    ['1x1 stride 2', { n: 2, c: 3, h: 6, w: 6, k: 4, kh: 1, kw: 1, strideH: 2, strideW: 2, padding: 'valid' }],
  ];
  const convCases = [
    ...convs.flatMap(([name, s]) =>
      VARIANTS.flatMap((variant) => ACTS.map((act) => [name, variant, act.kind, s, act, undefined] as const)),
    ),
    // Winograd's F(2×2, 3×3) dX on the GPU tiles, each tile side (each pipeline costs seconds to compile), relu'
    // on the one, tanh' on the other.
    ...([16, 32] as const).map((side) => {
      const [name, s] = convs[side === 16 ? 0 : 1]!;
      const act: Act = side === 16 ? { kind: 'relu' } : { kind: 'tanh' };
      return [`${name}, Winograd ${side}`, 'gpu tiles', act.kind, s, act, side] as const;
    }),
  ];
  it.for(convCases)("a conv's dX, %s, %s, %s", async ([, variant, , s, act, side], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const rng = new Rng(s.k * 5 + s.strideH + act.kind.length);
    const o = conv2dGeometry(s);
    const x = { dy: rng.floats(s.n * s.k * o.oh * o.ow), w: rng.floats(s.k * s.c * s.kh * s.kw) };
    const count = s.n * s.c * s.h * s.w;
    const v = { z: rng.floats(count, -2, 2), term: rng.floats(count), act };
    const [dy, w] = [g.upload(f32(x.dy)), g.upload(f32(x.w))];
    const len = inputPartsLength(g, s);
    const parts = len > 0 ? g.upload(new Float32Array(len)) : undefined;
    const r = await termAndPlain(g, v, (out, chain) =>
      conv2dBackwardInput(g, { dy, w, dx: out, parts, chain: chain?.io }, s, { chain: chain?.chain, winograd: side }),
    );
    for (const q of [dy, w, parts]) if (q) g.release(q);
    if (side) expect(r.labels[0]).toContain('winograd');
    if (variant === 'gpu tiles' && s.k === 96 && !side)
      expect(r.labels[1], 'the reduce pass adds').toMatch(/reduce \d+ splits/);
    expectSameBits('the plain dX then the unfused pass', r.fused, r.plain);
    const want = junctionRef(conv2dBackwardInputRef(x.dy, x.w, s), v);
    expectAllclose('the reference', r.fused, want, { atol: 1e-5, rtol: 2e-4 });
  });

  it('refuses a term without its buffer, or beside a max unpooling (whose binding it takes)', () => {
    const g = gpu();
    const buf = g.upload(new Float32Array(16));
    const s: Conv2dShape = { n: 1, c: 2, h: 2, w: 2, k: 2, kh: 1, kw: 1, strideH: 1, strideW: 1, padding: 'valid' };
    const chain: EpilogueChain = { act: { kind: 'relu' }, from: 'output', term: true };
    const dx = (io: EpilogueChainIO, c: EpilogueChain) =>
      conv2dBackwardInput(g, { dy: buf, w: buf, dx: buf, chain: io }, s, { chain: c });
    const io = { counter: buf, saved: buf, term: buf };
    expect(() => dx(io, chain)).not.toThrow();
    expect(() => dx({ ...io, term: undefined }, chain)).toThrow(/term/);
    const pool = { kind: 'max' as const, shape: { n: 1, c: 2, h: 4, w: 4, kh: 2, kw: 2, strideH: 2, strideW: 2 } };
    const pooled = { ...chain, pool: { ...pool, shape: { ...pool.shape, padding: 'valid' as const } } };
    expect(() => dx({ ...io, argmax: buf }, pooled)).toThrow(/argmax/);
    g.release(buf);
  });
});
