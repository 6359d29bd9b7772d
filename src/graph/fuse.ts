// Which chains of ops the planner runs as one kernel (src/ops/chain.ts, shaders/chain.wgsl), read from
// the graph of any model (the steps that run them in place of the unfused ops: fused-steps.ts):
//   forward:  a max or average pooling whose only reader is an active dropout (training, rate > 0; a
//             flatten between them too, as Keras tutorials order them: it keeps the NCHW order): one pass
//             writes the dropped, pooled output (and argmax); the pooled tensor never exists.
//             A conv whose only reader is a 2×2, stride-2 max pooling (with or without that dropout)
//             of valid windows (an odd output's last row and column in none) takes the pooling into its
//             own epilogue where its forward is one pass of whole windows (src/ops/conv2d.ts
//             forwardPools): one dispatch writes Y, the pooled (dropped) output and the argmax (at
//             inference no argmax). A dense layer whose only reader is an active
//             dropout drops out in its epilogue (shaders/lib/matmul_out_fused.wgsl): one dispatch
//             writes Y and the dropped output.
//   backward: a chain head → pooling → dropout, each the only reader of the one before (through a flatten):
//             dropoutᵀ, unpooling and the head's activation derivative in one pass. The head is a conv or
//             dense layer with its fused activation (act' from its output Y; its own backward then runs
//             linear, on dZ) or a standalone activation (act' from its kept input X). A chain may start at
//             the pooling (no head) and needs no pooling or no dropout. A stride-1 conv whose dX is all the
//             chain reads, split-K 2 to 16 ways, leaves its partials: the chain sums them (dxParts) in place
//             of the reduce pass. A chain whose output (through a flatten) only a dense layer, a conv or a
//             global average pooling reads, its pooling's windows apart, runs where that layer's dX stores
//             (dxChain, shaders/lib/chain_store.wgsl): no kernel of its own. Not where that conv's dX leaves its
//             partials to the chain (FusionOptions.dxSplits): as few passes. A chain of two or three
//             elementary backwards always fuses; of one (a lone act', as conv → relu → conv, or an add's
//             activation read by a global pooling) only where that saves a pass: in the dX, or summing its
//             partials (loneChainPays).
//   batchnorm + activation (the activation the only reader of the batchnorm's output): forward, one
//             pass writes act(batchnorm(x)), the batchnorm's output never exists (at inference too); a
//             pooling of windows apart that alone reads the activation (no dropout fused after it) pools
//             in that pass too, where the adapter binds BN_POOL_BUFFERS storage buffers (bnPools);
//             backward: act'(z) folded into the batchnorm backward's reads (z recomputed from x), unless a
//             chain above took the activation as its head: that chain then reads act'(·) from the
//             activation's output (an activation whose derivative needs its input is not fused then)
//             (fuse-bn.ts).
//   add + activation (training and inference; the activation the only reader of the add's output, its
//             derivative from its output): one pass, y = act(a + b) (fuse-add.ts); where the add's input 0
//             is a batchnorm's output it alone reads, the batchnorm's pass: act(z + shortcut) (in training
//             where the adapter binds BN_ADD_BUFFERS storage buffers, bnAdds); where it is a linear conv's
//             or dense layer's (not a conv reading the network's input), that layer's store.
// A tensor read by anything else (a residual add, the loss, a kept output) ends a chain there: the
// ops around it run unfused, as always. Fusions are data, so they can be listed (describeFusion).
import type { Act } from '../../dsl/ir.ts';
import { actName } from '../ops/act.ts';
import { chainName, type BackwardChain, type ChainPool, type DyParts } from '../ops/chain.ts';
import type { Conv2dShape } from '../ops/conv2d.ts';
import { convShape } from '../ops/conv2d_op.ts';
import { poolShape, windowsApart } from '../ops/pool.ts';
import { inShapes, numel, readersOf, type Graph, type Node, type NodeOf, type Tensor } from './graph.ts';
import { addFusions, addWithAct, layerWithAdd, type AddActFusion } from './fuse-add.ts';
import { batchnormFusions, batchnormWithAct, type BnActFusion } from './fuse-bn.ts';

export type { AddActFusion, BnActFusion, DyParts };
export { BN_POOL_BUFFERS } from './fuse-bn.ts';
export { BN_ADD_BUFFERS } from './fuse-add.ts';

