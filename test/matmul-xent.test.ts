// The logits' GEMM with the softmax-xent loss in its epilogue (shaders/matmul_xent.wgsl, src/ops/matmul.ts
// matmulXent) against the unfused kernels one after another (matmul, then the loss pass of
// shaders/softmax_xent.wgsl and its totals), bit for bit: logits, dlogits, the loss and correct-count totals
// and the counter's snapshot; and against the CPU references (matmul, softmax-xent). One workgroup adds the
// totals itself; bands of rows leave partials, which the totals pass adds. On the tiled kernels, the only
// family that has it.
import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { matmul, matmulXent } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import { softmaxXent, xentTotal } from '../src/ops/softmax_xent.ts';
import { softmaxXentRef } from '../src/ops/softmax_xent.ref.ts';
import { Rng } from '../src/util/rng.ts';

describe('matmul + softmax-xent in one dispatch (GPU tiles vs the unfused kernels and CPU references)', () => {
  const gpu = useGpu();
  const tiles = (): Gpu => useGemmVariant(gpu(), 'gpu tiles', () => undefined);

  it.each([
    ['the reference network at batch 64: 64x128 by 128x10, bias', 64, 128, 10, true, 0],
    ['batch 8, 12 classes, no bias, label smoothing 0.1', 8, 40, 12, false, 0.1],
    ['evaluation: no dlogits', 33, 20, 10, true, 0],
    // Bands of 32-row groups, one workgroup each, leaving each group's partial totals.
    ['bands: 128 rows (two), 100 classes, smoothing 0.2', 128, 96, 100, true, 0.2],
    ['bands: the reference network at batch 256', 256, 128, 10, true, 0],
    ['bands: 300 rows (a short last group), smoothing 0.1', 300, 72, 10, true, 0.1],
    ['bands: 200 rows, 100 classes, no bias', 200, 40, 100, false, 0],
    ['bands, evaluation: no dlogits', 130, 20, 10, true, 0],
    // A row of at most 16 classes is held in registers, a wider one walked in memory (lib/xent.wgsl).
    ['16 classes (the most held), smoothing 0.1', 40, 24, 16, true, 0.1],
    ['17 classes (walked), smoothing 0.1', 40, 24, 17, true, 0.1],
  ])('%s', async (name, n, f, classes, withBias, smoothing) => {
    const g = tiles();
    const grad = !name.startsWith('evaluation');
    const rng = new Rng(n + classes);
    const [x, w, b] = [rng.floats(n * f, -1, 1), rng.floats(f * classes, -0.3, 0.3), rng.floats(classes, -0.2, 0.2)];
    const labels = Uint32Array.from({ length: n }, () => rng.int(classes));
    const up = (a: Float64Array): GPUBuffer => g.upload(f32(a));
    const [xb, wb, bb, lb] = [up(x), up(w), up(b), g.upload(labels)];
    const make = () => ({
      c: g.upload(new Float32Array(n * classes).fill(Number.NaN)),
      dlogits: g.upload(new Float32Array(n * classes).fill(Number.NaN)),
      stats: g.upload(new Uint32Array([0x3f800000, 5])),
      counter: g.upload(new Uint32Array([7, 0])),
      loss: g.alloc(n * 4),
      partials: g.upload(new Uint32Array(2 * Math.ceil(n / 32)).fill(0xffffffff)),
    });
    const [a, o] = [make(), make()];
    const bias = withBias ? bb : undefined;
    const x2 = { smoothing, scale: 1 / n };
    const fused = matmulXent(
      g,
      {
        a: xb,
        b: wb,
        bias,
        c: a.c,
        labels: lb,
        dlogits: grad ? a.dlogits : undefined,
        stats: a.stats,
        counter: a.counter,
        partials: a.partials,
      },
      { m: n, k: f, n: classes },
      x2,
    );
    const bands = fused[0]?.workgroups[1] ?? 0;
    expect(fused.map((d) => d.workgroups)).toEqual([[1, Math.ceil(n / 32), 1]]);
    // Bands leave a pair a 32 rows (the loss pass's layout for more than 256), added by the totals pass.
    const totals = bands > 1 ? xentTotal(g, { partials: a.partials, groups: Math.ceil(n / 32), stats: a.stats }) : [];
    expect(fused[0]?.label.endsWith('+ totals')).toBe(bands === 1);
    const unfused = [
      ...matmul(g, { a: xb, b: wb, bias, c: o.c }, { m: n, k: f, n: classes }),
      ...softmaxXent(
        g,
        {
          logits: o.c,
          labels: lb,
          dlogits: grad ? o.dlogits : undefined,
          loss: o.loss,
          stats: o.stats,
          partials: o.partials,
        },
        { n, classes, smoothing, scale: 1 / n },
      ),
    ];
    g.run([...fused, ...totals, ...unfused]);
    if (bands > 1 && n > 256)
      expect(await g.readU32(a.partials), "the loss pass's partials").toEqual(await g.readU32(o.partials));
    const read = async (q: typeof a) => [await g.readF32(q.c), await g.readF32(q.dlogits)];
    const [mine, theirs] = [await read(a), await read(o)];
    expect(mine[0], 'logits bit for bit').toEqual(theirs[0]);
    expect(mine[1], 'dlogits bit for bit').toEqual(theirs[1]);
    expect(await g.readU32(a.stats), 'loss sum and correct count').toEqual(await g.readU32(o.stats));
    expect(await g.readU32(a.counter), "the counter's snapshot").toEqual(new Uint32Array([7, 7]));
    const logits = matmulRef(x, w, withBias ? b : null, { m: n, k: f, n: classes });
    expectAllclose('logits', mine[0]!, logits, { atol: 1e-5, rtol: 1e-5 });
    const ref = softmaxXentRef(mine[0]!, labels, { n, classes, smoothing, scale: 1 / n });
    if (grad) expectAllclose('dlogits', mine[1]!, ref.dlogits, { atol: 1e-6, rtol: 1e-4 });
    g.free([...fused, ...totals, ...unfused]);
    for (const q of [a, o]) for (const r of Object.values(q)) g.release(r);
    for (const r of [xb, wb, bb, lb]) g.release(r);
  });

  it('refuses more classes than one tile holds, and the lane kernels', () => {
    const io = { a: gpu().dummy, b: gpu().dummy, c: gpu().dummy, labels: gpu().dummy };
    const rest = { stats: gpu().dummy, counter: gpu().dummy, partials: gpu().dummy };
    const x = { smoothing: 0, scale: 1 };
    expect(() => matmulXent(tiles(), { ...io, ...rest }, { m: 8, k: 8, n: 129 }, x)).toThrow(/no loss epilogue/);
    const lanes = gpu().withTuning({ lanes: 8 });
    expect(() => matmulXent(lanes, { ...io, ...rest }, { m: 8, k: 8, n: 10 }, x)).toThrow(/no loss epilogue/);
  });
});
