// ONNX export, checked by ONNX Runtime: every example network, trained briefly on real images, and
// networks that use every layer and activation the language has, give the engine's own
// probabilities (within 1e-4) and top-1 class on raw test images (pixel / 255, no preprocessing).
// Colour examples train on generated colour images with a per-channel normalisation, as a colour run
// keeps it: the engine gathers the images with it as eval does, ONNX Runtime gets pixel / 255 and
// applies it inside the model.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { useGpu } from './helpers/gpu.ts';
import { opts } from './helpers/train.ts';
import { parseNet, shapeSize, type Layer, type ModelIR } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import { loadFashionMnist, loadFashionMnistTest } from '../src/node/data.ts';
import { CLASS_NAMES } from '../src/data/classes.ts';
import { imageBytes, type Dataset } from '../src/data/dataset.ts';
import { channelStats } from '../src/data/cifar.ts';
import { onnxModel, INPUT_NAME, OUTPUT_NAME } from '../src/model/onnx.ts';
import { decodeOnnx, encodeOnnx } from '../src/node/onnx.ts';
import { Rng } from '../src/util/rng.ts';
import { UsageError } from '../src/errors.ts';

const EXAMPLES = readdirSync('examples')
  .filter((f) => f.endsWith('.net'))
  .sort();
/** Test images compared per example network: the 1,000 for every one. */
const IMAGES = 1000;

const first = (ds: Dataset, n: number): Dataset => ({
  ...ds,
  n,
  images: ds.images.subarray(0, n * imageBytes(ds)),
  labels: ds.labels.subarray(0, n),
});
const train = first(loadFashionMnist().train, 256);
const test = loadFashionMnistTest();

/**
 * n generated colour images of c×h×w in ten classes: each channel has its own brightness (so the
 * per-channel mean and std are far from 0 and 1) plus noise, and class k a bright square of its own
 * in channel k mod c.
 */
function colourImages(n: number, seed: number, c: number, h: number, w: number): Dataset {
  const rng = new Rng(seed);
  const px = h * w;
  const images = new Uint8Array(n * c * px),
    labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(10);
    labels[i] = k;
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < px; p++) images[(i * c + ch) * px + p] = 30 + 50 * (ch % 3) + rng.int(70);
    const [y0, x0] = [Math.floor(k / 4) * Math.floor(h / 3), (k % 4) * Math.floor(w / 4)];
    for (let y = y0; y < y0 + Math.floor(h / 3); y++)
      for (let x = x0; x < x0 + Math.floor(w / 4); x++) images[(i * c + (k % c)) * px + y * w + x] = 255;
  }
  return { images, labels, n, rows: h, cols: w, channels: c };
}

/** A colour network's training and test images, normalised by the training images' statistics as a run is. */
function colourData(ir: ModelIR, n: number): { train: Dataset; test: Dataset } {
  const { c, h, w } = ir.input;
  const raw = colourImages(256, 11, c, h, w);
  const normalize = channelStats(raw);
  return { train: { ...raw, normalize }, test: { ...colourImages(n, 12, c, h, w), normalize } };
}

/** One epoch over 256 training images with the network's own optimizer and augmentation. */
async function trainBriefly(t: Trainer, ir: ModelIR, data = train): Promise<void> {
  const { optimizer: name, momentum, nesterov, weightDecay } = ir.train;
  const o = opts({ lr: ir.train.lr, optimizer: { name, momentum, nesterov, weightDecay }, augment: ir.augment });
  const [epoch] = await t.fit(data, null, o);
  expect(Number.isFinite(epoch?.loss)).toBe(true);
}

type Normalize = { mean: number[]; std: number[] };

async function exported(t: Trainer, ir: ModelIR, tta = false, normalize?: Normalize): Promise<ort.InferenceSession> {
  const classNames = Array.from({ length: shapeSize(ir.output) }, (_, c) => CLASS_NAMES[c] ?? String(c));
  const model = onnxModel({ ir, weights: await t.params.read(), classNames, version: 'test', tta, normalize });
  return ort.InferenceSession.create(encodeOnnx(model));
}

async function runOnnx(s: ort.InferenceSession, ir: ModelIR, images: Float32Array, n: number): Promise<Float32Array> {
  const { c, h, w } = ir.input;
  const out = await s.run({ [INPUT_NAME]: new ort.Tensor('float32', images, [n, c, h, w]) });
  const probs = out[OUTPUT_NAME];
  expect(probs?.dims).toEqual([n, shapeSize(ir.output)]);
  return probs?.data as Float32Array;
}

