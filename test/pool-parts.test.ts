// A conv's output and its pooling (and dropout) in one pass from the conv's unsummed split-K forward
// partials (shaders/chain.wgsl pool_forward_parts, src/ops/chain.ts poolForwardParts) against the
// composition of the unfused CPU references (conv, pooling, dropout) and, bit for bit, against the
// unfused GPU kernels one after another (the conv's split and reduce passes, then the pooling chain or
// the pooling alone), on the tiled kernels (the only family that splits so).
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { useGpu, f32 } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { conv2dForward, conv2dGeometry, unsummedForwardSplits, type Conv2dShape } from '../src/ops/conv2d.ts';
import { conv2dRef } from '../src/ops/conv2d.ref.ts';
import { poolDropoutForward, poolForwardParts, type PoolKind } from '../src/ops/chain.ts';
import { avgPoolForward, maxPoolForward, poolGeometry, type PoolShape } from '../src/ops/pool.ts';
import { avgPoolForwardRef, maxPoolForwardRef } from '../src/ops/pool.ref.ts';
import { dropoutRef } from '../src/ops/dropout.ref.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';

const STEP = 5;
const SEED = 17;

interface Case {
  /** The conv: its output is the pooling's input. */
  s: Conv2dShape;
  pool: { kind: PoolKind; k: number; padding: 'valid' | 'same' };
  bias: boolean;
  act: Act;
  rate: number | null;
}

const conv = (n: number, c: number, hw: number, k: number): Conv2dShape => ({
  ...{ n, c, h: hw, w: hw, k, kh: 3, kw: 3 },
  ...{ strideH: 1, strideW: 1, padding: 'same' as const },
});

const CASES: [string, Case][] = [
  // The reference network's conv3 and pool3 at batch 2: 7x7 pooled to 3x3, the last row and column in no window.
  [
    'max 2x2 valid over 7x7, bias, relu, dropout 0.25',
    {
      s: conv(2, 64, 7, 128),
      pool: { kind: 'max', k: 2, padding: 'valid' },
      bias: true,
      act: { kind: 'relu' },
      rate: 0.25,
    },
  ],
  [
    'max 2x2 same over 7x7 (padded windows), no bias, linear',
    {
      s: conv(2, 64, 7, 64),
      pool: { kind: 'max', k: 2, padding: 'same' },
      bias: false,
      act: { kind: 'linear' },
      rate: null,
    },
  ],
  [
    'avg 3x3 valid over 7x7, bias, tanh, dropout 0.5',
    {
      s: conv(2, 64, 7, 128),
      pool: { kind: 'avg', k: 3, padding: 'valid' },
      bias: true,
      act: { kind: 'tanh' },
      rate: 0.5,
    },
  ],
];

function poolOf(s: Conv2dShape, p: Case['pool']): PoolShape {
  const { oh, ow } = conv2dGeometry(s);
  const window = { kh: p.k, kw: p.k, strideH: p.k, strideW: p.k, padding: p.padding };
  return { n: s.n, c: s.k, h: oh, w: ow, ...window };
}

