// Whether two models are the same network (layers, input, augmentation), whatever their comments,
// spacing or train settings: a run resumes only with the network it was trained as.
import { shapeText, type Layer, type ModelIR } from './ir.ts';

export interface NetworkDifference {
  /** What differs, in words: `layer conv1`, `the input`, `the augmentation`, `the number of layers`. */
  what: string;
  /** The statement in each model's source ('' where the model has none), first line only. */
  a: string;
  b: string;
  /** Offset of b's statement in b's source (for FILE:LINE:COL), or null. */
  bOffset: number | null;
}

/** `layer conv1 is "conv 8 3x3 tanh" but BY was trained with "conv 8 3x3 relu"`: a difference in words. */
export function differenceText(d: NetworkDifference, by: string): string {
  const quote = (s: string): string => (s ? `"${s}"` : 'absent');
  return `${d.what} is ${quote(d.b)} but ${by} was trained with ${quote(d.a)}`;
}

/** A layer as data, without where it was written. */
const canonical = (x: unknown): string => JSON.stringify(x, (k, v) => (k === 'span' ? undefined : v));

/** The first line of a layer's statement as written. */
function statement(ir: ModelIR, l: Layer | undefined): string {
  if (!l) return '';
  const [line = ''] = ir.source.slice(l.span.offset, l.span.offset + l.span.length).split('\n');
  return line.trim();
}

function flat(layers: readonly Layer[], out: Layer[] = []): Layer[] {
  for (const l of layers) {
    // A residual is compared by its body; its own record (projection, shapes) follows the body.
    if (l.kind === 'residual') flat(l.body, out);
    out.push(l);
  }
  return out;
}

/** The first difference between the networks of `a` and `b`, or null when they are the same. */
export function networkDifference(a: ModelIR, b: ModelIR): NetworkDifference | null {
  const la = flat(a.layers),
    lb = flat(b.layers);
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    const x = la[i],
      y = lb[i];
    const same =
      x &&
      y &&
      canonical(x.kind === 'residual' ? { ...x, body: [] } : x) ===
        canonical(y.kind === 'residual' ? { ...y, body: [] } : y);
    if (same) continue;
    const name = y?.name ?? x?.name ?? '';
    return {
      what: x && y ? `layer ${name}` : 'the number of layers',
      a: statement(a, x),
      b: statement(b, y),
      bOffset: y ? y.span.offset : null,
    };
  }
  if (shapeText(a.input) !== shapeText(b.input))
    return { what: 'the input', a: `input ${shapeText(a.input)}`, b: `input ${shapeText(b.input)}`, bOffset: null };
  const aug = (ir: ModelIR): string =>
    `augment ${Object.entries({ ...ir.augment, explicit: undefined })
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`;
  if (aug(a) !== aug(b)) return { what: 'the augmentation', a: aug(a), b: aug(b), bOffset: null };
  return null;
}
