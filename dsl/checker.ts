// .net checker: walks the parsed layers from the input shape, computing each output shape (Keras/TF
// same/valid geometry), names, parameter counts and residual projections; shape errors point at
// the layer that causes them.
import type { Act, Layer, ModelIR, ParamCount, Projection, Shape, SpatialShape } from './ir.ts';
import { isFlat, LEAKY_SLOPE, shapeText } from './ir.ts';
import { DslError, type Span } from './errors.ts';
import type { ActSpec, LayerSpec, Program } from './ast.ts';

/** Fashion-MNIST's ten classes: the width a network's output must have unless the caller gives another. */
export const DEFAULT_CLASSES = 10;

/** Fashion-MNIST's image shape: the input of a file without an `input` line, unless the data says another. */
export const DEFAULT_INPUT: SpatialShape = { h: 28, w: 28, c: 1 };

export interface CheckOptions {
  /**
   * The data's class count: the network must end in one output per class. Left out, Fashion-MNIST's
   * DEFAULT_CLASSES; null, any count (a file read before its data).
   */
  classes?: number | null;
  /** The data's image shape: a file's input without an `input` line (default DEFAULT_INPUT), and an input line's. */
  input?: SpatialShape;
}
/** The engine's conv stride limit, which a residual projection (a 1×1 conv) must respect too. */
const MAX_STRIDE = 4;

const NAME_STEM: { [K in Layer['kind']]: string } = {
  conv: 'conv',
  pool: 'pool',
  globalavgpool: 'globalavgpool',
  dense: 'dense',
  dropout: 'dropout',
  batchnorm: 'bn',
  flatten: 'flatten',
  activation: 'act',
  residual: 'res',
};

const none: ParamCount = { trainable: 0, nonTrainable: 0 };
const sum = (a: ParamCount, b: ParamCount): ParamCount => ({
  trainable: a.trainable + b.trainable,
  nonTrainable: a.nonTrainable + b.nonTrainable,
});
const sameShape = (a: Shape, b: Shape): boolean => shapeText(a) === shapeText(b);

/** Keras/TF window output size: valid floor((n - k) / s) + 1 (n ≥ k), same ceil(n / s). */
const windowOut = (n: number, k: number, s: number, padding: 'same' | 'valid'): number =>
  padding === 'valid' ? Math.floor((n - k) / s) + 1 : Math.ceil(n / s);

class Checker {
  softmax = false;

  constructor(
    private readonly source: string,
    private readonly file: string,
    private readonly last: LayerSpec | undefined,
  ) {}

  fail(span: Span, message: string): never {
    throw new DslError(this.file, this.source, span, message);
  }

  /** The layers of one scope (the model, or a residual body) with names `<prefix><stem><n>`. */
  layers(specs: LayerSpec[], input: Shape, prefix: string): Layer[] {
    const counts = new Map<string, number>();
    const name = (kind: Layer['kind'], stem = NAME_STEM[kind]): string => {
      const n = (counts.get(stem) ?? 0) + 1;
      counts.set(stem, n);
      return `${prefix}${stem}${n}`;
    };
    const out: Layer[] = [];
    let shape = input;
    for (const spec of specs) {
      if (spec.kind === 'activation' && spec.act.kind === 'softmax' && spec === this.last) {
        this.act(spec.act, spec);
        continue; // folded into the loss: the layers end in logits
      }
      if (spec.kind === 'dense' && !isFlat(shape)) {
        const units = shape.h * shape.w * shape.c;
        out.push({
          kind: 'flatten',
          implied: true,
          name: name('flatten'),
          span: spec.span,
          input: shape,
          output: { units },
          params: none,
        });
        shape = { units };
      }
      const layer = this.layer(spec, shape, (k) =>
        name(k, spec.kind === 'pool' && spec.mode === 'avg' ? 'avgpool' : undefined),
      );
      out.push(layer);
      shape = layer.output;
    }
    return out;
  }

  spatial(spec: LayerSpec, shape: Shape, what: string): SpatialShape {
    if (isFlat(shape)) this.fail(spec.span, `${what} needs an image input (HxWxC) but gets ${shapeText(shape)}`);
    return shape;
  }

