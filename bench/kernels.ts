// Kernel benchmark: GFLOP/s and GB/s of matmul and the three conv passes at the reference network's
// shapes (conv 32/64/128 3×3 same on 28/14/7 px; batch 64 and 256). Every kernel is first checked
// against its float64 CPU reference (at batch 2, same layer shape), then timed.
//   node dist/bench/kernels.js [--batch 64,256] [--reps N] [--family own|tiled|lanes] [--json]
// `conv wino`, `conv wino dX`, `conv wino dW`: the forward and dX by Winograd's F(2×2, 3×3) and dW by
// F(3×3, 2×2) on the tiled kernels (src/ops/conv2d_winograd.ts), their GFLOP/s counted as the direct
// conv's (what they replace); `conv narrow dW`, the first layer's dW by the narrow kernel on the tiled
// kernels (src/ops/conv2d_narrow.ts), beside `conv dW` by the direct GEMM.
// --family picks the GEMM kernels (matmul, conv): the adapter's own (default), the tiled GPU kernels,
// or the subgroup-lane kernels (shaders/lib/lanes.wgsl; needs subgroups of one size, 4 or 8).
//   node dist/bench/kernels.js --probe [--probe-size N] [--probe-batch N] [--seconds S]
// --probe: the calibration probes of bench/gpu-check.sh, as JSON lines: matmul N³ (4096 on a GPU,
// 256 on a CPU adapter) and conv dX of the reference network's 32→64 14×14 layer at batch N (256;
// 8), each with the tiled kernels at 16×16 and 8×8 threads (Gpu.gemmSide) and with the lane kernels
// where the adapter has them, and the dX by Winograd on the tiled kernels (`conv wino dX`); each
// variant checked against its float64 reference at a small size, then timed for about S seconds (1);
// each row holds its dispatches' work descriptions (what the
// cost model reads, src/gpu/work.ts), so that a refit can use them.
//   node dist/bench/kernels.js --predict [--device h100] [--probe-size N] [--probe-batch N]
// --predict: no GPU needed: what the cost model predicts (src/gpu/cost.ts, bench/devices/NAME.json)
// for the probes' tiled kernels as a GPU of that profile plans them (its units: src/ops/gemm.ts),
// with their tiles. A prediction, not a measurement.
import { installGlobals, openNodeGpu } from '../src/node/gpu.ts';
import { loadProfile } from '../src/node/profiles.ts';
import { predictDispatch } from '../src/gpu/cost.ts';
import { dryGpu } from '../src/gpu/dry.ts';
import { adapterName } from '../src/gpu/device.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { matmul, matmulPartsLength, matmulPlan, type MatmulShape } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import {
  conv2dBackwardInput,
  conv2dBackwardWeights,
  conv2dForward,
  conv2dGeometry,
  conv2dPlan,
  forwardPartsLength,
  inputPartsLength,
  weightPartsLength,
  type Conv2dShape,
} from '../src/ops/conv2d.ts';
import { inputWinogradPlan, weightWinogradPlan, winogradPlan } from '../src/ops/conv2d_plan.ts';
import { weightNarrowPlan } from '../src/ops/conv2d_weights.ts';
import { conv2dBackwardInputRef, conv2dBackwardWeightsRef, conv2dRef } from '../src/ops/conv2d.ref.ts';
import { Rng } from '../src/util/rng.ts';
import { benchArgs } from './common.ts';

interface Row {
  kernel: string;
  shape: string;
  ms: number;
  gflops: number;
  gbps: number;
  maxErr: number;
}

const { opt, json, args } = benchArgs();
const batches = opt('batch', '64,256').split(',').map(Number);
const reps = Number(opt('reps', '0'));
const family = opt('family', 'own');
if (!['own', 'tiled', 'lanes'].includes(family))
  throw new Error(`--family must be own, tiled or lanes but is ${family}`);

/** Mean milliseconds per run of `ds`, after one warm-up (which includes pipeline compilation). */
async function time(gpu: Gpu, ds: Dispatch[], n: number): Promise<number> {
  gpu.run(ds);
  await gpu.sync();
  const t0 = performance.now();
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < n; i++) gpu.encode(pass, ds);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.sync();
  return (performance.now() - t0) / n;
}

/** The largest error relative to the reference's largest value; a NaN or infinity in `a` is an infinite error. */
function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0,
    scale = 1e-6;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / scale;
    m = Number.isFinite(d) ? Math.max(m, d) : Infinity;
    if (m === Infinity) break;
  }
  return m;
}

