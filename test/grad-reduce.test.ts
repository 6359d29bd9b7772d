// The deferred weight-gradient reduction (shaders/grad_reduce.wgsl, src/ops/grad-reduce.ts): against its
// CPU reference bit for bit (the kernel's order of summation in f32) and a float64 sum, and against what
// each weight-gradient GEMM's own reduce pass writes, bit for bit: a conv's dW and db (sums in the last
// column), a dense layer's dW and db (sums in the last row) and a dense layer's dW alone.
import { describe, expect, it } from 'vitest';
import { expectSameBits } from './helpers/bits.ts';
import { f32, useGemmVariant, useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { conv2dBackwardWeights, weightPartsLayout, type Conv2dShape } from '../src/ops/conv2d.ts';
import { reduceGradients, splitLength, type GradSegment, type SplitLayout } from '../src/ops/grad-reduce.ts';
import { reduceGradientsRef } from '../src/ops/grad-reduce.ref.ts';
import { matmul, matmulPlan } from '../src/ops/matmul.ts';
import { DENSE } from '../src/ops/dense.ts';
import { Rng } from '../src/util/rng.ts';
import { readFileSync } from 'node:fs';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { deferWeights } from '../src/graph/deferred.ts';
import { dryGpu } from '../src/gpu/dry.ts';
import { installGlobals } from '../src/node/gpu.ts';
import type { BufferRef } from '../src/gpu/runtime.ts';

/** Runs reduceGradients over `parts` into a gradient buffer of `length` floats filled with a sentinel. */
async function reduceOnGpu(g: Gpu, parts: Float32Array, segments: GradSegment[], length: number) {
  const sentinel = new Float32Array(length).fill(-7);
  const [p, grads] = [g.upload(parts), g.upload(sentinel)];
  const ds = reduceGradients(g, { parts: p, grads }, segments);
  g.run(ds);
  const out = await g.readF32(grads);
  g.free(ds);
  for (const b of [p, grads]) g.release(b);
  return { out, sentinel, dispatches: ds.length };
}

/** Segments of the given layouts, their partials one after another (from 3) and their outputs apart. */
function segmentsOf(layouts: SplitLayout[]): { segments: GradSegment[]; parts: number; grads: number } {
  let [parts, grads] = [3, 5];
  const segments = layouts.map((layout, i) => {
    const outputs = layout.rows * layout.cols;
    const s = { layout, parts, dw: grads, db: grads + outputs + 2, label: `layer${i}` };
    parts += splitLength(layout) + 1;
    grads += 2 * outputs + 4;
    return s;
  });
  return { segments, parts, grads };
}

describe('weight gradients reduce (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const layouts: SplitLayout[] = [
    { splits: 2, rows: 5, cols: 10, sums: 'column' },
    { splits: 523, rows: 32, cols: 10, sums: 'column' },
    { splits: 79, rows: 9, cols: 7, sums: 'row' },
    { splits: 17, rows: 300, cols: 3, sums: 'none' },
    { splits: 300, rows: 3, cols: 4, sums: 'row' },
  ];

  it('every sums layout and thread count (1 to 64 threads an output), bit for bit', async () => {
    const { segments, parts, grads } = segmentsOf(layouts);
    const data = f32(new Rng(3).floats(parts, -1, 1));
    const { out, sentinel, dispatches } = await reduceOnGpu(gpu(), data, segments, grads);
    expect(dispatches).toBe(1);
    const ref = reduceGradientsRef(data, segments, sentinel);
    expectSameBits('the reduced gradients', out, ref);
    expect(ref.filter((v) => v === -7).length, 'the gaps between outputs untouched').toBeGreaterThan(0);
    // And the reference order is a sum: against float64.
    for (const s of segments) {
      const { splits, rows, cols } = s.layout;
      const len = rows * cols;
      const sum = Array.from({ length: len }, (_, i) => {
        let t = 0;
        for (let z = 0; z < splits; z++) t += data[s.parts + z * len + i]!;
        return t;
      });
      const mine = Array.from({ length: len }, (_, i) => {
        const [row, col] = [Math.floor(i / cols), i % cols];
        if (s.layout.sums === 'column')
          return col === cols - 1 ? out[s.db + row]! : out[s.dw + row * (cols - 1) + col]!;
        if (s.layout.sums === 'row' && row === rows - 1) return out[s.db + col]!;
        return out[s.dw + i]!;
      });
      expectAllclose(`segment ${s.label}`, f32(mine), sum, { atol: 1e-4, rtol: 1e-4 });
    }
  });

  it('more segments than one dispatch holds (32): two dispatches, the same sums', async () => {
    const many = Array.from({ length: 35 }, (_, i): SplitLayout => ({ ...layouts[i % 3]!, splits: 2 + 3 * i }));
    const { segments, parts, grads } = segmentsOf(many);
    const data = f32(new Rng(4).floats(parts, -1, 1));
    const { out, sentinel, dispatches } = await reduceOnGpu(gpu(), data, segments, grads);
    expect(dispatches).toBe(2);
    expectSameBits('the reduced gradients', out, reduceGradientsRef(data, segments, sentinel));
  });

  it('refuses a segment that does not split', () => {
    const one = segmentsOf([{ splits: 1, rows: 2, cols: 2, sums: 'none' }]).segments;
    expect(() => reduceGradients(gpu(), { parts: gpu().dummy, grads: gpu().dummy2 }, one)).toThrow(
      'layer0: a deferred reduction needs at least 2 splits',
    );
  });
});

