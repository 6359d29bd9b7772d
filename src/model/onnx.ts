// A model and its weights as an ONNX model: a plain object in the field names of the ONNX project's
// own schema (onnx.proto), which src/node/onnx.ts encodes with protobufjs (the npm package onnx-proto).
//   input  "pixels"        float32 [N, C, H, W], pixel / 255, NCHW row-major; a colour run's per-channel
//                          (x − mean) / std, which the engine's gather applies, is done inside (Sub, Div)
//   output "probabilities" float32 [N, classes], softmax of the logits, as eval and predict compute it
// N is symbolic (any batch). With tta each image and its mirror image run as one batch of 2N and
// their probabilities are averaged, as `fmgpu eval` does. Dropout is the identity at inference and
// emits nothing. Opset 17 (ONNX 1.12, IR version 8), which every ONNX Runtime since 1.12 reads; gelu
// is composed from Erf (the Gelu op came in opset 20).
// Layouts carry over unchanged: conv weight [K, C, KH, KW] is ONNX's OIHW, dense weight [in, out] is
// Gemm's B, and Flatten(axis 1) of NCHW is the engine's reshape (row-major C·H·W per sample).
import { isFlat, shapeSize, type Act, type Layer, type ModelIR, type Shape } from '../../dsl/ir.ts';
import { DataError, UsageError } from '../errors.ts';
import { window1d, type Window2d } from '../ops/geometry.ts';
import type { NamedTensor } from './safetensors.ts';

export const OPSET = 17;
export const IR_VERSION = 8;
export const INPUT_NAME = 'pixels';
export const OUTPUT_NAME = 'probabilities';

/** TensorProto.DataType and AttributeProto.AttributeType values (onnx.proto). */
const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const;

export interface OnnxTensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
}
export interface OnnxNode {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: OnnxAttribute[];
}
export interface OnnxValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}
export interface OnnxModel {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string: string;
  graph: {
    name: string;
    node: OnnxNode[];
    initializer: OnnxTensor[];
    input: OnnxValueInfo[];
    output: OnnxValueInfo[];
  };
  metadata_props: { key: string; value: string }[];
}

export interface ExportSource {
  ir: ModelIR;
  /** The run's weights by parameter name (`conv1.weight`, `bn1.moving_mean`…), as eval loads them. */
  weights: ReadonlyMap<string, NamedTensor>;
  /** One name per output class, in label order. */
  classNames: readonly string[];
  /** fmgpu's version, for the producer field and the metadata. */
  version: string;
  /** Average each image's probabilities with its mirror image's (test-time augmentation). */
  tta: boolean;
  /** The run's per-channel normalisation of pixel / 255 (colour data, run.json), else none. */
  normalize?: { mean: readonly number[]; std: readonly number[] };
}

const ints = (name: string, v: number[]): OnnxAttribute => ({ name, type: ATTR.INTS, ints: v });
const int = (name: string, v: number): OnnxAttribute => ({ name, type: ATTR.INT, i: v });
const float = (name: string, v: number): OnnxAttribute => ({ name, type: ATTR.FLOAT, f: v });

/** Little-endian bytes, as TensorProto.raw_data holds them whatever the host's byte order. */
function rawBytes(values: ArrayLike<number>, type: typeof FLOAT | typeof INT64): Uint8Array {
  const size = type === FLOAT ? 4 : 8;
  const view = new DataView(new ArrayBuffer(values.length * size));
  for (let i = 0; i < values.length; i++)
    if (type === FLOAT) view.setFloat32(i * 4, values[i]!, true);
    else view.setBigInt64(i * 8, BigInt(values[i]!), true);
  return new Uint8Array(view.buffer);
}

function valueInfo(name: string, dims: (number | string)[]): OnnxValueInfo {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim } } } };
}

/** ONNX pads [top, left, bottom, right] for a window: TF's 'same' puts the smaller half first. */
function pads(h: number, w: number, win: Window2d): number[] {
  const side = (size: number, k: number, stride: number): [number, number] => {
    const { out, pad } = window1d(size, k, stride, win.padding);
    const total = win.padding === 'same' ? Math.max((out - 1) * stride + k - size, 0) : 0;
    return [pad, total - pad];
  };
  const [top, bottom] = side(h, win.kh, win.strideH);
  const [left, right] = side(w, win.kw, win.strideW);
  return [top, left, bottom, right];
}

const windowAttrs = (layer: string, shape: Shape, win: Window2d): OnnxAttribute[] => {
  if (isFlat(shape)) throw new UsageError(`layer ${layer}: a window cannot slide over a flat input (${shape.units})`);
  return [
    ints('kernel_shape', [win.kh, win.kw]),
    ints('strides', [win.strideH, win.strideW]),
    ints('pads', pads(shape.h, shape.w, win)),
  ];
};

