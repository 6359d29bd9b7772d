// The cost model (src/gpu/cost.ts) and what it reads: every launcher's work description, checked
// against the CPU references' shapes; the GPU plan built without a GPU; the device profiles and
// their calibration on the b46cd8a H200 measurements; and the claim the GEMM descriptions make
// about registers, checked in the SPIR-V Dawn generates.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNet } from '../dsl/index.ts';
import { loadProfile, planTrainStep, predictedLine } from '../bench/cost-plan.ts';
import { FAMILY_FACTOR, refit, type Sample } from '../src/gpu/calibrate.ts';
import { predictDispatch, predictStep, withAccumulators, type Described } from '../src/gpu/cost.ts';
import { parseProfile, profileLimits, withValues } from '../src/gpu/profile.ts';
import { shaderSource, type ShaderName } from '../src/gpu/shaders.ts';
import { chainWork, streamWork, tiledGemm } from '../src/gpu/work.ts';
import { conv2dBackwardInputRef, conv2dBackwardWeightsRef, conv2dRef } from '../src/ops/conv2d.ref.ts';
import type { Conv2dShape } from '../src/ops/conv2d.ts';
import { xentRowLoads } from '../src/ops/softmax_xent.ts';
import { CONV, FAMILIES, launchAll } from './helpers/launchers.ts';

const f32 = (n: number): number => 4 * n;

describe('every launcher describes its work beside its dispatch', () => {
  it.each(FAMILIES)('%s: a description for every dispatch, self-consistent', (_name, tuning) => {
    for (const { launcher, specs } of launchAll(tuning)) {
      expect(specs.length, launcher).toBeGreaterThan(0);
      for (const s of specs) {
        const w = s.work;
        expect(w, `${launcher} (${s.shader}.${s.entry ?? 'main'}) has no work description`).toBeDefined();
        expect(w.paddedFlops, launcher).toBeGreaterThanOrEqual(w.flops);
        expect(w.bytesRead + w.bytesWritten, launcher).toBeGreaterThan(0);
        expect(w.threads, launcher).toBeGreaterThan(0);
        if (w.shape.kind === 'gemm') {
          const g = w.shape;
          // 64 accumulators a thread on the tiled kernels, 512 a lane on the lane kernels (src/gpu/lane-step.ts),
          // 96 in the narrow weight gradient (8 out-channels × 12 columns: src/ops/conv2d_narrow.ts).
          const narrow = s.shader === 'conv2d_backward_weights_narrow';
          const most = s.shader.includes('_lanes') ? 512 : narrow ? 96 : 64;
          expect(g.rowsPerThread * g.colsPerThread, launcher).toBeLessThanOrEqual(most);
          expect(g.kSteps, launcher).toBeGreaterThan(0);
          expect(g.indexed, `${launcher}: today's GEMM loops have constant trip counts`).toBe(false);
        }
      }
    }
  });

  it.each(FAMILIES)(
    '%s: conv FLOPs are 2·N·K·C·KH·KW·OH·OW and bytes cover the tensors (CPU references)',
    (_n, tuning) => {
      const s: Conv2dShape = CONV;
      const x = new Float64Array(s.n * s.c * s.h * s.w);
      const w = new Float64Array(s.k * s.c * s.kh * s.kw);
      const y = conv2dRef(x, w, null, s);
      const dx = conv2dBackwardInputRef(y, w, s);
      const { dw, db } = conv2dBackwardWeightsRef(y, x, s);
      const flops = 2 * s.c * s.kh * s.kw * y.length; // y.length = N·K·OH·OW
      const launches = launchAll(tuning);
      const first = (name: string) => launches.find((l) => l.launcher === name)!.specs;
      const [fwd] = first('conv2dForward');
      expect(fwd!.work.flops).toBe(flops);
      expect(fwd!.work.bytesRead).toBeGreaterThanOrEqual(f32(x.length + w.length));
      expect(fwd!.work.bytesWritten).toBeGreaterThanOrEqual(f32(y.length));
      const [bwdX] = first('conv2dBackwardInput');
      expect(bwdX!.work.flops).toBe(flops);
      expect(bwdX!.work.bytesRead).toBeGreaterThanOrEqual(f32(y.length + w.length));
      expect(bwdX!.work.bytesWritten).toBeGreaterThanOrEqual(f32(dx.length));
      const [bwdW, ...rest] = first('conv2dBackwardWeights');
      expect(bwdW!.work.flops).toBe(flops);
      expect(bwdW!.work.bytesRead).toBeGreaterThanOrEqual(f32(y.length + x.length));
      const last = rest.at(-1)!;
      // Both families' bias gradient comes out of the weight gradient's pass (or its reduction when
      // split): the last dispatch writes dw and db.
      expect(last.work.bytesWritten).toBeGreaterThanOrEqual(f32(dw.length + db.length));
      expect([bwdW!, ...rest].some((d) => d.work.bytesWritten >= f32(dw.length))).toBe(true);
    },
  );

  it('matmul FLOPs are 2·M·N·K; elementwise and pooling bytes cover their tensors', () => {
    const launches = launchAll(FAMILIES[0]![1]);
    const one = (name: string) => launches.find((l) => l.launcher === name)!.specs[0]!.work;
    expect(one('matmul').flops).toBe(2 * 8 * 8 * 8);
    expect(one('matmul').bytesRead).toBeGreaterThanOrEqual(f32(2 * 64));
    for (const name of ['activationForward', 'add', 'copy', 'dropoutForward', 'adamUpdate'])
      expect(one(name).bytesWritten, name).toBeGreaterThanOrEqual(f32(10));
    expect(one('maxPoolForward').bytesRead).toBeGreaterThanOrEqual(f32(2 * 3 * 6 * 6));
    // 10 classes: a row read once into registers (its loads issued together), then its label (lib/xent.wgsl).
    expect(one('softmaxXent').shape).toMatchObject({ kind: 'chain', depth: 2 });
    expect(xentRowLoads(17, true), 'a wider row, walked three times').toBe(3 * 17 + 1);
  });
});

