// The fused chains (src/ops/chain.ts, shaders/chain.wgsl) against the composition of the unfused CPU
// references and, bit for bit, against the unfused GPU kernels run one after another; the composed
// references' backward by finite differences; and the planner's choice of fusions (src/graph/fuse.ts).
import { describe, expect, it } from 'vitest';
import type { Act } from '../dsl/ir.ts';
import { useGpu, f32, useGemmVariant } from './helpers/gpu.ts';
import { ACT_DERIVATIVES } from './helpers/acts.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd, dot } from './helpers/fd.ts';
import { backwardChain, poolDropoutForward, type BackwardChain, type ChainPool } from '../src/ops/chain.ts';
import { avgPoolBackward, avgPoolForward, maxPoolBackward, maxPoolForward, type PoolShape } from '../src/ops/pool.ts';
import { dropoutBackward, dropoutForward } from '../src/ops/dropout.ts';
import { activationBackward } from '../src/ops/elementwise.ts';
import { avgPoolBackwardRef, avgPoolForwardRef, maxPoolBackwardRef, maxPoolForwardRef } from '../src/ops/pool.ref.ts';
import { dropoutRef } from '../src/ops/dropout.ref.ts';
import { actGradRef, actRef } from '../src/ops/act.ref.ts';
import { poolGeometry } from '../src/ops/pool.ts';
import type { BufferRef, Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { Rng } from '../src/util/rng.ts';
import { readFileSync } from 'node:fs';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { ParamStore } from '../src/model/params.ts';
import { runPlan, type PlanRun } from '../bench/plan-run.ts';
import { describeFusion, findFusions } from '../src/graph/fuse.ts';
import { plan } from '../src/graph/plan.ts';
import { numel } from '../src/graph/graph.ts';
import { expectSameBits } from './helpers/bits.ts';
import { conv2dBackwardInput, inputPartsLength, unsummedInputSplits, type Conv2dShape } from '../src/ops/conv2d.ts';
import { conv2dBackwardInputRef } from '../src/ops/conv2d.ref.ts';

const STEP = 5;
const SEED = 77;

/** Windows that divide the plane, that do not ('valid' drops the last row, 'same' pads), and overlapping ones. */
const WINDOWS: [string, PoolShape][] = [
  ['2x2 on 8x8', { n: 2, c: 3, h: 8, w: 8, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'valid' }],
  ['2x2 valid on 7x9', { n: 2, c: 3, h: 7, w: 9, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'valid' }],
  ['2x2 same on 7x9', { n: 1, c: 5, h: 7, w: 9, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'same' }],
  [
    '2x2 stride 3 valid on 8x8 (gaps between windows)',
    { n: 2, c: 2, h: 8, w: 8, kh: 2, kw: 2, strideH: 3, strideW: 3, padding: 'valid' },
  ],
  [
    '2x2 stride 3 same on 8x7 (gaps, padded)',
    { n: 1, c: 3, h: 8, w: 7, kh: 2, kw: 2, strideH: 3, strideW: 3, padding: 'same' },
  ],
  [
    '3x3 stride 2 same on 9x8 (overlapping)',
    { n: 2, c: 2, h: 9, w: 8, kh: 3, kw: 3, strideH: 2, strideW: 2, padding: 'same' },
  ],
];
const KINDS = ['max', 'avg'] as const;
const ACTS = ACT_DERIVATIVES;

const poolRef = (kind: 'max' | 'avg', x: ArrayLike<number>, s: PoolShape) =>
  kind === 'max' ? maxPoolForwardRef(x, s) : { y: avgPoolForwardRef(x, s), argmax: new Uint32Array(0) };
const outCount = (s: PoolShape): number => s.n * s.c * poolGeometry(s).oh * poolGeometry(s).ow;

function run(g: Gpu, ds: Dispatch[]): void {
  g.run(ds);
  g.free(ds);
}

describe('fused pooling + dropout forward (GPU vs the unfused references and kernels)', () => {
  const gpu = useGpu();
  const cases = KINDS.flatMap((kind) =>
    WINDOWS.flatMap(([name, s]) => [0.25, 0.5].map((rate) => [kind, name, rate, s] as const)),
  );
  it.each(cases)('%s pool %s, p=%s', async (kind, _name, rate, s) => {
    const g = gpu();
    const x = new Rng(s.h * 31 + s.w).floats(s.n * s.c * s.h * s.w);
    const count = outCount(s);
    const d = { rate, seed: SEED };
    const xb = g.upload(f32(x));
    const counter = g.upload(new Uint32Array([STEP]));
    const [yb, pooled, unfused] = [0, 1, 2].map(() => g.upload(new Float32Array(count).fill(Number.NaN)));
    const [argb, arg2] = [0, 1].map(() => g.alloc(count * 4));
    if (!yb || !pooled || !unfused || !argb || !arg2) throw new Error('buffers');
    const pool: ChainPool = { kind, shape: s };
    run(g, poolDropoutForward(g, { x: xb, counter, y: yb, argmax: argb }, pool, d));
    const unfusedPool =
      kind === 'max'
        ? maxPoolForward(g, { x: xb, y: pooled, argmax: arg2 }, s)
        : avgPoolForward(g, { x: xb, y: pooled }, s);
    run(g, [...unfusedPool, ...dropoutForward(g, { x: pooled, counter, y: unfused }, { count, ...d })]);
    const y = await g.readF32(yb);
    const ref = poolRef(kind, x, s);
    expectAllclose('fused y', y, dropoutRef(ref.y, STEP, { count, ...d }), { atol: 1e-7, rtol: 1e-6 });
    expect(y, 'bit for bit the unfused kernels').toEqual(await g.readF32(unfused));
    if (kind === 'max') expect(await g.readU32(argb)).toEqual(ref.argmax);
    for (const b of [xb, counter, yb, pooled, unfused, argb, arg2]) g.release(b);
  });
});

/** A chain's inputs: pre-activations z, the activation's output y (f32), dy of the chain's output. */
function chainData(c: BackwardChain, seed: number) {
  const rng = new Rng(seed);
  const z = rng.floats(c.count, -2, 2);
  for (let i = 0; i < z.length; i++) if (Math.abs(z[i] ?? 0) < 1e-3) z[i] = 0.5; // away from relu's kink
  const y = f32(Array.from(z, (v) => actRef(c.act, v)));
  const outs = c.pool ? outCount(c.pool.shape) : c.count;
  return {
    z,
    y,
    dy: rng.floats(outs),
    argmax: c.pool?.kind === 'max' ? maxPoolForwardRef(y, c.pool.shape).argmax : null,
  };
}

/** The composition of the unfused references: act'(z) ⊙ unpool(dropoutᵀ(dy)). */
function chainRef(
  c: BackwardChain,
  dy: ArrayLike<number>,
  z: ArrayLike<number>,
  argmax: Uint32Array | null,
): Float64Array {
  const outs = c.pool ? outCount(c.pool.shape) : c.count;
  const g = c.dropout ? dropoutRef(dy, STEP, { count: outs, ...c.dropout }) : Float64Array.from(dy);
  const p = c.pool;
  const u = !p ? g : p.kind === 'max' ? maxPoolBackwardRef(g, argmax ?? [], p.shape) : avgPoolBackwardRef(g, p.shape);
  return u.map((v, i) => v * actGradRef(c.act, z[i] ?? 0));
}

/** The unfused GPU kernels one after another: dropout backward, unpooling, the activation's derivative. */
function unfusedChain(
  g: Gpu,
  c: BackwardChain,
  io: { dy: GPUBuffer; counter: GPUBuffer; argmax: GPUBuffer; saved: GPUBuffer; dx: GPUBuffer },
) {
  const outs = c.pool ? outCount(c.pool.shape) : c.count;
  const [t1, t2] = [g.alloc(outs * 4), g.alloc(c.count * 4)];
  const ds: Dispatch[] = [];
  const linear = c.act.kind === 'linear';
  let cur = io.dy;
  if (c.dropout) {
    const to = !c.pool && linear ? io.dx : t1;
    ds.push(...dropoutBackward(g, { dy: cur, counter: io.counter, dx: to }, { count: outs, ...c.dropout }));
    cur = to;
  }
  if (c.pool) {
    const [s, to] = [c.pool.shape, linear ? io.dx : t2];
    const argmax = io.argmax;
    ds.push(
      ...(c.pool.kind === 'max'
        ? maxPoolBackward(g, { dy: cur, argmax, dx: to }, s)
        : avgPoolBackward(g, { dy: cur, dx: to }, s)),
    );
    cur = to;
  }
  if (!linear) ds.push(...activationBackward(g, { dy: cur, saved: io.saved, dx: io.dx }, c.count, c.act, c.from));
  return { ds, temps: [t1, t2] };
}

const actLabel = ([a, from]: [Act, string]): string =>
  `${a.kind === 'leaky' ? `leaky(${a.alpha})` : a.kind} from ${from}`;

describe('fused backward chain: dropoutᵀ + unpooling + activation derivative', () => {
  const gpu = useGpu();
  const pools: [string, PoolShape | null][] = [['no pool', null], ...WINDOWS];
  const cases = pools.flatMap(([name, s]) =>
    (s ? KINDS : (['max'] as const)).flatMap((kind) =>
      ACTS.flatMap((act) =>
        [true, false].map((drop) => [s ? `${kind} ${name}` : name, actLabel(act), drop, kind, s, act] as const),
      ),
    ),
  );
  it.each(cases)('%s, %s, dropout %s', async (_name, _act, drop, kind, s, [act, from]) => {
    const g = gpu();
    const count = s ? s.n * s.c * s.h * s.w : 301;
    const c: BackwardChain = {
      count,
      act,
      from,
      pool: s ? { kind, shape: s } : undefined,
      dropout: drop ? { rate: 0.25, seed: SEED } : undefined,
    };
    const { z, y, dy, argmax } = chainData(c, count);
    const bufs = {
      dy: g.upload(f32(dy)),
      counter: g.upload(new Uint32Array([STEP])),
      argmax: g.upload(argmax ?? new Uint32Array(4)),
      saved: g.upload(from === 'output' ? y : f32(z)),
      dx: g.upload(new Float32Array(count).fill(Number.NaN)),
    };
    run(g, backwardChain(g, bufs, c));
    const fused = await g.readF32(bufs.dx);
    expectAllclose('fused dx', fused, chainRef(c, dy, z, argmax), { atol: 1e-6, rtol: 1e-5 });
    const dx2 = g.upload(new Float32Array(count).fill(Number.NaN));
    const { ds, temps } = unfusedChain(g, c, { ...bufs, dx: dx2 });
    if (ds.length > 0) {
      run(g, ds);
      expect(fused, 'bit for bit the unfused kernels').toEqual(await g.readF32(dx2));
    }
    for (const b of [...Object.values(bufs), dx2, ...temps]) g.release(b);
  });
});

// A stride-1 conv's dX split-K on the tiled kernels as an H100 gets them, left as its partials and summed
// by the chain that reads it (the planner's choice, fuse.dxParts): bit for bit the reduced dX then the chain.
describe("a backward chain summing a conv's split dX partials (gpu tiles)", () => {
  const gpu = useGpu();
  const conv: Conv2dShape = { n: 2, c: 3, h: 8, w: 8, k: 16, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
  const window = (kind: 'max' | 'avg'): ChainPool => ({
    kind,
    shape: { n: 2, c: 3, h: 16, w: 16, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'valid' },
  });
  const cases: [string, ChainPool | undefined, Act][] = [
    ['max pool, relu', window('max'), { kind: 'relu' }],
    ['avg pool, tanh', window('avg'), { kind: 'tanh' }],
    ['no pool, relu', undefined, { kind: 'relu' }],
  ];
  it.each(cases)('%s, dropout', async (_name, pool, act) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined);
    const splits = unsummedInputSplits(g, conv);
    expect(splits, 'dX split 2 to 16 ways').toBeGreaterThanOrEqual(2);
    const xs = conv.n * conv.c * conv.h * conv.w;
    const count = pool ? pool.shape.n * pool.shape.c * pool.shape.h * pool.shape.w : xs;
    const c: BackwardChain = { count, act, from: 'output', pool, dropout: { rate: 0.25, seed: SEED } };
    const { z, y, argmax } = chainData(c, count);
    const rng = new Rng(5);
    const dyConv = rng.floats(conv.n * conv.k * conv.h * conv.w, -1, 1);
    const w = rng.floats(conv.k * conv.c * 9, -1, 1);
    const bufs = {
      dyConv: g.upload(f32(dyConv)),
      w: g.upload(f32(w)),
      counter: g.upload(new Uint32Array([STEP])),
      argmax: g.upload(argmax ?? new Uint32Array(4)),
      saved: g.upload(y),
      dx: g.alloc(xs * 4),
      parts: g.alloc(inputPartsLength(g, conv) * 4),
      unsummed: g.alloc(splits * xs * 4),
      reduced: g.upload(new Float32Array(count).fill(Number.NaN)),
      fused: g.upload(new Float32Array(count).fill(Number.NaN)),
    };
    const summed = conv2dBackwardInput(g, { dy: bufs.dyConv, w: bufs.w, dx: bufs.dx, parts: bufs.parts }, conv);
    expect(summed.map((d) => d.label).join(), 'split and reduced').toContain('reduce');
    run(g, [...summed, ...backwardChain(g, { ...bufs, dy: bufs.dx, dx: bufs.reduced }, c)]);
    const left = conv2dBackwardInput(g, { dy: bufs.dyConv, w: bufs.w, dx: bufs.unsummed }, conv, { unsummed: true });
    expect(left, 'the split pass alone').toHaveLength(1);
    const dyParts = { splits, channels: conv.c, plane: conv.h * conv.w, length: xs };
    run(g, [...left, ...backwardChain(g, { ...bufs, dy: bufs.unsummed, dx: bufs.fused }, { ...c, dyParts })]);
    const fused = await g.readF32(bufs.fused);
    expect(fused, 'bit for bit the reduced dX, then the chain').toEqual(await g.readF32(bufs.reduced));
    const ref = chainRef(c, conv2dBackwardInputRef(dyConv, w, conv), z, argmax);
    expectAllclose('chain over the summed partials', fused, ref, { atol: 1e-5, rtol: 1e-4 });
    for (const b of Object.values(bufs)) g.release(b);
  });

  it('refuses partials it cannot sum in the reduce order', () => {
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined);
    const c: BackwardChain = { count: 8, act: { kind: 'linear' }, from: 'output' };
    const io = { dy: g.dummy, counter: g.dummy, dx: g.dummy };
    const dyParts = { splits: 17, channels: 1, plane: 8, length: 8 };
    expect(() => backwardChain(g, io, { ...c, dyParts })).toThrow(/2 to 16 partials/);
    const strided = { ...conv, strideH: 2, strideW: 2 };
    expect(unsummedInputSplits(g, strided)).toBe(0);
    expect(() => conv2dBackwardInput(g, io as never, strided, { unsummed: true })).toThrow(
      /cannot leave its sum split/,
    );
  });
});

