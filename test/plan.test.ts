// The planner's output for the example networks, pinned: a refactor of plan() must leave the
// buffers it allocates (reused by liveness) and the dispatches it records exactly as they were.
// Scratch sizes and kernels depend on the adapter, so the pins are per adapter family; on an
// adapter with no pins the plan is only checked to be well formed.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useGpu } from './helpers/gpu.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { ParamStore } from '../src/model/params.ts';
import { plan } from '../src/graph/plan.ts';
import type { Gpu } from '../src/gpu/runtime.ts';

interface Pin {
  plannedBytes: number;
  forward: number;
  backward: number;
  /** FNV-1a of the dispatch labels in order, joined by newlines. */
  labels: string;
}

const fnv = (s: string): string => {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, '0');
};

/** Which kernels and scratch a plan gets on this adapter (Gpu tuning). */
const family = (g: Gpu): string => `${g.adapter.cpu ? 'cpu' : 'gpu'} lanes=${g.lanes} side=${g.gemmSide}`;

// 2026-12 (issue 17): forward +1, the loss's totals pass (softmax_xent.ts: the loss pass leaves
// per-workgroup partials, a second pass sums them in a fixed order); training bytes: the parameter
// gradients in one buffer mirroring the parameters' pack (plan.ts gradientPlaces) instead of pooled.
// 2026-12 (issue 17, fusion): training plans run the chains src/graph/fuse.ts finds as one kernel
// each (pooling + dropout forward; dropoutᵀ + unpooling + activation derivative backward): fewer
// dispatches, and fewer bytes (the pooled and the unpooled gradients never exist).
// 2026-12 (issue 17, CPU lanes): the lane kernels' conv bias gradient comes out of the weight
// gradient's pass (conv2d_backward_weights_lanes.wgsl SUMS): one dispatch fewer per conv with a bias.
// 2026-12 (issue 17, batchnorm): batch-norm statistics and backward sums over (slice, channel) grids,
// two dispatches each way instead of one serial one, the activation after it fused (fuse.ts): batchnorm.net
// forward +3 stats −3 relu, backward +3 sums (its relus are pooling chains' heads: act' stays there);
// inference bytes +1,536 (the statistics' partial sums, offered as forward scratch in inference too);
// training bytes +3.2 MB, where liveness now keeps the activation's output instead of the
// batchnorm's: not yet looked into.
// 2026-12 (issue 17, conv epilogue): a conv whose only reader is a 2×2 max pooling of its even output
// pools (and drops out) in its own epilogue (fuse.ts): reference.net forward −2 (conv1, conv2; conv3's
// 7×7 output is odd), leaky.net −2 (no dropout there); bytes unchanged (the pooled tensor is written either way).
// 2026-12 (issue 17, dense epilogues): a dense layer whose only reader is a dropout drops out in its own
// epilogue, and a backward chain without pooling read by a dense layer alone runs in that layer's dX
// (fuse.ts): reference.net and leaky.net forward −1 and backward −1; batchnorm.net backward −1 (its chain is
// batchnorm+relu, dropout: no dense forward to fuse); bytes unchanged (the same tensors are written).
// 2026-12 (issue 17, the step's end in its update): the loss pass of a batch of 256 or fewer adds its own
// totals (softmax_xent.ts): forward −1 in every plan here (batch 64), the totals pass gone.
// 2026-12 (issue 17, batchnorm pools): a batchnorm + activation whose output only a pooling of windows apart
// reads pools in its own pass (fuse.ts BnActFusion.pool): batchnorm.net forward −2; bytes unchanged.
// 2026-12 (issue 17, chains in a dX's store): a backward chain whose pooling has windows apart, read (through a
// flatten) by a dense layer or conv alone, runs where that layer's dX stores (fuse.ts dxReader): reference.net
// backward −3, batchnorm.net −2, leaky.net −2; bytes −1.1, −0.8 and −2.4 MB (the dX between is never made).
// 2026-12 (issue 17, pairs): neighbouring independent GEMMs run as one dispatch on the tiled kernels only
// (src/gpu/pair.ts); these plans are of the lane kernels, which measured no faster paired: unchanged.
// 2026-12 (issue 17, odd outputs pooled in the conv's epilogue): a 2×2 pooling of valid windows over an odd
// output runs in the conv's forward too (lib/conv_out_pool.wgsl): reference.net forward −1 (conv3 + pool3);
// bytes unchanged. Inference plans fuse a conv's pooling into its epilogue too (fuse.ts findFusions; none
// before; no argmax written): reference.net inference forward −3, leaky.net −2; bytes −0.8 MB each.
// 2026-12 (issue 17, what a pooling reads): conv3's pooled forward sums only the 6×6 of its 7×7 outputs that
// its pooling reads, and its weight gradient only those (src/graph/covered.ts; their labels say so):
// reference.net labels only.
// 2026-12 (issue 17, an add's fan-out): an add passes its output's gradient on to both inputs as it is, no copy
// (plan.ts fansOut): residual.net backward −4 (two copies a block); bytes unchanged. An add whose only reader is an
// activation runs as one pass with it (fuse-add.ts): residual.net forward −2, training and inference; training
// bytes −4.8 MB (the sums are never written; act' from the activation's output). A block input's two gradients
// are added as they are read (grads.ts), in that act' pass where the add before it takes them: backward −1;
// bytes +3.2 MB (both contributions live until that pass, one 28×28×16 tensor more at its peak).
// 2026-12 (issue 17, a lone act' in the dX above): a chain of one elementary backward runs where the dX of the
// layer reading it stores (fuse.ts loneChainPays): residual.net backward −2 (each block's first conv's relu');
// bytes unchanged (liveness had the dX and the dZ share storage). A conv or dense layer whose output has two
// gradients adds them in its act' pass (plan.ts, fuse-add.ts actGradient): residual.net backward −1 (conv1's).
// 2026-12 (issue 17, batch norm's activation at inference): a batchnorm whose only reader is an activation
// activates in its own pass at inference too (fuse-bn.ts): batchnorm.net inference forward −3; bytes unchanged.
// And pools there, writing the pooled output alone (forward_infer_pool): forward −2; bytes −6.4 MB (the two
// activations before the poolings are never made).
// 2026-12 (issue 17, batch norm on a CPU adapter): a batchnorm's slice passes run 16-thread workgroups on a CPU
// adapter (src/ops/batchnorm.ts bnWidth), so a channel is cut into more slices: batchnorm.net training bytes
// +13.8 KB (the partial sums); labels (their slice counts).
// 2026-12 (issue 17, the residual add in a conv's store): a block ending in a conv adds its shortcut and activates
// as that conv's lane (or Winograd) forward stores (fuse-add.ts AddActFusion.conv): residual.net forward −2,
// training and inference; training bytes −4.8 MB (each block's conv output is never written).
// 2026-12 (issue 17, an add's act' in the global pooling's backward): residual.net's last relu' runs as the
// global average pooling's backward stores (fuse.ts dxReader): backward −1; training bytes −1.4 MB (the
// pooling's dX is never written).
// 2026-12 (issue 17, a gradient two layers give): each block's input gets its two gradients summed, and the
// relu' before it applied, where the block's first conv's dX stores (src/graph/junction.ts), no longer in an
// act' pass of their own: residual.net backward −2; training bytes −3.2 MB (neither the dX alone nor the sum
// before act' is written).
// 2026-12 (issue 17, batch norm's channels whole): where a channel is one slice (on a CPU adapter wherever the
// channels fill its units), each way one pass makes the statistics or sums it uses (src/ops/batchnorm.ts
// bnWhole): batchnorm.net training forward −3, backward −3; bytes −15 KB (no partial sums).
const PINS: Record<string, Record<string, Pin>> = {
  'cpu lanes=8 side=8': {
    'reference.net training': { plannedBytes: 29156656, forward: 6, backward: 13, labels: 'f3848e21' },
    'reference.net inference': { plannedBytes: 9031936, forward: 6, backward: 0, labels: '2d24836a' },
    'residual.net training': { plannedBytes: 22963760, forward: 9, backward: 21, labels: '28c1696a' },
    'residual.net inference': { plannedBytes: 9834752, forward: 9, backward: 0, labels: '0b88944e' },
    'batchnorm.net training': { plannedBytes: 55047344, forward: 9, backward: 13, labels: 'f327477b' },
    'batchnorm.net inference': { plannedBytes: 8230656, forward: 8, backward: 0, labels: '175ba1a7' },
    'leaky.net training': { plannedBytes: 26075952, forward: 5, backward: 11, labels: '6e1f8573' },
    'leaky.net inference': { plannedBytes: 9031936, forward: 5, backward: 0, labels: '8c1f5f32' },
  },
};

