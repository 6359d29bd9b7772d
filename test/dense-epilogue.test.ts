// A dense layer's fused epilogues (shaders/lib/matmul_out_fused.wgsl, matmul_out_add.wgsl, matmul_out_chain.wgsl),
// in every matmul family, split-K included: the forward with its dropout, the forward adding a residual shortcut,
// and the dX that runs the backward chain of the layer below.
// Each against the composition of the unfused CPU references, and bit for bit against the unfused kernels.
import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant, type GemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { ACT_DERIVATIVES } from './helpers/acts.ts';
import { matmul, matmulPartsLength, type MatmulShape } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import { dropoutRef } from '../src/ops/dropout.ref.ts';
import { actGradRef, actRef } from '../src/ops/act.ref.ts';
import { dropoutForward } from '../src/ops/dropout.ts';
import { add } from '../src/ops/elementwise.ts';
import { backwardChain } from '../src/ops/chain.ts';
import { ShapeError } from '../src/errors.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

const STEP = 3;
const SEED = 41;
const TOL = { atol: 1e-5, rtol: 1e-4 };
// The adapter's own family, the other one, and the tiled kernels as an H100 gets them (split-K for long K).
const VARIANTS: GemmVariant[] = ['own', 'other family', 'gpu tiles'];

function up(g: Gpu, v: ArrayLike<number>): GPUBuffer {
  return g.upload(f32(v));
}

const nan = (g: Gpu, n: number): GPUBuffer => g.upload(new Float32Array(n).fill(Number.NaN));

/**
 * The matmul `s` over a, b (and bias), into buffers of NaN for C and the epilogue's tensor (or `saved`, which
 * it reads), then `after` (an unfused kernel) from C (and the epilogue's tensor) into `out`: what each wrote,
 * read back, and the labels.
 */
async function run(
  g: Gpu,
  s: MatmulShape,
  x: { a: ArrayLike<number>; b: ArrayLike<number>; bias?: ArrayLike<number>; saved?: ArrayLike<number> },
  after: (c: GPUBuffer, counter: GPUBuffer, out: GPUBuffer, epi: GPUBuffer) => Dispatch[] = () => [],
): Promise<{ c: Float32Array; epi: Float32Array; out: Float32Array; labels: string[] }> {
  const len = matmulPartsLength(g, s);
  const bufs = {
    a: up(g, x.a),
    b: up(g, x.b),
    bias: x.bias ? up(g, x.bias) : undefined,
    c: nan(g, s.m * s.n),
    epi: x.saved ? up(g, x.saved) : nan(g, s.m * s.n),
    out: nan(g, s.m * s.n),
    counter: g.upload(new Uint32Array([STEP])),
    parts: len > 0 ? nan(g, len) : undefined,
  };
  const d = [...matmul(g, bufs, s), ...after(bufs.c, bufs.counter, bufs.out, bufs.epi)];
  g.run(d);
  const read = (b: GPUBuffer) => g.readF32(b);
  const out = {
    c: await read(bufs.c),
    epi: await read(bufs.epi),
    out: await read(bufs.out),
    labels: d.map((q) => q.label),
  };
  g.free(d);
  for (const q of Object.values(bufs)) if (q) g.release(q);
  return out;
}

