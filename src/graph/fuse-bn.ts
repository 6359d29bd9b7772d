// A batchnorm whose only reader is an activation runs as one pass with it (src/graph/fuse.ts lists the
// fusion with the others): forward act(batchnorm(x)), the batchnorm's output never written, and a pooling
// of windows apart that alone reads the activation in that pass too (in training where the adapter binds
// BN_POOL_BUFFERS storage buffers; at inference the activation's output is then never written either).
// Backward act'(z) folded into the batchnorm backward's reads (z recomputed from x), unless a backward chain
// took the activation as its head.
import { gradFromOutput } from '../ops/act.ts';
import { poolShape, windowsApart } from '../ops/pool.ts';
import type { BackwardFusion, Fusion, PoolNode } from './fuse.ts';
import { inShapes, type Graph, type Node, type NodeOf, type Tensor } from './graph.ts';

/**
 * A batchnorm and the activation reading its output; `backward`: act' folded into its backward too;
 * `pool`: the pooling (windows apart, no dropout fused after it) that reads the activation, run in the
 * batchnorm's own pass forward (shaders/batchnorm.wgsl forward_train_pool).
 */
export interface BnActFusion {
  kind: 'batchnorm';
  bn: NodeOf<'batchnorm'>;
  act: NodeOf<'activation'>;
  backward: boolean;
  pool?: PoolNode;
}

/** Storage buffers shaders/batchnorm.wgsl forward_train_pool binds. */
export const BN_POOL_BUFFERS = 11;

/**
 * A batchnorm whose only reader is an activation; the chain heads among those read act' from its output.
 * A pooling of windows apart that alone reads the activation, with no forward fusion of its own, joins
 * the batchnorm's pass (`pools`: the adapter binds enough buffers).
 */
export function batchnormFusions(
  graph: Graph,
  soleReader: (t: Tensor) => Node | null,
  o: { chains: Fusion[]; forward: Fusion[]; pools: boolean; training: boolean },
): BnActFusion[] {
  const out: BnActFusion[] = [];
  const fused = new Set(o.forward.flatMap((f) => (f.kind === 'forward' ? [f.pool] : [])));
  for (const bn of graph.nodes) {
    const act = soleReader(bn.out);
    if (bn.op !== 'batchnorm' || act?.op !== 'activation' || act.attrs.act.kind === 'linear') continue;
    const chain = o.chains.find((c): c is BackwardFusion => c.kind === 'backward' && c.head === act);
    if (chain && !gradFromOutput(act.attrs.act)) continue;
    if (chain) chain.fromOutput = true;
    const next = soleReader(act.out);
    const pooling = next?.op === 'maxpool' || next?.op === 'avgpool';
    const pool = pooling && !fused.has(next) && windowsApart(poolShape(inShapes(next), next.attrs)) ? next : null;
    const f: BnActFusion = { kind: 'batchnorm', bn: bn as NodeOf<'batchnorm'>, act, backward: o.training && !chain };
    out.push(pool && o.pools ? { ...f, pool } : f);
  }
  return out;
}

/**
 * The batchnorm as the fused kernels run it, writing the activation's output (its own is never
 * written): with the activation in its attributes, or (`act` false: a backward whose act' a chain
 * took) without.
 */
export function batchnormWithAct(f: BnActFusion, act = true): Node {
  return { ...f.bn, attrs: act ? { ...f.bn.attrs, act: f.act.attrs.act } : f.bn.attrs, out: f.act.out };
}
