// What of a conv's output anything reads: where its only reader is a pooling whose windows stop short of
// the last rows or columns (a 2×2, stride-2 pooling of a 7×7 output reads 6×6), the conv's attributes
// say so (Conv2dAttrs.covered). The gradient there is 0 (no window takes it back), so every weight
// gradient leaves those outputs out, and the Winograd and pooled lane forwards do not compute them, writing
// 0 there (src/ops/conv2d_plan.ts coveredOf): reference.net's third conv does 36 of 49 outputs' work.
import { conv2dGeometry } from '../ops/conv2d.ts';
import { convShape } from '../ops/conv2d_op.ts';
import { poolGeometry, poolShape } from '../ops/pool.ts';
import { type Graph, inShapes, type Node, readersOf } from './graph.ts';

/** The rows and columns from the top left that pooling node `p` reads of its input, by its windows. */
function poolReads(p: Node): [number, number] | null {
  if (p.op !== 'maxpool' && p.op !== 'avgpool') return null;
  const s = poolShape(inShapes(p), p.attrs);
  const g = poolGeometry(s);
  const rows = (g.oh - 1) * s.strideH - g.padTop + s.kh;
  const cols = (g.ow - 1) * s.strideW - g.padLeft + s.kw;
  return [Math.min(s.h, rows), Math.min(s.w, cols)];
}

/** Sets Conv2dAttrs.covered on each conv of `graph` whose only reader, a pooling, leaves part of it unread. */
export function markCovered(graph: Graph): void {
  const readers = readersOf(graph);
  graph.nodes.forEach((n, i) => {
    const only = readers.get(n.out.id);
    if (n.op !== 'conv2d' || only?.length !== 1) return;
    const reads = poolReads(only[0] as Node);
    const g = conv2dGeometry(convShape(inShapes(n), n.attrs));
    if (!reads || (reads[0] >= g.oh && reads[1] >= g.ow)) return;
    graph.nodes[i] = { ...n, attrs: { ...n.attrs, covered: reads } };
  });
}