describe("a dense layer's forward with its dropout in the epilogue", () => {
  const gpu = useGpu();
  const shapes: [string, MatmulShape, number][] = [
    ['8x12x10 relu', { m: 8, n: 12, k: 10, act: { kind: 'relu' } }, 0.25],
    ['ragged 33x17x70 tanh', { m: 33, n: 17, k: 70, act: { kind: 'tanh' } }, 0.5],
    ['long K 8x24x600 linear (split on gpu tiles)', { m: 8, n: 24, k: 600 }, 0.3],
  ];
  const cases = shapes.flatMap(([name, s, rate]) => VARIANTS.map((v) => [name, v, s, rate] as const));
  it.for(cases)('%s, %s', async ([name, variant, s, rate], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const rng = new Rng(s.m * 7 + s.k);
    const x = { a: rng.floats(s.m * s.k), b: rng.floats(s.k * s.n), bias: rng.floats(s.n) };
    const dropout = { rate, seed: SEED };
    const fused = await run(g, { ...s, epilogue: { kind: 'dropout', dropout } }, x);
    if (variant === 'gpu tiles' && name.startsWith('long K'))
      expect(fused.labels.join(), 'the reduce pass runs the epilogue').toMatch(/\+ dropout p=0.3 reduce \d+ splits/);
    const y = matmulRef(x.a, x.b, x.bias, s);
    expectAllclose('Y', fused.c, y, TOL, [s.m, s.n]);
    expectAllclose('dropout(Y)', fused.epi, dropoutRef(y, STEP, { count: s.m * s.n, ...dropout }), TOL, [s.m, s.n]);
    const count = s.m * s.n;
    const plain = await run(g, s, x, (c, counter, out) =>
      dropoutForward(g, { x: c, counter, y: out }, { count, ...dropout }),
    );
    expect(fused.c, 'Y bit for bit').toEqual(plain.c);
    expect(fused.epi, 'the dropped Y bit for bit').toEqual(plain.out);
  });
});

// A block ending in a dense layer adds the shortcut as that layer stores (src/graph/fuse-add.ts AddActFusion.layer):
// C = act(A·B + bias + shortcut), against the references composed and bit for bit against the linear matmul and
// then the add kernel with the activation.
describe("a dense layer's forward adding a residual shortcut in its store", () => {
  const gpu = useGpu();
  const shapes: [string, MatmulShape, boolean][] = [
    ['8x12x10 relu', { m: 8, n: 12, k: 10, act: { kind: 'relu' } }, true],
    ['ragged 33x17x70 tanh, no bias', { m: 33, n: 17, k: 70, act: { kind: 'tanh' } }, false],
    ['long K 8x24x600 relu (split on gpu tiles)', { m: 8, n: 24, k: 600, act: { kind: 'relu' } }, true],
  ];
  const cases = shapes.flatMap(([name, s, bias]) => VARIANTS.map((v) => [name, v, s, bias] as const));
  it.for(cases)('%s, %s', async ([name, variant, s, bias], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const rng = new Rng(s.m * 5 + s.k);
    const x = { a: rng.floats(s.m * s.k), b: rng.floats(s.k * s.n), bias: bias ? rng.floats(s.n) : undefined };
    const shortcut = rng.floats(s.m * s.n);
    const fused = await run(g, { ...s, epilogue: { kind: 'add' } }, { ...x, saved: shortcut });
    expect(fused.labels.every((l) => l.includes(' + add'))).toBe(true);
    if (variant === 'gpu tiles' && name.startsWith('long K'))
      expect(fused.labels.join(), 'the reduce pass adds it').toMatch(/\+ add reduce \d+ splits/);
    const act = s.act ?? { kind: 'linear' };
    const want = matmulRef(x.a, x.b, x.bias ?? null, { ...s, act: undefined }).map((v, i) =>
      actRef(act, v + shortcut[i]!),
    );
    expectAllclose('act(A·B + bias + shortcut)', fused.c, want, TOL, [s.m, s.n]);
    const linear = { ...s, act: undefined };
    const plain = await run(g, linear, { ...x, saved: shortcut }, (c, _counter, out, epi) =>
      add(g, { a: c, b: epi, c: out }, s.m * s.n, act),
    );
    expect(fused.c, 'bit for bit').toEqual(plain.out);
  });

  it('refuses an add without its shortcut, or accumulating', () => {
    const g = gpu();
    const q = g.dummy;
    const s: MatmulShape = { m: 4, n: 4, k: 4, epilogue: { kind: 'add' } };
    expect(() => matmul(g, { a: q, b: q, c: q }, s)).toThrow(ShapeError);
    expect(() => matmul(g, { a: q, b: q, c: q, epi: q }, { ...s, accumulate: true })).toThrow(ShapeError);
    const tiles = useGemmVariant(g, 'gpu tiles', () => undefined);
    const long = { ...s, m: 8, n: 24, k: 600 };
    const io = { a: q, b: q, c: q, epi: q, parts: q };
    expect(() => matmul(tiles, io, long, { unsummed: true })).toThrow(/past its epilogue/);
  });
});