const reference = parseNet(readFileSync('examples/reference.net', 'utf8'), 'examples/reference.net');
const h100 = loadProfile('h100').profile;

describe('the GPU plan, without a GPU', () => {
  // As the cost tool plans it: the profile's units and limits (16 storage buffers a kernel, an assumption).
  const h100Units = profileLimits(h100);
  it('plans the reference network as an H100 runs it: GPU workgroups, each dispatch described', () => {
    const planned = planTrainStep(reference, 64, h100Units);
    for (const d of planned) expect(d.work, d.label).toBeDefined();
    // 2026-12 (issue 17, pairs): dense2's, dense1's and conv3's dX and dW run side by side, one dispatch
    // each (src/gpu/pair.ts): 19 → 16. conv2's did not (workgroups of 32 and 64 threads) until its dX could
    // take 8×8 blocks of 32 in-channel rows, two columns a thread (lib/gemm.wgsl fetch order 2): its split
    // partials then sum in conv1's chain, which keeps its own pass (15 still). The checks below read each
    // pair's halves.
    const pairs = planned.filter((d) => d.work.shape.kind === 'pair').map((d) => d.label.split(' ∥ ')[0]);
    // Now conv3's and conv2's dX run by Winograd (one pass, no split: below), each beside its dW; conv2's
    // dX fills the device alone, and its dW (32-side tile, 132 even splits) runs apart since.
    expect(pairs).toEqual([
      "matmul 64x10x128 + dropout+relu' p=0.25",
      "matmul 64x128x1152 + dropout+maxunpool+relu' p=0.25",
      "conv2d backward input winograd 64x64x7x7 k128 3x3/1x1 same + dropout+maxunpool+relu' p=0.25",
    ]);
    // 2026-12 (issue 17, first layer): conv1's forward gathers the batch from the dataset as it fetches
    // it (src/ops/conv2d_gather.ts), the gather's own dispatch dropped: 16 → 15. Then conv3's forward by
    // Winograd (one pass that pools, below): 15 → 14; then the two dX, whose chains run in them: 14 → 12;
    // then conv2's dW apart from its dX (above): 12 → 13.
    expect(planned).toHaveLength(13);
    expect(planned.filter((d) => d.label.includes('gather')).map((d) => d.label)).toEqual([
      'gather + conv2d forward 64x1x28x28 k32 3x3/1x1 same + maxpool 2x2 + dropout p=0.25',
    ]);
    const step = planned.flatMap((d): Described[] =>
      d.work.shape.kind === 'pair' ? d.work.shape.halves.map((h) => ({ ...h, workgroups: [h.workgroups] })) : [d],
    );
    const gemms = step.filter((d) => d.work.shape.kind === 'gemm');
    // 3 conv forwards (2 by Winograd), 2 dX (the first layer needs none), 3 dW with their db, 6 dense matmuls.
    expect(gemms.length).toBe(14);
    for (const d of gemms) expect(d.work.threads, d.label).toBeGreaterThanOrEqual(32); // no lane kernels
    // Every conv pass's dispatch fills the device (2 workgroups per SM; conv3's Winograd dX, 256
    // workgroups, beside its dW), each pass in chains of at most 64 K-steps.
    for (const d of planned.filter((g) => /^(gather \+ )?conv2d/.test(g.label)))
      expect(d.workgroups[0] * d.workgroups[1] * d.workgroups[2], d.label).toBeGreaterThanOrEqual(2 * h100.v.units);
    for (const d of gemms.filter((g) => /^(gather \+ )?conv2d/.test(g.label)))
      expect(d.work.shape.kind === 'gemm' && d.work.shape.kSteps, d.label).toBeLessThanOrEqual(64);
    // The conv bias gradients are inside the weight gradients; split-K sums are trees of short chains.
    expect(step.filter((d) => d.label.startsWith('conv2d backward bias'))).toEqual([]);
    for (const d of step.filter((q) => q.label.includes(' reduce ')))
      expect(d.work.shape.kind === 'chain' && d.work.shape.depth, d.label).toBeLessThanOrEqual(16);
    // 2026-12 (issue 17, dispatches): conv3's dX split 8 ways and conv2's backward chain summed the
    // partials on its way (fuse.dxParts), its reduce pass dropped: 32 → 31 dispatches at batch 64. By
    // Winograd conv3's dX is one pass that runs conv2's chain as it stores (fuse.dxChain), as conv2's
    // dX runs conv1's: no backward chain keeps a pass.
    const dx3 = step.filter((d) => d.label.startsWith('conv2d backward input winograd 64x64x7x7')).map((d) => d.label);
    expect(dx3).toEqual([
      "conv2d backward input winograd 64x64x7x7 k128 3x3/1x1 same + dropout+maxunpool+relu' p=0.25",
    ]);
    expect(step.filter((d) => d.label.startsWith('chain.') && d.label.includes(' backward '))).toEqual([]);
    // conv1 and conv2 (unsplit, even outputs) pool 2×2 and drop out in their own epilogue: the
    // pooling chains of blocks 1 and 2 run no dispatch of their own, conv3's (7×7, split) does: 31 → 29.
    // conv3's pooling chain then summed its 8 split partials, wrote Y and pooled (fused.convParts): 24 → 23.
    // Now conv2's and conv3's forwards run by Winograd's F(2×2, 3×3) (conv2d_plan.ts winogradPlan), one pass
    // each that pools its (odd) output as the direct conv's epilogue does, conv3's chain gone: 15 → 14.
    expect(step.filter((d) => d.label.includes(' + maxpool 2x2 + dropout p=0.25')).map((d) => d.label)).toEqual([
      'gather + conv2d forward 64x1x28x28 k32 3x3/1x1 same + maxpool 2x2 + dropout p=0.25',
      'conv2d forward winograd 64x32x14x14 k64 3x3/1x1 same + maxpool 2x2 + dropout p=0.25',
      'conv2d forward winograd 6x6 of 64x64x7x7 k128 3x3/1x1 same + maxpool 2x2 + dropout p=0.25',
    ]);
    expect(step.filter((d) => d.label.startsWith('chain.') && d.label.includes(' forward '))).toEqual([]);
    // dense1 drops out in its epilogue, and its backward chain runs in dense2's dX: 29 → 27. The loss pass
    // (one workgroup at batch 64) adds its own totals and the update ends the step: 27 → 26. Then dense2's
    // GEMM (unsplit, 64 rows) takes the loss into its epilogue (fused.xentHead): 23 → 22. Now in bands of
    // 32 rows, two workgroups, whose partial totals the update adds as it ends the step.
    expect(step.filter((d) => d.label.includes('softmax_xent')).map((d) => d.label)).toEqual([
      'matmul 64x128x10 + softmax_xent',
    ]);
    expect(step.at(-1)?.label).toBe(
      // The weight gradients by Winograd (F(3×3, 2×2)) split their tiles: conv2's 132 ways (the 32-side tile's
      // 2 tiles, 264 workgroups), conv3's (over the 6×6 its pooling reads; direct, over all 7×7, before) 9.
      'adam 241610 (10 tensors) + step end + weight gradient sums: conv1 132, conv2 132, conv3 9 splits' +
        ' + loss totals 2',
    );
    expect(step.filter((d) => d.label.startsWith('dropout') || d.label.startsWith('chain.dropout+relu'))).toEqual([]);
    expect(step.filter((d) => d.label.includes("+ dropout+relu' p=0.25")).map((d) => d.label)).toEqual([
      "matmul 64x10x128 + dropout+relu' p=0.25",
    ]);
    // The three conv weight gradients split K and leave their partials; one pass before the update
    // sums them all (src/graph/deferred.ts): 26 → 24.
    expect(step.filter((d) => /weights .* reduce/.test(d.label))).toEqual([]);
    // Since then the update sums them on its way (the trainer's plans, PlanOptions.foldGradSums): 20 → 19.
    expect(step.filter((d) => d.label.startsWith('weight gradients reduce'))).toEqual([]);
    // The backward chains of blocks 1 and 3 run where the dX reading them stores (fused.dxChain): conv2's
    // dX writes conv1's dZ, dense1's dX conv3's; conv2's chain, which sums conv3's split dX, keeps its pass: 22 → 20.
    // Since conv2's dX takes 8×8 blocks (two columns a thread) it splits 4 ways, and conv1's chain sums
    // those partials in a pass of its own, as conv2's does conv3's: 18 → 19 halves (15 dispatches). By
    // Winograd neither dX splits, and each runs its chain: all three chains in a dX.
    expect(step.filter((d) => d.label.includes("+ dropout+maxunpool+relu' p=0.25")).map((d) => d.label)).toEqual([
      "matmul 64x128x1152 + dropout+maxunpool+relu' p=0.25",
      "conv2d backward input winograd 64x64x7x7 k128 3x3/1x1 same + dropout+maxunpool+relu' p=0.25",
      "conv2d backward input winograd 64x32x14x14 k64 3x3/1x1 same + dropout+maxunpool+relu' p=0.25",
    ]);
    // The pairs' halves counted apart, and the gather inside conv1's forward: 19 → 18 (then 19, above; 18
    // with conv3's pooling chain gone; 16 with the two backward chains gone).
    expect(step).toHaveLength(16);
  });

  it('prices a step: the sum of its dispatches, one `predicted` line, flags', () => {
    const cost = predictStep(planTrainStep(reference, 64, h100Units), 64, h100);
    expect(cost.stepUs).toBeCloseTo(
      cost.dispatches.reduce((a, d) => a + d.us, 0),
      6,
    );
    expect(predictedLine(cost)).toMatch(/^predicted batch=64: \d{1,3}(,\d{3})* images\/s, \d+ dispatches\/step$/);
    // No serial reduction, conv pass or GEMM is flagged: dense1's forward (64x1152x128, 16 tiles)
    // splits K now that the planner gives forward steps their split-K scratch. Dispatch gaps are.
    expect(cost.flags.filter((f) => !f.startsWith('dispatch gaps'))).toEqual([]);
    const dense1 = cost.dispatches.filter((d) => d.label.startsWith('matmul 64x1152x128'));
    expect(dense1.map((d) => d.label)).toEqual([
      'matmul 64x1152x128 + dropout p=0.25 split 72',
      'matmul 64x1152x128 + dropout p=0.25 reduce 72 splits',
    ]);
    expect(dense1[0]!.workgroups).toBeGreaterThanOrEqual(2 * 132);
  });

  it('plans the reference network in at most 15 dispatches at batch 64, 128 and 256 (issue 17)', () => {
    const counts = [64, 128, 256].map((batch) => planTrainStep(reference, batch, h100Units).length);
    // 128 and 256: conv3's dX and dW pair (one staging array), and conv3 pools its 7x7 output in its
    // epilogue (valid windows); at 64 too since its forward runs by Winograd (one pass, unsplit). Then
    // conv2's and conv3's dX by Winograd: no split, so no reduce pass and no chain summing partials. Then
    // the weight gradients by Winograd, each beside its dX where that does not fill the device alone (conv3's,
    // over the 6x6 its pooling reads, at 64 and 128), else on the tile of least work: at 256 conv2's (32-side,
    // its 132 even splits filling the device) beside conv3's, one dispatch. At 256 the loss in dense2's GEMM
    // (bands of 32 rows: no loss pass), its totals added by the update: 14 → 13.
    expect(counts).toEqual([13, 13, 13]);
  });

  it("pairs within the device's workgroup memory: conv3's dX and dW at batch 256 share one staging array", () => {
    // The direct GEMMs' dX and dW (with Winograd, conv3's dX pairs with dense1's dW: below).
    const conv3 = (limits: typeof h100Units) =>
      planTrainStep(reference, 256, { ...limits, winograd: false })
        .filter((d) => d.work.shape.kind === 'pair')
        .some((d) => d.label.startsWith('conv2d backward input 256x64x7x7'));
    // The profile's limit is WebGPU's default until a GPU records its own.
    expect(h100Units.maxComputeWorkgroupStorageSize).toBe(16384);
    expect(conv3(h100Units)).toBe(true);
    // dX stages 64 rows and 128 columns of 16 steps, dW 128 and 64 with 64 decoded taps (16 bytes
    // each): 12 KB shared and 1 KB of dW's own. Staged slices shared row with row and column with
    // column would need 16 KB + 1 KB.
    expect(conv3({ ...h100Units, maxComputeWorkgroupStorageSize: 13312 })).toBe(true);
    expect(conv3({ ...h100Units, maxComputeWorkgroupStorageSize: 13311 })).toBe(false);
  });

  it("prices the gather inside conv1's forward above the plain forward, below it and the gather's pass", () => {
    for (const model of [reference, parseNet(readFileSync('examples/cifar10.net', 'utf8'), 'cifar10.net')]) {
      for (const batch of [64, 256]) {
        const [fused] = predictStep(planTrainStep(model, batch, h100Units), batch, h100).dispatches;
        // With 8 storage buffers a kernel (WebGPU's default) conv1 cannot bind the dataset: the gather keeps its pass.
        // Winograd off: the gather's price against the direct conv's (conv2d_plan.ts winogradPlan).
        const limited = { ...h100Units, maxStorageBuffersPerShaderStage: 8, winograd: false };
        const [gather, conv1] = predictStep(planTrainStep(model, batch, limited), batch, h100).dispatches;
        expect([fused?.label, gather?.label, conv1?.label].map((l) => l?.split(' ')[0])).toEqual([
          'gather',
          'gather',
          'conv2d',
        ]);
        expect(fused!.label).toBe(`gather + ${conv1!.label}`);
        expect(fused!.us, `${fused!.label} alone`).toBeGreaterThan(conv1!.us);
        expect(fused!.us, fused!.label).toBeLessThan(conv1!.us + gather!.us);
      }
    }
  });
});