interface ProbeRow {
  bench: 'probe';
  adapter: string;
  date: string;
  kernel: string;
  variant: string;
  gemmSide: number;
  lanes: number;
  shape: string;
  reps: number;
  ms: number;
  gflops: number;
  maxErr: number;
  /** Each dispatch as the cost model reads it, and its own time when the kernel has several. */
  dispatches: { label: string; workgroups: readonly number[]; work: Dispatch['work']; us?: number }[];
}

/** Mean milliseconds per run of `ds`, repeated for about `seconds` (at least 3, at most 50 runs). */
async function timeFor(gpu: Gpu, ds: Dispatch[], seconds: number): Promise<{ ms: number; reps: number }> {
  const once = await time(gpu, ds, 1);
  const reps = Math.max(3, Math.min(50, Math.floor((seconds * 1000) / Math.max(once, 1e-3))));
  return { ms: await time(gpu, ds, reps), reps };
}

/** The partial sums a split tiled kernel needs (4 bytes when none): gemm.ts may split any pass. */
const partsFor = (gpu: Gpu, floats: number): GPUBuffer => gpu.alloc(Math.max(1, floats) * 4, 'partial sums');

/** matmul with its partial sums, released with the dispatches' uniforms by the caller's gpu.free. */
function matmulWithParts(gpu: Gpu, io: { a: GPUBuffer; b: GPUBuffer; c: GPUBuffer }, s: MatmulShape) {
  const parts = partsFor(gpu, matmulPartsLength(gpu, s));
  return { d: matmul(gpu, { ...io, parts }, s), parts };
}

/** The conv dX probe's layer: the reference network's 32→64 14×14 at batch n. */
const probeConv = (n: number): Conv2dShape => ({
  n,
  c: 32,
  k: 64,
  h: 14,
  w: 14,
  kh: 3,
  kw: 3,
  strideH: 1,
  strideW: 1,
  padding: 'same',
});

/** --predict: the probes' tiled kernels as the cost model prices them on a device profile. */
function predict(): void {
  installGlobals();
  const { profile } = loadProfile(opt('device', 'h100'));
  const gpu = dryGpu({ units: profile.v.units });
  const [size, batch] = [Number(opt('probe-size', '4096')), Number(opt('probe-batch', '256'))];
  const buf = gpu.alloc(4);
  const mm = { m: size, n: size, k: size };
  const s = probeConv(batch);
  const tile = (p: ReturnType<typeof matmulPlan>): string =>
    `${p.tile.bm}×${p.tile.bn} tiles, ${4 * p.tile.rb}×${4 * p.tile.cb} a thread, ${p.threads} threads` +
    `${p.splits > 1 ? `, split ${p.splits}` : ''}${p.checked ? '' : ', unchecked'}`;
  const rows: [string, string, number, Dispatch[], string][] = [
    [
      'matmul',
      `${size}x${size}x${size}`,
      2 * size ** 3,
      matmul(gpu, { a: buf, b: buf, c: buf }, mm),
      tile(matmulPlan(gpu, mm)),
    ],
    [
      'conv dX',
      `N${batch} 32→64 14x14`,
      2 * batch * 64 * 14 * 14 * 32 * 9,
      conv2dBackwardInput(gpu, { dy: buf, w: buf, dx: buf, parts: buf }, s),
      tile(conv2dPlan(gpu, s, 'dX')),
    ],
  ];
  console.log(`cost model on ${profile.name} (${profile.device}): a prediction, not a measurement`);
  for (const [kernel, shape, flops, ds, how] of rows) {
    const us = ds.reduce((a, d) => a + predictDispatch(d, profile).kernelUs, 0);
    const line = `${kernel} ${shape}: ${(us / 1000).toFixed(3)} ms, ${(flops / us / 1e6).toFixed(2)} TFLOP/s`;
    console.log(`predicted ${line} (kernels alone; ${how}; ${ds.length} dispatch${ds.length > 1 ? 'es' : ''})`);
  }
}