const argmax = (p: Float32Array, i: number, k: number): number => {
  let best = 0;
  for (let c = 1; c < k; c++) if (p[i * k + c]! > p[i * k + best]!) best = c;
  return best;
};

/** Same top-1 class on every image, probabilities within 1e-4; prints what it compared. */
function expectSame(what: string, engine: Float32Array, onnx: Float32Array, n: number, classes: number): void {
  let maxDiff = 0;
  const differ: string[] = [];
  for (let i = 0; i < n; i++) {
    const [a, b] = [argmax(engine, i, classes), argmax(onnx, i, classes)];
    if (a !== b)
      differ.push(`image ${i}: engine ${a} (${engine[i * classes + a]}), onnx ${b} (${onnx[i * classes + b]})`);
  }
  for (let i = 0; i < n * classes; i++) maxDiff = Math.max(maxDiff, Math.abs(engine[i]! - onnx[i]!));
  console.log(`${what}: ${n} images, top-1 differs on ${differ.length}, max |Δp| ${maxDiff.toExponential(2)}`);
  expect(differ).toEqual([]);
  expect(maxDiff).toBeLessThanOrEqual(1e-4);
}

async function compare(what: string, t: Trainer, ir: ModelIR, n: number): Promise<void> {
  const images = Float32Array.from(test.images.subarray(0, n * 784), (v) => v / 255);
  const engine = await t.predict(images, n);
  const onnx = await runOnnx(await exported(t, ir), ir, images, n);
  expectSame(what, engine, onnx, n, t.classes);
}

/**
 * A colour network: the engine's probabilities as eval computes them (the gather normalising with
 * the dataset's per-channel mean and std), ONNX Runtime's from pixel / 255 through the model's own.
 */
async function compareColour(what: string, t: Trainer, ir: ModelIR, data: { test: Dataset }): Promise<void> {
  const { test: ds } = data;
  const normalize = ds.normalize as Normalize;
  expect(normalize.mean.every((m) => Math.abs(m) > 0.05) && normalize.std.every((s) => Math.abs(s - 1) > 0.05)).toBe(
    true,
  );
  const engine = await t.probabilities(ds);
  const images = Float32Array.from(ds.images, (v) => v / 255);
  const onnx = await runOnnx(await exported(t, ir, false, normalize), ir, images, ds.n);
  expectSame(what, engine, onnx, ds.n, t.classes);
}

/** Every tensor moved well away from its initial value (batch-norm statistics included), variances kept > 0. */
async function perturb(t: Trainer, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const weights = await t.params.read();
  for (const [name, w] of weights)
    for (let i = 0; i < w.data.length; i++)
      w.data[i] = name.endsWith('.moving_variance') ? rng.uniform(0.3, 2) : w.data[i]! + rng.uniform(-0.3, 0.3);
  t.params.load(weights);
}

describe('every example network, briefly trained, runs in ONNX Runtime as in the engine', () => {
  const gpu = useGpu();
  it('there are examples', () => expect(EXAMPLES.length).toBeGreaterThanOrEqual(6));
  it.each(EXAMPLES)('%s', async (file) => {
    const ir = parseNet(readFileSync(`examples/${file}`, 'utf8'), `examples/${file}`);
    const t = new Trainer(gpu(), ir, 1);
    try {
      if (ir.input.c > 1) {
        const data = colourData(ir, IMAGES);
        await trainBriefly(t, ir, data.train);
        await compareColour(file, t, ir, data);
      } else {
        await trainBriefly(t, ir);
        await compare(file, t, ir, IMAGES);
      }
    } finally {
      t.release();
    }
  });
});

// Every layer kind and activation, windows with odd sizes, even kernels (TF's asymmetric 'same'
// padding), strides, average pooling that leaves padding out, batch norm on flat features, a
// projected residual, and a network that ends in a 1x1x10 convolution instead of a dense layer.
const EVERY_LAYER = `
conv 8 3x3 same gelu
batchnorm
conv 8 4x4 same sigmoid
avgpool 3 stride=2 same
residual { conv 8 3x3 same tanh; conv 8 3x3 same }
leaky(0.2)
residual { conv 16 2x2 stride=2 same bias=false; batchnorm; relu }
pool 3 stride=1 same
avgpool 2 stride=2 valid
conv 12 1x1 bias=false tanh
flatten
dense 32 gelu bias=false
batchnorm
dropout 0.2
sigmoid
dense 10 softmax`;
const CONV_HEAD = `
conv 16 3x5 stride=2x1 valid relu
pool 2x3 same
avgpool 2 stride=1
conv 10 6x7 softmax`;
const GLOBAL_POOL = `
conv 16 3x3 same leaky
batchnorm
residual { conv 16 3x3 same gelu; batchnorm }
tanh
globalavgpool
batchnorm
dense 10 linear`;