describe('the model, bound by bound', () => {
  const one = (work: Described['work'], workgroups: number[]) =>
    predictDispatch({ label: 't', workgroups, work }, h100);
  it('a tiny kernel costs the dispatch gap; a large stream its bytes; a long loop its latency', () => {
    expect(one(streamWork({ flops: 10, bytesRead: 40, bytesWritten: 40, perThread: 1 }), [1]).bound).toBe(
      'dispatch gap',
    );
    const big = one(streamWork({ flops: 1e8, bytesRead: 4e8, bytesWritten: 4e8, perThread: 1 }), [25000, 63]);
    expect(big.bound).toBe('memory');
    expect(big.kernelUs).toBeCloseTo(8e8 / (3350 * 1000), 3);
    const loop = one(chainWork({ flops: 1, bytesRead: 4, bytesWritten: 4, threads: 256, depth: 1000 }), [1]);
    expect(loop.bound).toBe('latency chain');
    expect(loop.kernelUs).toBeCloseTo((1000 * 260) / 1980, 3);
  });

  it('a GEMM on two workgroups is bound by few workgroups; forced out of registers it slows', () => {
    const tiles = { rows: 64, cols: 128, inner: 1152, tiles: 2, tileM: 64, tileN: 64, kSteps: 72 };
    const block = { threads: 256, rowsPerThread: 4, colsPerThread: 4, sums: 0 as const };
    const work = tiledGemm({ ...tiles, bytesRead: 1e6, bytesWritten: 3e4 }, block);
    const d = { label: 'g', workgroups: [2, 1, 1], work };
    expect(predictDispatch(d, h100).bound).toBe('few workgroups');
    const [spilled] = withAccumulators([d], true);
    expect(predictDispatch(spilled!, h100).kernelUs).toBeGreaterThan(5 * predictDispatch(d, h100).kernelUs);
  });
});

