// Do the fused kernels train to the unfused plan's weights on this adapter, bit for bit? The suite checks
// it on lavapipe (test/fusion.test.ts); bench/gpu-check.sh runs this on a GPU, where another compiler
// could contract or reorder differently in two kernels that should compute alike.
//   node dist/bench/bits.js [--models A.net,B.net] [--batch 8] [--steps 3] [--tiles] [--json]
// For each model: its training plan with the planner's fusions and without (PlanOptions.fuse; the fused
// plan also runs its neighbouring independent GEMMs side by side on the tiled kernels, src/gpu/pair.ts, and
// gathers the batch in the first conv's forward), the same initial weights, dataset and counter, `steps`
// Adam steps (bench/plan-run.ts); then every parameter and state tensor compared.
// A line per model: identical, or how many values differ and the largest |Δ|; exit 1 when any differs.
// --tiles: the tiled kernels as an H100 gets them, on whatever adapter (lavapipe too).
import { readFileSync } from 'node:fs';
import { adapterName } from '../src/gpu/device.ts';
import { openNodeGpu } from '../src/node/gpu.ts';
import { benchArgs } from './common.ts';
import { runPlan } from './plan-run.ts';

const { opt, json, args } = benchArgs();
const models = opt('models', 'examples/reference.net,examples/fast.net,examples/best.net').split(',');
const batch = Number(opt('batch', '8'));
const steps = Number(opt('steps', '3'));

const opened = await openNodeGpu();
const g = args.includes('--tiles') ? opened.withTuning({ lanes: 0, gemmSide: 16, units: 132 }) : opened;
const differ: string[] = [];
for (const file of models) {
  const src = readFileSync(file, 'utf8');
  const fused = await runPlan(g, src, { fuse: true, batch, steps, lr: 0.001 });
  const plain = await runPlan(g, src, { fuse: false, batch, steps, lr: 0.001 });
  let [values, off, most] = [0, 0, 0];
  for (const [name, t] of plain.weights) {
    const mine = fused.weights.get(name)?.data ?? new Float32Array(t.data.length).fill(Number.NaN);
    values += t.data.length;
    t.data.forEach((v, i) => {
      const w = mine[i] ?? Number.NaN;
      if (Object.is(v, w)) return;
      off++;
      most = Math.max(most, Math.abs(v - w));
    });
  }
  if (off > 0) differ.push(`${file} (${off} of ${values}, max |Δ| ${most})`);
  const row = {
    bench: 'bits',
    adapter: adapterName(g.adapter),
    family: g.lanes > 0 ? `lanes ${g.lanes}` : 'tiled',
    model: file,
    batch,
    steps,
    dispatches: { fused: fused.dispatches, unfused: plain.dispatches },
    values,
    differing: off,
    maxAbsDiff: most,
  };
  const verdict = off === 0 ? 'identical' : `${off} of ${values} differ, max |Δ| ${most}`;
  const per = `${fused.dispatches} vs ${plain.dispatches} dispatches a step`;
  if (json) console.log(JSON.stringify(row));
  else console.log(`fused vs unfused ${file} batch=${batch} ${steps} steps (${row.family}, ${per}): ${verdict}`);
}
opened.destroy();
// The one line a failed part's note shows (bench/gpu-check.sh).
if (differ.length > 0)
  console.error(`fused and unfused differ on ${differ.length} of ${models.length}: ${differ.join(', ')}`);
process.exit(differ.length > 0 ? 1 : 0);
