// The parsed program: what the parser (parser.ts) hands the checker (checker.ts). Every option is
// resolved and in range, each statement keeps its span; shapes, names and parameter counts are not
// known yet (the checker computes them into the model IR, ir.ts).
import type { ActKind, AugmentConfig, ConvLayer, SpatialShape, TrainConfig } from './ir.ts';
import type { Span } from './errors.ts';

/** An activation as written, and where. */
export interface WrittenAct {
  kind: ActKind | 'softmax';
  alpha?: number;
  span: Span;
}
/** A layer's activation: as written, or the default (linear), which has no span. */
export type ActSpec = WrittenAct | { kind: 'linear'; alpha?: undefined; span: null };

/** A conv or pool window, as the IR has it. */
type Window = Pick<ConvLayer, 'kh' | 'kw' | 'strideH' | 'strideW' | 'padding'>;

export type LayerBody =
  | ({ kind: 'conv'; filters: number; act: ActSpec; bias: boolean } & Window)
  | ({ kind: 'pool'; mode: 'max' | 'avg' } & Window)
  | { kind: 'globalavgpool' }
  | { kind: 'dense'; units: number; act: ActSpec; bias: boolean }
  | { kind: 'dropout'; rate: number }
  | { kind: 'batchnorm'; momentum: number; eps: number }
  | { kind: 'flatten' }
  | { kind: 'activation'; act: ActSpec }
  | { kind: 'residual'; body: LayerSpec[] };
export type LayerSpec = LayerBody & { span: Span };

export interface Program {
  /** null: the file has no `input` line (the checker uses the data's shape, or 28x28x1). */
  input: SpatialShape | null;
  /** Where the `input` line's size is (null without one). */
  inputAt: Span | null;
  layers: LayerSpec[];
  train: TrainConfig;
  augment: AugmentConfig;
  /** The end of the file, where "the network is empty" points. */
  end: Span;
}

export const ACTIVATIONS: readonly string[] = ['relu', 'leaky', 'sigmoid', 'tanh', 'gelu', 'linear', 'softmax'];
export const LAYERS: readonly string[] = [
  'conv',
  'pool',
  'avgpool',
  'globalavgpool',
  'dense',
  'dropout',
  'batchnorm',
  'flatten',
  'residual',
];
