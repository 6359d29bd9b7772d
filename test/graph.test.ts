// The whole graph: GPU gradients of every parameter of small networks against finite differences
// of the float64 CPU reference network, and the planner's buffer reuse.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { refLoss, type Values } from './helpers/refnet.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { ParamStore } from '../src/model/params.ts';
import { plan } from '../src/graph/plan.ts';
import { rangeOf } from '../src/gpu/packed.ts';
import { numel } from '../src/graph/graph.ts';
import { Rng } from '../src/util/rng.ts';

const ODD_POOLED = 'input 7x7x1\nconv 16 3x3 same tanh\nconv 8 3x3 same tanh\npool 2\ndropout 0.25\ndense 10 softmax';
const NETS: [string, string, { covered?: boolean; tiled?: boolean }?][] = [
  ['conv relu, max pool, dense', 'input 6x6x1\nconv 3 3x3 same relu\npool 2\ndense 10 softmax'],
  [
    'strided valid conv, tanh, avg pool, two dense',
    'input 9x7x2\nconv 4 3x2 stride=2 valid tanh\navgpool 2 same\ndense 6 sigmoid\ndense 10 softmax',
  ],
  [
    'batch norm, leaky, global average pool',
    'input 5x5x2\nconv 4 3x3 same bias=false\nbatchnorm\nleaky(0.1)\nglobalavgpool\ndense 10 softmax',
  ],
  [
    'residual with projection, gelu, dropout',
    'input 6x6x1\nconv 2 3x3 same relu\nresidual {\n conv 3 3x3 stride=2 same relu\n conv 3 1x1 gelu\n}\n' +
      'relu\ndropout 0.3\nflatten\ndense 10 softmax',
  ],
  [
    'residual identity (fan-out), batch norm on dense',
    'input 4x4x1\nconv 2 3x3 same\nresidual { conv 2 3x3 same relu; conv 2 3x3 same }\n' +
      'dense 8\nbatchnorm\nrelu\ndense 10 softmax',
  ],
  // A 7×7 conv output whose pooling reads 6×6 of it (Conv2dAttrs.covered): its forward and dW over those
  // alone, on this adapter's kernels and by Winograd on the GPU tiles.
  ['odd conv output pooled, over what the pooling reads', ODD_POOLED, { covered: true }],
  ['odd conv output pooled, over what the pooling reads (GPU tiles)', ODD_POOLED, { covered: true, tiled: true }],
];