describe("the deferred reduction writes what each weight gradient's own reduce pass writes, bit for bit", () => {
  const gpu = useGpu();
  const tiles = (): Gpu => useGemmVariant(gpu(), 'gpu tiles', () => undefined);

  /** Runs `summed` (the GEMM and its reduce) and `unsummed` (the split pass) then reduceGradients; both outputs. */
  async function both(
    g: Gpu,
    layout: SplitLayout,
    o: { dw: number; db: number },
    run: (io: { dw: GPUBuffer; db: GPUBuffer; parts: GPUBuffer }, unsummed: boolean) => ReturnType<Gpu['kernel']>[],
  ) {
    const length = o.dw + o.db;
    const grads = g.upload(new Float32Array(length).fill(-7));
    const [dw, db] = [g.upload(new Float32Array(o.dw).fill(-7)), g.upload(new Float32Array(Math.max(1, o.db)))];
    const parts = g.upload(new Float32Array(splitLength(layout)));
    const summed = run({ dw, db, parts }, false);
    g.run(summed);
    const own = [await g.readF32(dw), await g.readF32(db, o.db)];
    const split = run({ dw, db, parts }, true);
    const segment = { layout, parts: 0, dw: 0, db: o.dw, label: 'layer' };
    const reduce = reduceGradients(g, { parts, grads }, [segment]);
    g.run([...split, ...reduce]);
    const all = await g.readF32(grads);
    g.free([...summed, ...split, ...reduce]);
    for (const b of [grads, dw, db, parts]) g.release(b);
    return { own, deferred: [all.slice(0, o.dw), all.slice(o.dw, length)], split };
  }

  it("a conv's dW and db (the reference network's conv2 at batch 2)", async () => {
    const g = tiles();
    const s: Conv2dShape = { n: 2, c: 32, h: 14, w: 14, k: 64, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
    const layout = weightPartsLayout(g, s, { bias: true });
    if (!layout) throw new Error('conv2 at batch 2 should split on the GPU tiles');
    const rng = new Rng(5);
    const dy = g.upload(f32(rng.floats(s.n * s.k * s.h * s.w, -1, 1)));
    const x = g.upload(f32(rng.floats(s.n * s.c * s.h * s.w, -1, 1)));
    const r = await both(g, layout, { dw: s.k * s.c * 9, db: s.k }, (io, unsummed) =>
      conv2dBackwardWeights(g, { dy, x, ...io }, s, { unsummed }),
    );
    expect(r.split).toHaveLength(1);
    expectSameBits('dW', r.deferred[0]!, r.own[0]!);
    expectSameBits('db', r.deferred[1]!, r.own[1]!);
    for (const b of [dy, x]) g.release(b);
  });

  it.each([
    ['with its bias gradient', true],
    ['alone', false],
  ])("a dense layer's dW %s (1152 features, 128 units, batch 256)", async (_name, bias) => {
    const g = tiles();
    const [n, f, u] = [256, 1152, 128];
    const shape = { m: f, k: n, n: u, transA: true };
    const p = matmulPlan(g, shape, { dbias: bias });
    if (p.splits < 2) throw new Error('the dense dW should split on the GPU tiles');
    const layout = DENSE.weightParts?.([[n, f], [f, u], [u]], { act: { kind: 'linear' } }, g, bias);
    if (!layout) throw new Error('DENSE.weightParts should give the split layout');
    expect(layout).toEqual({ splits: p.splits, rows: f + (bias ? 1 : 0), cols: u, sums: bias ? 'row' : 'none' });
    const rng = new Rng(6);
    const [x, dz] = [g.upload(f32(rng.floats(n * f, -1, 1))), g.upload(f32(rng.floats(n * u, -1, 1)))];
    const r = await both(g, layout, { dw: f * u, db: bias ? u : 0 }, (io, unsummed) =>
      matmul(g, { a: x, b: dz, c: io.dw, dbias: bias ? io.db : undefined, parts: io.parts }, shape, { unsummed }),
    );
    expectSameBits('dW', r.deferred[0]!, r.own[0]!);
    expectSameBits('db', r.deferred[1]!, r.own[1]!);
    for (const b of [x, dz]) g.release(b);
  });
});

describe('which layers defer their weight-gradient reduction (src/graph/deferred.ts, an H100 stand-in)', () => {
  const gpu = (): Gpu => {
    installGlobals();
    return dryGpu({ units: 132 });
  };
  const built = () => buildGraph(parseNet(readFileSync('examples/reference.net', 'utf8'), 'reference.net'), 64);
  /** Every parameter a range of one pack, or (`apart`) those named in its own buffer. */
  function places(b: ReturnType<typeof built>, apart: string[] = []): Map<string, BufferRef> {
    const [pack, own] = [{ size: 1 << 24 } as GPUBuffer, { size: 1 << 24 } as GPUBuffer];
    const names = b.graph.tensors.flatMap((t) => (t.kind === 'param' ? [t.name] : []));
    return new Map(names.map((name, i) => [name, { buffer: apart.includes(name) ? own : pack, offset: 256 * i }]));
  }
  const layers = (d: ReturnType<typeof deferWeights>, b: ReturnType<typeof built>) =>
    b.graph.nodes.flatMap((n) => {
      const layout = d.of(n)?.layout;
      return layout ? [`${n.layer} ${layout.sums}`] : [];
    });

  it('the convs whose dW splits, their bias sums in the last column; dense1 does not split at 64', () => {
    const b = built();
    const d = deferWeights(gpu(), b.graph, { persistent: places(b), wants: () => true });
    expect(layers(d, b)).toEqual(['conv1 column', 'conv2 column', 'conv3 column']);
    expect(d.parts?.shape[0]).toBeGreaterThan(0);
  });

  it('a frozen bias leaves its sums out; a frozen weight, or a bias in another buffer, keeps the layer out', () => {
    const b = built();
    const names = (layer: string) => b.graph.nodes.find((n) => n.layer === layer)?.inputs.map((t) => t.name) ?? [];
    const [, w1, b1] = names('conv1');
    const [, w2] = names('conv2');
    const [, , b3] = names('conv3');
    const frozen = new Set([b1, w2]);
    const d = deferWeights(gpu(), b.graph, {
      persistent: places(b, [b3 ?? '']),
      wants: (t) => t.kind !== 'param' || !frozen.has(t.name),
    });
    expect(w1).toBeDefined();
    expect(layers(d, b)).toEqual(['conv1 none']);
  });

  it('nothing where nothing is trainable, and no pass when no deferred layer was made', () => {
    const b = built();
    const none = deferWeights(gpu(), b.graph, { persistent: places(b), wants: () => false });
    expect(none.parts).toBeNull();
    expect(none.step(gpu())).toBeNull();
    const unmade = deferWeights(gpu(), b.graph, { persistent: places(b), wants: () => true });
    expect(unmade.step(gpu()), 'no layer recorded its gradients').toBeNull();
  });
});
