// Training benchmark: images/s of a .net model at given batch sizes (first epoch reported apart:
// it includes pipeline compilation), dispatches and submits per step, planned GPU bytes.
//   node dist/bench/train.js [model.net] [--batch 64,256] [--steps N] [--subset N] [--json]
import { readFileSync } from 'node:fs';
import { openNodeGpu } from '../src/node/gpu.ts';
import { adapterName } from '../src/gpu/device.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import { loadFashionMnist } from '../src/node/data.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const file = args.find((a) => a.endsWith('.net')) ?? 'examples/reference.net';
const json = args.includes('--json');
const gpu = await openNodeGpu();
const ir = parseNet(readFileSync(file, 'utf8'), file);
const date = new Date().toISOString().slice(0, 10);
const steps = Number(opt('steps', gpu.adapter.cpu ? '24' : '2000'));
const { train } = loadFashionMnist(opt('data', '/usr/share/datasets/fashion-mnist'));
if (!json) console.log(`adapter: ${adapterName(gpu.adapter)}   model: ${file}   date: ${date}`);
for (const batch of opt('batch', '64,256').split(',').map(Number)) {
  const t = new Trainer(gpu, ir, 1);
  // Two "epochs" of `steps` steps each over a subset: the first pays for compilation.
  const data = { ...train, n: Math.min(train.n, steps * batch) };
  data.images = train.images.subarray(0, data.n * 784);
  data.labels = train.labels.subarray(0, data.n);
  const times: number[] = [];
  await t.fit(data, null, {
    epochs: 2, batch, lr: ir.train.lr, optimizer: { name: ir.train.optimizer, momentum: ir.train.momentum, nesterov: ir.train.nesterov, weightDecay: ir.train.weightDecay },
    schedule: 'constant', labelSmoothing: 0, seed: 1, stepsPerSubmit: gpu.adapter.cpu ? 4 : 50, progressEvery: 1e9,
    onEpoch: (l) => void times.push(l.seconds),
  });
  const info = t.planInfo();
  const row = { bench: 'train', adapter: adapterName(gpu.adapter), model: file, date, batch, steps, first_epoch_images_per_s: Math.round((steps * batch) / times[0]!), images_per_s: Math.round((steps * batch) / times[1]!), dispatches_per_step: info.dispatchesPerStep, submits_per_step: info.submitsPerStep, planned_bytes: info.plannedBytes };
  if (json) console.log(JSON.stringify(row));
  else console.log(`fmgpu train batch=${batch}: ${row.images_per_s.toLocaleString('en-US')} images/s (first epoch ${row.first_epoch_images_per_s.toLocaleString('en-US')}), ${row.dispatches_per_step} dispatches/step, ${row.submits_per_step.toFixed(3)} submits/step, planned ${(row.planned_bytes / 2 ** 20).toFixed(1)} MiB`);
  t.release();
}
gpu.destroy();
