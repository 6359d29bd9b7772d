import { describe, expect, it } from 'vitest';
import { useGpu, f32, readStats } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { checkGradFd } from './helpers/fd.ts';
import { softmax, softmaxXent, xentGroups, xentTotal, type XentShape } from '../src/ops/softmax_xent.ts';
import { softmaxRef, softmaxXentRef } from '../src/ops/softmax_xent.ref.ts';
import { Rng } from '../src/util/rng.ts';
import type { Gpu } from '../src/gpu/runtime.ts';

// Probabilities are within a few ulp (exp is 3+2|x| ulp in WGSL); losses up to ~2e4 for ±1e4 logits.
const TOL_D = { atol: 1e-6, rtol: 1e-4 };
const TOL_LOSS = { atol: 2e-5, rtol: 1e-5 };

/** Labels: every third row gets its argmax (so some predictions are right), the rest random. */
function makeCase(
  n: number,
  classes: number,
  range: number,
  seed: number,
): { logits: Float64Array; labels: Uint32Array } {
  const rng = new Rng(seed);
  const logits = rng.floats(n * classes, -range, range);
  const labels = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let arg = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + arg]!) arg = j;
    labels[i] = i % 3 === 0 ? arg : rng.int(classes);
  }
  return { logits, labels };
}

/** The loss pass's per-workgroup partials for n rows. */
const partialsFor = (g: Gpu, n: number): GPUBuffer => g.alloc(8 * xentGroups(n), 'partials');

/** A stats buffer holding a prior loss sum and correct count, to check that kernels add to it. */
function statsBuffer(g: Gpu, lossSum: number, correct: number): GPUBuffer {
  const words = new Uint32Array(2);
  new Float32Array(words.buffer)[0] = lossSum;
  words[1] = correct;
  return g.upload(words, 'stats');
}

