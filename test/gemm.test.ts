// The tiled GEMM kernels' tile and split-K rule (src/ops/gemm.ts), and the graph ops built on them:
// the dense and conv2d layers forward and backward on the tiles and splits an H100 gets, against
// the float64 references (the fused activation's gradient, dX and dW sharing one partial-sums
// buffer, the bias gradient inside dW; the forward split as the planner will give it scratch).
import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import type { BufferRef, Gpu } from '../src/gpu/runtime.ts';
import { chooseGemm, gemmConstants, planWork, splitK, threadsOf, type GemmNeeds } from '../src/ops/gemm.ts';
import { BK } from '../src/gpu/work.ts';
import { DENSE } from '../src/ops/dense.ts';
import { CONV2D, type Conv2dAttrs } from '../src/ops/conv2d_op.ts';
import { conv2dBackwardInputRef, conv2dBackwardWeightsRef, conv2dRef } from '../src/ops/conv2d.ref.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import type { BackwardIO, KernelOp, Shapes } from '../src/ops/op.ts';
import { Rng } from '../src/util/rng.ts';

/** What chooseGemm reads of a Gpu. */
const tuned = (gemmSide: 8 | 16, units: number): Gpu => ({ gemmSide, units, lanes: 0 }) as unknown as Gpu;
const h100 = tuned(16, 132);

// The GEMMs of the reference network's training step at batch 64 and 256 (rows, cols, inner, needs).
const conv = { columnRuns: true };
const NETWORK: [string, Omit<GemmNeeds, 'split'>][] = [64, 256].flatMap((n): [string, Omit<GemmNeeds, 'split'>][] => [
  [`conv1 forward N${n}`, { rows: 32, cols: n * 784, inner: 9, ...conv }],
  [`conv2 forward N${n}`, { rows: 64, cols: n * 196, inner: 288, ...conv }],
  [`conv3 forward N${n}`, { rows: 128, cols: n * 49, inner: 576, ...conv }],
  [`conv2 dX N${n}`, { rows: 32, cols: n * 196, inner: 576, ...conv }],
  [`conv3 dX N${n}`, { rows: 64, cols: n * 49, inner: 1152, ...conv }],
  [`conv1 dW N${n}`, { rows: 32, cols: 9, inner: n * 784, sums: 1, columnTable: true }],
  [`conv2 dW N${n}`, { rows: 64, cols: 288, inner: n * 196, sums: 1, columnTable: true }],
  [`conv3 dW N${n}`, { rows: 128, cols: 576, inner: n * 49, sums: 1, columnTable: true }],
  [`dense1 forward N${n}`, { rows: n, cols: 128, inner: 1152 }],
  [`dense1 dX N${n}`, { rows: n, cols: 1152, inner: 128 }],
  [`dense1 dW N${n}`, { rows: 1152, cols: 128, inner: n, sums: 2 }],
]);