/** The ONNX model of `src.ir` with `src.weights`. */
export function onnxModel(src: ExportSource): OnnxModel {
  const { ir } = src;
  const g = new Emitter(src.weights);
  const { c, h, w } = ir.input;
  let x = src.normalize ? g.normalize(INPUT_NAME, src.normalize) : INPUT_NAME;
  x = src.tta ? g.withMirrors(x, w) : x;
  for (const l of ir.layers) x = g.layer(x, l);
  if (!isFlat(ir.output)) x = g.node('logits', 'Flatten', [x], [int('axis', 1)]);
  x = g.node('softmax', 'Softmax', [x], [int('axis', 1)], src.tta ? undefined : OUTPUT_NAME);
  const classes = shapeSize(ir.output);
  if (src.tta) g.meanOfMirrors(x, classes);
  const n = src.normalize;
  const norm = n
    ? `, then (x − mean) / std per channel inside: mean [${n.mean.join(', ')}], std [${n.std.join(', ')}]`
    : '';
  const io =
    `input "${INPUT_NAME}" float32 [N, ${c}, ${h}, ${w}] (pixel / 255${norm}), ` +
    `output "${OUTPUT_NAME}" [N, ${classes}]` +
    (src.tta ? ', each image averaged with its mirror image' : '');
  return {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'fmgpu',
    producer_version: src.version,
    doc_string: `${ir.file}, exported by fmgpu ${src.version}: ${io}`,
    graph: {
      name: ir.file,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(INPUT_NAME, ['N', c, h, w])],
      output: [valueInfo(OUTPUT_NAME, ['N', classes])],
    },
    metadata_props: [
      { key: 'classes', value: JSON.stringify(src.classNames) },
      { key: 'net', value: ir.source },
      { key: 'fmgpu_version', value: src.version },
      { key: 'input', value: `float32 [N, ${c}, ${h}, ${w}], NCHW, pixel / 255${norm}` },
      { key: 'tta', value: String(src.tta) },
    ],
  };
}