interface Fixture {
  label: string;
  use: 'calibration' | 'hold-out';
  workgroups: number[];
  us: number;
  work: Described['work'];
}
const b46: Fixture[] = JSON.parse(readFileSync('test/fixtures/b46cd8a-h200.json', 'utf8')).dispatches;
const h200 = loadProfile('h200').profile;
const samples = (f: (d: Fixture) => boolean): Sample[] => b46.filter(f).map((d) => ({ d, us: d.us }));

describe('calibration on the b46cd8a H200 measurements', () => {
  const dominant = samples((d) => d.use === 'calibration' && d.work.shape.kind === 'gemm' && d.work.shape.indexed);

  it('the three dominant dispatches (conv weight gradients, batch 64) are the calibration set', () => {
    expect(dominant.map((s) => [s.d.workgroups[0], Math.round(s.us / 1000)])).toEqual([
      [1, 70],
      [5, 96],
      [18, 24],
    ]);
  });

  it("the profile's cycles per spilled accumulator access is what a refit of those three gives", () => {
    const start = withValues(h200, {
      'families.gemmIndexed.cyclesPerAccess': { value: 50, source: 'a wrong start' },
    });
    const { fits } = refit(start, dominant, 'test');
    expect(fits).toHaveLength(1);
    expect(fits[0]!.after).toBe(h200.v['families.gemmIndexed.cyclesPerAccess']);
  });

  it('the calibrated model puts each of them, and the same kernels at batch 256, within 2×', () => {
    for (const s of samples((d) => d.work.shape.kind === 'gemm' && d.work.shape.indexed)) {
      const ratio = predictDispatch(s.d, h200).kernelUs / s.us;
      expect(ratio, s.d.label).toBeGreaterThan(0.5);
      expect(ratio, s.d.label).toBeLessThan(2);
    }
  });

  it("the register GEMM factor is the b46cd8a matmuls' refit, each within 2×", () => {
    const mm = samples((d) => d.label.startsWith('matmul'));
    const start = withValues(h200, { 'families.gemm.efficiency': { value: 1, source: 'a wrong start' } });
    expect(refit(start, mm, 'test').fits[0]!.after).toBe(h200.v['families.gemm.efficiency']);
    for (const s of mm) {
      const ratio = predictDispatch(s.d, h200).kernelUs / s.us;
      expect(ratio, s.d.label).toBeGreaterThan(0.5);
      expect(ratio, s.d.label).toBeLessThan(2);
    }
  });

  it('the H100 carries the H200 fits (same SMs and clocks); only the bandwidth differs', () => {
    for (const key of Object.values(FAMILY_FACTOR)) expect(h100.v[key], key).toBe(h200.v[key]);
    expect(h200.v.memoryGBs).toBeGreaterThan(h100.v.memoryGBs);
    expect([h100.v.units, h100.v.clockGHz]).toEqual([h200.v.units, h200.v.clockGHz]);
  });
});