describe('the composed references of a fused chain (finite differences)', () => {
  const s: PoolShape = { n: 1, c: 2, h: 5, w: 4, kh: 2, kw: 2, strideH: 2, strideW: 2, padding: 'same' };
  const overlap: PoolShape = { ...s, kh: 3, kw: 3, padding: 'same' };
  const cases = [
    ...KINDS.flatMap((kind) => [s, overlap].map((w) => [`${kind} pool ${w.kh}x${w.kh}`, { kind, shape: w }] as const)),
    ['no pool', undefined] as const,
  ];
  it.each(cases)('%s, tanh, dropout 0.5', (_name, pool) => {
    const act: Act = { kind: 'tanh' };
    const count = 40;
    const c: BackwardChain = { count, act, from: 'input', pool, dropout: { rate: 0.5, seed: 3 } };
    const { z, dy } = chainData(c, 9);
    const forward = (v: Float64Array): Float64Array => {
      const a = v.map((t) => actRef(act, t));
      const p = pool ? poolRef(pool.kind, a, pool.shape).y : a;
      return dropoutRef(p, STEP, { count: p.length, rate: 0.5, seed: 3 });
    };
    const argmax =
      pool?.kind === 'max'
        ? maxPoolForwardRef(
            z.map((t) => actRef(act, t)),
            pool.shape,
          ).argmax
        : null;
    checkGradFd('chain dz', z, (v) => dot(forward(v), dy), chainRef(c, dy, z, argmax));
  });
});

/**
 * A pooled tensor that a residual add reads besides the dropout: no forward fusion, and the backward
 * chain ends at the pooling.
 */
