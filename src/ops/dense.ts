// The dense (fully connected) layer as a graph op, built on matmul and the row sum:
// x [N,F], w [F,U], b [U] (optional) → y = act(x·w + b) [N,U], the activation fused into the matmul.
import type { Act } from '../../dsl/ir.ts';
import { actName, gradFromOutput } from './act.ts';
import { fusedScratch, unfuseActivation } from './elementwise.ts';
import { matrix } from './geometry.ts';
import { matmul } from './matmul.ts';
import type { KernelOp, Shapes } from './op.ts';
import { sumRows } from './reduce.ts';
import { mustAt } from '../util/must.ts';

export interface DenseAttrs {
  act: Act;
}

/** Batch n, features f, units u. */
function dims([x, w]: Shapes): { n: number; f: number; u: number } {
  const [n, f] = matrix(x, 'dense input');
  const [, u] = matrix(w, 'dense weights');
  return { n, f, u };
}

export const DENSE: KernelOp<DenseAttrs> = {
  shape: (ins) => {
    const { n, u } = dims(ins);
    return [n, u];
  },
  scratch: (_ins, out, a) => fusedScratch(out, a.act),
  forward: (gpu, io, a) => {
    if (!gradFromOutput(a.act)) throw new Error(`dense cannot fuse ${actName(a.act)}: its gradient needs the input`);
    const { n, f, u } = dims(io.inShapes);
    const x = mustAt(io.inputs, 0, 'dense x');
    const w = mustAt(io.inputs, 1, 'dense w');
    return matmul(gpu, { a: x, b: w, bias: io.inputs[2], c: io.out }, { m: n, k: f, n: u, act: a.act });
  },
  // dZ = dY·act'(Y); dX = dZ·Wᵀ; dW = Xᵀ·dZ; db = Σ_rows dZ
  backward: (gpu, io, a) => {
    const { dz, pre: out } = unfuseActivation(gpu, io, a.act);
    const { n, f, u } = dims(io.inShapes);
    const x = mustAt(io.inputs, 0, 'dense x');
    const w = mustAt(io.inputs, 1, 'dense w');
    const [dx, dw, db] = io.dIn;
    if (dx) out.push(...matmul(gpu, { a: dz, b: w, c: dx }, { m: n, k: u, n: f, transB: true }));
    if (dw) out.push(...matmul(gpu, { a: x, b: dz, c: dw }, { m: f, k: n, n: u, transA: true }));
    if (db) out.push(...sumRows(gpu, { x: dz, out: db }, { m: n, n: u }));
    return out;
  },
};
