// The conv2d graph op (CONV2D): conv + bias + a fused activation, and its backward, on conv2d.ts's passes;
// the conv shape of a node (convShape).
import { actName, gradFromOutput } from './act.ts';
import {
  conv2dBackwardInput,
  conv2dBackwardWeights,
  conv2dForward,
  conv2dGeometry,
  forwardPartsLength,
  inputPartsLength,
  weightPartsLayout,
  weightPartsLength,
  type Conv2dShape,
} from './conv2d.ts';
import { fusedScratch, unfuseActivation } from './elementwise.ts';
import { nchw, type Window2d } from './geometry.ts';
import { biasAndShortcut, type KernelOp, type Shapes } from './op.ts';
import type { Act } from '../../dsl/ir.ts';
import { mustAt } from '../util/must.ts';

/** A conv layer's attributes: its window, the activation fused into its output, what its reader reads. */
export interface Conv2dAttrs extends Window2d {
  act: Act;
  /** Conv2dShape.covered: set by the graph's builder (src/graph/covered.ts). */
  covered?: readonly [number, number];
  /**
   * The node as a fused forward runs it (src/graph/fuse-add.ts AddActFusion.layer): its last input is a residual
   * add's other input, added before `act` (the add's activation), writing the activation's output.
   */
  shortcut?: true;
}

/** The conv shape of a node's input shapes and window attributes. */
export function convShape([x, w]: Shapes, a: Window2d & Pick<Conv2dAttrs, 'covered'>): Conv2dShape {
  const [n, c, h, width] = nchw(x, 'conv2d input');
  const [k] = nchw(w, 'conv2d weights');
  const { kh, kw, strideH, strideW, padding } = a;
  return { n, c, h, w: width, k, kh, kw, strideH, strideW, padding, ...(a.covered ? { covered: a.covered } : {}) };
}

/** y = act(conv(x, w) + b); inputs x [N,C,H,W], w [K,C,KH,KW], b [K] (optional). */
export const CONV2D: KernelOp<Conv2dAttrs> = {
  shape: (ins, a) => {
    const s = convShape(ins, a);
    const g = conv2dGeometry(s);
    return [s.n, s.k, g.oh, g.ow];
  },
  // The fused activation's gradient, then the split-K partial sums of dX and dW (if split), which run
  // one after the other and share them (a dX left unsummed for a chain writes into its own target).
  scratch: (ins, out, a, gpu, o) => {
    const s = convShape(ins, a);
    const weights = o?.deferredWeights ? 0 : weightPartsLength(gpu, s);
    const bias = ins.length > 2 && !o?.deferredWeights ? weightPartsLength(gpu, s, { bias: true }) : 0;
    const parts = Math.max(inputPartsLength(gpu, s), weights, bias);
    return [...fusedScratch(out, a.act), ...(parts > 0 ? [[parts]] : [])];
  },
  // Split-K partial sums for the forward, used where the planner gives forward steps scratch.
  forwardScratch: (ins, _out, a, gpu) => {
    const parts = forwardPartsLength(gpu, convShape(ins, a));
    return parts > 0 ? [[parts]] : [];
  },
  weightParts: (ins, a, gpu, bias) => weightPartsLayout(gpu, convShape(ins, a), { bias }),
  forward: (gpu, io, a) => {
    if (!gradFromOutput(a.act)) throw new Error(`conv2d cannot fuse ${actName(a.act)}: its gradient needs the input`);
    const s = convShape(io.inShapes, a);
    const x = mustAt(io.inputs, 0, 'conv2d x');
    const w = mustAt(io.inputs, 1, 'conv2d w');
    const parts = io.scratch?.[0];
    const ios = { x, w, ...biasAndShortcut(io.inputs, a.shortcut === true), y: io.out, parts, gather: io.gather };
    return conv2dForward(gpu, ios, s, a.act, { split: parts !== undefined });
  },
  // dZ = dY·act'(Y); dX = convᵀ(dZ, W); dW = Σ dZ ⊗ X; db = Σ dZ
  backward: (gpu, io, a) => {
    const { dz, pre: out } = unfuseActivation(gpu, io, a.act);
    const s = convShape(io.inShapes, a);
    const x = mustAt(io.inputs, 0, 'conv2d x');
    const w = mustAt(io.inputs, 1, 'conv2d w');
    const [dx, dw, db] = io.dIn;
    const parts = io.scratch[fusedScratch(io.outShape, a.act).length];
    // dX through the chain below in its store (io.dInChain), or its partials left for that chain (io.dInParts).
    const below = io.dInChain;
    const chain = below && { ...below, counter: io.counter };
    const dxOptions = { unsummed: io.dInParts, chain: below?.chain };
    if (dx) out.push(...conv2dBackwardInput(gpu, { dy: dz, w, dx, parts, chain }, s, dxOptions));
    // dW's partials left for the planner to sum (io.dWParts), or summed here.
    const weights = { dy: dz, x, db: db ?? undefined, parts: io.dWParts ?? parts };
    if (dw) out.push(...conv2dBackwardWeights(gpu, { ...weights, dw }, s, { unsummed: io.dWParts !== undefined }));
    return out;
  },
};
