// Model IR (from dsl/) → autograd graph for one batch size and mode, plus the parameter list.
// Parameter names: `<layer>.weight`, `<layer>.bias`; batch norm `<layer>.gamma`, `.beta`,
// `.moving_mean`, `.moving_variance`. Layouts: conv weight [out, in, kh, kw]; dense weight [in, out].
import type { Act, BatchnormLayer, ConvLayer, DenseLayer, Layer, ModelIR, ResidualLayer } from '../../dsl/ir.ts';
import { gradFromOutput } from '../ops/act.ts';
import { batched, matrix, nchw } from '../ops/geometry.ts';
import { markCovered } from '../graph/covered.ts';
import { Graph, numel, type OpCall, type Tensor } from '../graph/graph.ts';
import { ShapeError } from '../errors.ts';

export type Init = 'glorot' | 'zeros' | 'ones';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  fanIn: number;
  fanOut: number;
  /** false: batch-norm running statistics (updated by the forward, not by the optimizer). */
  trainable: boolean;
}

export interface Built {
  graph: Graph;
  x: Tensor;
  labels: Tensor;
  logits: Tensor;
  /** The input of the last dense layer (the penultimate features, for projections). */
  features: Tensor | null;
  params: ParamSpec[];
}

/** A stable 32-bit seed per layer name, mixed with the run seed, for dropout masks. */
function nameSeed(name: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function buildGraph(ir: ModelIR, batch: number, opts: { seed?: number } = {}): Built {
  const b = new Builder(opts.seed ?? 0);
  const x = b.graph.tensor([batch, ir.input.c, ir.input.h, ir.input.w], 'input');
  const labels = b.graph.tensor([batch], 'label', 'u32');
  let y = x;
  for (const l of ir.layers) y = b.layer(y, l);
  const logits = b.flat(y);
  markCovered(b.graph);
  return { graph: b.graph, x, labels, logits, features: b.features, params: b.params };
}

/** The graph and parameter list of one model, built layer by layer. */
class Builder {
  readonly graph = new Graph();
  readonly params: ParamSpec[] = [];
  /** The input of the last dense layer so far. */
  features: Tensor | null = null;
  /** The layer whose nodes are being added: each node carries its name (diagnostics name layers). */
  private current: string | undefined;

  constructor(private readonly seed: number) {}

  param(name: string, shape: number[], init: Init, fanIn: number, fanOut: number, trainable = true): Tensor {
    this.params.push({ name, shape, init, fanIn, fanOut, trainable });
    return this.graph.persistent(shape, trainable ? 'param' : 'state', name);
  }

  node(call: OpCall, inputs: Tensor[], state: Tensor[] = []): Tensor {
    return this.graph.add(call, inputs, { state, layer: this.current });
  }

  activate(x: Tensor, act: Act): Tensor {
    return act.kind === 'linear' ? x : this.node({ op: 'activation', attrs: { act } }, [x]);
  }

  /** [N, …] → [N, features]; already flat tensors are left as they are. */
  flat(x: Tensor): Tensor {
    return x.shape.length === 2 ? x : this.node({ op: 'reshape', attrs: {} }, [x]);
  }

  layer(x: Tensor, l: Layer): Tensor {
    this.current = l.name;
    switch (l.kind) {
      case 'conv':
        return this.conv(x, l);
      case 'dense':
        return this.dense(x, l);
      case 'pool': {
        const { kh, kw, strideH, strideW, padding } = l;
        return this.node(
          { op: l.mode === 'max' ? 'maxpool' : 'avgpool', attrs: { kh, kw, strideH, strideW, padding } },
          [x],
        );
      }
      case 'globalavgpool':
        return this.node({ op: 'globalavgpool', attrs: {} }, [x]);
      case 'dropout':
        return this.node({ op: 'dropout', attrs: { rate: l.rate, seed: nameSeed(l.name, this.seed) } }, [x]);
      case 'batchnorm':
        return this.batchnorm(x, l);
      case 'flatten':
        return this.flat(x);
      case 'activation':
        return this.activate(x, l.act);
      case 'residual':
        return this.residual(x, l);
      default:
        return l satisfies never;
    }
  }

  /** A conv with its activation fused into the output where its gradient allows (not gelu). */
  private conv(x: Tensor, l: ConvLayer): Tensor {
    const [, c] = nchw(x.shape, `${l.name} input`);
    const w = this.param(
      `${l.name}.weight`,
      [l.filters, c, l.kh, l.kw],
      'glorot',
      c * l.kh * l.kw,
      l.filters * l.kh * l.kw,
    );
    const inputs = [x, w];
    if (l.bias) inputs.push(this.param(`${l.name}.bias`, [l.filters], 'zeros', 0, 0));
    const fuse = gradFromOutput(l.act);
    const { kh, kw, strideH, strideW, padding } = l;
    const act: Act = fuse ? l.act : { kind: 'linear' };
    const y = this.node({ op: 'conv2d', attrs: { kh, kw, strideH, strideW, padding, act } }, inputs);
    return fuse ? y : this.activate(y, l.act);
  }

  private dense(x: Tensor, l: DenseLayer): Tensor {
    const xf = this.flat(x);
    this.features = xf;
    const [, f] = matrix(xf.shape, `${l.name} input`);
    const w = this.param(`${l.name}.weight`, [f, l.units], 'glorot', f, l.units);
    const inputs = [xf, w];
    if (l.bias) inputs.push(this.param(`${l.name}.bias`, [l.units], 'zeros', 0, 0));
    const fuse = gradFromOutput(l.act);
    const y = this.node({ op: 'dense', attrs: { act: fuse ? l.act : { kind: 'linear' } } }, inputs);
    return fuse ? y : this.activate(y, l.act);
  }

  private batchnorm(x: Tensor, l: BatchnormLayer): Tensor {
    const [, c] = batched(x.shape, `${l.name} input`);
    const gamma = this.param(`${l.name}.gamma`, [c], 'ones', 0, 0);
    const beta = this.param(`${l.name}.beta`, [c], 'zeros', 0, 0);
    const mean = this.param(`${l.name}.moving_mean`, [c], 'zeros', 0, 0, false);
    const variance = this.param(`${l.name}.moving_variance`, [c], 'ones', 0, 0, false);
    return this.node(
      { op: 'batchnorm', attrs: { eps: l.eps, momentum: l.momentum } },
      [x, gamma, beta],
      [mean, variance],
    );
  }

  /** body(x) + shortcut(x), the shortcut a 1×1 projection where the shapes differ. */
  private residual(x: Tensor, l: ResidualLayer): Tensor {
    let y = x;
    for (const inner of l.body) y = this.layer(y, inner);
    let shortcut = x;
    if (l.projection) {
      const p = l.projection;
      this.current = p.name;
      const [, c] = nchw(x.shape, `${l.name} input`);
      const w = this.param(`${l.name}.proj.weight`, [p.filters, c, 1, 1], 'glorot', c, p.filters);
      const b = this.param(`${l.name}.proj.bias`, [p.filters], 'zeros', 0, 0);
      const attrs = {
        kh: 1,
        kw: 1,
        strideH: p.strideH,
        strideW: p.strideW,
        padding: 'valid',
        act: { kind: 'linear' },
      } as const;
      shortcut = this.node({ op: 'conv2d', attrs }, [x, w, b]);
    }
    if (shortcut.shape.join() !== y.shape.join())
      throw new ShapeError(`residual ${l.name}: block gives [${y.shape}] but the shortcut [${shortcut.shape}]`);
    this.current = l.name;
    return this.node({ op: 'add', attrs: {} }, [y, shortcut]);
  }
}

/**
 * The largest batch, at most `want`, whose activations fit the adapter's binding limit: evaluation
 * and prediction chunks, which default to 1000 images and would not bind for a wide model on a
 * small adapter. Activations grow linearly with the batch; parameters do not.
 */
export function fittingBatch(
  ir: ModelIR,
  want: number,
  limits: Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize'>,
): number {
  const one = buildGraph(ir, 1).graph;
  let perSample = 4;
  for (const t of one.tensors)
    if (t.kind !== 'param' && t.kind !== 'state') perSample = Math.max(perSample, numel(t.shape) * 4);
  const limit = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  return Math.max(1, Math.min(want, Math.floor(limit / perSample)));
}