describe('whole-graph gradients (GPU backward vs finite differences of the CPU reference network)', () => {
  const gpu = useGpu();
  it.each(NETS)('%s', async (_name, source, o) => {
    const g = o?.tiled ? gpu().withTuning({ lanes: 0, gemmSide: 16, units: 2 }) : gpu();
    const ir = parseNet(source, 'test.net');
    const batch = 3;
    const built = buildGraph(ir, batch, { seed: 7 });
    const store = new ParamStore(g, built.params);
    store.initialise(11);
    const counter = g.alloc(16, 'counter');
    g.write(counter, new Uint32Array(4));
    const stats = g.alloc(16, 'stats');
    g.write(stats, new Uint32Array(4));
    const p = plan(g, built.graph, {
      training: true,
      logits: built.logits,
      labels: built.labels,
      persistent: store.buffers,
      counter,
      stats,
    });

    if (o?.covered) {
      const labels = [...p.forward, ...p.backward].map((d) => d.label);
      for (const pass of ['forward', 'backward weights'])
        expect(labels, pass).toContainEqual(expect.stringMatching(`conv2d ${pass} (winograd )?6x6 of 3x16x7x7`));
    }
    const rng = new Rng(3);
    const x = rng.floats(numel(built.x.shape), 0, 1);
    const labels = new Uint32Array(batch).map(() => rng.int(10));
    const xr = p.buffer(built.x),
      lr = p.buffer(built.labels);
    g.write('buffer' in xr ? xr.buffer : xr, Float32Array.from(x));
    g.write('buffer' in lr ? lr.buffer : lr, labels);
    const weights = await store.read();
    g.run([...p.forward, ...p.backward]);

    // Float64 values for every input and parameter tensor.
    const values: Values = new Map();
    values.set(built.x.id, x);
    for (const t of built.graph.tensors)
      if (t.name && weights.has(t.name)) values.set(t.id, Float64Array.from(weights.get(t.name)!.data));
    const loss = (): number => refLoss(built.graph, values, built.logits, labels, { counter: 0 });

    const tensors = built.graph.tensors.filter((t) => t.kind === 'param');
    expect(p.grads.size).toBe(tensors.length);
    for (const t of tensors) {
      // In the gradient buffer that mirrors the parameters' pack, at the parameter's offset.
      const grad = rangeOf(p.grads.get(t.name!)!);
      expect(grad.offset, `${t.name} gradient offset`).toBe(rangeOf(store.buffer(t.name!)).offset);
      const gpuGrad = await g.readF32(grad.buffer, numel(t.shape), grad.offset / 4);
      const v = values.get(t.id)!;
      const fd = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const keep = v[i]!;
        const h = 1e-5 * Math.max(1, Math.abs(keep));
        v[i] = keep + h;
        const up = loss();
        v[i] = keep - h;
        const down = loss();
        v[i] = keep;
        fd[i] = (up - down) / (2 * h);
      }
      expectAllclose(`d loss / d ${t.name}`, gpuGrad, fd, { atol: 5e-5, rtol: 5e-3 }, t.shape);
    }
    p.release();
    store.release();
    g.release(counter);
    g.release(stats);
    expect(g.liveBytes).toBe(0);
  });

  it('marks what of a conv its only reader, a pooling, reads (Conv2dAttrs.covered)', () => {
    const covered = (source: string): (readonly [number, number] | undefined)[] =>
      buildGraph(parseNet(source, 'm.net'), 2).graph.nodes.flatMap((n) => (n.op === 'conv2d' ? [n.attrs.covered] : []));
    // reference.net: 28×28 and 14×14 pooled whole; 7×7 pooled 2×2 reads 6×6.
    expect(covered(readFileSync('examples/reference.net', 'utf8'))).toEqual([undefined, undefined, [6, 6]]);
    // 3×3 windows of stride 2 on 8×9 (valid): 3×4 windows reading 7×9; an average pooling alike.
    expect(covered('input 8x9x1\nconv 4 3x3 same relu\npool 3 stride=2\ndense 10 softmax')).toEqual([[7, 9]]);
    expect(covered('input 7x7x1\nconv 4 3x3 same relu\navgpool 2\ndense 10 softmax')).toEqual([[6, 6]]);
    // Padded windows read every row; a conv a residual's add reads too; a pooling after its own activation.
    expect(covered('input 7x7x1\nconv 4 3x3 same relu\npool 2 same\ndense 10 softmax')).toEqual([undefined]);
    expect(covered('input 7x7x4\nresidual { conv 4 3x3 same relu }\npool 2\ndense 10 softmax')).toEqual([undefined]);
    expect(covered('input 7x7x1\nconv 4 3x3 same gelu\npool 2\ndense 10 softmax')).toEqual([undefined]);
  });

  it('reuses activation buffers by liveness', () => {
    const g = gpu();
    const ir = parseNet(
      'conv 8 3x3 same relu\nconv 8 3x3 same relu\nconv 8 3x3 same relu\npool 2\ndense 10 softmax',
      'm.net',
    );
    const built = buildGraph(ir, 16);
    const store = new ParamStore(g, built.params);
    const counter = g.alloc(16),
      stats = g.alloc(16);
    const p = plan(g, built.graph, {
      training: false,
      logits: built.logits,
      labels: built.labels,
      persistent: store.buffers,
      counter,
      stats,
    });
    const naive = built.graph.tensors.filter((t) => t.kind !== 'param').reduce((a, t) => a + numel(t.shape) * 4, 0);
    expect(p.plannedBytes).toBeLessThan(naive * 0.8);
    p.release();
    store.release();
    g.release(counter);
    g.release(stats);
    expect(g.liveBytes).toBe(0);
  });
});