const RESIDUAL = `input 8x8x1
conv 4 3x3 same relu
pool 2
residual {
  dropout 0.25
  conv 4 3x3 same
}
dense 10 softmax`;
/**
 * Every chain form: avg pooling, a standalone gelu (derivative from its input), dense + dropout, a
 * linear conv head, and a chain with no head (after a batch norm).
 */
const CHAINS = `input 8x8x1
conv 4 3x3 same gelu
avgpool 2
dropout 0.2
conv 6 3x3 same
pool 2
dropout 0.3
conv 6 3x3 same
batchnorm
pool 2
dropout 0.3
dense 12 tanh
dropout 0.5
dense 10 softmax`;

/** Batchnorm + relu with act' folded into its backward, one whose relu heads a pooling chain, and a residual. */
const BN_ACT = `input 8x8x1
conv 4 3x3 same bias=false
batchnorm
relu
conv 4 3x3 same bias=false
batchnorm
leaky(0.1)
pool 2
residual { conv 4 3x3 same bias=false; batchnorm; relu; conv 4 3x3 same bias=false; batchnorm }
relu
dense 10 softmax`;

const graphOf = (src: string, batch = 8) => buildGraph(parseNet(src, 'test.net'), batch, { seed: 3 });

describe('the fusions the planner makes (src/graph/fuse.ts)', () => {
  const list = (src: string, training = true): string[] => {
    const b = graphOf(src);
    return findFusions(b.graph, { training, logits: b.logits }).map(describeFusion);
  };

  it("the reference network: each block's pooling + dropout forward, and its chain backward", () => {
    expect(list(readFileSync('examples/reference.net', 'utf8'))).toEqual([
      'forward   conv1 conv2d + pool1 maxpool + dropout1 dropout: conv+maxpool+dropout',
      'forward   conv2 conv2d + pool2 maxpool + dropout2 dropout: conv+maxpool+dropout',
      'forward   conv3 conv2d + pool3 maxpool + dropout3 dropout: conv+maxpool+dropout',
      'forward   dense1 dense + dropout4 dropout: dense+dropout',
      "backward  conv1 conv2d (relu') + pool1 maxpool + dropout1 dropout: dropout+maxunpool+relu' in conv2 conv2d's dX",
      "backward  conv2 conv2d (relu') + pool2 maxpool + dropout2 dropout: dropout+maxunpool+relu' in conv3 conv2d's dX",
      "backward  conv3 conv2d (relu') + pool3 maxpool + dropout3 dropout: dropout+maxunpool+relu' in dense1 dense's dX",
      "backward  dense1 dense (relu') + dropout4 dropout: dropout+relu' in dense2 dense's dX",
    ]);
  });

  it('every chain form: avg pooling, a standalone activation, a linear conv head, no head, dense + dropout', () => {
    expect(list(CHAINS)).toEqual([
      'forward   avgpool1 avgpool + dropout1 dropout: avgpool+dropout',
      'forward   conv2 conv2d + pool1 maxpool + dropout2 dropout: conv+maxpool+dropout',
      'forward   pool2 maxpool + dropout3 dropout: maxpool+dropout',
      'forward   dense1 dense + dropout4 dropout: dense+dropout',
      "backward  conv1 activation (gelu') + avgpool1 avgpool + dropout1 dropout: dropout+avgunpool+gelu' " +
        "in conv2 conv2d's dX",
      "backward  conv2 conv2d + pool1 maxpool + dropout2 dropout: dropout+maxunpool in conv3 conv2d's dX",
      "backward  pool2 maxpool + dropout3 dropout: dropout+maxunpool in dense1 dense's dX",
      "backward  dense1 dense (tanh') + dropout4 dropout: dropout+tanh' in dense2 dense's dX",
    ]);
  });

  it("batchnorm + activation: act' folded, or left to the pooling chain it heads; never past a residual", () => {
    expect(list(BN_ACT).filter((l) => l.includes('batchnorm'))).toEqual([
      'both ways bn1 batchnorm + act1 activation: batchnorm+relu',
      'forward   bn2 batchnorm + act2 activation + pool1 maxpool: batchnorm+leaky(0.1)+maxpool',
      'both ways res1.bn1 batchnorm + res1.act1 activation: batchnorm+relu',
      // Its relu' runs in dense1's dX (a lone act' of an add: the add has no pass of its own back).
      'forward   res1.bn2 batchnorm + res1 add + act3 activation: batchnorm+add+relu',
    ]);
    // An adapter that binds too few storage buffers for the pooled pass: the pooling runs on its own; nor for the
    // shortcut: the add and its relu run in their pass. At inference a batchnorm's pass activates, pools and adds
    // a shortcut on any adapter (7 storage buffers at most).
    const b = graphOf(BN_ACT);
    const o = { training: true, logits: b.logits, bnPools: false, bnAdds: false };
    const few = findFusions(b.graph, o).map(describeFusion);
    expect(few).toContain('forward   bn2 batchnorm + act2 activation: batchnorm+leaky(0.1)');
    expect(few).toContain('forward   res1 add + act3 activation: add+relu'); // its relu' in dense1's dX
    // At inference the pooled pass binds 7 (forward_infer_pool): it pools on any adapter.
    const inference = findFusions(b.graph, { ...o, training: false }).map(describeFusion);
    expect(inference).toEqual([
      'forward   bn1 batchnorm + act1 activation: batchnorm+relu',
      'forward   bn2 batchnorm + act2 activation + pool1 maxpool: batchnorm+leaky(0.1)+maxpool',
      'forward   res1.bn1 batchnorm + res1.act1 activation: batchnorm+relu',
      'forward   res1.bn2 batchnorm + res1 add + act3 activation: batchnorm+add+relu',
    ]);
    expect(list(BN_ACT, false)).toEqual(inference);
    // Nor with a dropout after the pooling (that pooling's own forward fusion), nor overlapping windows.
    for (const after of ['pool 2\ndropout 0.3', 'pool 3 stride=2']) {
      const src = `input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\n${after}\ndense 10 softmax`;
      expect(
        list(src).filter((l) => l.includes('batchnorm')),
        after,
      ).toEqual(['forward   bn1 batchnorm + act1 activation: batchnorm+relu']);
    }
  });

  it("a chain runs in the dX reading it alone: windows apart, not where that conv's dX leaves its partials", () => {
    const reference = readFileSync('examples/reference.net', 'utf8');
    const b = graphOf(reference);
    // conv3's dX splits (on an H100's tiles): conv2's chain sums its partials in its own pass instead.
    const dxSplits = (c: { layer?: string }) => c.layer === 'conv3';
    const split = findFusions(b.graph, { training: true, logits: b.logits, dxSplits }).map(describeFusion);
    expect(split.filter((l) => l.startsWith('backward'))).toEqual([
      "backward  conv1 conv2d (relu') + pool1 maxpool + dropout1 dropout: dropout+maxunpool+relu' in conv2 conv2d's dX",
      "backward  conv2 conv2d (relu') + pool2 maxpool + dropout2 dropout: dropout+maxunpool+relu'",
      "backward  conv3 conv2d (relu') + pool3 maxpool + dropout3 dropout: dropout+maxunpool+relu' in dense1 dense's dX",
      "backward  dense1 dense (relu') + dropout4 dropout: dropout+relu' in dense2 dense's dX",
    ]);
    // Overlapping windows (3×3, stride 2): the chain keeps its pass; so does a chain a residual add reads (the
    // dropout the add's other branch starts with is a chain of its own, in the conv's dX after it).
    const overlap = 'input 8x8x1\nconv 4 3x3 same relu\npool 3 stride=2\ndropout 0.25\nconv 4 3x3 same\ndense 10';
    expect(list(overlap).filter((l) => l.startsWith('backward'))).toEqual([
      "backward  conv1 conv2d (relu') + pool1 maxpool + dropout1 dropout: dropout+maxunpool+relu'",
    ]);
    expect(list(RESIDUAL).filter((l) => l.includes(' in '))).toEqual([
      "backward  res1.dropout1 dropout: dropout in res1.conv1 conv2d's dX",
    ]);
  });

  it('a chain of one elementary backward where it saves a pass: in the dX above, or summing its partials', () => {
    const lone = `input 8x8x1
conv 4 3x3 same relu
conv 4 3x3 same
gelu
conv 8 3x3 stride=2 same tanh
dense 12
dropout 0.3
dense 12 relu
dense 10 softmax`;
    expect(list(lone)).toEqual([
      "backward  conv1 conv2d (relu'): relu' in conv2 conv2d's dX",
      "backward  act1 activation (gelu'): gelu' in conv3 conv2d's dX",
      "backward  conv3 conv2d (tanh'): tanh' in dense1 dense's dX",
      "backward  dense1 dense + dropout1 dropout: dropout in dense2 dense's dX",
      "backward  dense2 dense (relu'): relu' in dense3 dense's dX",
    ]);
    expect(list(lone, false), 'nothing at inference').toEqual([]);
    // Where conv2's dX splits (fuse.ts dxSplits), conv1's relu' keeps a kernel: it sums those partials.
    const b = graphOf(lone);
    const dxSplits = (c: { layer?: string }) => c.layer === 'conv2';
    const split = findFusions(b.graph, { training: true, logits: b.logits, dxSplits }).map(describeFusion);
    expect(split[0]).toBe("backward  conv1 conv2d (relu'): relu'");
    // An add's activation runs its act' in the dX reading it (conv2's here), the add then passing on what that
    // wrote: the add's act' pass is gone; a global pooling's backward runs the act' of the conv it reads. Not
    // an activation a batchnorm's pass runs (its own backward applies act' at no cost), nor an add's that no
    // dX reads (its act' stays in the add's pass), nor a pooling of overlapping windows.
    const others = `input 8x8x1
conv 4 3x3 same bias=false
batchnorm
relu
residual { conv 4 3x3 same }
relu
conv 4 3x3 same relu
globalavgpool
dense 10 softmax`;
    expect(list(others)).toEqual([
      'both ways bn1 batchnorm + act1 activation: batchnorm+relu',
      'forward   res1.conv1 conv2d + res1 add + act2 activation: conv+add+relu',
      "backward  act2 activation (relu'): relu' in conv2 conv2d's dX",
      "backward  conv2 conv2d (relu'): relu' in globalavgpool1 globalavgpool's dX",
    ]);
    // A block ending in a dense layer: the add in its store, its relu' in the next dense layer's dX.
    expect(list('input 8x8x1\ndense 12 relu\nresidual { dense 12 }\nrelu\ndense 10 softmax')).toEqual([
      'forward   res1.dense1 dense + res1 add + act1 activation: dense+add+relu',
      "backward  act1 activation (relu'): relu' in dense2 dense's dX",
    ]);
    const noDx =
      'input 8x8x1\nconv 4 3x3 same\nresidual { conv 4 3x3 same }\nrelu\nbatchnorm\nglobalavgpool\ndense 10 softmax';
    expect(list(noDx)).toEqual(['both ways res1.conv1 conv2d + res1 add + act1 activation: conv+add+relu']);
    const overlap = 'input 8x8x1\nconv 4 3x3 same\npool 3 stride=2\nconv 4 3x3 same\ndense 10 softmax';
    expect(list(overlap)).toEqual([]);
  });

  it("at inference a conv's pooling in its epilogue only (dropout is the identity there, nothing goes back)", () => {
    expect(list(readFileSync('examples/reference.net', 'utf8'), false)).toEqual([
      'forward   conv1 conv2d + pool1 maxpool: conv+maxpool',
      'forward   conv2 conv2d + pool2 maxpool: conv+maxpool',
      'forward   conv3 conv2d + pool3 maxpool: conv+maxpool',
    ]);
  });

  it('not through a tensor another op reads: the pooled tensor a residual add reads', () => {
    // The pooled tensor is written whole, so the conv may still pool in its epilogue.
    expect(list(RESIDUAL)).toEqual([
      'forward   conv1 conv2d + pool1 maxpool: conv+maxpool',
      "backward  conv1 conv2d (relu') + pool1 maxpool: maxunpool+relu'",
      "backward  res1.dropout1 dropout: dropout in res1.conv1 conv2d's dX",
    ]);
  });

  it('a conv pools in its epilogue only 2x2 max pooling of valid windows, where its forward is one pass', () => {
    const src = (pool: string, size = 8): string =>
      `input ${size}x${size}x1\nconv 4 3x3 same relu\n${pool}\ndropout 0.25\ndense 10 softmax`;
    const heads = (text: string, convPools?: () => boolean): string[] => {
      const b = graphOf(text);
      const o = { training: true, logits: b.logits, convPools };
      return findFusions(b.graph, o)
        .map(describeFusion)
        .filter((l) => l.startsWith('forward'));
    };
    expect(heads(src('pool 2'))).toEqual([
      'forward   conv1 conv2d + pool1 maxpool + dropout1 dropout: conv+maxpool+dropout',
    ]);
    expect(heads(src('pool 2'), () => false)).toEqual(['forward   pool1 maxpool + dropout1 dropout: maxpool+dropout']);
    for (const other of ['avgpool 2', 'pool 3', 'pool 2 stride=1']) {
      expect(heads(src(other))[0], other).not.toContain('conv1');
    }
    // An odd output: valid windows leave its last row and column out; 'same' pads them into windows of their own.
    expect(heads(src('pool 2', 7))[0], 'odd output').toContain('conv1');
    expect(heads(src('pool 2 same', 7))[0], "odd output, 'same' windows").not.toContain('conv1');
    expect(heads(src('pool 2 same', 8))[0], "even output, 'same' windows").toContain('conv1');
  });

  it("not through a kept tensor: pool3's output kept, its dropout runs unfused", () => {
    const b = graphOf(readFileSync('examples/reference.net', 'utf8'));
    const pool3 = b.graph.nodes.find((n) => n.layer === 'pool3')?.out;
    if (!pool3) throw new Error('no pool3');
    const kept = findFusions(b.graph, { training: true, logits: b.logits, keep: [pool3] }).map(describeFusion);
    expect(kept).toHaveLength(9);
    // dropout3 is a chain of its own: its forward a kernel of its own, its backward in dense1's dX.
    expect(kept.filter((l) => l.includes('dropout3'))).toEqual([
      "backward  dropout3 dropout: dropout in dense1 dense's dX",
    ]);
    // conv3 still pools in its epilogue: the kept output is the pooling's, which that kernel writes.
    expect(kept).toContain('forward   conv3 conv2d + pool3 maxpool: conv+maxpool');
    expect(kept).toContain("backward  conv3 conv2d (relu') + pool3 maxpool: maxunpool+relu'");
  });
});

