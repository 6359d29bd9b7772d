// Do the fused kernels train to the unfused plan's weights on this adapter, bit for bit? The suite checks
// it on lavapipe (test/fusion.test.ts); bench/gpu-check.sh runs this on a GPU, where another compiler
// could contract or reorder differently in two kernels that should compute alike.
//   node dist/bench/bits.js [--models A.net,B.net] [--batch 8] [--steps 3] [--tiles] [--json]
// For each model: its training plan with the planner's fusions and without (PlanOptions.fuse; the fused
// plan also runs its neighbouring independent GEMMs side by side on the tiled kernels, src/gpu/pair.ts), the same
// initial weights, data and counter, `steps` Adam steps; then every parameter and state tensor compared.
// A line per model: identical, or how many values differ and the largest |Δ|; exit 1 when any differs.
// --tiles: the tiled kernels as an H100 gets them, on whatever adapter (lavapipe too).
import { readFileSync } from 'node:fs';
import { parseNet } from '../dsl/index.ts';
import { adapterName } from '../src/gpu/device.ts';
import { rangeOf } from '../src/gpu/packed.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { plan } from '../src/graph/plan.ts';
import { buildGraph } from '../src/model/build.ts';
import { ParamStore } from '../src/model/params.ts';
import { openNodeGpu } from '../src/node/gpu.ts';
import { OptimizerState } from '../src/train/optimizer.ts';
import { Rng } from '../src/util/rng.ts';
import { benchArgs } from './common.ts';

const { opt, json, args } = benchArgs();
const models = opt('models', 'examples/reference.net,examples/fast.net,examples/best.net').split(',');
const batch = Number(opt('batch', '8'));
const steps = Number(opt('steps', '3'));

/** The weights and state after `steps` steps of `src` at `batch`, fused or not, and the dispatches a step. */
async function train(g: Gpu, src: string, fuse: boolean) {
  const built = buildGraph(parseNet(src, 'bits.net'), batch, { seed: 3 });
  const params = new ParamStore(g, built.params);
  params.initialise(5);
  const counter = g.upload(new Uint32Array(4));
  const [stats, rates] = [g.upload(new Uint32Array(4)), g.upload(new Float32Array([0.001]))];
  const o = { training: true, logits: built.logits, labels: built.labels, persistent: params.buffers };
  // Fused as the trainer plans it: the update sums the deferred weight gradients too (foldGradSums).
  const p = plan(g, built.graph, { ...o, counter, stats, endsStep: true, fuse, foldGradSums: fuse });
  const opt = new OptimizerState(g, params, { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0 });
  const step0 = { counter, lrTable: rates, endsStep: p.endsStep };
  const updates = opt.updates(params, p, step0);
  const step = [...p.forward, ...p.backward, ...updates, ...p.finish];
  const rng = new Rng(11);
  const [classes = 10] = built.logits.shape.slice(1);
  for (let i = 0; i < steps; i++) {
    const x = rangeOf(p.buffer(built.x));
    const y = rangeOf(p.buffer(built.labels));
    g.write(x.buffer, Float32Array.from(rng.floats(x.size / 4, 0, 1)), x.offset);
    g.write(
      y.buffer,
      Uint32Array.from({ length: batch }, () => rng.int(classes)),
      y.offset,
    );
    g.run(step);
  }
  const weights = await params.read();
  g.free(updates);
  p.release();
  opt.release();
  params.release();
  for (const b of [counter, stats, rates]) g.release(b);
  return { weights, dispatches: step.length };
}

const opened = await openNodeGpu();
const g = args.includes('--tiles') ? opened.withTuning({ lanes: 0, gemmSide: 16, units: 132 }) : opened;
const differ: string[] = [];
for (const file of models) {
  const src = readFileSync(file, 'utf8');
  const fused = await train(g, src, true);
  const plain = await train(g, src, false);
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