export type PoolNode = NodeOf<'maxpool'> | NodeOf<'avgpool'>;
type HeadNode = NodeOf<'conv2d'> | NodeOf<'dense'> | NodeOf<'activation'>;
type DxNode = NodeOf<'dense'> | NodeOf<'conv2d'> | NodeOf<'globalavgpool'>;

export interface ForwardFusion {
  kind: 'forward';
  /**
   * A conv that pools in its epilogue (then the pooling is a 2×2, stride-2 max pooling), or a dense
   * layer that drops out in its epilogue (then there is no pooling).
   */
  head: NodeOf<'conv2d'> | NodeOf<'dense'> | null;
  pool: PoolNode | null;
  dropout: NodeOf<'dropout'> | null;
}

export interface BackwardFusion {
  kind: 'backward';
  head: HeadNode | null;
  /** An activation head whose input is a fused batchnorm's or add's (never written): act' from its output. */
  fromOutput?: boolean;
  pool: PoolNode | null;
  dropout: NodeOf<'dropout'> | null;
  /** The dense layer, conv or global pooling whose dX runs this chain as it stores (its output's only reader). */
  dx?: DxNode;
}

export type Fusion = ForwardFusion | BackwardFusion | BnActFusion | AddActFusion;

/** What decides a fusion besides the graph: training or not, and the tensors read outside the graph. */
export interface FusionOptions {
  training: boolean;
  logits: Tensor;
  keep?: readonly Tensor[];
  /**
   * Whether the adapter runs this conv's forward with a 2×2 pooling in its epilogue (conv2d.ts
   * forwardPools); left out, the graph alone decides (a listing made without an adapter).
   */
  convPools?: (conv: NodeOf<'conv2d'>) => boolean;
  /**
   * Whether the adapter binds the storage buffers a batchnorm's pass with its pooling needs
   * (BN_POOL_BUFFERS); left out, the graph alone decides.
   */
  bnPools?: boolean;
  /** Whether the adapter binds a training batchnorm's pass with a shortcut too (BN_ADD_BUFFERS); as bnPools. */
  bnAdds?: boolean;
  /**
   * Whether this conv's dX leaves its split-K partials for the chain below to sum (fused-steps.ts dxParts):
   * that chain then keeps its pass instead of running in the dX. Left out, the graph alone decides.
   */
  dxSplits?: (conv: NodeOf<'conv2d'>) => boolean;
}

const isPool = (n: Node): n is PoolNode => n.op === 'maxpool' || n.op === 'avgpool';
const isHead = (n: Node): n is HeadNode => n.op === 'conv2d' || n.op === 'dense' || n.op === 'activation';
const activeDropout = (n: Node, training: boolean): n is NodeOf<'dropout'> =>
  n.op === 'dropout' && training && n.attrs.rate > 0;
/** A chain's order: head, then pooling, then dropout. */
const stage = (n: Node, training: boolean): number =>
  isHead(n) ? 0 : isPool(n) ? 1 : activeDropout(n, training) ? 2 : -1;

/**
 * The one node reading `t` as its input 0, when nothing else reads it and it is not wanted `outside` the
 * step (the logits, kept tensors, by id).
 */
export function soleReader(
  readers: ReturnType<typeof readersOf>,
  outside: ReadonlySet<number>,
  t: Tensor,
): Node | null {
  const r = readers.get(t.id) ?? [];
  return r.length === 1 && !outside.has(t.id) && r[0]?.inputs[0] === t ? (r[0] ?? null) : null;
}

/**
 * The fusions the planner makes in this graph, in graph order (forward ones first, then backward). An
 * inference plan's are its convs with their pooling in the epilogue and its batchnorms and adds with the
 * activation after them (nothing drops out, nothing goes back).
 */