function planOf(g: Gpu, file: string, batch: number, training: boolean) {
  const built = buildGraph(parseNet(readFileSync(`examples/${file}`, 'utf8'), file), batch);
  const store = new ParamStore(g, built.params);
  const counter = g.alloc(16),
    stats = g.alloc(16);
  const p = plan(g, built.graph, {
    training,
    logits: built.logits,
    labels: built.labels,
    persistent: store.buffers,
    counter,
    stats,
  });
  const labels = [...p.forward, ...p.backward].map((d) => d.label);
  const pin: Pin = {
    plannedBytes: p.plannedBytes,
    forward: p.forward.length,
    backward: p.backward.length,
    labels: fnv(labels.join('\n')),
  };
  p.release();
  store.release();
  g.release(counter);
  g.release(stats);
  return { pin, labels };
}

describe('plans of the example networks at batch 64', () => {
  const gpu = useGpu();
  const cases = ['reference.net', 'residual.net', 'batchnorm.net', 'leaky.net'].flatMap((f) =>
    [true, false].map((t) => [`${f} ${t ? 'training' : 'inference'}`, f, t] as const),
  );
  it.each(cases)('%s', (name, file, training) => {
    const g = gpu();
    const { pin, labels } = planOf(g, file, 64, training);
    expect(labels.length).toBe(pin.forward + pin.backward);
    const want = PINS[family(g)]?.[name];
    if (want) expect(pin).toEqual(want);
    expect(g.liveBytes).toBe(0);
  });
});
