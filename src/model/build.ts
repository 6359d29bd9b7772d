// Model IR (from dsl/) → autograd graph for one batch size and mode, plus the parameter list.
// Parameter names: `<layer>.weight`, `<layer>.bias`; batch norm `<layer>.gamma`, `.beta`,
// `.moving_mean`, `.moving_variance`. Layouts: conv weight [out, in, kh, kw]; dense weight [in, out].
import type { Layer, ModelIR } from '../../dsl/ir.ts';
import { gradFromOutput, type Act } from '../ops/act.ts';
import { Graph, numel, type Tensor } from '../graph/graph.ts';
import { OPS, type Attrs, type OpName } from '../graph/ops.ts';
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
  const g = new Graph();
  const params: ParamSpec[] = [];
  const byName = new Map<string, Tensor>();
  const param = (
    name: string,
    shape: number[],
    init: Init,
    fanIn: number,
    fanOut: number,
    trainable = true,
  ): Tensor => {
    params.push({ name, shape, init, fanIn, fanOut, trainable });
    const t = g.tensor(shape, trainable ? 'param' : 'state', 'f32', name);
    byName.set(name, t);
    return t;
  };
  // The layer whose nodes are being added: each node carries its name (diagnostics name layers).
  let current: string | undefined;
  const node = <K extends OpName>(op: K, inputs: Tensor[], attrs: Attrs[K], state: Tensor[] = []): Tensor => {
    const shape = OPS[op].shape(
      inputs.map((i) => i.shape),
      attrs as never,
    );
    return g.add(op, inputs, attrs, shape, [], state, current);
  };
  const activate = (x: Tensor, act: Act): Tensor => (act.kind === 'linear' ? x : node('activation', [x], { act }));
  const flat = (x: Tensor): Tensor =>
    x.shape.length === 2
      ? x
      : g.add('reshape', [x], {}, [x.shape[0]!, x.shape.slice(1).reduce((a, b) => a * b, 1)], [], [], current);
  let features: Tensor | null = null;

  const layer = (x: Tensor, l: Layer): Tensor => {
    current = l.name;
    switch (l.kind) {
      case 'conv': {
        const c = x.shape[1]!;
        const w = param(
          `${l.name}.weight`,
          [l.filters, c, l.kh, l.kw],
          'glorot',
          c * l.kh * l.kw,
          l.filters * l.kh * l.kw,
        );
        const inputs = [x, w];
        if (l.bias) inputs.push(param(`${l.name}.bias`, [l.filters], 'zeros', 0, 0));
        const fuse = gradFromOutput(l.act);
        const y = node('conv2d', inputs, {
          kh: l.kh,
          kw: l.kw,
          strideH: l.strideH,
          strideW: l.strideW,
          padding: l.padding,
          act: fuse ? l.act : { kind: 'linear' },
        });
        return fuse ? y : activate(y, l.act);
      }
      case 'dense': {
        const xf = flat(x);
        features = xf;
        const f = xf.shape[1]!;
        const w = param(`${l.name}.weight`, [f, l.units], 'glorot', f, l.units);
        const inputs = [xf, w];
        if (l.bias) inputs.push(param(`${l.name}.bias`, [l.units], 'zeros', 0, 0));
        const fuse = gradFromOutput(l.act);
        const y = node('dense', inputs, { act: fuse ? l.act : { kind: 'linear' } });
        return fuse ? y : activate(y, l.act);
      }
      case 'pool':
        return node(l.mode === 'max' ? 'maxpool' : 'avgpool', [x], {
          kh: l.kh,
          kw: l.kw,
          strideH: l.strideH,
          strideW: l.strideW,
          padding: l.padding,
        });
      case 'globalavgpool':
        return node('globalavgpool', [x], {});
      case 'dropout':
        return node('dropout', [x], { rate: l.rate, seed: nameSeed(l.name, opts.seed ?? 0) });
      case 'batchnorm': {
        const c = x.shape[1]!;
        const gamma = param(`${l.name}.gamma`, [c], 'ones', 0, 0);
        const beta = param(`${l.name}.beta`, [c], 'zeros', 0, 0);
        const mean = param(`${l.name}.moving_mean`, [c], 'zeros', 0, 0, false);
        const variance = param(`${l.name}.moving_variance`, [c], 'ones', 0, 0, false);
        return node('batchnorm', [x, gamma, beta], { eps: l.eps, momentum: l.momentum }, [mean, variance]);
      }
      case 'flatten':
        return flat(x);
      case 'activation':
        return activate(x, l.act);
      case 'residual': {
        let y = x;
        for (const inner of l.body) y = layer(y, inner);
        let shortcut = x;
        if (l.projection) {
          const p = l.projection;
          current = p.name;
          const c = x.shape[1]!;
          const w = param(`${l.name}.proj.weight`, [p.filters, c, 1, 1], 'glorot', c, p.filters);
          const b = param(`${l.name}.proj.bias`, [p.filters], 'zeros', 0, 0);
          shortcut = node('conv2d', [x, w, b], {
            kh: 1,
            kw: 1,
            strideH: p.strideH,
            strideW: p.strideW,
            padding: 'valid',
            act: { kind: 'linear' },
          });
        }
        if (shortcut.shape.join() !== y.shape.join())
          throw new ShapeError(`residual ${l.name}: block gives [${y.shape}] but the shortcut [${shortcut.shape}]`);
        current = l.name;
        return node('add', [y, shortcut], {});
      }
      default:
        return l satisfies never;
    }
  };

  const x = g.tensor([batch, ir.input.c, ir.input.h, ir.input.w], 'input');
  const labels = g.tensor([batch], 'label', 'u32');
  let y = x;
  for (const l of ir.layers) y = layer(y, l);
  const logits = flat(y);
  return { graph: g, x, labels, logits, features, params };
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
