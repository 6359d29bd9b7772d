// The TF.js peer of bench/train.ts (issue #7): TensorFlow.js's WebGPU backend trains the reference
// network (examples/reference.net) on the same Dawn adapter as fmgpu, under Node.
//   node dist/bench/peer_tfjs.js [--batch 64,256] [--steps N] [--data DIR] [--compare] [--json]
// Per batch size: two passes of N steps (model.fit, one epoch each) over the same N·batch
// Fashion-MNIST images; the first pass pays for shader compilation and is reported apart.
// --compare also runs fmgpu's Trainer the same way on the same images, in the same process on the
// same adapter, and prints fmgpu/tfjs.
// TF.js is not a dependency of fmgpu (it is heavy and only this benchmark needs it): it is loaded
// at run time, after navigator.gpu exists, because the backend registers itself on import only
// when it sees navigator.gpu.
import { readFileSync } from 'node:fs';
import { create } from 'webgpu';
import { installGlobals } from '../src/node/gpu.ts';
import { adapterName, describeAdapter, openGpu, NO_ADAPTER_HELP } from '../src/gpu/device.ts';
import { parseNet } from '../dsl/index.ts';
import { FmgpuError } from '../src/errors.ts';
import type { Dataset } from '../src/data/dataset.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { DEFAULT_DATA_DIR, loadFashionMnist } from '../src/node/data.ts';
import { benchArgs, benchData, fmgpuLine, measureFmgpu } from './common.ts';

const TFJS_VERSION = '4.22.0';
const TFJS_PACKAGES = ['tfjs-core', 'tfjs-layers', 'tfjs-backend-webgpu'].map((p) => `@tensorflow/${p}`);
const MODEL = 'examples/reference.net';

// The few parts of TF.js used here, typed by hand: the packages are absent when fmgpu is typechecked.
interface Tensor {
  data(): Promise<Float32Array>;
  dispose(): void;
}
interface TfCore {
  version_core: string;
  setBackend(name: string): Promise<boolean>;
  getBackend(): string;
  backend(): { device?: GPUDevice };
  tensor4d(values: Float32Array, shape: [number, number, number, number]): Tensor;
  tensor1d(values: Int32Array, dtype: 'int32'): Tensor;
  oneHot(indices: Tensor, depth: number): Tensor;
  cast(x: Tensor, dtype: 'float32'): Tensor;
  tidy<T>(f: () => T): T;
  train: { adam(lr: number): unknown };
}
interface LayersModel {
  compile(args: { optimizer: unknown; loss: string; metrics: string[] }): void;
  fit(
    x: Tensor,
    y: Tensor,
    args: { batchSize: number; epochs: number; shuffle: boolean; verbose: number },
  ): Promise<unknown>;
  countParams(): number;
  trainableWeights: { read(): Tensor }[];
  dispose(): void;
}
type LayerFactory = (config?: Record<string, unknown>) => unknown;
interface TfLayers {
  version_layers: string;
  sequential(config: { layers: unknown[] }): LayersModel;
  layers: Record<'conv2d' | 'maxPooling2d' | 'dropout' | 'flatten' | 'dense', LayerFactory>;
}

const ir = parseNet(readFileSync(MODEL, 'utf8'), MODEL);
const { args, opt, json } = benchArgs();
const compare = args.includes('--compare');

function fail(message: string, code = 1): never {
  console.error(`fmgpu: error: ${message}`);
  process.exit(code);
}

// One Dawn instance serves both systems, so both get the same adapter. It stays referenced by this
// constant (and navigator) for the whole process: Dawn frees a collected instance and crashes its devices.
installGlobals(); // GPUBufferUsage, GPUMapMode, …: TF.js reads them as globals too
const dawn = create([]);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn }, configurable: true, writable: true });

async function load<T>(name: string): Promise<T> {
  try {
    const m = (await import(name)) as { default?: T };
    return m.default ?? (m as T); // the packages are CommonJS: module.exports is the default export
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw e;
    const install = TFJS_PACKAGES.map((p) => `${p}@${TFJS_VERSION}`).join(' ');
    return fail(`${name} is not installed (TF.js is not a dependency of fmgpu); run: npm install --no-save ${install}`);
  }
}

