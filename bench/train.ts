// Training benchmark: images/s of a .net model at given batch sizes (first epoch reported apart:
// it includes pipeline compilation), dispatches and submits per step, planned GPU bytes; then
// inference over the test set as `fmgpu eval` runs it (--infer-reps passes; 0 skips it).
//   node dist/bench/train.js [model.net] [--batch 64,256] [--steps N] [--infer-reps N] [--data DIR] [--json]
//                            [--seconds S]
// --seconds S bounds each measurement in time (bench/gpu-check.sh): per batch size a warm-up of a
// few steps, then up to N steps (epoch after epoch) until S seconds have passed; inference passes
// likewise. Without it, two epochs of N steps each, the first reported apart.
import { readFileSync } from 'node:fs';
import { openNodeGpu } from '../src/node/gpu.ts';
import { adapterName } from '../src/gpu/device.ts';
import { parseNet } from '../dsl/index.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { benchArgs, benchData, fmgpuLine, inferLine, measureFmgpu, measureInference } from './common.ts';

const { opt, file, json } = benchArgs();
const gpu = await openNodeGpu();
const ir = parseNet(readFileSync(file, 'utf8'), file);
const date = new Date().toISOString().slice(0, 10);
const steps = Number(opt('steps', gpu.adapter.cpu ? '24' : '2000'));
const inferReps = Number(opt('infer-reps', gpu.adapter.cpu ? '1' : '20'));
const seconds = Number(opt('seconds', '0'));
const { train, test } = loadFashionMnist(opt('data', '/usr/share/datasets/fashion-mnist'));
if (!json) console.log(`adapter: ${adapterName(gpu.adapter)}   model: ${file}   date: ${date}`);
for (const batch of opt('batch', '64,256').split(',').map(Number)) {
  const data = benchData(train, steps, batch);
  const row = await measureFmgpu(gpu, ir, file, data, batch, date, seconds > 0 ? { seconds, steps } : undefined);
  console.log(json ? JSON.stringify(row) : fmgpuLine(row));
}
if (inferReps > 0) {
  const row = await measureInference(gpu, ir, file, test, date, inferReps, seconds > 0 ? { seconds } : undefined);
  console.log(json ? JSON.stringify(row) : inferLine(row));
}
gpu.destroy();
