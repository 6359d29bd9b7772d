// Keras-style model summary (as `model.summary()` prints it in Keras 2): one row per layer with its
// output shape in Keras's (None, H, W, C) order, parameter counts, then the three totals lines and
// the multiply-adds per image (torchinfo's figure).
import type { Layer, ModelIR, Shape } from './ir.ts';
import { isFlat } from './ir.ts';

const TYPE: { [K in Layer['kind']]: (l: Layer & { kind: K }) => string } = {
  conv: () => 'Conv2D',
  pool: (l) => (l.mode === 'max' ? 'MaxPooling2D' : 'AveragePooling2D'),
  globalavgpool: () => 'GlobalAveragePooling2D',
  dense: () => 'Dense',
  dropout: () => 'Dropout',
  batchnorm: () => 'BatchNormalization',
  flatten: () => 'Flatten',
  activation: (l) => (l.act.kind === 'leaky' ? 'LeakyReLU' : 'Activation'),
  residual: () => 'Add',
};

/** `(None, 28, 28, 32)` or `(None, 128)`: the batch dimension first, channels last, as Keras writes it. */
export function kerasShape(s: Shape): string {
  return isFlat(s) ? `(None, ${s.units})` : `(None, ${s.h}, ${s.w}, ${s.c})`;
}

/** 241546 → "241,546". */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

type Row = [string, string, number];

/** A residual shows its body, its projection, then the add (named as the block). */
function rows(layers: Layer[], out: Row[] = []): Row[] {
  for (const l of layers) {
    if (l.kind === 'residual') {
      rows(l.body, out);
      if (l.projection)
        out.push([`${l.projection.name} (Conv2D)`, kerasShape(l.output), l.projection.params.trainable]);
    }
    const own = l.kind === 'residual' ? 0 : l.params.trainable + l.params.nonTrainable;
    out.push([`${l.name} (${(TYPE[l.kind] as (x: Layer) => string)(l)})`, kerasShape(l.output), own]);
  }
  return out;
}

const positions = (s: Shape): number => (isFlat(s) ? 1 : s.h * s.w);

/**
 * Multiply-adds per image, as torchinfo counts them: every weight and bias of a conv or dense layer
 * once per output position (pooling, activations and batch norm are not counted).
 */
export function multiplyAdds(layers: readonly Layer[]): number {
  let total = 0;
  for (const l of layers) {
    if (l.kind === 'conv' || l.kind === 'dense') total += l.params.trainable * positions(l.output);
    if (l.kind === 'residual') {
      total += multiplyAdds(l.body);
      if (l.projection) total += l.projection.params.trainable * positions(l.output);
    }
  }
  return total;
}

export function summarize(ir: ModelIR): string {
  const body = rows(ir.layers);
  // Widths by a fold, not Math.max(...rows): a spread of one argument per layer overflows the stack.
  const w1 = body.reduce((w, r) => Math.max(w, r[0].length + 3), 29);
  const w2 = body.reduce((w, r) => Math.max(w, r[1].length + 2), 26);
  const width = Math.max(65, w1 + w2 + 10);
  const line = (a: string, b: string, c: string): string => ` ${a.padEnd(w1 - 1)}${b.padEnd(w2)}${c}`.trimEnd();
  const model = ir.file.replace(/^.*[\\/]/, '').replace(/\.net$/, '');
  const { trainable, nonTrainable } = ir.params;
  return [
    `Model: ${JSON.stringify(model)}`,
    '_'.repeat(width),
    line('Layer (type)', 'Output Shape', 'Param #'),
    '='.repeat(width),
    ...body.map(([a, b, c]) => line(a, b, String(c))),
    '='.repeat(width),
    `Total params: ${thousands(trainable + nonTrainable)}`,
    `Trainable params: ${thousands(trainable)}`,
    `Non-trainable params: ${thousands(nonTrainable)}`,
    `Mult-adds per image (M): ${(multiplyAdds(ir.layers) / 1e6).toFixed(2)}`,
    '_'.repeat(width),
  ].join('\n');
}