// An inference plan's fusions (a conv's pooling in its epilogue, a batchnorm's or an add's activation in its
// pass, a residual add in the batchnorm's pass or the conv's store) give the unfused plan's logits bit for bit,
// from the same weights and running statistics.
describe("a fused inference plan gives the unfused plan's logits, bit for bit", () => {
  const gpu = useGpu();
  it.each([
    ['batch norm with its activation, a residual block ending in batch norm', BN_ACT],
    [
      'a projection shortcut computed after the batchnorm that adds it',
      'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\n' +
        'residual { conv 8 3x3 stride=2 same bias=false; batchnorm; relu; conv 8 3x3 same bias=false; batchnorm }\n' +
        'relu\nglobalavgpool\ndense 10 softmax',
    ],
    ['convs pooling in their epilogue, dropout', readFileSync('examples/reference.net', 'utf8')],
    [
      'blocks ending in a conv that adds the shortcut as it stores, one with a projection',
      'input 8x8x1\nconv 4 3x3 same relu\nresidual { conv 4 3x3 same relu; conv 4 3x3 same }\nrelu\n' +
        'residual { conv 8 3x3 stride=2 same relu; conv 8 3x3 same }\nrelu\nglobalavgpool\ndense 10 softmax',
      2,
    ],
    [
      'blocks ending in a dense layer that adds the shortcut as it stores',
      'input 8x8x1\ndense 24 relu\nresidual { dense 24 relu; dense 24 }\nrelu\n' +
        'residual { dense 24 }\ntanh\ndense 10 softmax',
      2,
    ],
  ])('%s', async (_name, src, adds?: number) => {
    const g = gpu();
    const built = buildGraph(parseNet(src, 'infer.net'), 4, { seed: 3 });
    const params = new ParamStore(g, built.params);
    params.initialise(5);
    const [counter, stats] = [g.upload(new Uint32Array(4)), g.upload(new Uint32Array(4))];
    const x = new Rng(21).floats(numel(built.x.shape), 0, 1);
    /** A tensor's buffer and its byte offset there (pooled buffers are shared and may be larger). */
    const at = (r: BufferRef): [GPUBuffer, number] => ('buffer' in r ? [r.buffer, r.offset ?? 0] : [r, 0]);
    const run = async (fuse: boolean) => {
      const io = { training: false, logits: built.logits, labels: null, persistent: params.buffers, counter, stats };
      const p = plan(g, built.graph, { ...io, fuse });
      const [xb, xo] = at(p.buffer(built.x));
      g.write(xb, f32(x), xo);
      g.run(p.forward);
      const [lb, lo] = at(p.buffer(built.logits));
      const logits = await g.readF32(lb, numel(built.logits.shape), lo / 4);
      const labels = p.forward.map((d) => d.label);
      p.release();
      return { logits, labels };
    };
    const [fused, unfused] = [await run(true), await run(false)];
    expect(fused.labels.length).toBeLessThan(unfused.labels.length);
    // The convs and dense layers that add as they store (each forward kernel does).
    if (adds !== undefined)
      expect(fused.labels.filter((l) => / \+ add( reduce \d+ splits)?$/.test(l))).toHaveLength(adds);
    expectSameBits('logits', fused.logits, unfused.logits);
    for (const b of [counter, stats]) g.release(b);
    params.release();
  });
});

