// Why a loss diverged: one inference forward pass of the current weights that keeps every node's
// output, a non-finite check per output on the GPU (one flag word each, one read-back), then the
// first flagged output read back to find its first bad value. "The loss became NaN" says that
// something overflowed; this says where: the first layer, in graph order, whose output is not finite.
import type { Dispatch } from '../gpu/runtime.ts';
import { dispatchList } from '../gpu/runtime.ts';
import { buildGraph } from '../model/build.ts';
import { numel } from '../graph/graph.ts';
import { plan } from '../graph/plan.ts';
import { nonFiniteCheck } from '../ops/reduce.ts';
import { gatherEval, uploadDataset, type GpuDataset } from '../data/batch.ts';
import { subset, type Dataset } from '../data/dataset.ts';
import type { Trainer } from './trainer.ts';

export interface NonFinite {
  /** The layer as the summary names it (`conv37`, `res12.conv2`, `res12` for its add). */
  layer: string;
  /** The graph op that produced it (`conv2d`, `add`, `activation`, …). */
  op: string;
  /** Flat index into the output [batch, …] (NCHW): the first value that is NaN or ±Inf. */
  index: number;
  value: number;
}

/**
 * The first node, in graph order, whose output on the first `batch` images of `ds` holds NaN or
 * ±Inf (an inference pass: dropout off, batch norm on its running statistics), or null if none
 * does. Every activation of the batch is kept at once, so a small batch (a few images) is enough.
 */
export async function firstNonFinite(trainer: Trainer, ds: Dataset, batch: number): Promise<NonFinite | null> {
  const n = Math.min(batch, ds.n);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`firstNonFinite needs at least one image, got batch ${batch} of ${ds.n}`);
  const gpu = trainer.gpu;
  const built = buildGraph(trainer.ir, n, { seed: trainer.seed });
  const nodes = built.graph.nodes;
  const p = plan(gpu, built.graph, {
    training: false,
    logits: built.logits,
    labels: null,
    persistent: trainer.params.buffers,
    counter: trainer.counter,
    stats: trainer.stats,
    keep: nodes.map((node) => node.out),
  });
  const words = Math.max(1, nodes.length);
  const flags = gpu.alloc(words * 4, 'non-finite flags');
  const labels = gpu.alloc(n * 4, 'labels (unused)');
  let data: GpuDataset | null = null;
  let own: Dispatch[] = [];
  try {
    data = uploadDataset(gpu, subset(ds, n));
    gpu.write(flags, new Uint32Array(words));
    const gather = dispatchList(gatherEval(gpu, { data, x: p.buffer(built.x), labels }, { batch: n, offset: 0 }));
    const checks = nodes.map((node, i) => nonFiniteCheck(gpu, { x: p.buffer(node.out), flag: flags }, { n: numel(node.out.shape), index: i }));
    own = [...gather, ...checks];
    gpu.run([...gather, ...p.forward, ...checks]);
    const flagged = (await gpu.readU32(flags, nodes.length)).findIndex((f) => f !== 0);
    const node = nodes[flagged];
    if (!node) return null;
    const r = p.buffer(node.out);
    const values = 'buffer' in r ? await gpu.readF32(r.buffer, numel(node.out.shape), (r.offset ?? 0) / 4) : await gpu.readF32(r, numel(node.out.shape));
    const index = values.findIndex((v) => !Number.isFinite(v));
    return { layer: node.layer ?? node.op, op: node.op, index, value: values[index]! };
  } finally {
    gpu.free(own);
    gpu.release(flags);
    gpu.release(labels);
    data?.release();
    p.release();
  }
}