export function findFusions(graph: Graph, o: FusionOptions): Fusion[] {
  const readers = readersOf(graph);
  const outside = new Set([o.logits.id, ...(o.keep ?? []).map((t) => t.id)]);
  const sole = (t: Tensor): Node | null => soleReader(readers, outside, t);
  const writers = new Map(graph.nodes.map((n) => [n.out.id, n]));
  const writer = (t: Tensor | undefined): Node | undefined => (t ? writers.get(t.id) : undefined);
  const forward: Fusion[] = [];
  const backward: Fusion[] = [];
  const taken = new Set<Node>();
  for (const n of graph.nodes) {
    if (taken.has(n) || stage(n, o.training) < 0) continue;
    const chain = [n];
    let reader: Node | null = null; // the node after the chain that alone reads its output, if one does
    for (let next = sole(n.out); next; next = sole(next.out)) {
      if (next.op === 'reshape') continue; // a flatten keeps the NCHW order: the chain goes on through it
      const last = chain[chain.length - 1];
      if (!last || stage(next, o.training) <= stage(last, o.training)) {
        reader = next;
        break;
      }
      chain.push(next);
    }
    const head = chain.find(isHead) ?? null;
    const pool = chain.find(isPool) ?? null;
    const dropout = chain.find((c): c is NodeOf<'dropout'> => activeDropout(c, o.training)) ?? null;
    const ops = [head && headAct(head).kind !== 'linear', pool, dropout].filter(Boolean).length;
    const dx = o.training ? dxReader(pool, reader, o) : null;
    const lone = ops === 1 && o.training && loneChainPays(writer, { chain, reader, dx }, o); // backward only
    if (ops < 2 && !lone) continue;
    for (const c of chain) taken.add(c);
    if (!lone) {
      const conv = head?.op === 'conv2d' && pool && poolsInEpilogue(head, pool, o) ? head : null;
      if (pool && (dropout || conv)) forward.push({ kind: 'forward', head: conv, pool, dropout });
      else if (head?.op === 'dense' && dropout) forward.push({ kind: 'forward', head, pool: null, dropout });
    }
    if (!o.training) continue;
    backward.push({ kind: 'backward', head, pool, dropout, ...(dx ? { dx } : {}) });
  }
  const adds = addFusions(
    graph,
    { sole, writer },
    { chains: backward, training: o.training, bnAdds: o.bnAdds !== false },
  );
  // At inference a batchnorm's pooled pass binds 7 storage buffers (forward_infer_pool): any adapter's.
  const o2 = { chains: backward, forward, pools: !o.training || o.bnPools !== false, training: o.training };
  return [...forward, ...batchnormFusions(graph, sole, o2), ...adds, ...backward];
}

/**
 * The chain's reader (alone, through flattens) when it is a dense layer, conv or global average pooling whose dX
 * runs the chain as it stores: the chain's pooling has windows apart, and a conv's dX does not leave its
 * partials for the chain.
 */
function dxReader(pool: PoolNode | null, r: Node | null, o: FusionOptions): DxNode | null {
  if (pool && !windowsApart(chainPool(pool).shape)) return null;
  if (r?.op === 'dense' || r?.op === 'globalavgpool') return r as DxNode;
  if (r?.op !== 'conv2d') return null;
  const conv = r as NodeOf<'conv2d'>;
  return o.dxSplits?.(conv) ? null : conv;
}

/**
 * Whether a chain of one elementary backward (an act', an unpooling or a dropoutᵀ) is worth a fusion: where
 * the layer reading it runs it in its dX store (`dx`: no pass of its own) or, reading the chain's output itself
 * (no flatten between), sums that conv's split dX in it (fused-steps.ts dxParts: one pass in place of two).
 * Not an activation that a batchnorm before it runs in its own backward, nor an add's away from a dX (the add's
 * act' pass would stay).
 */
function loneChainPays(
  writer: (t: Tensor | undefined) => Node | undefined,
  c: { chain: Node[]; reader: Node | null; dx: DxNode | null },
  o: FusionOptions,
): boolean {
  const head = c.chain.find(isHead);
  const by = head?.op === 'activation' ? writer(head.inputs[0]) : undefined;
  if (by?.op === 'batchnorm' || (by?.op === 'add' && c.dx === null)) return false;
  const r = c.reader;
  const last = c.chain[c.chain.length - 1];
  const sums = r?.op === 'conv2d' && r.inputs[0] === last?.out && o.dxSplits?.(r as NodeOf<'conv2d'>) === true;
  return c.dx !== null || sums;
}

const headAct = (h: HeadNode): Act => h.attrs.act;

/**
 * A 2×2, stride-2 max pooling of a conv's output in valid windows (⌊H/2⌋×⌊W/2⌋ out: 'same' padding of
 * an odd size takes partial windows), which the adapter can pool in the conv's epilogue.
 */
function poolsInEpilogue(conv: NodeOf<'conv2d'>, pool: PoolNode, o: FusionOptions): boolean {
  const { kh, kw, strideH, strideW } = pool.attrs;
  const [, , h = 1, w = 1] = conv.out.shape;
  const [, , ph, pw] = pool.out.shape;
  if (pool.op !== 'maxpool' || kh !== 2 || kw !== 2 || strideH !== 2 || strideW !== 2) return false;
  if (ph !== Math.floor(h / 2) || pw !== Math.floor(w / 2)) return false;
  return o.convPools ? o.convPools(conv) : true;
}