describe('device profiles', () => {
  it('every number of every profile has a source; unknown and missing keys are refused', () => {
    for (const name of ['h100', 'h200', 'igpu']) expect(loadProfile(name).profile.name).toBe(name);
    const json = structuredClone(h100.json);
    expect(() => parseProfile({ ...json, values: { ...json.values, speed: { value: 1, source: 'x' } } }, 'p')).toThrow(
      'p: unknown "speed"',
    );
    const { units: _, ...noUnits } = json.values;
    expect(() => parseProfile({ ...json, values: noUnits }, 'p')).toThrow('p: no "units"');
    const bare = { ...json.values, units: { value: 132, source: ' ' } };
    expect(() => parseProfile({ ...json, values: bare }, 'p')).toThrow('"units" = 132 has no source');
  });

  it('a refit recovers a factor from measurements made with it', () => {
    const step = planTrainStep(reference, 64);
    const truth = withValues(h100, { 'families.chain.efficiency': { value: 0.5, source: 'truth' } });
    const measured = step
      .filter((d) => d.work.shape.kind === 'chain')
      .map((d) => ({ d, us: predictDispatch(d, truth).kernelUs }));
    const fit = refit(h100, measured, 'synthetic').fits.find((f) => f.family === 'chain')!;
    expect(fit.after).toBeCloseTo(0.5, 2);
    expect(fit.errorAfter).toBeLessThan(0.01);
  });
});