describe('the tile and split-K rule (src/ops/gemm.ts)', () => {
  it('matmul 4096³ on an H100: 128×128 tiles of 16×16 threads, 8×8 each, unchecked, not split', () => {
    const p = chooseGemm(h100, { rows: 4096, cols: 4096, inner: 4096, split: true });
    expect(p).toMatchObject({ tile: { bm: 128, bn: 128, rb: 2, cb: 2 }, threads: 256, splits: 1, checked: false });
  });

  it.each(NETWORK)('%s: fills an H100 (2 workgroups per SM, K permitting) in loops of ≤ 64 K-steps', (_name, need) => {
    const p = chooseGemm(h100, { ...need, split: true });
    const t = p.tile;
    const workgroups = p.rowTiles * p.colTiles * p.splits;
    // A K of 8 steps or fewer is not split: then as many tiles as a warp of 4×4 blocks each allows.
    const most = Math.ceil(need.inner / BK) > 8 ? 2 * 132 : Math.min(2 * 132, (need.rows * need.cols) / 512);
    expect(workgroups).toBeGreaterThanOrEqual(most);
    expect(Math.ceil(p.chunk / BK)).toBeLessThanOrEqual(64);
    // What the kernels assume of a tile.
    expect(p.threads).toBe(threadsOf(t));
    expect(p.threads).toBeLessThanOrEqual(256);
    expect((BK * t.bm) / p.threads).toBeLessThanOrEqual(32);
    expect((BK * t.bn) / p.threads).toBeLessThanOrEqual(32);
    // A conv gather's thread fetches one column, or two (lib/gemm.wgsl fetch order 2).
    if (need.columnRuns) expect(p.threads % t.bn === 0 || t.bn === 2 * p.threads).toBe(true);
    if (need.sums === 1) expect(p.threads).toBeGreaterThanOrEqual(t.bm);
    if (need.sums === 2) expect(p.threads).toBeGreaterThanOrEqual(t.bn);
    expect(p.checked).toBe(need.rows % t.bm !== 0 || need.cols % t.bn !== 0 || need.inner % BK !== 0);
  });

  it("an inner dimension under one step (conv1's 9 taps) multiplies only its own (GEMM_KK); its work says so", () => {
    const cols = 64 * 784;
    const narrow = chooseGemm(h100, { rows: 32, cols, inner: 9, columnRuns: true, split: true });
    const deep = chooseGemm(h100, { rows: 64, cols: 64 * 196, inner: 288, columnRuns: true, split: true });
    expect([narrow.stepK, deep.stepK]).toEqual([9, BK]);
    expect(gemmConstants(narrow, { a: 0, b: 2 }).GEMM_KK).toBe(9);
    expect(gemmConstants(deep, { a: 0, b: 2 })).not.toHaveProperty('GEMM_KK');
    const tiles = narrow.rowTiles * narrow.colTiles;
    const w = planWork(narrow, { rows: 32, cols, inner: 9, tiles, bytesRead: 0, bytesWritten: 0 });
    const { bm, bn, rb, cb } = narrow.tile;
    expect(w.paddedFlops).toBe(2 * tiles * bm * bn * 9);
    expect(w.shape).toMatchObject({ kind: 'gemm', tileK: 9, kSteps: 1, sharedLoads: 9 * 4 * (rb + cb) });
  });

  it('without a partial-sums buffer nothing splits; a CPU adapter gets 8×8 threads at most', () => {
    const p = chooseGemm(h100, { rows: 64, cols: 128, inner: 1152, split: false });
    expect(p.splits).toBe(1);
    const cpu = chooseGemm(tuned(8, 8), { rows: 4096, cols: 4096, inner: 4096, split: true });
    expect(cpu.threads).toBeLessThanOrEqual(64);
    expect(cpu.tile).toEqual({ bm: 64, bn: 64, rb: 2, cb: 2 });
  });

  it("conv3's dX at batch 256 on an H100 (98 tiles, 72 K-steps): 4 splits of 18 steps, not 23, 23, 23 and 3", () => {
    expect(splitK(98, 1152, { target: 264, units: 132, allowed: true, outputs: 802816 })).toEqual({
      splits: 4,
      chunk: 18 * BK,
    });
  });

  it.each([
    [50176, 1, 264, 288],
    [1152, 4, 264, 8192],
    [12544, 5, 264, 18432],
    [135, 1, 264, 100],
    [1 << 20, 1, 16, 64],
    [1152, 98, 264, 802816],
  ])(
    'splitK(%i inner, %i tiles, target %i): whole, even steps covering K once, bounded',
    (inner, tiles, target, outputs) => {
      const { splits, chunk } = splitK(tiles, inner, { target, units: target / 2, allowed: true, outputs });
      expect(chunk % BK).toBe(0);
      expect(splits * chunk).toBeGreaterThanOrEqual(inner);
      expect((splits - 1) * chunk).toBeLessThan(inner);
      // Even: no split's loop longer than the split count needs (the longest sets the pass's time).
      expect(chunk / BK).toBe(Math.ceil(Math.ceil(inner / BK) / splits));
      expect(splits).toBeLessThanOrEqual(1024);
      expect(splits * outputs).toBeLessThanOrEqual(Math.max(outputs, 1 << 22));
      if (splits > 1) expect(tiles * splits >= target || chunk === BK || splits === 1024).toBe(true);
    },
  );
});

/** A graph op's forward and backward on `g`, its scratch allocated as the planner would (forward's too). */
async function runOp<A>(
  g: Gpu,
  op: KernelOp<A>,
  attrs: A,
  shapes: { ins: Shapes; out: number[] },
  v: { ins: Float64Array[]; dOut: Float64Array },
): Promise<{ y: Float32Array; grads: Float32Array[]; labels: string[] }> {
  const bufs: GPUBuffer[] = [];
  const up = (a: Float64Array | number[]): GPUBuffer => {
    const q = g.upload(f32(a));
    bufs.push(q);
    return q;
  };
  const scratch = (list: number[][] | undefined): BufferRef[] =>
    (list ?? []).map((s) => up(new Array<number>(s.reduce((a, b) => a * b, 1)).fill(NaN)));
  const count = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
  const out = up(new Array<number>(count(shapes.out)).fill(NaN));
  const inputs = v.ins.map(up);
  const io = { inputs, inShapes: shapes.ins, out, outShape: shapes.out, saved: [], state: [], training: true };
  const fixed = { ...io, counter: g.dummy, stats: g.dummy };
  const fwd = op.forward(
    g,
    { ...fixed, scratch: scratch(op.forwardScratch?.(shapes.ins, shapes.out, attrs, g)) },
    attrs,
  );
  const dIn = shapes.ins.map((s) => up(new Array<number>(count(s)).fill(NaN)));
  const bwdIo: BackwardIO = {
    ...fixed,
    dOut: up(v.dOut),
    dIn,
    scratch: scratch(op.scratch?.(shapes.ins, shapes.out, attrs, g)),
  };
  const bwd = op.backward(g, bwdIo, attrs);
  g.run([...fwd, ...bwd]);
  const y = await g.readF32(out);
  const grads = await Promise.all(dIn.map((q) => g.readF32(q)));
  const labels = [...fwd, ...bwd].map((d) => d.label);
  g.free([...fwd, ...bwd]);
  for (const q of bufs) g.release(q);
  return { y, grads, labels };
}