/** The fusions by the nodes they start and end at: how the planner finds them as it walks the graph. */
export interface FusionIndex {
  /**
   * Forward: by the node that runs the fused kernel, the pooling (or, for a dense layer's, the dropout);
   * the chain's other nodes then run nothing.
   */
  forward: Map<Node, ForwardFusion>;
  /** Forward: the nodes whose work a fused kernel did. */
  absorbed: Set<Node>;
  /** Backward: by the chain's last node, whose output gradient the fused kernel reads (not the chains in a dX). */
  backward: Map<Node, BackwardFusion>;
  /** Backward: by the dense layer or conv whose dX runs the chain as it stores. */
  dx: Map<Node, BackwardFusion>;
  /** Batchnorm + activation: by the batchnorm (which runs the fused kernels) and by the activation. */
  batchnorm: Map<Node, BnActFusion>;
  /** Add + activation: by the add (where the fused kernel runs), the activation and the batchnorm running it. */
  add: Map<Node, AddActFusion>;
}

export function indexFusions(fusions: readonly Fusion[]): FusionIndex {
  const ix: FusionIndex = {
    forward: new Map(),
    absorbed: new Set(),
    backward: new Map(),
    dx: new Map(),
    batchnorm: new Map(),
    add: new Map(),
  };
  for (const f of fusions) {
    if (f.kind === 'add') {
      ix.add.set(f.add, f).set(f.act, f);
      for (const n of [f.bn, f.layer]) if (n) ix.add.set(n, f);
      ix.absorbed.add(f.act);
      continue;
    }
    if (f.kind === 'batchnorm') {
      ix.batchnorm.set(f.bn, f).set(f.act, f);
      ix.absorbed.add(f.act);
      if (f.pool) ix.absorbed.add(f.pool);
      continue;
    }
    if (f.kind === 'forward') {
      const runner = f.pool ?? f.dropout;
      if (runner) ix.forward.set(runner, f);
      for (const n of [f.head, f.pool, f.dropout]) if (n && n !== runner) ix.absorbed.add(n);
      continue;
    }
    // The chain's last node: the fused kernel reads its output's gradient (a chain in a dX has no kernel).
    const last = f.dropout ?? f.pool ?? f.head;
    if (last && !f.dx) ix.backward.set(last, f);
    if (f.dx) ix.dx.set(f.dx, f);
  }
  return ix;
}

/** The first node of a backward chain: the fused kernel writes the gradient of its input 0 (or its dZ). */
const chainStart = (f: BackwardFusion): Node => {
  const first = f.head ?? f.pool ?? f.dropout;
  if (!first) throw new Error('a backward fusion without nodes');
  return first;
};

export function chainPool(p: PoolNode): ChainPool {
  return { kind: p.op === 'maxpool' ? 'max' : 'avg', shape: poolShape(inShapes(p), p.attrs) };
}

/** A conv node's shape, as its kernels take it. */
export const convShapeOf = (conv: NodeOf<'conv2d'>): Conv2dShape => convShape(inShapes(conv), conv.attrs);

/**
 * The backward chain's kernel description. A conv or dense head: the derivative of its fused
 * activation from its output, the kernel writing its dZ; an activation head: from its input, the
 * kernel writing that input's gradient; no head: no activation.
 */
export function chainOf(f: BackwardFusion): BackwardChain {
  const count = numel(chainInput(f).shape);
  const act: Act = f.head ? headAct(f.head) : { kind: 'linear' };
  const from = f.head?.op === 'activation' && !f.fromOutput ? 'input' : 'output';
  const dropout = f.dropout ? { rate: f.dropout.attrs.rate, seed: f.dropout.attrs.seed } : undefined;
  return { count, act, from, pool: f.pool ? chainPool(f.pool) : undefined, dropout };
}

/** What the fused backward writes: a conv or dense head's dZ (pre-activation), else the chain input's gradient. */
export const writesPreActivation = (f: BackwardFusion): boolean => f.head !== null && f.head.op !== 'activation';