/** The SPIR-V Dawn makes of a kernel (its dump_shaders toggle), in a child process: stdout is Dawn's log. */
function spirv(code: string, constants: Record<string, number>, entryPoint = 'main'): string {
  const dir = mkdtempSync(join(tmpdir(), 'fmgpu-spirv-'));
  writeFileSync(join(dir, 'k.wgsl'), code);
  const script = `
    import { create, globals } from 'webgpu';
    import { readFileSync } from 'node:fs';
    Object.assign(globalThis, globals);
    const gpu = create(['enable-dawn-features=dump_shaders,disable_symbol_renaming']);
    const device = await (await gpu.requestAdapter()).requestDevice();
    const module = device.createShaderModule({ code: readFileSync(${JSON.stringify(join(dir, 'k.wgsl'))}, 'utf8') });
    const compute = { module, entryPoint: ${JSON.stringify(entryPoint)}, constants: ${JSON.stringify(constants)} };
    device.createComputePipeline({ layout: 'auto', compute });
    await device.queue.onSubmittedWorkDone();
    device.destroy();`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
}

describe("the GEMM descriptions' claim: accumulators stay in registers", () => {
  // Tint adds a loop guard (a tint_loop_idx counter) to every loop whose trip count it cannot prove
  // constant. At b46cd8a the weight gradient's accumulator loops were bounded by `let tm = BM / T`
  // and got one each; those kernels ran about 190 cycles per accumulator access (the calibration
  // above). Today only the K loop (a runtime bound) may carry one: lib/gemm.wgsl's fetch, stage,
  // multiply and store loops (constant or override-expression bounds) must not.
  // The 8×8-per-thread tiles (four mat4x4 accumulators, the most code), with the sums on.
  const tile = { GEMM_BM: 64, GEMM_BN: 64, GEMM_RB: 2, GEMM_CB: 2 };
  const kernels: [ShaderName, string, Record<string, number>][] = [
    ['matmul', 'main', { ...tile, GEMM_BM: 128, GEMM_BN: 128, GEMM_SUMS: 2, ALPHA: 0 }],
    ['matmul', 'main_split', { ...tile, GEMM_A_ORDER: 1, ALPHA: 0 }],
    ['conv2d_forward', 'main', { ...tile, GEMM_B_ORDER: 2, ALPHA: 0 }],
    ['conv2d_backward_input', 'main_split', { ...tile, GEMM_B_ORDER: 2 }],
    ['conv2d_backward_weights', 'main', { ...tile, GEMM_B_ORDER: 0, GEMM_SUMS: 1 }],
  ];
  const guards = (dump: string): number => (dump.match(/OpName %tint_loop_idx\w* "tint_loop_idx"/g) ?? []).length;
  it.each(kernels)('%s.%s: one loop guard, the K loop', (shader, entry, constants) => {
    const dump = spirv(shaderSource(shader), constants, entry);
    expect(dump).toContain('OpLoopMerge');
    expect(guards(dump)).toBe(1);
  });

  it('sees the b46cd8a pattern: a loop bounded by a `let` gets a guard, the same bound inline none', () => {
    const kernel = (bound: string) => `
      override BM: u32 = 64u;
      @group(0) @binding(0) var<storage, read_write> out: array<f32>;
      @compute @workgroup_size(1) fn main() {
        let tm = BM / 8u;
        var acc: array<f32, 64>;
        for (var i = 0u; i < ${bound}; i++) { acc[i * 8u] += out[i]; }
        out[0] = acc[tm];
      }`;
    expect(guards(spirv(kernel('tm'), { BM: 64 }))).toBe(1);
    expect(guards(spirv(kernel('BM / 8u'), { BM: 64 }))).toBe(0);
  });
});