/** The calibration probes (--probe): matmul and one conv dX, at each kernel variant the adapter has. */
async function probes(): Promise<void> {
  const own = await openNodeGpu();
  const cpu = own.adapter.cpu;
  const size = Number(opt('probe-size', cpu ? '256' : '4096'));
  const batch = Number(opt('probe-batch', cpu ? '8' : '256'));
  const seconds = Number(opt('seconds', '1'));
  const date = new Date().toISOString().slice(0, 10);
  const variants: [string, Gpu][] = [
    ['tiled16', own.withTuning({ lanes: 0, gemmSide: 16 })],
    ['tiled8', own.withTuning({ lanes: 0, gemmSide: 8 })],
  ];
  if (own.usableLanes > 0) variants.push([`lanes${own.usableLanes}`, own.withTuning({ lanes: own.usableLanes })]);
  const rng = new Rng(1);
  const conv = probeConv;
  let bad = 0;
  for (const [variant, gpu] of variants) {
    const upload = (x: Float64Array): GPUBuffer => gpu.upload(Float32Array.from(x));
    const emit = async (kernel: string, shape: string, flops: number, d: Dispatch[], maxErr: number): Promise<void> => {
      const { ms, reps } = await timeFor(gpu, d, seconds);
      const each = d.length > 1 ? await Promise.all(d.map(async (x) => (await time(gpu, [x], reps)) * 1000)) : [];
      const row: ProbeRow = {
        bench: 'probe',
        adapter: adapterName(gpu.adapter),
        date,
        kernel,
        variant,
        gemmSide: gpu.gemmSide,
        lanes: gpu.lanes,
        shape,
        reps,
        ms: +ms.toFixed(4),
        gflops: +(flops / ms / 1e6).toFixed(1),
        maxErr,
        dispatches: d.map((x, i) => ({
          label: x.label,
          workgroups: x.workgroups,
          work: x.work,
          ...(each[i] === undefined ? {} : { us: +each[i]!.toFixed(2) }),
        })),
      };
      if (!(maxErr <= 1e-4)) bad++;
      console.log(
        json
          ? JSON.stringify(row)
          : `probe ${kernel.padEnd(12)} ${variant.padEnd(8)} ${shape.padEnd(20)} ${ms.toFixed(3).padStart(10)} ms ` +
              `${row.gflops.toFixed(1).padStart(9)} GFLOP/s  max rel err ${maxErr.toExponential(1)}`,
      );
    };

    // matmul: checked at 256³ (same kernel variant), timed at size³.
    const small = { m: 256, n: 256, k: 256 };
    const [a0, b0] = [rng.floats(256 * 256), rng.floats(256 * 256)];
    const bufs0 = [upload(a0), upload(b0), gpu.alloc(256 * 256 * 4)] as const;
    const { d: d0, parts: p0 } = matmulWithParts(gpu, { a: bufs0[0], b: bufs0[1], c: bufs0[2] }, small);
    gpu.run(d0);
    const mmErr = maxRelErr(await gpu.readF32(bufs0[2]), matmulRef(a0, b0, null, small));
    gpu.free(d0);
    gpu.release(p0);
    for (const x of bufs0) gpu.release(x);
    const big = { m: size, n: size, k: size };
    const bufs = [
      upload(rng.floats(size * size)),
      upload(rng.floats(size * size)),
      gpu.alloc(size * size * 4),
    ] as const;
    const { d: d1, parts: p1 } = matmulWithParts(gpu, { a: bufs[0], b: bufs[1], c: bufs[2] }, big);
    await emit('matmul', `${size}x${size}x${size}`, 2 * size ** 3, d1, mmErr);
    gpu.free(d1);
    gpu.release(p1);
    for (const x of bufs) gpu.release(x);

    // conv dX of the 32→64 14×14 layer: checked at batch 2, timed at `batch`; the direct GEMM's, and on
    // the tiled kernels Winograd's too (its tile at `batch`; conv2d_winograd.ts), its GFLOP/s counted
    // as the direct conv's.
    // (Its workgroups do not depend on gemmSide: timed once, with the 16-thread side.)
    const side = gpu.lanes > 0 || gpu.gemmSide !== 16 ? null : (inputWinogradPlan(gpu, conv(batch))?.side ?? 16);
    const kinds = [['conv dX', false], ...(side ? [['conv wino dX', side] as const] : [])] as const;
    for (const [kernel, winograd] of kinds) {
      let dxErr = NaN;
      for (const nb of [2, batch]) {
        const s = conv(nb);
        const xs = nb * 32 * 14 * 14,
          ws = 64 * 32 * 9,
          ys = nb * 64 * 14 * 14;
        const [w, dy] = [rng.floats(ws), rng.floats(ys)];
        const cb = [upload(w), upload(dy), gpu.alloc(xs * 4)] as const;
        const parts = partsFor(gpu, inputPartsLength(gpu, s, { winograd }));
        const d = conv2dBackwardInput(gpu, { w: cb[0], dy: cb[1], dx: cb[2], parts }, s, { winograd });
        if (nb === 2) {
          gpu.run(d);
          dxErr = maxRelErr(await gpu.readF32(cb[2]), conv2dBackwardInputRef(dy, w, s));
        } else await emit(kernel, `N${nb} 32→64 14x14`, 2 * nb * 64 * 14 * 14 * 32 * 9, d, dxErr);
        gpu.free(d);
        for (const x of [...cb, parts]) gpu.release(x);
      }
    }
  }
  own.destroy();
  if (bad) {
    console.error(`bench: ${bad} probe(s) disagree with the CPU reference`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const own = await openNodeGpu();
  const cpu = own.adapter.cpu;
  if (family === 'lanes' && own.usableLanes === 0)
    throw new Error(`${adapterName(own.adapter)} has no subgroups of one size, 4 or 8, for the lane kernels`);
  const gpu =
    family === 'tiled'
      ? own.withTuning({ lanes: 0 })
      : family === 'lanes'
        ? own.withTuning({ lanes: own.usableLanes })
        : own;
  const n = reps || (cpu ? 2 : 50);
  const rows: Row[] = [];
  const rng = new Rng(1);
  const upload = (x: Float64Array): GPUBuffer => gpu.upload(Float32Array.from(x));

  // matmul: square sizes; fp32.
  for (const size of cpu ? [256, 512] : [1024, 2048, 4096]) {
    const s = { m: size, n: size, k: size };
    const a = rng.floats(size * size),
      b = rng.floats(size * size);
    const [ab, bb, cb] = [upload(a), upload(b), gpu.alloc(size * size * 4)];
    const { d, parts } = matmulWithParts(gpu, { a: ab, b: bb, c: cb }, s);
    let err = NaN;
    if (size <= 512) {
      gpu.run(d);
      err = maxRelErr(await gpu.readF32(cb), matmulRef(a, b, null, s));
    }
    const ms = await time(gpu, d, n);
    rows.push({
      kernel: 'matmul',
      shape: `${size}x${size}x${size}`,
      ms,
      gflops: (2 * size ** 3) / ms / 1e6,
      gbps: (3 * size * size * 4) / ms / 1e6,
      maxErr: err,
    });
    gpu.free(d);
    for (const x of [ab, bb, cb, parts]) gpu.release(x);
  }

  // The reference network's conv layers.
  const layers = [
    { c: 1, k: 32, h: 28 },
    { c: 32, k: 64, h: 14 },
    { c: 64, k: 128, h: 7 },
  ];
  for (const batch of batches) {
    for (const l of layers) {
      const mk = (nb: number): Conv2dShape => ({
        n: nb,
        c: l.c,
        h: l.h,
        w: l.h,
        k: l.k,
        kh: 3,
        kw: 3,
        strideH: 1,
        strideW: 1,
        padding: 'same',
      });
      for (const nb of [2, batch]) {
        const s = mk(nb);
        const g = conv2dGeometry(s);
        const xs = nb * l.c * l.h * l.h,
          ws = l.k * l.c * 9,
          ys = nb * l.k * g.oh * g.ow;
        const x = rng.floats(xs),
          w = rng.floats(ws),
          b = rng.floats(l.k),
          dy = rng.floats(ys);
        const [xb, wb, bb, yb, dyb, dxb, dwb, dbb] = [
          upload(x),
          upload(w),
          upload(b),
          gpu.alloc(ys * 4),
          upload(dy),
          gpu.alloc(xs * 4),
          gpu.alloc(ws * 4),
          gpu.alloc(l.k * 4),
        ];
        // One partial-sums buffer for whichever passes split (each runs on its own here).
        const lengths = [
          forwardPartsLength(gpu, s, { winograd: false }),
          inputPartsLength(gpu, s, { winograd: false }),
          weightPartsLength(gpu, s, { bias: true, winograd: false, narrow: false }),
          weightPartsLength(gpu, s, { bias: true, winograd: false }),
          weightPartsLength(gpu, s, { bias: true, winograd: 16 }),
          weightPartsLength(gpu, s, { bias: true, winograd: 32 }),
        ];
        const parts = partsFor(gpu, Math.max(...lengths));
        // The forward by the direct GEMM, and on the tiled kernels by Winograd (the rule's tile, else 16).
        // Each pass on the direct GEMM, and on the tiled kernels the forward and dX by Winograd too (the
        // rule's tile, else 16).
        const [io, dxIo] = [
          { x: xb, w: wb, b: bb, y: yb, parts },
          { dy: dyb, w: wb, dx: dxb, parts },
        ];
        const tiled = gpu.lanes === 0 && l.c >= 4;
        const fwd = tiled ? (winogradPlan(gpu, s)?.side ?? 16) : null;
        const dx = tiled ? (inputWinogradPlan(gpu, s)?.side ?? 16) : null;
        const dw = tiled ? (weightWinogradPlan(gpu, s, { bias: true })?.side ?? 16) : null;
        // A first layer's dW on the tiled kernels by the narrow kernel too (conv2d_narrow.ts).
        const narrow = gpu.lanes === 0 && weightNarrowPlan(gpu, s, { bias: true }) !== null;
        const dwIo = { dy: dyb, x: xb, dw: dwb, db: dbb, parts };
        const bytes = xs + ws + ys;
        type Pass = [string, Dispatch[], number, number];
        const passes: Pass[] = [
          ['conv fwd', conv2dForward(gpu, io, s, undefined, { winograd: false }), bytes, 0],
          ...(fwd ? [['conv wino', conv2dForward(gpu, io, s, undefined, { winograd: fwd }), bytes, 0] as Pass] : []),
          ['conv dX', conv2dBackwardInput(gpu, dxIo, s, { winograd: false }), bytes, 1],
          ...(dx ? [['conv wino dX', conv2dBackwardInput(gpu, dxIo, s, { winograd: dx }), bytes, 1] as Pass] : []),
          ['conv dW', conv2dBackwardWeights(gpu, dwIo, s, { winograd: false, narrow: false }), bytes, 2],
          ...(narrow ? [['conv narrow dW', conv2dBackwardWeights(gpu, dwIo, s), bytes, 2] as Pass] : []),
          ...(dw ? [['conv wino dW', conv2dBackwardWeights(gpu, dwIo, s, { winograd: dw }), bytes, 2] as Pass] : []),
        ];
        const flops = 2 * nb * l.k * g.oh * g.ow * l.c * 9;
        for (const [name, d, elems, which] of passes) {
          if (which === 1 && l.c === 1) {
            gpu.free(d);
            continue; // the first layer's input needs no gradient
          }
          if (nb === 2) {
            gpu.run(d);
            if (which === 0)
              // both forwards
              maxErrs[`${name} ${l.c}`] = maxRelErr(await gpu.readF32(yb), conv2dRef(x, w, b, s));
            if (which === 1)
              maxErrs[`${name} ${l.c}`] = maxRelErr(await gpu.readF32(dxb), conv2dBackwardInputRef(dy, w, s));
            if (which === 2)
              maxErrs[`${name} ${l.c}`] = maxRelErr(await gpu.readF32(dwb), conv2dBackwardWeightsRef(dy, x, s).dw);
          } else {
            const ms = await time(gpu, d, n);
            rows.push({
              kernel: name,
              shape: `N${nb} ${l.c}→${l.k} ${l.h}x${l.h}`,
              ms,
              gflops: flops / ms / 1e6,
              gbps: (elems * 4) / ms / 1e6,
              maxErr: maxErrs[`${name} ${l.c}`]!,
            });
          }
          gpu.free(d);
        }
        for (const q of [xb, wb, bb, yb, dyb, dxb, dwb, dbb, parts]) gpu.release(q);
      }
    }
  }

  const date = new Date().toISOString().slice(0, 10);
  if (json)
    for (const r of rows)
      console.log(JSON.stringify({ bench: 'kernel', adapter: adapterName(gpu.adapter), date, ...r }));
  else {
    console.log(`adapter: ${adapterName(gpu.adapter)}   date: ${date}   reps: ${n}`);
    console.log(
      `${'kernel'.padEnd(12)} ${'shape'.padEnd(22)} ${'ms'.padStart(10)} ${'GFLOP/s'.padStart(10)} ` +
        `${'GB/s'.padStart(8)} ${'max rel err'.padStart(12)}`,
    );
    for (const r of rows)
      console.log(
        `${r.kernel.padEnd(12)} ${r.shape.padEnd(22)} ${r.ms.toFixed(3).padStart(10)} ` +
          `${r.gflops.toFixed(1).padStart(10)} ${r.gbps.toFixed(2).padStart(8)} ` +
          `${(Number.isNaN(r.maxErr) ? '(not run)' : r.maxErr.toExponential(1)).padStart(12)}`,
      );
  }
  const bad = rows.filter((r) => r.maxErr > 1e-4);
  gpu.destroy();
  if (bad.length) {
    console.error(`bench: ${bad.map((r) => r.kernel).join(', ')} disagree with the CPU reference`);
    process.exit(1);
  }
}
const maxErrs: Record<string, number> = {};
if (args.includes('--predict')) predict();
else await (args.includes('--probe') ? probes() : main());