describe('every layer and activation of the language', () => {
  const gpu = useGpu();
  it.each([
    ['every layer', EVERY_LAYER],
    ['a convolution for a head', CONV_HEAD],
    ['global average pooling', GLOBAL_POOL],
  ])('%s: trained, then every weight perturbed', async (what, source) => {
    const ir = parseNet(source, `${what}.net`);
    const t = new Trainer(gpu(), ir, 2);
    try {
      await trainBriefly(t, ir);
      await perturb(t, 3);
      await compare(what, t, ir, 1000);
    } finally {
      t.release();
    }
  });

  it('with tta, each image averaged with its mirror image as eval does', async () => {
    const ir = parseNet(EVERY_LAYER, 'tta.net');
    const t = new Trainer(gpu(), ir, 4);
    try {
      await trainBriefly(t, ir);
      await perturb(t, 5);
      const n = 500;
      const engine = await t.probabilities(first(test, n), { tta: true });
      const images = Float32Array.from(test.images.subarray(0, n * 784), (v) => v / 255);
      const onnx = await runOnnx(await exported(t, ir, true), ir, images, n);
      expectSame('tta', engine, onnx, n, t.classes);
      const plain = await t.predict(images, n);
      expect(plain.some((p, i) => Math.abs(p - onnx[i]!) > 1e-3)).toBe(true); // the mirrors do count
    } finally {
      t.release();
    }
  });
});

describe('the file', () => {
  const ir = parseNet('conv 4 3x3 relu\npool 2\ndense 10 softmax', 'small.net');
  const weights = new Map(
    [
      ['conv1.weight', [4, 1, 3, 3]],
      ['conv1.bias', [4]],
      ['dense1.weight', [676, 10]],
      ['dense1.bias', [10]],
    ].map(([name, shape]) => {
      const dims = shape as number[];
      return [name as string, { shape: dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.01) }];
    }),
  );
  const classNames = [...CLASS_NAMES];

  it('holds opset 17, a symbolic batch, the class names, the source and the version', () => {
    const model = decodeOnnx(encodeOnnx(onnxModel({ ir, weights, classNames, version: '9.9.9', tta: false })));
    expect(model).toMatchObject({ ir_version: 8, producer_name: 'fmgpu', producer_version: '9.9.9' });
    expect(model.opset_import).toEqual([{ domain: '', version: 17 }]);
    const graph = model.graph as { input: { type: { tensor_type: { shape: { dim: unknown[] } } } }[] };
    expect(graph.input[0]?.type.tensor_type.shape.dim).toEqual([
      { dim_param: 'N' },
      { dim_value: 1 },
      { dim_value: 28 },
      { dim_value: 28 },
    ]);
    const meta = Object.fromEntries(
      (model.metadata_props as { key: string; value: string }[]).map((p) => [p.key, p.value]),
    );
    expect(JSON.parse(meta.classes ?? '')).toEqual(classNames);
    expect(meta.net).toBe(ir.source);
    expect(meta.fmgpu_version).toBe('9.9.9');
  });

  it('refuses a layer it has no ONNX form for, naming it', () => {
    const odd = { ...ir.layers[1], kind: 'upsample', name: 'upsample1' } as unknown as Layer;
    const strange = { ...ir, layers: [ir.layers[0]!, odd, ...ir.layers.slice(2)] };
    const go = () => onnxModel({ ir: strange, weights, classNames, version: 'test', tta: false });
    expect(go).toThrow(UsageError);
    expect(go).toThrow('layer upsample1: cannot export a "upsample" layer to ONNX (fmgpu export knows no form for it)');
  });

  it('refuses weights that lack a tensor the network needs, naming it', () => {
    const partial = new Map([...weights].filter(([k]) => k !== 'dense1.bias'));
    expect(() => onnxModel({ ir, weights: partial, classNames, version: 'test', tta: false })).toThrow(
      'the weights have no tensor "dense1.bias"',
    );
  });
});