describe('a fused plan trains to the same weights as the unfused plan, bit for bit', () => {
  const gpu = useGpu();
  // A plan run (bench/plan-run.ts) at batch 8 unless said, Adam at 0.01. fold: the update sums the deferred
  // weight gradients (PlanOptions.foldGradSums), as the trainer's plans do. pair: neighbouring independent
  // GEMMs as one dispatch (PlanOptions.pair; src/gpu/pair.ts). Both off but where a test asks: on the tiled
  // kernels every pair is a pipeline of its own to compile, seconds each on lavapipe. tiles: the GPU's tiles
  // (an H100's) on this adapter. lanes: the lane kernels, the adapter's own or (on a GPU) four lanes.
  async function train(
    src: string,
    o: Partial<PlanRun> & { fuse: boolean; steps: number; tiles?: boolean; lanes?: boolean },
  ) {
    const { tiles, lanes, ...run } = o;
    const fail = (why: string) => {
      throw new Error(why);
    };
    const own = gpu();
    const laneGpu = () => (own.lanes > 0 ? own : useGemmVariant(own, 'four lanes', fail));
    const g = tiles ? useGemmVariant(own, 'gpu tiles', () => undefined) : lanes ? laneGpu() : own;
    return runPlan(g, src, { batch: 8, lr: 0.01, fold: false, pair: false, ...run });
  }

  // On the tiled kernels as an H100 gets them dense1 splits K: its reduce pass runs the dropout epilogue.
  it("a dense layer's epilogues: its dropout, and the chain below in the next layer's dX (gpu tiles)", async () => {
    const src = 'input 24x24x1\ndense 24 relu\ndropout 0.3\ndense 10 softmax';
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 4, tiles });
      const unfused = await train(src, { fuse: false, steps: 4, tiles });
      expect(
        fused.forward.filter((l) => l.startsWith('dropout')),
        'no dropout kernel',
      ).toEqual([]);
      expect(fused.forward.filter((l) => l.includes('x24 + dropout p=0.3')).length, 'dense1 drops out').toBeGreaterThan(
        0,
      );
      if (tiles) expect(fused.forward.join()).toMatch(/x24 \+ dropout p=0\.3 reduce \d+ splits/);
      // On the tiles dense2's unsplit GEMM takes the loss into its epilogue (fused.xentHead): no loss pass.
      if (tiles) expect(fused.forward.at(-1)).toBe('matmul 8x24x10 + softmax_xent + totals');
      expect(
        fused.backward.filter((l) => l.startsWith('chain.')),
        'no chain kernel',
      ).toEqual([]);
      expect(
        fused.backward.filter((l) => l.includes("x24 + dropout+relu' p=0.3")),
        "dense2's dX",
      ).toHaveLength(1);
      for (const [name, t] of unfused.weights) expect(fused.weights.get(name)?.data, name).toEqual(t.data);
    }
  });

  // On the tiled kernels as an H100 gets them conv2's forward splits 9 ways: its pooling chain sums the partials.
  it("a pooling that sums its conv's forward partials: max or avg, with its dropout or plain (gpu tiles)", async () => {
    for (const [pool, tail, name, window] of [
      ['pool 2', 'dropout 0.25\n', 'sum+relu+maxpool+dropout', '2x2/2x2'],
      ['pool 2', '', 'sum+relu+maxpool', '2x2/2x2'],
      ['avgpool 3 same', '', 'sum+relu+avgpool', '3x3/3x3'],
    ] as const) {
      const block = `conv 32 3x3 same relu\n${pool}`;
      const src = `input 14x14x1\nconv 16 3x3 same relu\npool 2\n${block}\n${tail}dense 10 softmax`;
      const fused = await train(src, { fuse: true, steps: 3, tiles: true });
      const unfused = await train(src, { fuse: false, steps: 3, tiles: true });
      const chains = fused.forward.filter((l) => l.startsWith('chain.sum'));
      expect(chains, tail).toHaveLength(1);
      expect(chains[0], tail).toContain(` forward 8x32x7x7 ${window} `);
      expect(chains[0], tail).toMatch(/ (p=0\.25 )?\+ \d+ splits$/);
      expect(chains[0]?.split(' ')[0], tail).toBe(`chain.${name}`);
      expect(fused.forward.filter((l) => l.includes('8x16x7x7') && l.includes('reduce'))).toEqual([]);
      expect(unfused.forward.filter((l) => l.includes('8x16x7x7') && l.includes('reduce'))).toHaveLength(1);
      for (const [w, t] of unfused.weights) expect(fused.weights.get(w)?.data, `${w} ${tail}`).toEqual(t.data);
    }
  });

  // At batch 160 both dense layers' dW split K: their partials (bias sums in the last row) join the one pass.
  it('dense layers whose weight gradients the one pass sums (gpu tiles, batch 160)', async () => {
    const src = 'input 12x12x1\ndense 32 relu\ndense 10 softmax';
    const fused = await train(src, { fuse: true, steps: 2, tiles: true, batch: 160 });
    const unfused = await train(src, { fuse: false, steps: 2, tiles: true, batch: 160 });
    expect(fused.backward.filter((l) => l.startsWith('weight gradients reduce'))).toEqual([
      expect.stringMatching(/^weight gradients reduce: dense1 \d+, dense2 \d+ splits$/),
    ]);
    expect(fused.backward.filter((l) => l.includes('bias grad reduce'))).toEqual([]);
    expect(unfused.backward.filter((l) => l.includes('bias grad reduce'))).toHaveLength(2);
    for (const [w, t] of unfused.weights) expect(fused.weights.get(w)?.data, w).toEqual(t.data);
    const folded = await train(src, { fuse: true, steps: 2, tiles: true, batch: 160, fold: true });
    // …and the loss in dense2's GEMM (bands of 32 rows) leaves its totals to the update too: 160 / 32 = 5.
    expect(folded.update).toEqual([
      expect.stringMatching(/ \+ weight gradient sums: dense1 \d+, dense2 \d+ splits \+ loss totals 5$/),
    ]);
    for (const [w, t] of unfused.weights) expect(folded.weights.get(w)?.data, w).toEqual(t.data);
    // The loss sum and correct count are the loss pass's bits, whoever adds them.
    expect([...folded.totals], 'loss totals').toEqual([...unfused.totals]);
    expect([...fused.totals], 'loss totals').toEqual([...unfused.totals]);
  });

  // conv2 splits 9 ways again: the batchnorm after it sums the partials in its statistics pass, then
  // normalises, activates and pools in its own pass.
  it("a batchnorm that sums its conv's forward partials and pools in its pass (gpu tiles)", async () => {
    const block = 'conv 32 3x3 same bias=false\nbatchnorm\nrelu\npool 2';
    const src = `input 14x14x1\nconv 16 3x3 same relu\npool 2\n${block}\ndense 10 softmax`;
    const fused = await train(src, { fuse: true, steps: 3, tiles: true });
    const unfused = await train(src, { fuse: false, steps: 3, tiles: true });
    expect(fused.forward.filter((l) => l.startsWith('batchnorm'))).toEqual([
      expect.stringMatching(/^batchnorm stats 8x32x49 \+ relu \d+ slices \+ 9 splits$/),
      'batchnorm train 8x32x49 + relu + maxpool 2x2/2x2',
    ]);
    expect(fused.forward.filter((l) => l.includes('8x16x7x7') && l.includes('reduce'))).toEqual([]);
    expect(fused.forward.filter((l) => l.startsWith('pool.'))).toEqual([]);
    for (const [w, t] of unfused.weights) expect(fused.weights.get(w)?.data, w).toEqual(t.data);
  });

  // On the tiled kernels as an H100 gets them every conv's dW splits K: one pass at the end sums them all.
  it('weight gradients whose split-K sums one pass at the end adds up (gpu tiles)', async () => {
    const src = 'input 12x12x1\nconv 8 3x3 same relu\npool 2\nconv 16 3x3 same relu\ndense 10 softmax';
    const fused = await train(src, { fuse: true, steps: 3, tiles: true });
    const unfused = await train(src, { fuse: false, steps: 3, tiles: true });
    const reduce = fused.backward.filter((l) => l.startsWith('weight gradients reduce'));
    expect(reduce).toEqual([expect.stringMatching(/^weight gradients reduce: conv1 \d+, conv2 \d+ splits$/)]);
    expect(fused.backward.filter((l) => /conv2d backward weights .* reduce/.test(l))).toEqual([]);
    expect(unfused.backward.filter((l) => /conv2d backward weights .* reduce/.test(l))).toHaveLength(2);
    expect(fused.backward.at(-1), 'the last backward pass').toBe(reduce[0]);
    for (const [name, t] of unfused.weights) expect(fused.weights.get(name)?.data, name).toEqual(t.data);
    // The trainer's plans leave those sums to the update (foldGradSums): no pass of their own, the same weights.
    const folded = await train(src, { fuse: true, steps: 3, tiles: true, fold: true });
    expect(folded.backward.filter((l) => l.startsWith('weight gradients'))).toEqual([]);
    expect(folded.update).toEqual([expect.stringMatching(/ \+ weight gradient sums: conv1 \d+, conv2 \d+ splits$/)]);
    for (const [name, t] of unfused.weights) expect(folded.weights.get(name)?.data, name).toEqual(t.data);
  });

  // A layer's dX beside its dW, dense and conv, with the chains below in their stores and a dW moved up past its
  // dX's split-K reduce: the same weights as apart. The lane kernels do not pair (src/gpu/pair.ts): these are
  // the tiled kernels' plans, as an H100 gets them.
  // Batch 16: conv2's dX (32 in-channels: 8×8 tiles, two columns a thread) splits and pairs with its dW.
  it('GEMMs side by side (the tiled kernels), one dispatch each pair: reference.net at batch 16', async () => {
    const src = readFileSync('examples/reference.net', 'utf8');
    const o = { fuse: true, steps: 2, tiles: true, fold: true, batch: 16 };
    const paired = await train(src, { ...o, pair: true });
    const apart = await train(src, { ...o, pair: false });
    const pairs = paired.backward.filter((l) => l.includes(' ∥ '));
    expect(pairs).toEqual([
      expect.stringMatching(/^matmul 16x10x128 \+ dropout\+relu' p=0\.25 ∥ matmul 128x16x10 \+ bias grad/),
      expect.stringMatching(/^matmul 16x128x1152 \+ dropout\+maxunpool\+relu' .* ∥ matmul 1152x16x128 /),
      // conv2's dX and dW run by Winograd (src/ops/conv2d_winograd.ts), side by side.
      expect.stringMatching(
        /^conv2d backward input winograd 16x32x14x14 .* ∥ conv2d backward weights winograd 16x32x14x14 /,
      ),
    ]);
    const count = (r: typeof paired) => r.forward.length + r.backward.length;
    expect(count(paired)).toBe(count(apart) - pairs.length);
    for (const [name, t] of apart.weights) expect(paired.weights.get(name)?.data, name).toEqual(t.data);
  });

  it.each([
    ['reference.net, conv1 pooling and dropping out in its epilogue', readFileSync('examples/reference.net', 'utf8')],
    [
      'a plain first conv, then batchnorm',
      'input 10x10x1\nconv 6 3x3 same bias=false\nbatchnorm\nrelu\ndense 10 softmax',
    ],
    ['RGB, a valid 5x5 conv', 'input 9x9x3\nconv 6 5x5 relu\ndense 10 softmax'],
  ])("the batch gathered in the first conv's forward (gpu tiles): %s", async (_name, src) => {
    const fused = await train(src, { fuse: true, steps: 3, tiles: true, fold: true });
    const unfused = await train(src, { fuse: false, steps: 3, tiles: true });
    expect([fused.gathered, unfused.gathered]).toEqual([true, false]);
    expect(fused.forward[0]).toMatch(/^gather \+ conv2d forward 8x/);
    expect(fused.forward.filter((l) => l.startsWith('gather train'))).toEqual([]);
    expect(unfused.forward[0], "the plan's gather pass").toBe('gather train 8');
    for (const [name, t] of unfused.weights) expect(fused.weights.get(name)?.data, name).toEqual(t.data);
  });

  it('the gather keeps its pass where the first layer is no conv, on the lane kernels, and unfused', async () => {
    const dense = await train('input 6x6x1\ndense 12 relu\ndense 10 softmax', { fuse: true, steps: 1, tiles: true });
    const conv = 'input 8x8x1\nconv 4 3x3 same relu\ndense 10 softmax';
    const lanes = await train(conv, { fuse: true, steps: 1, lanes: true });
    const unfused = await train(conv, { fuse: false, steps: 1, tiles: true });
    for (const r of [dense, lanes, unfused]) {
      expect(r.gathered).toBe(false);
      expect(
        r.forward.filter((l) => l.includes('gather')),
        "the plan's first dispatch",
      ).toEqual(['gather train 8']);
      expect(r.forward[0]).toBe('gather train 8');
    }
  });

  it.each([
    ['the small model', 'input 8x8x1\nconv 4 3x3 same relu\npool 2\ndropout 0.1\ndense 10 softmax'],
    ['every chain form', CHAINS],
    ['a pooled tensor a residual add reads', RESIDUAL],
    ["batchnorm + activation (act' folded; a chain head; a residual add reading a batchnorm)", BN_ACT],
  ])('%s', async (_name, src) => {
    const fused = await train(src, { fuse: true, steps: 4 });
    const unfused = await train(src, { fuse: false, steps: 4 });
    expect(fused.fusions).toBeGreaterThan(0);
    expect(unfused.fusions).toBe(0);
    // The small model's conv pools and drops out in its own epilogue: that kernel is in the comparison;
    // so is bn2's pass with its leaky relu and pooling.
    if (_name === 'the small model')
      expect(fused.forward.filter((l) => l.includes(' + maxpool 2x2 + dropout p=0.1'))).toHaveLength(1);
    if (src === BN_ACT) {
      expect(fused.forward.filter((l) => l.endsWith(' + leaky(0.1) + maxpool 2x2/2x2'))).toHaveLength(1);
      expect(fused.forward.filter((l) => l.startsWith('pool.'))).toEqual([]);
    }
    for (const [name, t] of unfused.weights) expect(fused.weights.get(name)?.data, name).toEqual(t.data);
    // And training moved them: the comparison is not of initial values.
    const before = new ParamStore(gpu(), graphOf(src).params);
    before.initialise(5);
    const first = [...(await before.read()).values()][0]?.data;
    expect([...fused.weights.values()][0]?.data).not.toEqual(first);
    before.release();
  });

  // An add's backward passes its output's gradient on to both inputs as it is: no copy kernels; where an
  // input's gradient gets more (the block's input, read by the branch too) the sum is a new tensor, never the
  // shared one added into (its other reader reads it later), so the weights are the unfused plan's bit for bit.
  // An activation that alone reads an add runs in the add's pass (fuse-add.ts; column 4: how many), and where the
  // next block reads its output twice (its branch and its shortcut) the two gradients are added, and act' applied,
  // where the dX of the branch's first layer stores (junction.ts; column 5: how many such dX; so are a conv's or
  // dense layer's whose fused activation's output a block reads: the first layer's here). A block
  // ending in batch norm adds and activates in that batchnorm's pass instead (column 6), where the add is: its
  // projection shortcut runs after the batchnorm; one ending in a conv or dense layer, in that layer's store
  // (column 7), likewise where the add is, on every forward kernel: a split one's reduce pass adds it.
  it.each([
    [
      'an identity block, a projection block (gpu tiles: the direct kernels add in their store)',
      'input 8x8x1\nconv 4 3x3 same relu\nresidual { conv 4 3x3 same relu; conv 4 3x3 same }\nrelu\n' +
        'residual { conv 8 3x3 stride=2 same relu; conv 8 3x3 same }\nrelu\ndense 10 softmax',
      true,
      0,
      2,
      0,
      2,
    ],
    [
      'a bottleneck block ending in a 1×1 conv, a block whose last conv splits its sum (gpu tiles)',
      'input 8x8x1\nconv 8 3x3 same relu\nresidual { conv 4 1x1 relu; conv 4 3x3 same relu; conv 8 1x1 }\nrelu\n' +
        'residual { conv 64 3x3 stride=2 same relu; conv 64 3x3 same }\nrelu\ndense 10 softmax',
      true,
      0,
      2,
      0,
      2,
    ],
    [
      'an identity block, a projection block (lane kernels: each block adds in its last conv)',
      'input 8x8x1\nconv 4 3x3 same relu\nresidual { conv 4 3x3 same relu; conv 4 3x3 same }\nrelu\n' +
        'residual { conv 8 3x3 stride=2 same relu; conv 8 3x3 same }\nrelu\ndense 10 softmax',
      'lanes',
      0,
      2,
      0,
      2,
    ],
    [
      'an identity block on 28×28 (gpu tiles: Winograd adds in its store)',
      'input 28x28x1\nconv 8 3x3 same relu\nresidual { conv 8 3x3 same relu; conv 8 3x3 same }\nrelu\n' +
        'globalavgpool\ndense 10 softmax',
      true,
      0,
      1,
      0,
      1,
    ],
    [
      'batch-norm blocks',
      'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\n' +
        'residual { conv 4 3x3 same bias=false; batchnorm; relu; conv 4 3x3 same bias=false; batchnorm }\n' +
        'relu\nglobalavgpool\ndense 10 softmax',
      false,
      0,
      1,
      1,
      0,
    ],
    [
      "two batch-norm blocks: the second's first conv applies the first's batchnorm+add's relu' (and sums)",
      'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\n' +
        'residual { conv 4 3x3 same bias=false; batchnorm; relu; conv 4 3x3 same bias=false; batchnorm }\nrelu\n' +
        'residual { conv 4 3x3 same bias=false; batchnorm; relu; conv 4 3x3 same bias=false; batchnorm }\n' +
        'relu\nglobalavgpool\ndense 10 softmax',
      false,
      0,
      2,
      2,
      0,
    ],
    [
      'batch-norm blocks, a projection after the batchnorm that adds it, the statistics of split partials (gpu tiles)',
      'input 8x8x1\nconv 4 3x3 same bias=false\nbatchnorm\nrelu\n' +
        'residual { conv 16 3x3 stride=2 same bias=false; batchnorm; relu; conv 16 3x3 same bias=false; batchnorm }\n' +
        'relu\nglobalavgpool\ndense 10 softmax',
      true,
      0,
      1,
      1,
      0,
    ],
    [
      'nested residuals',
      'input 8x8x1\ndense 12\nresidual { residual { dense 12 relu }; dense 12; residual { dense 12 tanh } }\n' +
        'dense 10 softmax',
      false,
      0,
      2,
      0,
      0,
    ],
    [
      "nested residuals, a tanh read three times (two gradients summed by a pass, the third and tanh' in the dX)",
      'input 8x8x1\ndense 12 tanh\nresidual { residual { dense 12 relu }; dense 12 }\ndense 10 softmax',
      false,
      0,
      1,
      0,
      0,
    ],
    [
      "leaky relu after the add, heading a pooling chain (act' from its output there; lane kernels)",
      'input 8x8x1\nconv 4 3x3 same relu\nresidual { conv 4 3x3 same }\nleaky(0.2)\npool 2\ndropout 0.2\n' +
        'residual { conv 4 3x3 same }\ntanh\ndense 10 softmax',
      'lanes',
      0,
      2,
      0,
      2,
    ],
    [
      'blocks ending in a dense layer, one without a bias, one whose sum splits (gpu tiles)',
      'input 8x8x1\ndense 24 relu\nresidual { dense 24 relu; dense 24 bias=false }\nrelu\n' +
        'residual { dense 600 tanh; dense 24 }\ntanh\ndense 10 softmax',
      true,
      0,
      2,
      0,
      2,
    ],
    [
      'blocks ending in a dense layer (lane kernels)',
      'input 8x8x1\ndense 24 relu\nresidual { dense 24 relu; dense 24 }\nrelu\n' +
        'residual { dense 600 tanh; dense 24 }\ntanh\ndense 10 softmax',
      'lanes',
      0,
      2,
      0,
      2,
    ],
    [
      "a dense layer's tanh read by a block and its shortcut",
      'input 8x8x1\ndense 12 tanh\nresidual { dense 12 relu }\ndense 10 softmax',
      false,
      0,
      1,
      0,
      0,
    ],
  ] as const)('an add passes its gradient on without a copy: %s', async (_name, src, on, acts, sums, inBn, inConv) => {
    // tiles: an H100's tiles on this adapter; 'lanes': the lane kernels (on a GPU, four lanes).
    const [tiles, lanes] = [on === true, on === 'lanes'];
    const fused = await train(src, { fuse: true, steps: 3, tiles, lanes });
    const unfused = await train(src, { fuse: false, steps: 3, tiles, lanes });
    const copies = (r: typeof fused) => r.backward.filter((l) => l.startsWith('elementwise.copy')).length;
    expect(copies(unfused)).toBeGreaterThan(0);
    expect(copies(fused)).toBe(0);
    const addAct = (r: typeof fused) => r.forward.filter((l) => l.startsWith('elementwise.add+')).length;
    expect([addAct(fused), addAct(unfused)]).toEqual([acts, 0]);
    expect(fused.backward.filter((l) => l.startsWith('elementwise.act_backward_sum'))).toEqual([]);
    const inDx = fused.backward.filter((l) => / \+ sum(\+|$| split)/.test(l) && !l.includes(' reduce '));
    expect(inDx.filter((l) => !/^(conv2d backward input|matmul) /.test(l))).toEqual([]);
    expect(inDx.length).toBe(sums);
    // The stem's relu' is its batchnorm's own; the first block's, the add's: the dX applies it.
    if (_name.startsWith('two batch-norm')) expect(inDx.map((l) => l.endsWith("+ sum+relu'"))).toEqual([true, false]);
    if (_name.includes('read three times')) expect(inDx).toEqual([expect.stringMatching(/ \+ sum\+tanh'$/)]);
    expect(fused.forward.filter((l) => /^batchnorm train \S+ \+ add/.test(l)).length).toBe(inBn);
    const inStore = fused.forward.filter((l) => /^(conv2d forward|matmul) .* \+ add( reduce \d+ splits)?$/.test(l));
    expect(inStore.length).toBe(inConv);
    if (/splits its sum|sum splits/.test(_name)) expect(inStore.filter((l) => l.includes(' reduce '))).toHaveLength(1);
    // And on the kernels the case names.
    if (_name.includes('direct kernels')) expect(inStore.filter((l) => l.includes('winograd'))).toEqual([]);
    if (_name.includes('Winograd adds')) expect(inStore.every((l) => l.includes(' winograd '))).toBe(true);
    if (tiles && inBn > 0)
      expect(fused.forward.join()).toMatch(
        /batchnorm stats \S+ \+ relu \d+ slices \+ 9 splits,batchnorm train \S+ \+ add/,
      );
    for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
  });

  // A pooling chain (windows apart) run where the dX reading it stores: a conv's, and a dense layer's through
  // the flatten; max and average pooling, an uncovered row and column (7×7 pooled 2×2), with dropout and without.
  it.each([
    ['max', 'pool 2\ndropout 0.25', 'pool 2', 'maxunpool'],
    ['average', 'avgpool 2', 'avgpool 3\ndropout 0.2', 'avgunpool'],
  ])("pooling chains in a conv's and a dense layer's dX: %s", async (_name, first, second, unpool) => {
    const src = `input 14x14x1\nconv 8 3x3 same relu\n${first}\nconv 8 3x3 same tanh\n${second}\ndense 10 softmax`;
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 3, tiles });
      const unfused = await train(src, { fuse: false, steps: 3, tiles });
      const inDx = fused.backward.filter((l) => l.includes(`${unpool}+`) && !l.startsWith('chain.'));
      expect(
        inDx.map((l) => l.split(' ')[0]),
        `tiles ${tiles}`,
      ).toEqual(['matmul', 'conv2d']);
      expect(
        fused.backward.filter((l) => l.startsWith('chain.')),
        'no chain kernel',
      ).toEqual([]);
      for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
    }
  });

  // A global average pooling reading the chain: its backward runs the chain (the conv's relu', the max
  // unpooling, the dropoutᵀ) as it stores, and the weights are the unfused plan's bit for bit.
  it("a pooling chain in a global average pooling's backward (lanes and gpu tiles)", async () => {
    const src = 'input 14x14x1\nconv 8 3x3 same relu\npool 2\ndropout 0.25\nglobalavgpool\ndense 10 softmax';
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 3, tiles });
      const unfused = await train(src, { fuse: false, steps: 3, tiles });
      const inPool = fused.backward.filter((l) => l.startsWith('global_avg_pool.backward'));
      expect(inPool, `tiles ${tiles}`).toEqual(["global_avg_pool.backward 8x8x7x7 + dropout+maxunpool+relu' p=0.25"]);
      expect(
        fused.backward.filter((l) => l.startsWith('chain.')),
        'no chain kernel',
      ).toEqual([]);
      for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
    }
  });

  // A strided conv reading the chain: its dX runs stride phases (and on the tiles a split it sums itself,
  // not left for the chain), so the chain runs in its phases' stores or its reduce pass.
  it("a pooling chain in a strided conv's dX (lanes and gpu tiles)", async () => {
    const src =
      'input 16x16x1\nconv 8 3x3 same relu\npool 2\ndropout 0.2\nconv 32 3x3 stride=2 same relu\ndense 10 softmax';
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 3, tiles });
      const unfused = await train(src, { fuse: false, steps: 3, tiles });
      const inDx = fused.backward.filter((l) => l.startsWith('conv2d backward input') && l.includes('maxunpool+relu'));
      expect(inDx.length, `tiles ${tiles}: ${fused.backward.join(' | ')}`).toBeGreaterThan(0);
      expect(fused.backward.filter((l) => l.startsWith('chain.'))).toEqual([]);
      for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
    }
  });

  // The Keras tutorials' order, pooling → flatten → dropout: the chain goes on through the flatten, both ways.
  it.each([
    ['a pooling of its own', 'input 11x11x1\nconv 4 3x3 relu\npool 2\nflatten\ndropout 0.5\ndense 10 softmax'],
    [
      "the conv's epilogue pooling",
      'input 8x8x1\nconv 4 3x3 same relu\npool 2\nflatten\ndropout 0.3\ndense 10 softmax',
    ],
  ])('a flatten between a pooling and its dropout: %s', async (_name, src) => {
    const b = graphOf(src);
    expect(findFusions(b.graph, { training: true, logits: b.logits }).map(describeFusion)).toHaveLength(2);
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 3, tiles });
      const unfused = await train(src, { fuse: false, steps: 3, tiles });
      expect(fused.forward.filter((l) => l.startsWith('dropout'))).toEqual([]);
      expect(
        fused.backward.filter((l) => l.includes("dropout+maxunpool+relu' p=")).map((l) => l.split(' ')[0]),
      ).toEqual(['matmul']);
      for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
    }
  });

  // Each lower layer a dX epilogue may take the chain of: a standalone activation (act' from its input),
  // batchnorm + relu (from the fused output), a residual whose input the chain reads too (its gradient
  // added to the skip's), and two such pairs in a row.
  it.each([
    ['a standalone gelu, from its input', 'input 8x8x1\ndense 12\ngelu\ndropout 0.4\ndense 10 softmax'],
    ['batchnorm + relu', 'input 8x8x1\ndense 12 bias=false\nbatchnorm\nrelu\ndropout 0.4\ndense 10 softmax'],
    ['a residual', 'input 8x8x1\ndense 12\nresidual { relu; dropout 0.3; dense 12 }\ndense 10 softmax'],
    ['two in a row', 'input 8x8x1\ndense 16 relu\ndropout 0.3\ndense 12 tanh\ndropout 0.2\ndense 10 softmax'],
  ])("the chain below in a dense layer's dX: %s", async (name, src) => {
    const fused = await train(src, { fuse: true, steps: 3 });
    const unfused = await train(src, { fuse: false, steps: 3 });
    const inDx = fused.backward.filter((l) => /^matmul .* \+ dropout\+\S+' p=/.test(l));
    expect(inDx, 'dX epilogues').toHaveLength(name === 'two in a row' ? 2 : 1);
    expect(
      fused.backward.filter((l) => l.startsWith('chain.dropout')),
      'no chain kernel',
    ).toEqual([]);
    for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
  });

  // Chains of one elementary backward in the dX above (fuse.ts loneChainPays): a conv's relu' in a conv's, a
  // standalone gelu's (from its input) in a strided conv's, a conv's tanh' and a linear dense layer's dropoutᵀ in
  // dense layers', a dense layer's relu' in the next. None has a pass of its own.
  it("chains of one in the dX above: act' from the output or the input, a dropout (lanes and gpu tiles)", async () => {
    const src =
      'input 10x10x1\nconv 4 3x3 same relu\nconv 6 3x3 same\ngelu\nconv 8 3x3 stride=2 same tanh\n' +
      'dense 12\ndropout 0.3\ndense 12 relu\ndense 10 softmax';
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 3, tiles });
      const unfused = await train(src, { fuse: false, steps: 3, tiles });
      const own = (r: typeof fused) => r.backward.filter((l) => /^(elementwise\.act_backward|chain\.|dropout)/.test(l));
      expect(own(unfused).length, `tiles ${tiles}: the unfused passes`).toBe(5);
      expect(own(fused), `tiles ${tiles}: ${fused.backward.join(' | ')}`).toEqual([]);
      const inDx = fused.backward.filter((l) =>
        /^(matmul|conv2d backward input).* \+ (relu|gelu|tanh|dropout)/.test(l),
      );
      expect(inDx.length, `tiles ${tiles}: ${fused.backward.join(' | ')}`).toBe(5);
      for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
    }
  });

  // A pooling alone after a linear conv (max, then average) in the dX of the conv and the dense layer reading it:
  // its unpooling is the chain, the conv's dZ what it writes; the forward pools in a pass of its own.
  it('a pooling alone in the dX above (lanes and gpu tiles)', async () => {
    const src = 'input 8x8x1\nconv 4 3x3 same\npool 2\nconv 8 3x3 same\navgpool 2\ndense 10 softmax';
    for (const tiles of [false, true]) {
      const fused = await train(src, { fuse: true, steps: 3, tiles });
      const unfused = await train(src, { fuse: false, steps: 3, tiles });
      const inDx = fused.backward.filter((l) => /^(matmul|conv2d backward input).* \+ (max|avg)unpool/.test(l));
      expect(inDx.length, `tiles ${tiles}: ${fused.backward.join(' | ')}`).toBe(2);
      expect(fused.backward.filter((l) => /^(pool|chain)\./.test(l))).toEqual([]);
      expect(unfused.backward.filter((l) => l.startsWith('pool.')).length).toBe(2);
      for (const [n, t] of unfused.weights) expect(fused.weights.get(n)?.data, n).toEqual(t.data);
    }
  });

  // conv2's dX splits on an H100's tiles: the chain of conv1 sums its partials, the reduce pass dropped; so does a
  // chain of conv1's relu' alone (one pass for two).
  it.each([
    [
      'a pooling chain',
      'input 8x8x1\nconv 4 3x3 same relu\npool 2\ndropout 0.1\nconv 16 3x3 same relu\npool 2\ndense 10 softmax',
      /^chain\..* \+ \d+ splits$/,
    ],
    [
      "a relu' alone",
      'input 4x4x1\nconv 4 3x3 same relu\nconv 16 3x3 same relu\npool 2\ndense 10 softmax',
      /^chain\.relu' .* \+ \d+ splits$/,
    ],
  ])("a conv's split dX summed by the chain (gpu tiles): %s", async (_name, src, sums) => {
    const fused = await train(src, { fuse: true, steps: 3, tiles: true });
    const unfused = await train(src, { fuse: false, steps: 3, tiles: true });
    const input = (l: string[]) => l.filter((x) => x.startsWith('conv2d backward input 8x4x4x4'));
    expect(input(unfused.backward).join(), 'the unfused plan reduces dX').toMatch(/reduce \d+ splits/);
    expect(input(fused.backward), 'the split pass alone').toHaveLength(1);
    expect(
      fused.backward.filter((l) => sums.test(l)),
      fused.backward.join(' | '),
    ).toHaveLength(1);
    expect(fused.backward.filter((l) => l.startsWith('elementwise.act_backward'))).toEqual([]);
    for (const [name, t] of unfused.weights) expect(fused.weights.get(name)?.data, name).toEqual(t.data);
  });
});