/** Nodes and initializers, added layer by layer; values are named after the layer that makes them. */
class Emitter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly names = new Set<string>();

  constructor(private readonly weights: ReadonlyMap<string, NamedTensor>) {}

  /** A node with one output, named `name` (made unique); returns the output's name. */
  node(name: string, op: string, input: string[], attribute: OnnxAttribute[] = [], output?: string): string {
    let unique = name;
    for (let i = 2; this.names.has(unique); i++) unique = `${name}_${i}`;
    this.names.add(unique);
    const out = output ?? unique;
    this.nodes.push({ name: unique, op_type: op, input, output: [out], attribute });
    return out;
  }

  /** The run's tensor `name` as an initializer. */
  param(name: string): string {
    const t = this.weights.get(name);
    if (!t) throw new DataError(`the weights have no tensor "${name}"`);
    if (!this.names.has(name)) this.initializers.push(this.tensor(name, t.shape, t.data, FLOAT));
    this.names.add(name);
    return name;
  }

  /** (x − mean[c]) / std[c] over NCHW, as the engine's gather normalises colour data. */
  normalize(x: string, n: { mean: readonly number[]; std: readonly number[] }): string {
    const dims = [1, n.mean.length, 1, 1];
    const centred = this.node('input.centre', 'Sub', [x, this.constant('input.mean', dims, [...n.mean])]);
    return this.node('input.normalize', 'Div', [centred, this.constant('input.std', dims, [...n.std])]);
  }

  /** A constant tensor (shared by name). */
  constant(name: string, dims: number[], values: number[], type: typeof FLOAT | typeof INT64 = FLOAT): string {
    if (!this.names.has(name)) this.initializers.push(this.tensor(name, dims, values, type));
    this.names.add(name);
    return name;
  }

  private tensor(name: string, dims: number[], values: ArrayLike<number>, type: typeof FLOAT | typeof INT64) {
    return { name, dims, data_type: type, raw_data: rawBytes(values, type) };
  }

  layer(x: string, l: Layer): string {
    switch (l.kind) {
      case 'conv': {
        const inputs = [x, this.param(`${l.name}.weight`), ...(l.bias ? [this.param(`${l.name}.bias`)] : [])];
        const attrs = [...windowAttrs(l.name, l.input, l), ints('dilations', [1, 1]), int('group', 1)];
        return this.activate(l.name, this.node(l.name, 'Conv', inputs, attrs), l.act);
      }
      case 'pool': {
        const attrs = windowAttrs(l.name, l.input, l);
        if (l.mode === 'max') return this.node(l.name, 'MaxPool', [x], attrs);
        return this.node(l.name, 'AveragePool', [x], [...attrs, int('count_include_pad', 0)]); // as the engine
      }
      case 'globalavgpool':
        return this.node(
          `${l.name}.flatten`,
          'Flatten',
          [this.node(l.name, 'GlobalAveragePool', [x])],
          [int('axis', 1)],
        );
      case 'dense': {
        const flat = isFlat(l.input) ? x : this.node(`${l.name}.flatten`, 'Flatten', [x], [int('axis', 1)]);
        const inputs = [flat, this.param(`${l.name}.weight`), ...(l.bias ? [this.param(`${l.name}.bias`)] : [])];
        return this.activate(l.name, this.node(l.name, 'Gemm', inputs), l.act);
      }
      case 'dropout':
        return x;
      case 'batchnorm': {
        const p = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((s) => this.param(`${l.name}.${s}`));
        return this.node(l.name, 'BatchNormalization', [x, ...p], [float('epsilon', l.eps)]);
      }
      case 'flatten':
        return isFlat(l.input) ? x : this.node(l.name, 'Flatten', [x], [int('axis', 1)]);
      case 'activation':
        return this.activate(l.name, x, l.act);
      case 'residual':
        return this.residual(x, l);
      default:
        throw unexportable(l satisfies never);
    }
  }

  /** body(x) + shortcut(x), the shortcut a 1×1 conv where the block changes the shape. */
  private residual(x: string, l: Extract<Layer, { kind: 'residual' }>): string {
    let y = x;
    for (const inner of l.body) y = this.layer(y, inner);
    let shortcut = x;
    const p = l.projection;
    if (p) {
      const attrs = [
        ...windowAttrs(p.name, l.input, { kh: 1, kw: 1, strideH: p.strideH, strideW: p.strideW, padding: 'valid' }),
        ints('dilations', [1, 1]),
        int('group', 1),
      ];
      shortcut = this.node(p.name, 'Conv', [x, this.param(`${p.name}.weight`), this.param(`${p.name}.bias`)], attrs);
    }
    return this.node(l.name, 'Add', [y, shortcut]);
  }

  /** act(x) as ONNX operators; gelu is x·½(1 + erf(x/√2)), the engine's exact form. */
  activate(name: string, x: string, act: Act): string {
    switch (act.kind) {
      case 'linear':
        return x;
      case 'relu':
        return this.node(`${name}.relu`, 'Relu', [x]);
      case 'leaky':
        return this.node(`${name}.leaky`, 'LeakyRelu', [x], [float('alpha', act.alpha)]);
      case 'sigmoid':
        return this.node(`${name}.sigmoid`, 'Sigmoid', [x]);
      case 'tanh':
        return this.node(`${name}.tanh`, 'Tanh', [x]);
      case 'gelu': {
        const erf = this.node(`${name}.erf`, 'Erf', [
          this.node(`${name}.scaled`, 'Div', [x, this.constant('gelu.sqrt2', [], [Math.SQRT2])]),
        ]);
        const half = this.node(`${name}.half`, 'Mul', [x, this.constant('gelu.half', [], [0.5])]);
        return this.node(`${name}.gelu`, 'Mul', [
          half,
          this.node(`${name}.erf1`, 'Add', [erf, this.constant('gelu.one', [], [1])]),
        ]);
      }
      default:
        return act satisfies never;
    }
  }

  /** [x; x mirrored left to right] along the batch: [2N, C, H, W]. */
  withMirrors(x: string, w: number): string {
    const i64 = (name: string, v: number): string => this.constant(name, [1], [v], INT64);
    // Slice backwards along W: from w-1 down past 0 (an end of -w-1 is clamped to "before 0").
    const slice = [
      x,
      i64('mirror.starts', w - 1),
      i64('mirror.ends', -w - 1),
      i64('mirror.axes', 3),
      i64('mirror.steps', -1),
    ];
    const mirrored = this.node('mirror', 'Slice', slice);
    return this.node('with_mirrors', 'Concat', [x, mirrored], [int('axis', 0)]);
  }

  /** The mean of the probabilities of the images [0, N) and their mirrors [N, 2N). */
  meanOfMirrors(probs: string, classes: number): string {
    const pairs = this.node('tta.pairs', 'Reshape', [probs, this.constant('tta.shape', [3], [2, -1, classes], INT64)]);
    return this.node('tta.mean', 'ReduceMean', [pairs], [ints('axes', [0]), int('keepdims', 0)], OUTPUT_NAME);
  }
}

/** A layer the exporter has no ONNX form for (a kind added to the language after it). */
function unexportable(l: { name: string; kind: string }): UsageError {
  return new UsageError(
    `layer ${l.name}: cannot export a "${l.kind}" layer to ONNX (fmgpu export knows no form for it)`,
  );
}