// The reference network as Keras layers, the same as examples/reference.net; Keras's defaults for
// everything the .net file does not say (Glorot-uniform kernels, zero biases, valid pooling: 7→3).
function referenceModel(tf: TfCore, tfl: TfLayers, lr: number): LayersModel {
  const L = tfl.layers;
  const conv = (filters: number, first = false): unknown =>
    L.conv2d({
      ...(first ? { inputShape: [28, 28, 1] } : {}),
      filters,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
    });
  const block = (filters: number, first = false): unknown[] => [
    conv(filters, first),
    L.maxPooling2d({ poolSize: 2 }),
    L.dropout({ rate: 0.25 }),
  ];
  const model = tfl.sequential({
    layers: [
      ...block(32, true),
      ...block(64),
      ...block(128),
      L.flatten(),
      L.dense({ units: 128, activation: 'relu' }),
      L.dropout({ rate: 0.25 }),
      L.dense({ units: 10, activation: 'softmax' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(lr), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Seconds of TF.js's steady-state pass and of its first, over `data` at `batch`. */
async function measureTfjs(
  tf: TfCore,
  tfl: TfLayers,
  data: Dataset,
  batch: number,
): Promise<{ first: number; steady: number }> {
  const px = new Float32Array(data.n * 784);
  for (let i = 0; i < px.length; i++) px[i] = data.images[i]! / 255;
  const x = tf.tensor4d(px, [data.n, 28, 28, 1]);
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from(data.labels), 'int32'), 10), 'float32'));
  const model = referenceModel(tf, tfl, ir.train.lr);
  if (model.countParams() !== ir.params.trainable + ir.params.nonTrainable) {
    fail(
      `the TF.js model has ${model.countParams()} parameters, ` +
        `${MODEL} ${ir.params.trainable + ir.params.nonTrainable}: they no longer match`,
    );
  }
  const pass = async (): Promise<number> => {
    const t0 = performance.now();
    // fit reads the loss back at the end; reading a weight too waits for the last Adam update.
    await model.fit(x, y, { batchSize: batch, epochs: 1, shuffle: true, verbose: 0 });
    await model.trainableWeights.at(-1)!.read().data();
    return (performance.now() - t0) / 1000;
  };
  try {
    const first = await pass();
    return { first, steady: await pass() };
  } finally {
    model.dispose();
    x.dispose();
    y.dispose();
  }
}

if (ir.train.optimizer !== 'adam') fail(`${MODEL} no longer trains with Adam, as this benchmark's TF.js model does`);
const adapter = await dawn.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) fail(NO_ADAPTER_HELP);
const report = describeAdapter(adapter);
const steps = Number(opt('steps', report.cpu ? '8' : '200'));
const batches = opt('batch', '64,256').split(',').map(Number);
if (!(Number.isInteger(steps) && steps > 0) || !batches.every((b) => Number.isInteger(b) && b > 0)) {
  fail('--steps and --batch take positive integers (--batch a comma-separated list)', 2);
}
const tf = await load<TfCore>('@tensorflow/tfjs-core');
const tfl = await load<TfLayers>('@tensorflow/tfjs-layers');
await load('@tensorflow/tfjs-backend-webgpu'); // registers the 'webgpu' backend on navigator.gpu
if (!(await tf.setBackend('webgpu')) || tf.getBackend() !== 'webgpu')
  fail('TF.js could not start its webgpu backend on this adapter');
let train: Dataset, fmgpu: Gpu | null;
try {
  train = loadFashionMnist(opt('data', DEFAULT_DATA_DIR)).train;
  fmgpu = compare ? await openGpu(dawn) : null;
} catch (e) {
  if (e instanceof FmgpuError) fail(e.message); // bad data, or no device: one line, as the CLI says it
  throw e;
}

const date = new Date().toISOString().slice(0, 10);
if (!json) console.log(`adapter: ${adapterName(report)}   model: ${MODEL}   tfjs: ${tf.version_core}   date: ${date}`);

for (const batch of batches) {
  const data = benchData(train, steps, batch);
  const n = data.n; // images per pass, whole batches
  const t = await measureTfjs(tf, tfl, data, batch);
  const row = {
    bench: 'peer-tfjs',
    system: 'tfjs-webgpu',
    tfjs: tf.version_core,
    adapter: adapterName(report),
    model: MODEL,
    date,
    batch,
    steps: n / batch,
    first_epoch_images_per_s: Math.round(n / t.first),
    images_per_s: Math.round(n / t.steady),
  };
  const ours = fmgpu ? await measureFmgpu(fmgpu, ir, MODEL, data, batch, date) : null;
  const ratio = ours ? ours.images_per_s / row.images_per_s : 0;
  if (json) {
    console.log(
      JSON.stringify(ours ? { ...row, fmgpu_images_per_s: ours.images_per_s, ratio: Number(ratio.toFixed(2)) } : row),
    );
    if (ours) console.log(JSON.stringify(ours));
    continue;
  }
  console.log(
    `tfjs-webgpu train batch=${batch}: ${row.images_per_s.toLocaleString('en-US')} images/s ` +
      `(first epoch ${row.first_epoch_images_per_s.toLocaleString('en-US')})`,
  );
  if (ours) console.log(`${fmgpuLine(ours)}\nfmgpu/tfjs batch=${batch}: ${ratio.toFixed(2)}x`);
}
fmgpu?.destroy();
tf.backend().device?.destroy(); // Dawn keeps the process alive while a device lives