const relu = (v: Float64Array): Float64Array => v.map((x) => Math.max(0, x));
/** dZ = dY · relu'(Y). */
const reluGrad = (dy: Float64Array, y: Float64Array): Float64Array => dy.map((d, i) => (y[i]! > 0 ? d : 0));

describe('dense and conv2d layers on the tiles and splits an H100 gets (graph ops vs references)', () => {
  const gpu = useGpu();
  const tol = (terms: number) => ({ atol: 1e-5 + 1e-7 * terms, rtol: 1e-4 });

  it('dense 1152→128 relu at batch 64: split-K forward (dX and dW fill the device whole), db from dW', async () => {
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined);
    const [n, f, u] = [64, 1152, 128];
    const rng = new Rng(9);
    const [x, w, b, dy] = [rng.floats(n * f), rng.floats(f * u, -0.1, 0.1), rng.floats(u), rng.floats(n * u)];
    const shapes = { ins: [[n, f], [f, u], [u]], out: [n, u] };
    const { y, grads, labels } = await runOp(g, DENSE, { act: { kind: 'relu' } }, shapes, { ins: [x, w, b], dOut: dy });
    // The passes the name says: the forward split (and its reduce), dX and dW whole, db in dW's pass.
    expect(labels).toEqual([
      'matmul 64x1152x128 split 72',
      'matmul 64x1152x128 reduce 72 splits',
      'elementwise.act_backward relu from output 8192',
      'matmul 64x128x1152',
      'matmul 1152x64x128 + bias grad',
    ]);
    const yRef = relu(matmulRef(x, w, b, { m: n, k: f, n: u }));
    expectAllclose('dense y', y, yRef, tol(f), [n, u]);
    const dz = reluGrad(dy, yRef);
    expectAllclose('dense dX', grads[0]!, matmulRef(dz, w, null, { m: n, k: u, n: f, transB: true }), tol(u), [n, f]);
    expectAllclose('dense dW', grads[1]!, matmulRef(x, dz, null, { m: f, k: n, n: u, transA: true }), tol(n), [f, u]);
    const db = matmulRef(new Float64Array(n).fill(1), dz, null, { m: 1, k: n, n: u });
    expectAllclose('dense db', grads[2]!, db, tol(n), [u]);
  });

  it('conv 32→64 3×3 same relu, 14×14 at batch 2: every pass split, db inside dW', async () => {
    const g = useGemmVariant(gpu(), 'gpu tiles', () => undefined);
    const a: Conv2dAttrs = { kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same', act: { kind: 'relu' } };
    const s = { n: 2, c: 32, h: 14, w: 14, k: 64, ...a };
    const rng = new Rng(10);
    const [x, w, b] = [rng.floats(2 * 32 * 196), rng.floats(64 * 32 * 9, -0.2, 0.2), rng.floats(64)];
    const dy = rng.floats(2 * 64 * 196);
    const shapes = { ins: [[2, 32, 14, 14], [64, 32, 3, 3], [64]], out: [2, 64, 14, 14] };
    const { y, grads, labels } = await runOp(g, CONV2D, a, shapes, { ins: [x, w, b], dOut: dy });
    // Every pass split and reduced (dW by Winograd, db in it): two dispatches each, and the relu' pass.
    const passes = ['forward', 'backward input', 'backward weights winograd'];
    for (const pass of passes)
      expect(
        labels.filter((l) => l.startsWith(`conv2d ${pass} `)),
        pass,
      ).toHaveLength(2);
    expect(labels.filter((l) => / split \d+$/.test(l))).toHaveLength(3);
    expect(labels.filter((l) => / reduce \d+ splits$/.test(l))).toHaveLength(3);
    expect(labels.filter((l) => l.includes('+ bias grad'))).toHaveLength(2);
    const yRef = relu(conv2dRef(x, w, b, s));
    expectAllclose('conv y', y, yRef, tol(288), shapes.out);
    const dz = reluGrad(dy, yRef);
    expectAllclose('conv dX', grads[0]!, conv2dBackwardInputRef(dz, w, s), tol(576), shapes.ins[0]);
    const ref = conv2dBackwardWeightsRef(dz, x, s);
    expectAllclose('conv dW', grads[1]!, ref.dw, tol(392), shapes.ins[1]);
    expectAllclose('conv db', grads[2]!, ref.db, tol(392), [64]);
  });
});
