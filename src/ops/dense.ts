// The dense (fully connected) layer as a graph op, built on matmul (and the row sum on the lane kernels):
// x [N,F], w [F,U], b [U] (optional) → y = act(x·w + b) [N,U], the activation fused into the matmul;
// on the tiled kernels the bias gradient comes out of the weight gradient's matmul (its column sums of dZ).
import type { Act } from '../../dsl/ir.ts';
import { actName, gradFromOutput } from './act.ts';
import { fusedScratch, unfuseActivation } from './elementwise.ts';
import { matrix } from './geometry.ts';
import { matmul, matmulPartsLength, matmulPlan, type MatmulEpilogue, type MatmulShape } from './matmul.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { biasAndShortcut, type KernelOp, type Shapes } from './op.ts';
import { sumRows } from './reduce.ts';
import { mustAt } from '../util/must.ts';

export interface DenseAttrs {
  act: Act;
  /**
   * The node as a fused forward runs it (src/graph/fuse-add.ts AddActFusion.layer): its last input is a residual
   * add's other input, added before `act` (the add's activation), writing the activation's output.
   */
  shortcut?: true;
}

/** Batch n, features f, units u. */
function dims([x, w]: Shapes): { n: number; f: number; u: number } {
  const [n, f] = matrix(x, 'dense input');
  const [, u] = matrix(w, 'dense weights');
  return { n, f, u };
}

/** The weight gradient's matmul: dW = Xᵀ·dZ, [F,N]·[N,U]. */
function weightShape(ins: Shapes): MatmulShape {
  const { n, f, u } = dims(ins);
  return { m: f, k: n, n: u, transA: true };
}

/** The forward's matmul: y = act(x·w + b), [N,F]·[F,U]. */
function denseShape(ins: Shapes, act: Act): MatmulShape {
  const { n, f, u } = dims(ins);
  return { m: n, k: f, n: u, act };
}

/**
 * The forward's dispatches: y = act(x·w + b), its K split where `parts` (forwardScratch) is given, with
 * a dropout in the epilogue where the planner fused one (`epi` the dropped output; src/graph/fused-steps.ts),
 * or a residual add's shortcut (`epi`, epilogue `add`: y = act(x·w + b + shortcut)).
 */
export function denseForward(
  gpu: Gpu,
  io: {
    x: BufferRef;
    w: BufferRef;
    b?: BufferRef;
    y: BufferRef;
    parts?: BufferRef;
    epi?: BufferRef;
    counter?: BufferRef;
  },
  ins: Shapes,
  act: Act,
  epilogue?: MatmulEpilogue,
): Dispatch[] {
  if (!gradFromOutput(act)) throw new Error(`dense cannot fuse ${actName(act)}: its gradient needs the input`);
  const shape = { ...denseShape(ins, act), epilogue };
  const mm = { a: io.x, b: io.w, bias: io.b, c: io.y, parts: io.parts, epi: io.epi, counter: io.counter };
  return matmul(gpu, mm, shape, { split: io.parts !== undefined });
}

export const DENSE: KernelOp<DenseAttrs> = {
  shape: (ins) => {
    const { n, u } = dims(ins);
    return [n, u];
  },
  // The fused activation's gradient, then the split-K partial sums of dX and dW (if split), which run
  // one after the other and share them.
  scratch: (ins, out, a, gpu, o) => {
    const { n, f, u } = dims(ins);
    const dw = weightShape(ins);
    const weights = o?.deferredWeights ? 0 : matmulPartsLength(gpu, dw);
    const parts = Math.max(
      matmulPartsLength(gpu, { m: n, k: u, n: f, transB: true }),
      weights,
      ins.length > 2 && !o?.deferredWeights ? matmulPartsLength(gpu, dw, { dbias: true }) : 0,
    );
    return [...fusedScratch(out, a.act), ...(parts > 0 ? [[parts]] : [])];
  },
  // Split-K partial sums for the forward, used where the planner gives forward steps scratch.
  forwardScratch: (ins, _out, a, gpu) => {
    const parts = matmulPartsLength(gpu, denseShape(ins, a.act));
    return parts > 0 ? [[parts]] : [];
  },
  weightParts: (ins, _a, gpu, bias) => {
    if (gpu.lanes > 0) return null;
    const { f, u } = dims(ins);
    const p = matmulPlan(gpu, weightShape(ins), { dbias: bias });
    return p.splits < 2 ? null : { splits: p.splits, rows: f + (bias ? 1 : 0), cols: u, sums: bias ? 'row' : 'none' };
  },
  forward: (gpu, io, a) => {
    const x = mustAt(io.inputs, 0, 'dense x');
    const w = mustAt(io.inputs, 1, 'dense w');
    const { b, shortcut } = biasAndShortcut(io.inputs, a.shortcut === true);
    const ios = { x, w, b, y: io.out, parts: io.scratch?.[0], epi: shortcut };
    return denseForward(gpu, ios, io.inShapes, a.act, shortcut ? { kind: 'add' } : undefined);
  },
  // dZ = dY·act'(Y); dX = dZ·Wᵀ (through the chain below in its epilogue, io.dInChain); dW = Xᵀ·dZ; db = Σ_rows dZ
  backward: (gpu, io, a) => {
    const { dz, pre: out } = unfuseActivation(gpu, io, a.act);
    const { n, f, u } = dims(io.inShapes);
    const x = mustAt(io.inputs, 0, 'dense x');
    const w = mustAt(io.inputs, 1, 'dense w');
    const [dx, dw, db] = io.dIn;
    const parts = io.scratch[fusedScratch(io.outShape, a.act).length];
    // db inside dW's matmul on the tiled kernels; the lane kernel has no such variant.
    const dbias = gpu.lanes === 0 && dw ? (db ?? undefined) : undefined;
    const below = io.dInChain;
    const epilogue = below && ({ kind: 'chain', ...below.chain } as const);
    const dxShape = { m: n, k: u, n: f, transB: true, epilogue };
    const chainIO = { epi: below?.saved, argmax: below?.argmax, term: below?.term, counter: io.counter };
    if (dx) out.push(...matmul(gpu, { a: dz, b: w, c: dx, parts, ...chainIO }, dxShape));
    // dW's partials left for the planner to sum (io.dWParts), or summed here.
    const dwIo = dw && { a: x, b: dz, c: dw, dbias, parts: io.dWParts ?? parts };
    if (dwIo) out.push(...matmul(gpu, dwIo, weightShape(io.inShapes), { unsummed: io.dWParts !== undefined }));
    if (db && !dbias) out.push(...sumRows(gpu, { x: dz, out: db }, { m: n, n: u }));
    return out;
  },
};