  act(a: ActSpec, spec: LayerSpec): Act {
    if (a.kind === 'softmax') {
      if (spec !== this.last) this.fail(a.span, 'softmax is only allowed on the last layer');
      this.softmax = true;
      return { kind: 'linear' };
    }
    return a.kind === 'leaky' ? { kind: 'leaky', alpha: a.alpha ?? LEAKY_SLOPE } : { kind: a.kind };
  }

  layer(spec: LayerSpec, input: Shape, name: (k: Layer['kind']) => string): Layer {
    const base = { span: spec.span, input };
    switch (spec.kind) {
      case 'conv':
      case 'pool':
        return this.window(spec, base, name);
      case 'globalavgpool': {
        const x = this.spatial(spec, input, 'globalavgpool');
        return { ...base, kind: 'globalavgpool', name: name('globalavgpool'), output: { units: x.c }, params: none };
      }
      case 'dense': {
        const n = isFlat(input) ? input.units : 0; // a spatial input was flattened by the caller
        const weights = n * spec.units + (spec.bias ? spec.units : 0);
        const act = this.act(spec.act, spec);
        return {
          ...base,
          kind: 'dense',
          name: name('dense'),
          units: spec.units,
          act,
          bias: spec.bias,
          output: { units: spec.units },
          params: { trainable: weights, nonTrainable: 0 },
        };
      }
      case 'dropout':
        return { ...base, kind: 'dropout', name: name('dropout'), rate: spec.rate, output: input, params: none };
      case 'batchnorm': {
        // gamma and beta learn; the moving mean and variance do not (as Keras counts them).
        const c = isFlat(input) ? input.units : input.c;
        return {
          ...base,
          kind: 'batchnorm',
          name: name('batchnorm'),
          momentum: spec.momentum,
          eps: spec.eps,
          output: input,
          params: { trainable: 2 * c, nonTrainable: 2 * c },
        };
      }
      case 'flatten': {
        const units = isFlat(input) ? input.units : input.h * input.w * input.c;
        return { ...base, kind: 'flatten', name: name('flatten'), implied: false, output: { units }, params: none };
      }
      case 'activation':
        return {
          ...base,
          kind: 'activation',
          name: name('activation'),
          act: this.act(spec.act, spec),
          output: input,
          params: none,
        };
      case 'residual':
        return this.residual(spec, input, name('residual'));
      default:
        return spec satisfies never;
    }
  }

  /** A conv or pool layer: Keras/TF window geometry, a valid window no larger than its input. */
  window(
    spec: LayerSpec & { kind: 'conv' | 'pool' },
    base: { span: Span; input: Shape },
    name: (k: Layer['kind']) => string,
  ): Layer {
    const what = spec.kind === 'conv' ? 'conv' : spec.mode === 'max' ? 'pool' : 'avgpool';
    const x = this.spatial(spec, base.input, what);
    if (spec.padding === 'valid' && (x.h < spec.kh || x.w < spec.kw)) {
      this.fail(
        spec.span,
        `${what} ${spec.kh}x${spec.kw} valid needs at least ${spec.kh}x${spec.kw} input but gets ${shapeText(x)}`,
      );
    }
    const h = windowOut(x.h, spec.kh, spec.strideH, spec.padding);
    const w = windowOut(x.w, spec.kw, spec.strideW, spec.padding);
    const { strideH, strideW, padding, kh, kw } = spec;
    if (spec.kind === 'pool')
      return {
        ...base,
        kind: 'pool',
        name: name('pool'),
        mode: spec.mode,
        kh,
        kw,
        strideH,
        strideW,
        padding,
        output: { h, w, c: x.c },
        params: none,
      };
    const weights = kh * kw * x.c * spec.filters + (spec.bias ? spec.filters : 0);
    const act = this.act(spec.act, spec);
    return {
      ...base,
      kind: 'conv',
      name: name('conv'),
      filters: spec.filters,
      kh,
      kw,
      strideH,
      strideW,
      padding,
      act,
      bias: spec.bias,
      output: { h, w, c: spec.filters },
      params: { trainable: weights, nonTrainable: 0 },
    };
  }

