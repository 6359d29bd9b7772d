// Kernel benchmark: GFLOP/s and GB/s of matmul and the three conv passes at the reference network's
// shapes (conv 32/64/128 3×3 same on 28/14/7 px; batch 64 and 256). Every kernel is first checked
// against its float64 CPU reference (at batch 2, same layer shape), then timed.
//   node dist/bench/kernels.js [--batch 64,256] [--reps N] [--family own|tiled|lanes] [--json]
// --family picks the GEMM kernels (matmul, conv): the adapter's own (default), the tiled GPU kernels, or the
// subgroup-lane kernels (shaders/lib/lanes.wgsl; needs subgroups of one size 4, 8 or 16).
import { openNodeGpu } from '../src/node/gpu.ts';
import { adapterName } from '../src/gpu/device.ts';
import { dispatchList, type Dispatch, type Gpu } from '../src/gpu/runtime.ts';
import { matmul } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import {
  conv2dBackwardInput,
  conv2dBackwardWeights,
  conv2dForward,
  conv2dGeometry,
  weightPartsLength,
  type Conv2dShape,
} from '../src/ops/conv2d.ts';
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

const { opt, json } = benchArgs();
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

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0,
    scale = 1e-6;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / scale);
  return m;
}

async function main(): Promise<void> {
  const gpu = await openNodeGpu();
  const cpu = gpu.adapter.cpu;
  if (family === 'tiled') gpu.lanes = 0;
  if (family === 'lanes') {
    gpu.lanes = gpu.usableLanes;
    if (gpu.lanes === 0)
      throw new Error(`${adapterName(gpu.adapter)} has no subgroups of one size 4, 8 or 16 for the lane kernels`);
  }
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
    const d = [matmul(gpu, { a: ab, b: bb, c: cb }, s)];
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
    for (const x of [ab, bb, cb]) gpu.release(x);
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
        const parts = gpu.alloc(Math.max(1, weightPartsLength(gpu, s)) * 4, 'dW partial sums');
        const passes: [string, Dispatch[], number, number][] = [
          ['conv fwd', dispatchList(conv2dForward(gpu, { x: xb, w: wb, b: bb, y: yb }, s)), xs + ws + ys, 0],
          ['conv dX', dispatchList(conv2dBackwardInput(gpu, { dy: dyb, w: wb, dx: dxb }, s)), xs + ws + ys, 1],
          [
            'conv dW',
            dispatchList(conv2dBackwardWeights(gpu, { dy: dyb, x: xb, dw: dwb, db: dbb, parts }, s)),
            xs + ws + ys,
            2,
          ],
        ];
        const flops = 2 * nb * l.k * g.oh * g.ow * l.c * 9;
        for (const [name, d, elems, which] of passes) {
          if (which === 1 && l.c === 1) {
            gpu.free(d);
            continue; // the first layer's input needs no gradient
          }
          if (nb === 2) {
            gpu.run(d);
            if (which === 0) maxErrs[`${name} ${l.c}`] = maxRelErr(await gpu.readF32(yb), conv2dRef(x, w, b, s));
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
      `${'kernel'.padEnd(10)} ${'shape'.padEnd(22)} ${'ms'.padStart(10)} ${'GFLOP/s'.padStart(10)} ${'GB/s'.padStart(8)} ${'max rel err'.padStart(12)}`,
    );
    for (const r of rows)
      console.log(
        `${r.kernel.padEnd(10)} ${r.shape.padEnd(22)} ${r.ms.toFixed(3).padStart(10)} ${r.gflops.toFixed(1).padStart(10)} ${r.gbps.toFixed(2).padStart(8)} ${Number.isNaN(r.maxErr) ? '(not run)'.padStart(12) : r.maxErr.toExponential(1).padStart(12)}`,
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
await main();