describe("a dense layer's dX running the backward chain below (dropoutᵀ, act') in its epilogue", () => {
  const gpu = useGpu();
  // dX [batch, F] = dZ [batch, U] · Wᵀ, W stored [F, U].
  const shapes: [string, MatmulShape][] = [
    ['dX 8x12 from 10 units', { m: 8, n: 12, k: 10, transB: true }],
    ['ragged dX 19x33 from 40 units', { m: 19, n: 33, k: 40, transB: true }],
    ['long K dX 4x16 from 700 units (split on gpu tiles)', { m: 4, n: 16, k: 700, transB: true }],
  ];
  const cases = shapes.flatMap(([name, s]) =>
    VARIANTS.flatMap((v) =>
      ACT_DERIVATIVES.map(([act, from]) => [name, v, `${act.kind} from its ${from}`, s, act, from] as const),
    ),
  );
  it.for(cases)('%s, %s, %s', async ([name, variant, , s, act, from], ctx) => {
    const g = useGemmVariant(gpu(), variant, (why) => ctx.skip(why));
    const rng = new Rng(s.m * 13 + s.k);
    const x = { a: rng.floats(s.m * s.k), b: rng.floats(s.n * s.k) };
    const z = rng.floats(s.m * s.n, -2, 2);
    const saved = f32(from === 'output' ? z.map((v) => actRef(act, v)) : z);
    const dropout = { rate: 0.25, seed: SEED };
    const fused = await run(g, { ...s, epilogue: { kind: 'chain', dropout, act, from } }, { ...x, saved });
    if (variant === 'gpu tiles' && name.startsWith('long K'))
      expect(fused.labels.join(), 'the reduce pass runs the epilogue').toMatch(/ p=0.25 reduce \d+ splits/);
    const count = s.m * s.n;
    const dropped = dropoutRef(matmulRef(x.a, x.b, null, s), STEP, { count, ...dropout });
    // act' of the reference at the pre-activation z, where the kernel takes it from what was saved.
    const want = dropped.map((d, i) => d * actGradRef(act, z[i]!));
    expectAllclose("dropoutᵀ then act'", fused.c, want, { atol: 1e-5, rtol: 2e-4 }, [s.m, s.n]);
    const savedBuf = g.upload(saved);
    const plain = await run(g, s, x, (c, counter, out) =>
      backwardChain(g, { dy: c, counter, dx: out, saved: savedBuf }, { count, act, from, dropout }),
    );
    g.release(savedBuf);
    expect(fused.c, 'bit for bit the plain dX, then the chain kernel').toEqual(plain.out);
  });

  it('refuses a chain epilogue with a bias, activation or accumulation, no buffer, or a rate outside (0, 1)', () => {
    const g = gpu();
    const buf = g.upload(new Float32Array(16));
    const io = { a: buf, b: buf, c: buf, epi: buf, counter: buf };
    const chain = { kind: 'chain', dropout: { rate: 0.5, seed: 1 }, act: { kind: 'relu' }, from: 'output' } as const;
    const s = { m: 2, n: 2, k: 2, transB: true, epilogue: chain };
    expect(() => matmul(g, { ...io, bias: buf }, s)).toThrow(ShapeError);
    expect(() => matmul(g, io, { ...s, accumulate: true })).toThrow(ShapeError);
    expect(() => matmul(g, io, { ...s, act: { kind: 'relu' } })).toThrow(ShapeError);
    expect(() => matmul(g, { ...io, epi: undefined }, s)).toThrow(/needs the saved tensor/);
    expect(() => matmul(g, { ...io, counter: undefined }, s)).toThrow(/needs the step counter/);
    expect(() => matmul(g, io, { ...s, epilogue: { ...chain, dropout: { rate: 1, seed: 1 } } })).toThrow(RangeError);
    g.release(buf);
  });
});
