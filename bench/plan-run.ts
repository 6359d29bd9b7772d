// A training plan run for a few Adam steps on a random dataset gathered on the GPU, fused or not: what
// bench/bits.ts compares bit for bit on any adapter and test/fusion.test.ts on lavapipe. Fused, the plan
// is the trainer's (plans.ts): the update sums the deferred weight gradients (foldGradSums, unless `fold`
// says otherwise) and the first conv gathers the batch in its forward where the adapter can
// (PlanOptions.gather); unfused, the plan's first dispatch is the gather's pass, then every op's own kernels.
import { parseNet } from '../dsl/index.ts';
import { trainGatherIn, uploadDataset } from '../src/data/batch.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { plan } from '../src/graph/plan.ts';
import { buildGraph } from '../src/model/build.ts';
import { ParamStore } from '../src/model/params.ts';
import { OptimizerState } from '../src/train/optimizer.ts';
import { Rng } from '../src/util/rng.ts';

export interface PlanRun {
  fuse: boolean;
  batch: number;
  steps: number;
  /** The learning rate (Adam). */
  lr: number;
  /** The update sums the deferred weight gradients (default: as `fuse`). */
  fold?: boolean;
  /** Neighbouring independent GEMMs as one dispatch (PlanOptions.pair; default: as `fuse`). */
  pair?: boolean;
}

/** The weights and state after the steps, the fusions and the dispatches' labels of a step. */
export async function runPlan(g: Gpu, src: string, o: PlanRun) {
  const built = buildGraph(parseNet(src, 'plan.net'), o.batch, { seed: 3 });
  const params = new ParamStore(g, built.params);
  params.initialise(5);
  const counter = g.upload(new Uint32Array(4));
  const [stats, rates] = [g.upload(new Uint32Array(4)), g.upload(new Float32Array([o.lr]))];
  // Every step its own batch of random images (bytes) and labels.
  const [, c = 1, h = 1, w = 1] = built.x.shape;
  const [classes = 10] = built.logits.shape.slice(1);
  const n = o.batch * o.steps;
  const rng = new Rng(11);
  const images = Uint8Array.from({ length: n * c * h * w }, () => rng.int(256));
  const data = uploadDataset(g, {
    images,
    labels: Uint8Array.from({ length: n }, () => rng.int(classes)),
    n,
    rows: h,
    cols: w,
    channels: c,
  });
  const indices = g.upload(Uint32Array.from({ length: n }, (_, i) => i));
  const settings = { batch: o.batch, stepsPerEpoch: o.steps, seed: 7 };
  const from = trainGatherIn({ data, indices, counter }, settings);
  const io = { training: true, logits: built.logits, labels: built.labels, persistent: params.buffers };
  const fold = o.fold ?? o.fuse;
  const options = {
    ...io,
    counter,
    stats,
    endsStep: true,
    fuse: o.fuse,
    foldGradSums: fold,
    foldTotals: fold,
    pair: o.pair,
  };
  const p = plan(g, built.graph, { ...options, gather: { input: built.x, from } });
  const opt = new OptimizerState(g, params, { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0 });
  const updates = opt.updates(params, p, { counter, lrTable: rates, endsStep: p.endsStep });
  const step = [...p.forward, ...p.backward, ...updates, ...p.finish];
  for (let i = 0; i < o.steps; i++) g.run(step);
  const weights = await params.read();
  const totals = await g.readU32(stats); // the steps' loss sum (f32 bits) and correct count
  const labels = (ds: readonly { label: string }[]) => ds.map((d) => d.label);
  const out = {
    ...{ weights, totals, fusions: p.fusions.length, gathered: p.gathered, dispatches: step.length },
    ...{ forward: labels(p.forward), backward: labels(p.backward), update: labels(updates) },
  };
  g.free(updates);
  p.release();
  opt.release();
  params.release();
  data.release();
  for (const b of [counter, stats, rates, indices]) g.release(b);
  return out;
}
