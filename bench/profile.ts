// Per-dispatch GPU time of one training step, from timestamp queries: where a step's time goes.
// Each dispatch runs in its own compute pass with begin/end timestamps, so the sum is an upper
// bound of a step's GPU time (passes add a little each); the per-kernel shares are what matter.
//   node dist/bench/profile.js [model.net] [--batch 64] [--reps 20] [--json]
import { readFileSync } from 'node:fs';
import { openNodeGpu } from '../src/node/gpu.ts';
import { adapterName } from '../src/gpu/device.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { benchArgs, benchData } from './common.ts';
import { optimizerConfig } from '../src/train/optimizer.ts';

const { opt, file, json } = benchArgs();
const reps = Number(opt('reps', '20'));
// Dawn rounds timestamps to a coarse grain (65.5 µs here) unless told not to.
const gpu = await openNodeGpu({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
if (!gpu.hasTimestamps) {
  console.error('fmgpu bench: this adapter has no timestamp-query feature');
  process.exit(1);
}
const ir = parseNet(readFileSync(file, 'utf8'), file);
const { train } = loadFashionMnist(opt('data', '/usr/share/datasets/fashion-mnist'));

for (const batch of opt('batch', '64').split(',').map(Number)) {
  const t = new Trainer(gpu, ir, 1);
  const data = benchData(train, 4, batch);
  const opts = {
    epochs: 1,
    batch,
    lr: ir.train.lr,
    optimizer: optimizerConfig(ir.train),
    schedule: 'constant' as const,
    labelSmoothing: 0,
    seed: 1,
  };
  await t.fit(data, null, opts); // builds and compiles the plan
  const step = t.stepDispatches();
  const count = step.length * reps;
  const qs = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * count });
  const resolve = gpu.device.createBuffer({
    size: 16 * count,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const enc = gpu.device.createCommandEncoder();
  let q = 0;
  for (let r = 0; r < reps; r++) {
    for (const d of step) {
      const pass = enc.beginComputePass({
        timestampWrites: { querySet: qs, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 },
      });
      gpu.encode(pass, [d]);
      pass.end();
      q += 2;
    }
  }
  enc.resolveQuerySet(qs, 0, 2 * count, resolve, 0);
  gpu.device.queue.submit([enc.finish()]);
  const ticks = new BigUint64Array(await gpu.read(resolve, 16 * count));
  // Per dispatch position: the median over repetitions (the first repetition is dropped).
  const byLabel = new Map<string, { us: number; count: number }>();
  let total = 0;
  const rows = step.map((d, i) => {
    const us: number[] = [];
    for (let r = 1; r < reps; r++) {
      const k = 2 * (r * step.length + i);
      us.push(Number(ticks[k + 1]! - ticks[k]!) / 1000);
    }
    us.sort((a, b) => a - b);
    const med = us[us.length >> 1] ?? 0;
    total += med;
    const key = d.label.replace(/\s+\S*\d.*$/, '');
    const e = byLabel.get(key) ?? { us: 0, count: 0 };
    byLabel.set(key, { us: e.us + med, count: e.count + 1 });
    return { i, label: d.label, workgroups: d.workgroups.join('x'), us: med };
  });
  if (json) {
    // One line per dispatch: what bench/cost.ts --measured reads (batch, i and label must match its plan).
    const about = { adapter: adapterName(gpu.adapter), date: new Date().toISOString().slice(0, 10) };
    for (const r of rows) console.log(JSON.stringify({ bench: 'profile', model: file, batch, ...r, ...about }));
  } else {
    const bound = Math.round((batch / total) * 1e6).toLocaleString('en-US');
    console.log(
      `adapter: ${adapterName(gpu.adapter)}   model: ${file}   batch ${batch}: ${step.length} dispatches, ` +
        `${total.toFixed(1)} µs per step (sum of medians) -> ${bound} images/s bound`,
    );
    for (const r of rows)
      console.log(
        `${String(r.i).padStart(3)} ${r.label.padEnd(60)} ${r.workgroups.padEnd(14)} ${r.us.toFixed(1).padStart(8)} µs`,
      );
    console.log('by kernel:');
    for (const [k, v] of [...byLabel].sort((a, b) => b[1].us - a[1].us))
      console.log(
        `  ${k.padEnd(60)} ×${String(v.count).padEnd(3)} ${v.us.toFixed(1).padStart(8)} µs  ` +
          `${((100 * v.us) / total).toFixed(1)}%`,
      );
  }
  qs.destroy();
  resolve.destroy();
  t.release();
}
gpu.destroy();
