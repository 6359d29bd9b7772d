// A float64 CPU interpreter of an autograd graph, built from the ops' CPU references: the oracle
// for whole-network gradient tests (finite differences of this against the GPU's backward).
import { numel, type Graph, type Tensor } from '../../src/graph/graph.ts';
import { actRef } from '../../src/ops/act.ref.ts';
import { conv2dRef } from '../../src/ops/conv2d.ref.ts';
import { matmulRef } from '../../src/ops/matmul.ref.ts';
import { avgPoolForwardRef, globalAvgPoolForwardRef, maxPoolForwardRef } from '../../src/ops/pool.ref.ts';
import { dropoutRef } from '../../src/ops/dropout.ref.ts';
import { batchnormForwardRef } from '../../src/ops/batchnorm.ref.ts';
import { softmaxXentRef } from '../../src/ops/softmax_xent.ref.ts';

export type Values = Map<number, Float64Array>;

/** Mean cross-entropy of the graph's logits, given every input, label and parameter value. */
export function refLoss(
  g: Graph,
  values: Values,
  logits: Tensor,
  labels: Uint32Array,
  opts: { counter: number; smoothing?: number },
): number {
  const v = new Map(values);
  const get = (t: Tensor): Float64Array => {
    const x = v.get(t.id);
    if (!x) throw new Error(`no value for tensor ${t.id}`);
    return x;
  };
  for (const n of g.nodes) {
    const ins = n.inputs.map(get);
    const sh = n.inputs.map((i) => i.shape);
    let out: Float64Array;
    switch (n.op) {
      case 'conv2d': {
        const a = n.attrs;
        const [x, w] = sh;
        out = Float64Array.from(
          conv2dRef(
            ins[0]!,
            ins[1]!,
            ins[2] ?? null,
            {
              n: x![0]!,
              c: x![1]!,
              h: x![2]!,
              w: x![3]!,
              k: w![0]!,
              kh: a.kh,
              kw: a.kw,
              strideH: a.strideH,
              strideW: a.strideW,
              padding: a.padding,
            },
            a.act,
          ),
        );
        break;
      }
      case 'dense': {
        const a = n.attrs;
        out = matmulRef(ins[0]!, ins[1]!, ins[2] ?? null, { m: sh[0]![0]!, k: sh[0]![1]!, n: sh[1]![1]!, act: a.act });
        break;
      }
      case 'maxpool':
      case 'avgpool': {
        const a = n.attrs;
        const x = sh[0]!;
        const s = {
          n: x[0]!,
          c: x[1]!,
          h: x[2]!,
          w: x[3]!,
          kh: a.kh,
          kw: a.kw,
          strideH: a.strideH,
          strideW: a.strideW,
          padding: a.padding,
        };
        const r = n.op === 'maxpool' ? maxPoolForwardRef(ins[0]!, s) : avgPoolForwardRef(ins[0]!, s);
        out = Float64Array.from('y' in r ? r.y : r);
        break;
      }
      case 'globalavgpool': {
        const x = sh[0]!;
        out = Float64Array.from(globalAvgPoolForwardRef(ins[0]!, { n: x[0]!, c: x[1]!, h: x[2]!, w: x[3]! }));
        break;
      }
      case 'activation': {
        const a = n.attrs;
        out = ins[0]!.map((x) => actRef(a.act, x));
        break;
      }
      case 'dropout': {
        const a = n.attrs;
        out = Float64Array.from(
          dropoutRef(ins[0]!, opts.counter, { count: ins[0]!.length, rate: a.rate, seed: a.seed }),
        );
        break;
      }
      case 'batchnorm': {
        const a = n.attrs;
        const x = sh[0]!;
        const st = n.state.map(get);
        const hw = numel(x.slice(2));
        out = Float64Array.from(
          batchnormForwardRef(ins[0]!, ins[1]!, ins[2]!, st[0]!, st[1]!, {
            n: x[0]!,
            c: x[1]!,
            hw,
            eps: a.eps,
            momentum: a.momentum,
            training: true,
          }).y,
        );
        break;
      }
      case 'add':
        out = ins[0]!.map((x, i) => x + ins[1]![i]!);
        break;
      case 'reshape':
        out = ins[0]!;
        break;
      default:
        return n satisfies never;
    }
    v.set(n.out.id, out);
  }
  const classes = logits.shape[1]!;
  const r = softmaxXentRef(get(logits), labels, { n: logits.shape[0]!, classes, smoothing: opts.smoothing ?? 0 });
  return r.lossSum / logits.shape[0]!;
}