describe("a pooling summing its conv's split-K partials (GPU tiles vs the unfused kernels and CPU references)", () => {
  const gpu = useGpu();
  // The tiled kernels on a GPU of 16 units: these small convs split 2 to 16 ways (an H100's 132 split them more).
  // The direct GEMM, whose split-K partials these read (a Winograd forward leaves none: conv2d_plan.ts).
  const tiles = (): Gpu => gpu().withTuning({ lanes: 0, gemmSide: 16, units: 16, winograd: false });

  it.each(CASES)('%s', async (_name, c) => {
    const g = tiles();
    const { s } = c;
    const splits = unsummedForwardSplits(g, s);
    expect(splits, 'the conv splits 2 to 16 ways').toBeGreaterThanOrEqual(2);
    const rng = new Rng(9);
    const x = rng.floats(s.n * s.c * s.h * s.w, -1, 1);
    const w = rng.floats(s.k * s.c * 9, -0.2, 0.2);
    const b = rng.floats(s.k, -0.2, 0.2);
    const p = poolOf(s, c.pool);
    const { oh, ow } = poolGeometry(p);
    const [ys, outs] = [s.n * s.k * p.h * p.w, s.n * s.k * oh * ow];
    const nan = (n: number): GPUBuffer => g.upload(new Float32Array(n).fill(Number.NaN));
    const bufs = {
      x: g.upload(f32(x)),
      w: g.upload(f32(w)),
      b: g.upload(f32(b)),
      counter: g.upload(new Uint32Array([STEP])),
      parts: g.alloc(splits * ys * 4),
      y: nan(ys),
      pooled: nan(outs),
      argmax: g.alloc(outs * 4),
      y2: nan(ys),
      pooled2: nan(outs),
      argmax2: g.alloc(outs * 4),
    };
    const d = c.rate === null ? undefined : { rate: c.rate, seed: SEED };
    const bias = c.bias ? bufs.b : undefined;
    const io = { x: bufs.x, w: bufs.w, b: bias };
    const chain = { pool: { kind: c.pool.kind, shape: p }, act: c.act, dropout: d };
    const parts = { splits, channels: s.k, plane: p.h * p.w, length: ys };
    const fused = [
      ...conv2dForward(g, { ...io, y: g.dummy2, parts: bufs.parts }, s, c.act, { unsummed: true }),
      ...poolForwardParts(
        g,
        { parts: bufs.parts, bias, counter: bufs.counter, y: bufs.y, pooled: bufs.pooled, argmax: bufs.argmax },
        { ...chain, parts },
      ),
    ];
    expect(fused.map((q) => q.label)).toEqual([
      expect.stringMatching(new RegExp(`^conv2d forward .* split ${splits}$`)),
      expect.stringMatching(new RegExp(`^chain.sum.*pool.* forward .* \\+ ${splits} splits$`)),
    ]);
    const max = c.pool.kind === 'max';
    const pooling = { x: bufs.y2, y: bufs.pooled2, argmax: bufs.argmax2 };
    const unfused = [
      ...conv2dForward(g, { ...io, y: bufs.y2, parts: bufs.parts }, s, c.act),
      ...(d
        ? poolDropoutForward(g, { ...pooling, counter: bufs.counter }, chain.pool, d)
        : max
          ? maxPoolForward(g, pooling, p)
          : avgPoolForward(g, pooling, p)),
    ];
    g.run(fused);
    const [y, pooled, argmax] = [await g.readF32(bufs.y), await g.readF32(bufs.pooled), await g.readU32(bufs.argmax)];
    g.run(unfused);
    expect(y, 'y bit for bit the conv reduced').toEqual(await g.readF32(bufs.y2));
    expect(pooled, 'pooled bit for bit the unfused kernels').toEqual(await g.readF32(bufs.pooled2));
    if (max) expect(argmax, 'argmax as the unfused pooling').toEqual(await g.readU32(bufs.argmax2));
    const yRef = conv2dRef(x, w, c.bias ? b : null, s, c.act);
    expectAllclose('y', y, yRef, { atol: 1e-5, rtol: 1e-5 });
    const ref = max ? maxPoolForwardRef(y, p) : { y: avgPoolForwardRef(y, p), argmax: null };
    if (ref.argmax) expect(argmax).toEqual(ref.argmax);
    const want = d ? dropoutRef(ref.y, STEP, { count: outs, ...d }) : ref.y;
    expectAllclose('pooled', pooled, want, { atol: 1e-6, rtol: 1e-6 });
    g.free([...fused, ...unfused]);
    for (const buf of Object.values(bufs)) g.release(buf);
  });

  it('refuses overlapping windows, a conv that does not split so, and a wrong count of partials', () => {
    const g = tiles();
    const s = conv(2, 64, 7, 128);
    const io = { parts: g.dummy, counter: g.dummy, y: g.dummy, pooled: g.dummy, argmax: g.dummy };
    const shape = { ...poolOf(s, { kind: 'max', k: 3, padding: 'valid' }), strideH: 2, strideW: 2 };
    const parts = { splits: 8, channels: 128, plane: 49, length: 2 * 128 * 49 };
    const relu: Act = { kind: 'relu' };
    expect(() => poolForwardParts(g, io, { pool: { kind: 'max', shape }, act: relu, parts })).toThrow(/overlapping/);
    const apart = poolOf(s, { kind: 'max', k: 2, padding: 'valid' });
    expect(() =>
      poolForwardParts(g, io, { pool: { kind: 'max', shape: apart }, act: relu, parts: { ...parts, splits: 17 } }),
    ).toThrow(/sums 2 to 16 partials/);
    const small = conv(1, 1, 4, 2);
    expect(() => conv2dForward(g, { x: g.dummy, w: g.dummy, y: g.dummy }, small, relu, { unsummed: true })).toThrow(
      /cannot leave its sum split/,
    );
  });
});