/** The tensor the fused backward reads for the activation derivative: Y (conv, dense) or X (activation). */
export function chainSaved(f: BackwardFusion): Tensor | null {
  if (!f.head || headAct(f.head).kind === 'linear') return null;
  return f.head.op === 'activation' && !f.fromOutput ? (f.head.inputs[0] ?? null) : f.head.out;
}

export const named = (n: Node): string => `${n.layer ?? '?'} ${n.op}`;

/** One line naming the layers and ops a fused kernel joins: `backward  conv1 conv2d relu' + pool1 maxpool + …`. */
export function describeFusion(f: Fusion): string {
  if (f.kind === 'add') {
    const way = f.backward ? 'both ways' : 'forward  ';
    const first = f.bn ?? f.layer;
    const [bn, by] = first ? [`${named(first)} + `, `${first.op === 'conv2d' ? 'conv' : first.op}+`] : ['', ''];
    return `${way} ${bn}${named(f.add)} + ${named(f.act)}: ${by}add+${actName(f.act.attrs.act)}`;
  }
  if (f.kind === 'batchnorm') {
    const way = f.backward ? 'both ways' : 'forward  ';
    const pool = f.pool ? [` + ${named(f.pool)}`, `+${f.pool.op}`] : ['', ''];
    return `${way} ${named(f.bn)} + ${named(f.act)}${pool[0]}: batchnorm+${actName(f.act.attrs.act)}${pool[1]}`;
  }
  if (f.kind === 'forward') {
    const nodes: Node[] = [f.head, f.pool, f.dropout].flatMap((n) => (n ? [n] : []));
    const head = f.head && (f.head.op === 'conv2d' ? 'conv' : 'dense');
    const ops = [head, f.pool && `${f.pool.op === 'maxpool' ? 'max' : 'avg'}pool`, f.dropout && 'dropout'];
    return `forward   ${nodes.map(named).join(' + ')}: ${ops.filter(Boolean).join('+')}`;
  }
  const parts: string[] = [];
  if (f.head) parts.push(`${named(f.head)}${headAct(f.head).kind === 'linear' ? '' : ` (${headAct(f.head).kind}')`}`);
  if (f.pool) parts.push(named(f.pool));
  if (f.dropout) parts.push(named(f.dropout));
  return `backward  ${parts.join(' + ')}: ${chainName(chainOf(f))}${f.dx ? ` in ${named(f.dx)}'s dX` : ''}`;
}

/** The chain's first tensor: a conv or dense head's output (its dZ is written), else the chain's input. */
export function chainInput(f: BackwardFusion): Tensor {
  const start = chainStart(f);
  const t = writesPreActivation(f) ? start.out : start.inputs[0];
  if (!t) throw new Error(`${named(start)} has no input`);
  return t;
}

/**
 * How the planner runs node `n`: a fused batchnorm or add with its activation (act' where its fusion folds it);
 * forward, an add whose conv or dense layer adds in its store as that layer (layerWithAdd).
 */
export function runAs(ix: FusionIndex, n: Node, backward = false): Node {
  const a = ix.add.get(n);
  if (a?.add === n && a.layer && !backward) return layerWithAdd(a, a.layer); // the layer runs where the add is
  if (a?.add === n) return addWithAct(a, !backward || a.backward);
  // A batchnorm, conv or dense layer whose pass adds and activates: its own output is never written.
  if (a?.bn === n || a?.layer === n) return { ...n, out: a.act.out };
  const f = ix.batchnorm.get(n);
  return f?.bn === n ? batchnormWithAct(f, !backward || f.backward) : n;
}

/**
 * For an activation whose act' a fused batchnorm's or add's backward takes: hands `pass` that node's output
 * (its gradient is the activation's output gradient) and says true; false for any other node.
 */
export function foldAct(ix: FusionIndex, n: Node, pass: (out: Tensor) => void): boolean {
  const f = ix.batchnorm.get(n) ?? ix.add.get(n);
  if (f?.act !== n || !f.backward) return false;
  pass(f.kind === 'add' ? f.add.out : f.bn.out);
  return true;
}

/** A conv, dense or add node whose activation's derivative a fused backward took: its backward runs linear. */
export function withoutActivation(n: Node): Node {
  if (n.op === 'add') return { ...n, attrs: {} };
  if (n.op === 'conv2d') return { ...n, attrs: { ...n.attrs, act: { kind: 'linear' } } };
  if (n.op === 'dense') return { ...n, attrs: { ...n.attrs, act: { kind: 'linear' } } };
  return n;
}