describe('softmax cross-entropy (GPU vs CPU reference)', () => {
  const gpu = useGpu();
  const cases: [string, number, number, number, number, boolean][] = [
    // name, n, classes, smoothing, logit range, with dlogits
    ['batch 1, 10 classes', 1, 10, 0, 3, true],
    ['batch 7, 3 classes, smoothing 0.1', 7, 3, 0.1, 3, true],
    ['batch 33, 10 classes, smoothing 0.1', 33, 10, 0.1, 5, true],
    ['logits ±1e4, 10 classes', 6, 10, 0, 1e4, true],
    ['logits ±1e4, 3 classes, smoothing 0.1', 6, 3, 0.1, 1e4, true],
    ['logits ±80, 10 classes', 9, 10, 0, 80, true],
    ['logits ±80, 3 classes, smoothing 0.1', 9, 3, 0.1, 80, true],
    ['batch 300 (more rows than threads), smoothing 0.1', 300, 10, 0.1, 4, true],
    ['evaluation (no dlogits), batch 20', 20, 10, 0, 3, false],
    ['evaluation (no dlogits), batch 513, smoothing 0.1', 513, 3, 0.1, 3, false],
    ['batch 20000: 313 workgroups, more partials than total threads', 20000, 10, 0.1, 4, true],
  ];
  it.each(cases)('%s', async (_name, n, classes, smoothing, range, grad) => {
    const g = gpu();
    const { logits, labels } = makeCase(n, classes, range, n * 17 + classes);
    const s: XentShape = { n, classes, smoothing };
    const ref = softmaxXentRef(logits, labels, s);
    const lb = g.upload(f32(logits)),
      yb = g.upload(labels),
      db = g.alloc(n * classes * 4),
      lossb = g.alloc(n * 4);
    const stats = statsBuffer(g, 1.5, 7),
      partials = partialsFor(g, n);
    const io = { logits: lb, labels: yb, dlogits: grad ? db : undefined, loss: lossb, stats, partials };
    const ds = softmaxXent(g, io, s);
    g.run(ds);
    expectAllclose('xent loss', await g.readF32(lossb), ref.loss, TOL_LOSS, [n]);
    if (grad)
      expectAllclose('xent dlogits', await g.readF32(db), ref.dlogits, { atol: TOL_D.atol / n, rtol: TOL_D.rtol }, [
        n,
        classes,
      ]);
    const got = await readStats(g, stats);
    expectAllclose('xent loss sum', [got.lossSum], [1.5 + ref.lossSum], TOL_LOSS);
    expect(got.correct).toBe(7 + ref.correct);
    expect(ref.loss.every(Number.isFinite)).toBe(true);
    for (const b of [lb, yb, db, lossb, stats, partials]) g.release(b);
    g.free(ds);
  });

  it('ties count the first max index as the prediction', async () => {
    const g = gpu();
    const logits = [1, 1, 0, 1, 1, 0, 5, 5, 5, 5, 5, 5];
    // First max: predictions 0, 0, 0, 0 → 3 right; the last max (1, 1, 2, 2) would give 1.
    const labels = new Uint32Array([0, 0, 0, 2]);
    const lb = g.upload(f32(logits)),
      yb = g.upload(labels),
      lossb = g.alloc(16),
      stats = statsBuffer(g, 0, 0),
      partials = partialsFor(g, 4);
    const ds = softmaxXent(g, { logits: lb, labels: yb, loss: lossb, stats, partials }, { n: 4, classes: 3 });
    g.run(ds);
    expect((await readStats(g, stats)).correct).toBe(3);
    expect(softmaxXentRef(logits, labels, { n: 4, classes: 3 }).correct).toBe(3);
    for (const b of [lb, yb, lossb, stats, partials]) g.release(b);
    g.free(ds);
  });

  it.each([40, 5000])(
    'stats accumulate over steps recorded in one submit, bit-identically run to run (batch %s)',
    async (n) => {
      const g = gpu();
      const classes = 10;
      const { logits, labels } = makeCase(n, classes, 3, 99);
      const ref = softmaxXentRef(logits, labels, { n, classes });
      const lb = g.upload(f32(logits)),
        yb = g.upload(labels),
        db = g.alloc(n * classes * 4),
        lossb = g.alloc(n * 4),
        partials = partialsFor(g, n);
      const words: Uint32Array[] = [];
      for (let rep = 0; rep < 3; rep++) {
        const stats = statsBuffer(g, 0, 0);
        const ds = softmaxXent(
          g,
          { logits: lb, labels: yb, dlogits: db, loss: lossb, stats, partials },
          { n, classes },
        );
        g.run([...ds, ...ds, ...ds]);
        words.push(await g.readU32(stats));
        g.release(stats);
        g.free(ds);
      }
      expect(words[1]).toEqual(words[0]);
      expect(words[2]).toEqual(words[0]);
      const sum = new Float32Array(words[0]!.buffer)[0]!;
      expectAllclose('loss sum after 3 steps', [sum], [3 * ref.lossSum], { atol: 2e-5, rtol: 2e-5 });
      expect(words[0]![1]).toBe(3 * ref.correct);
      for (const b of [lb, yb, db, lossb, partials]) g.release(b);
    },
  );

  /** n rows of 10 classes on the GPU, stats holding (2, 1) before, a counter of `words`: io and the reference. */
  function lossCase(g: Gpu, n: number, seed: number, words: number[]) {
    const classes = 10;
    const { logits, labels } = makeCase(n, classes, 3, seed);
    const io = {
      logits: g.upload(f32(logits)),
      labels: g.upload(labels),
      loss: g.alloc(n * 4),
      partials: partialsFor(g, n),
      stats: statsBuffer(g, 2, 1),
      counter: g.upload(new Uint32Array(words)),
    };
    const release = () => {
      for (const b of Object.values(io)) g.release(b);
    };
    return { io, shape: { n, classes }, ref: softmaxXentRef(logits, labels, { n, classes }), release };
  }

  it('over one workgroup: a totals pass ends the step adding them; the loss pass snapshots the counter', async () => {
    const g = gpu();
    const { io, shape, ref, release } = lossCase(g, 300, 5, [41, 7, 0, 0]);
    const pass = softmaxXent(g, io, shape, { total: false });
    const total = xentTotal(g, { partials: io.partials, groups: xentGroups(shape.n), stats: io.stats });
    expect([pass.length, total.length]).toEqual([1, 1]);
    g.run(pass);
    expect(await readStats(g, io.stats)).toEqual({ lossSum: 2, correct: 1 }); // nothing added yet
    expect([...(await g.readU32(io.counter))]).toEqual([41, 41, 0, 0]); // the running step, copied; not advanced
    g.run(total);
    const got = await readStats(g, io.stats);
    expectAllclose('loss sum', [got.lossSum], [2 + ref.lossSum], TOL_LOSS);
    expect(got.correct).toBe(1 + ref.correct);
    release();
    g.free([...pass, ...total]);
  });

  it('a batch of one workgroup (256 rows or fewer): the loss pass adds its totals itself, no totals pass', async () => {
    const g = gpu();
    const { io, shape, ref, release } = lossCase(g, 256, 6, [9, 0, 0, 0]);
    const pass = softmaxXent(g, io, shape);
    expect(pass.map((d) => d.label)).toEqual(['softmax_xent 256x10 (eval) + totals']);
    g.run(pass);
    const got = await readStats(g, io.stats);
    expectAllclose('loss sum', [got.lossSum], [2 + ref.lossSum], TOL_LOSS);
    expect(got.correct).toBe(1 + ref.correct);
    expect([...(await g.readU32(io.counter))]).toEqual([9, 9, 0, 0]);
    release();
    g.free(pass);
  });

  // The loss sum's order, pinned: each 32 rows' tree, then the totals pass's 256-wide tree over those
  // sums (zeros past them), in f32; in one pass up to 256 rows, in two above: the same bits either way.
  it.each([64, 200, 256, 257, 300])('the loss sum of %s rows in its fixed f32 order, bit for bit', async (n) => {
    const g = gpu();
    const { io, shape, release } = lossCase(g, n, 8, [0, 0, 0, 0]);
    const ds = softmaxXent(g, io, shape);
    g.run(ds);
    const rows = await g.readF32(io.loss);
    const tree = (values: ArrayLike<number>, width: number): number => {
      const a = new Float32Array(width);
      a.set(Array.from(values).slice(0, width));
      for (let h = width / 2; h >= 1; h /= 2) for (let t = 0; t < h; t++) a[t] = Math.fround(a[t]! + a[t + h]!);
      return a[0]!;
    };
    const groups = Array.from({ length: Math.ceil(n / 32) }, (_, q) => tree(rows.subarray(q * 32, q * 32 + 32), 32));
    expect((await readStats(g, io.stats)).lossSum).toBe(Math.fround(2 + tree(groups, 256)));
    release();
    g.free(ds);
  });

  const probCases: [string, number, number, number][] = [
    ['softmax batch 1, 10 classes', 1, 10, 3],
    ['softmax batch 70, 3 classes, logits ±80', 70, 3, 80],
    ['softmax batch 5, 10 classes, logits ±1e4', 5, 10, 1e4],
  ];
  it.each(probCases)('%s', async (_name, n, classes, range) => {
    const g = gpu();
    const logits = new Rng(n + classes).floats(n * classes, -range, range);
    const lb = g.upload(f32(logits)),
      pb = g.alloc(n * classes * 4);
    const ds = softmax(g, { logits: lb, probs: pb }, n, classes);
    g.run(ds);
    const probs = await g.readF32(pb);
    expectAllclose('softmax probs', probs, softmaxRef(logits, n, classes), TOL_D, [n, classes]);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let j = 0; j < classes; j++) sum += probs[i * classes + j]!;
      expectAllclose(`softmax row ${i} sum`, [sum], [1], { atol: 1e-5 });
    }
    g.release(lb);
    g.release(pb);
    g.free(ds);
  });
});

describe('softmax cross-entropy reference gradient (finite differences)', () => {
  const cases: [string, number, number, number, number][] = [
    ['mean loss, 10 classes', 3, 10, 0, 1 / 3],
    ['mean loss, 3 classes, smoothing 0.1', 4, 3, 0.1, 1 / 4],
    ['summed loss, logits ±20, smoothing 0.2', 2, 5, 0.2, 1],
  ];
  it.each(cases)('%s: dlogits = (softmax − target)·scale', (_name, n, classes, smoothing, scale) => {
    const range = scale === 1 ? 20 : 3;
    const { logits, labels } = makeCase(n, classes, range, 7 * n + classes);
    const s = { n, classes, smoothing, scale };
    const ref = softmaxXentRef(logits, labels, s);
    checkGradFd('xent dlogits', logits, (z) => scale * softmaxXentRef(z, labels, s).lossSum, ref.dlogits);
  });
});