  residual(spec: LayerSpec & { kind: 'residual' }, input: Shape, name: string): Layer {
    const body = this.layers(spec.body, input, `${name}.`);
    const output = body.at(-1)?.output ?? input; // an empty body (the parser refuses one) is the identity
    const params = body.reduce((p, l) => sum(p, l.params), none);
    const done = (projection: Projection | null): Layer => ({
      kind: 'residual',
      name,
      span: spec.span,
      input,
      output,
      body,
      projection,
      params: projection ? sum(params, projection.params) : params,
    });
    if (sameShape(input, output)) return done(null);
    if (isFlat(input) || isFlat(output)) {
      this.fail(
        spec.span,
        `residual block turns ${shapeText(input)} into ${shapeText(output)}, ` +
          'but a shortcut can only be projected between HxWxC shapes',
      );
    }
    // The shortcut is a 1×1 valid conv with the block's total stride: it gives ceil(n / s).
    const [sh, sw] = totalStride(body);
    const h = Math.ceil(input.h / sh),
      w = Math.ceil(input.w / sw);
    if (h !== output.h || w !== output.w) {
      this.fail(
        spec.span,
        `residual block turns ${shapeText(input)} into ${shapeText(output)}, which a 1x1 shortcut with stride ` +
          `${sh}x${sw} cannot match (it gives ${h}x${w}x${output.c})`,
      );
    }
    if (sh > MAX_STRIDE || sw > MAX_STRIDE) {
      this.fail(
        spec.span,
        `residual block has a total stride of ${sh}x${sw}, but its 1x1 shortcut can stride at most ${MAX_STRIDE}`,
      );
    }
    return done({
      name: `${name}.proj`,
      filters: output.c,
      strideH: sh,
      strideW: sw,
      params: { trainable: input.c * output.c + output.c, nonTrainable: 0 },
    });
  }
}

/** Product of the strides along a body (nested residuals by their own bodies). */
function totalStride(layers: Layer[]): [number, number] {
  let sh = 1,
    sw = 1;
  for (const l of layers) {
    if (l.kind === 'conv' || l.kind === 'pool') {
      sh *= l.strideH;
      sw *= l.strideW;
    } else if (l.kind === 'residual') {
      const [h, w] = totalStride(l.body);
      sh *= h;
      sw *= w;
    }
  }
  return [sh, sw];
}

export function check(p: Program, source: string, file: string, o: CheckOptions = {}): ModelIR {
  const classes = o.classes === undefined ? DEFAULT_CLASSES : o.classes;
  const last = p.layers.at(-1);
  if (!last) throw new DslError(file, source, p.end, 'expected a layer but found end of file');
  const c = new Checker(source, file, last);
  // An input line must be the data's shape, where the caller knows it (the data, or the run it was trained on).
  if (p.input && p.inputAt && o.input && shapeText(p.input) !== shapeText(o.input))
    c.fail(p.inputAt, `the model's input is ${shapeText(p.input)} but the data is ${shapeText(o.input)}`);
  const input = p.input ?? o.input ?? DEFAULT_INPUT;
  const layers = c.layers(p.layers, input, '');
  const output = layers.at(-1)?.output ?? input;
  const ends = isFlat(output) ? output.units : output.h === 1 && output.w === 1 ? output.c : null;
  // Whatever the data's classes (null: not yet read), the network ends in one output per class.
  if (classes === null && ends === null)
    c.fail(last.span, `the network must end in one output per class (N or 1x1xN) but ends in ${shapeText(output)}`);
  if (classes !== null && ends !== classes)
    c.fail(
      last.span,
      o.classes === undefined || ends === null
        ? `the network must end in ${classes} outputs (one per class) but ends in ${shapeText(output)}`
        : `the network ends in ${ends} outputs but the data has ${classes} classes`,
    );
  const params = layers.reduce((a, l) => sum(a, l.params), none);
  return {
    source,
    file,
    input,
    layers,
    output,
    train: p.train,
    augment: p.augment,
    softmax: c.softmax,
    params,
  };
}
