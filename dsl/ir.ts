// The model IR: what a .net file means, fully resolved (every option, shape, name and parameter
// count filled in). Everything downstream (graph builder, trainer, CLI, page) reads only this.
import type { Span } from './errors.ts';

export type { Span } from './errors.ts';

/** The activations the language knows; the engine's kernels implement each (src/ops/act.ts). */
export type ActKind = 'linear' | 'relu' | 'leaky' | 'sigmoid' | 'tanh' | 'gelu';
/** An activation, fully resolved: leaky relu always carries its slope below zero (the checker fills it in). */
export type Act = { kind: 'leaky'; alpha: number } | { kind: Exclude<ActKind, 'leaky'> };
/** Leaky relu's slope below zero when a file does not give one (Keras's default). */
export const LEAKY_SLOPE = 0.3;

/** An image: height, width, channels (tensors are NCHW, so C·H·W in memory). */
export interface SpatialShape {
  h: number;
  w: number;
  c: number;
}
/**
 * The largest image an `input` line (and so any data fmgpu trains on) may have: each side, and channels
 * (grey, RGB, RGBA): what the batch gather takes (src/data/batch.ts).
 */
export const MAX_INPUT = { side: 128, channels: 4 } as const;
/** A flat vector per sample. */
export interface FlatShape {
  units: number;
}
export type Shape = SpatialShape | FlatShape;

export const isFlat = (s: Shape): s is FlatShape => 'units' in s;
export const shapeSize = (s: Shape): number => (isFlat(s) ? s.units : s.h * s.w * s.c);
/** `28x28x1` or `128`, as error messages write shapes. */
export const shapeText = (s: Shape): string => (isFlat(s) ? String(s.units) : `${s.h}x${s.w}x${s.c}`);

/** Keras/TF window padding: 'valid' takes only whole windows, 'same' pads to ceil(in / stride) outputs. */
export type Padding = 'same' | 'valid';

export interface ParamCount {
  trainable: number;
  /** Batch norm's moving mean and variance. */
  nonTrainable: number;
}

interface LayerBase {
  /** Stable, unique; parameters are `<name>.weight`, `<name>.bias`, `<name>.gamma`... */
  name: string;
  /** The statement in the source (for a residual, from `residual` to its `}`). */
  span: Span;
  input: Shape;
  output: Shape;
  /** Parameters this layer owns (a residual: its body's and its projection's). */
  params: ParamCount;
}

export interface ConvLayer extends LayerBase {
  kind: 'conv';
  filters: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padding: Padding;
  act: Act;
  bias: boolean;
}
export interface PoolLayer extends LayerBase {
  kind: 'pool';
  mode: 'max' | 'avg';
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padding: Padding;
}
export interface GlobalAvgPoolLayer extends LayerBase {
  kind: 'globalavgpool';
}
export interface DenseLayer extends LayerBase {
  kind: 'dense';
  units: number;
  act: Act;
  bias: boolean;
}
export interface DropoutLayer extends LayerBase {
  kind: 'dropout';
  rate: number;
}
export interface BatchnormLayer extends LayerBase {
  kind: 'batchnorm';
  momentum: number;
  eps: number;
}
export interface FlattenLayer extends LayerBase {
  kind: 'flatten';
  /** Not written: inserted before a dense layer that follows spatial layers. */
  implied: boolean;
}
export interface ActivationLayer extends LayerBase {
  kind: 'activation';
  act: Act;
}
export interface Projection {
  /** `<residual>.proj`: a 1×1 conv with bias, valid padding, no activation. */
  name: string;
  filters: number;
  strideH: number;
  strideW: number;
  params: ParamCount;
}
export interface ResidualLayer extends LayerBase {
  kind: 'residual';
  /** output = body(input) + shortcut(input). */
  body: Layer[];
  /** null: the shortcut is the input itself (the shapes already match). */
  projection: Projection | null;
}

export type Layer =
  | ConvLayer
  | PoolLayer
  | GlobalAvgPoolLayer
  | DenseLayer
  | DropoutLayer
  | BatchnormLayer
  | FlattenLayer
  | ActivationLayer
  | ResidualLayer;
export type LayerKind = Layer['kind'];

export type OptimizerName = 'adam' | 'adamw' | 'sgd';
export type ScheduleName = 'constant' | 'cosine' | 'onecycle' | 'plateau';

export interface TrainValues {
  epochs: number;
  batch: number;
  optimizer: OptimizerName;
  lr: number;
  /** sgd only. */
  momentum: number;
  /** sgd only. */
  nesterov: boolean;
  weightDecay: number;
  /** Fraction of the training set held out for validation (0: none), or `test`: the test set validates. */
  validation: number | 'test';
  /**
   * How a validation fraction is held out: `last` (Keras's validation_split), `random` (seeded, the
   * fraction of each class), or `auto`: random when the training data is sorted by class, else last.
   */
  split: 'auto' | 'last' | 'random';
  seed: number;
  /** Early-stopping patience in epochs (0: off). */
  earlyStop: number;
  labelSmoothing: number;
  schedule: ScheduleName;
  /** Decay of an exponential moving average of the weights (0: off). */
  ema: number;
  /** Test-time augmentation at evaluation. */
  tta: boolean;
}
export type TrainKey = keyof TrainValues;
export interface TrainConfig extends TrainValues {
  /** Keys the file set (the rest are defaults), in field names. */
  explicit: TrainKey[];
}

export interface AugmentValues {
  /** Random translation, up to this many pixels each way. */
  shift: number;
  /** Random horizontal flip. */
  flip: boolean;
  /** Random rotation, up to this many degrees each way. */
  rotate: number;
  /** Random zoom, scale in [1 - zoom, 1 + zoom]. */
  zoom: number;
  /** Probability of random erasing (one rectangle per image). */
  erase: number;
}
export type AugmentKey = keyof AugmentValues;
export interface AugmentConfig extends AugmentValues {
  explicit: AugmentKey[];
}

export interface ModelIR {
  source: string;
  file: string;
  input: SpatialShape;
  layers: Layer[];
  /** Shape of the logits: flat {units: 10}, or 1x1x10. */
  output: Shape;
  train: TrainConfig;
  augment: AugmentConfig;
  /** The last layer was written with softmax; it is folded into the loss, so the layers end in logits. */
  softmax: boolean;
  params: ParamCount;
}
