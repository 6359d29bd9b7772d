// The browser library (dist/web/fmgpu.js): the engine as a page imports it. Compile a .net source,
// load data over HTTP (the dataset `fmgpu serve` read, from /dataset/; else Fashion-MNIST's idx .gz,
// gunzipped by the browser's DecompressionStream, or CIFAR-10's batches), train, evaluate, predict,
// and move weights in and out as safetensors. No Node-only imports.
import { openGpu, adapterName, NO_ADAPTER_HELP } from './gpu/device.ts';
import type { Gpu } from './gpu/runtime.ts';
import {
  parseNet,
  tryParseNet,
  summarize,
  formatError,
  DslError,
  shapeText,
  isFlat,
  DEFAULT_INPUT,
  type CheckOptions,
  type ModelIR,
} from '../dsl/index.ts';
import {
  Trainer,
  DivergedError,
  fitOptions,
  type FitOptions,
  type Progress,
  type EpochLog,
  type EvalResult,
} from './train/trainer.ts';
import { decodeSafetensors, encodeSafetensors } from './model/safetensors.ts';
import { trainedWith, trainedWithMetadata, type TrainedWith } from './model/trained-with.ts';
import { DataError, FmgpuError, GpuError } from './errors.ts';
import { CLASS_NAMES, NUM_CLASSES, namesForOutputs } from './data/classes.ts';
import { readManifest, servedSet } from './data/served.ts';
import { channelsOf, gather, spread, subset, validationSplit, type Dataset } from './data/dataset.ts';
import { chooseValidation, normalizedBy, sortedByClass, trainingNormalization, type SplitKind } from './data/split.ts';
import { imagesOf } from './data/batch.ts';
import { channelStats, concatDatasets, decodeCifar } from './data/cifar.ts';
import { checkLabels, parseClassList } from './data/classes.ts';
import { describeResize, resizePhoto, type ImageShape, type ResizeSteps } from './data/resize.ts';
import { datasetFromIdx } from './data/idx.ts';
import { preprocessImage, type Preprocessed } from './data/image.ts';
import { describePhoto, preparePhoto, type Photo } from './data/photo.ts';
import { heatmap } from './report/svg.ts';
export { describeResize, resizePhoto, type ImageShape, type ResizeSteps, decodeCifar, channelStats };
export { preprocessImage, type Preprocessed, preparePhoto, describePhoto, type Photo };
// The confusion matrix as SVG markup: report.html's drawing, which the page shows too.
export { heatmap };

export { openGpu, adapterName, NO_ADAPTER_HELP, type Gpu };
export { parseNet, tryParseNet, summarize, formatError, DslError, shapeText, isFlat, type CheckOptions, type ModelIR };
// The input of a model file without an `input` line: Fashion-MNIST's 28×28×1.
export { DEFAULT_INPUT, normalizedBy };
// FitOptions from the model's `train` and `augment` lines; `over` replaces any of them (the page's fields).
export { fitOptions, Trainer, DivergedError, type FitOptions, type Progress, type EpochLog, type EvalResult };
export { decodeSafetensors, encodeSafetensors, trainedWith, trainedWithMetadata, type TrainedWith };
export { DataError, FmgpuError, GpuError };
export { CLASS_NAMES, NUM_CLASSES, namesForOutputs, datasetFromIdx, imagesOf, channelsOf, type Dataset };

/** Why this browser cannot run the engine, or null when it can try (navigator.gpu exists in a secure context). */
export function webgpuMissing(nav: Navigator = navigator): string | null {
  if (typeof isSecureContext !== 'undefined' && !isSecureContext) {
    return 'this page is not a secure context, and browsers give WebGPU only to https pages and to localhost/127.0.0.1';
  }
  if (!('gpu' in nav) || !nav.gpu)
    return 'navigator.gpu is missing: this browser has WebGPU turned off or does not have it';
  return null;
}

// ---- Data over HTTP ---------------------------------------------------------------------------

export interface FashionMnist {
  train: Dataset;
  test: Dataset;
}

export interface LoadOptions {
  /** Bytes received so far and in all (0 while unknown), across the four files. */
  onProgress?(received: number, total: number): void;
  signal?: AbortSignal;
}

const FILES = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
] as const;

/** gzip's magic bytes: the content decides, not the name or the server's headers. */
const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function body(res: Response, url: string, tick: (n: number) => void): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const parts: Uint8Array[] = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    tick(value.length);
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  if (out.length === 0) throw new DataError(`${url}: empty response`);
  return out;
}

/** A GET on this origin, abortable: every fetch of the loaders. */
const getSameOrigin = (url: string, signal?: AbortSignal): Promise<Response> =>
  fetch(url, { signal, credentials: 'same-origin' });

/** A failed GET as a DataError naming the URL and the HTTP status. */
const failed = (res: Response, url: string): DataError =>
  new DataError(`${url}: HTTP ${res.status} ${res.statusText}`.trim());

/** GETs a URL on this origin; gzip content is decompressed (DecompressionStream) unless `gunzip` is false. */
export async function fetchBytes(
  url: string,
  o: { gunzip?: boolean; signal?: AbortSignal; onBytes?(n: number): void } = {},
): Promise<Uint8Array> {
  const res = await getSameOrigin(url, o.signal);
  if (!res.ok) throw failed(res, url);
  const bytes = await body(res, url, o.onBytes ?? (() => undefined));
  return o.gunzip !== false && isGzip(bytes) ? gunzip(bytes) : bytes;
}

/**
 * What each loader sets up: its folder URL (`base` with a closing slash), a GET on this origin, and
 * the progress across its files: `tick` per chunk received, of the total `sized` says once they are open.
 */
function loader(base: string, o: LoadOptions) {
  let got = 0;
  let total = 0;
  return {
    root: base.endsWith('/') ? base : `${base}/`,
    get: (url: string): Promise<Response> => getSameOrigin(url, o.signal),
    /** The total: the opened files' sizes together (a size a server does not say counts 0). */
    sized(responses: readonly Response[]): void {
      total = responses.reduce((a, res) => a + Number(res.headers.get('content-length') ?? 0), 0);
    },
    tick(n: number): void {
      got += n;
      o.onProgress?.(got, total);
    },
  };
}

/**
 * Fashion-MNIST's four idx files from `base` (a folder URL on this origin, e.g. "data/"): each as
 * NAME.gz, or NAME when there is no .gz. Malformed files fail with the file and what is wrong.
 */
export async function loadFashionMnist(base = 'data/', o: LoadOptions = {}): Promise<FashionMnist> {
  const { root, get, sized, tick } = loader(base, o);
  const open = async (name: string): Promise<{ url: string; res: Response }> => {
    for (const url of [`${root}${name}.gz`, `${root}${name}`]) {
      const res = await get(url);
      if (res.ok) return { url, res };
      if (res.status !== 404) throw failed(res, url);
    }
    throw new DataError(`${root}${name}.gz: not found (HTTP 404)`);
  };
  // Every file is opened before any is read: the progress total is their sizes together. Tuples
  // (not FILES.map) keep each file in its place in the types.
  const opened = await Promise.all([open(FILES[0]), open(FILES[1]), open(FILES[2]), open(FILES[3])]);
  sized(opened.map((r) => r.res));
  const read = async ({ url, res }: { url: string; res: Response }): Promise<Uint8Array> => {
    const bytes = await body(res, url, tick);
    if (!isGzip(bytes)) return bytes;
    return gunzip(bytes).catch((e: Error) => {
      throw new DataError(`${url}: not valid gzip: ${e.message}`);
    });
  };
  const [trainX, trainY, testX, testY] = opened;
  const bytes = await Promise.all([read(trainX), read(trainY), read(testX), read(testY)]);
  return {
    train: datasetFromIdx(bytes[0], bytes[1], trainX.url, trainY.url),
    test: datasetFromIdx(bytes[2], bytes[3], testX.url, testY.url),
  };
}

/** A dataset the page trains on: its sets, class names and name. */
export interface ServedData extends FashionMnist {
  classes: readonly string[];
  name: string;
  /** How the test set was held out of one tree of class folders (it then validates, as in train). */
  heldOut?: string | null;
}

/**
 * CIFAR-10's binary batches from `base`: batches.meta.txt (the class names), data_batch_1.bin,
 * data_batch_2.bin… while there are more, and test_batch.bin; both sets normalised per channel with
 * the training set's mean and std, as the CLI does. Null when `base` has no batches.meta.txt.
 */
export async function loadCifar10(base = 'data/', o: LoadOptions = {}): Promise<ServedData | null> {
  const { root, get, tick } = loader(base, o); // the total stays unknown (0): batches are read while there are more
  const metaUrl = `${root}batches.meta.txt`;
  const meta = await get(metaUrl);
  if (meta.status === 404) return null;
  if (!meta.ok) throw failed(meta, metaUrl);
  const classes = parseClassList(await meta.text(), metaUrl);
  const batch = async (url: string): Promise<Dataset | null> => {
    const res = await get(url);
    if (res.status === 404) return null;
    if (!res.ok) throw failed(res, url);
    const ds = decodeCifar(await body(res, url, tick), 'cifar10', url);
    checkLabels(ds.labels, classes.length, `${url} (${metaUrl} names ${classes.length})`);
    return ds;
  };
  const parts: Dataset[] = [];
  for (let i = 1; ; i++) {
    const ds = await batch(`${root}data_batch_${i}.bin`);
    if (!ds) break;
    parts.push(ds);
  }
  if (parts.length === 0) throw new DataError(`${root}data_batch_1.bin: not found (HTTP 404)`);
  const test = await batch(`${root}test_batch.bin`);
  if (!test) throw new DataError(`${root}test_batch.bin: not found (HTTP 404)`);
  const train = concatDatasets(parts);
  const norm = trainingNormalization(train);
  return { train: normalizedBy(train, norm), test: normalizedBy(test, norm), classes, name: 'CIFAR-10' };
}

/**
 * The dataset `fmgpu serve` read at start (src/cli/serve-data.ts), from `base`: manifest.json, then
 * each set's images (uint8, NCHW per image) and labels. Colour sets are normalised per channel with
 * the training set's mean and std, as the CLI does. Null when there is no manifest (HTTP 404).
 */
export async function loadServedDataset(base = 'dataset/', o: LoadOptions = {}): Promise<ServedData | null> {
  const { root, get, sized, tick } = loader(base, o);
  const url = `${root}manifest.json`;
  const res = await get(url);
  if (res.status === 404) return null;
  if (!res.ok) throw failed(res, url);
  const m = readManifest(await res.text(), url);
  const urls = [m.train.images, m.train.labels, m.test.images, m.test.labels].map((f) => `${root}${f}`);
  const opened = await Promise.all(urls.map(async (f) => ({ url: f, res: await get(f) })));
  for (const r of opened) if (!r.res.ok) throw failed(r.res, r.url);
  sized(opened.map((r) => r.res));
  const bytes = await Promise.all(opened.map((r) => body(r.res, r.url, tick)));
  const none = new Uint8Array(0);
  const set = (name: 'train' | 'test', at: number): Dataset =>
    servedSet(m, name, bytes[at] ?? none, bytes[at + 1] ?? none, {
      images: urls[at] ?? '',
      labels: urls[at + 1] ?? '',
      manifest: url,
    });
  const train = set('train', 0);
  const test = set('test', 2);
  const norm = trainingNormalization(train);
  const named = { classes: m.classes, name: m.name, heldOut: m.heldOut };
  return { train: normalizedBy(train, norm), test: normalizedBy(test, norm), ...named };
}

/**
 * The page's dataset: the one `fmgpu serve` read (`o.dataset`, default dataset/), else, with no
 * manifest there (the page copied to a static host), the data folder's files: Fashion-MNIST's idx
 * files, else (none of them found) CIFAR-10's batches; with neither, Fashion-MNIST's error.
 */
export async function loadServedData(base = 'data/', o: LoadOptions & { dataset?: string } = {}): Promise<ServedData> {
  const served = await loadServedDataset(o.dataset ?? 'dataset/', o);
  if (served) return served;
  try {
    return { ...(await loadFashionMnist(base, o)), classes: CLASS_NAMES, name: 'Fashion-MNIST' };
  } catch (e) {
    if (!(e instanceof DataError) || !/not found \(HTTP 404\)$/.test(e.message)) throw e;
    const cifar = await loadCifar10(base, o);
    if (cifar) return cifar;
    throw e;
  }
}

/** The first n samples (a view, no copy). */
export const takeFirst = (ds: Dataset, n: number): Dataset => subset(ds, n);

/** The sets a page run trains, validates and tests on, and how its validation set was chosen. */
export interface PageSets {
  train: Dataset;
  val: Dataset | null;
  test: Dataset;
  validation: string;
}

/**
 * The sets as `fmgpu train` would make them of the served data: `keep` training images (the first,
 * or an even spread over data sorted by class, as a folder's --subset), a validation `fraction` held
 * out as the model's `split` says (auto: a seeded random share of each class for class-sorted data,
 * else the last fraction), or the test set when the data's test set was itself held out of one tree;
 * colour images normalised per channel by the images trained on (train-data.ts loadData).
 */
export function pageSets(
  data: ServedData,
  o: { keep: number; fraction: number; split: 'auto' | SplitKind; seed: number; test?: boolean },
): PageSets {
  const all = data.train;
  const sorted = sortedByClass(all.labels);
  const kept =
    o.keep >= all.n || !sorted
      ? subset(all, o.keep)
      : gather(
          all,
          spread(
            Array.from({ length: all.n }, (_, i) => i),
            o.keep,
          ),
        );
  // The test set: a tree's held-out part, or validation=test (o.test), as fmgpu train validates.
  const s = chooseValidation(kept, { ...o, given: data.heldOut || o.test ? data.test : null });
  const val = s.split && s.val.n === 0 ? null : s.val;
  const how = s.split === 'random' ? 'a seeded random share of each class' : 'the last images';
  const given = data.heldOut ? `the test set (${data.heldOut})` : o.test ? 'the test set (validation=test)' : 'none';
  const validation = s.split ? `${how} (${o.fraction})` : given;
  const norm = trainingNormalization(s.train);
  const own = (ds: Dataset): Dataset => normalizedBy(ds, norm);
  return { train: own(s.train), val: val && own(val), test: own(data.test), validation };
}

/** Keras's validation_split (the last fraction, before shuffling); val is null for 0 or an empty split. */
export function splitValidation(ds: Dataset, fraction: number): { train: Dataset; val: Dataset | null } {
  if (fraction <= 0) return { train: ds, val: null };
  const { train, val } = validationSplit(ds, fraction);
  return { train, val: val.n > 0 ? val : null };
}

/** Metadata key under which the .net source travels with the weights (the CLI writes the same). */
export const SOURCE_KEY = 'fmgpu.source';

/** The trainer's parameters as safetensors bytes, with the model source in the metadata. */
export async function saveWeights(trainer: Trainer, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  return encodeSafetensors(await trainer.params.read(), {
    [SOURCE_KEY]: trainer.ir.source,
    format: 'fmgpu',
    ...metadata,
  });
}

/** The .net source stored in a weights file's metadata, if any. */
export function sourceOf(metadata: Record<string, string>): string | null {
  return metadata[SOURCE_KEY] ?? metadata.source ?? metadata['model.net'] ?? null;
}

/**
 * Reads safetensors (bytes, a Blob/File, or a URL on this origin) and returns its tensors and
 * metadata; `loadWeights` then puts them into a trainer whose model matches.
 */
export async function readWeights(
  from: Uint8Array | Blob | string | URL,
  file = 'weights.safetensors',
): Promise<ReturnType<typeof decodeSafetensors>> {
  let bytes: Uint8Array;
  if (from instanceof Uint8Array) bytes = from;
  else if (typeof Blob !== 'undefined' && from instanceof Blob) bytes = new Uint8Array(await from.arrayBuffer());
  else bytes = await fetchBytes(String(from), { gunzip: false });
  return decodeSafetensors(bytes, file);
}

/** Loads weights into the trainer (names and shapes must match its model exactly). */
export async function loadWeights(
  trainer: Trainer,
  from: Uint8Array | Blob | string | URL,
  file = 'weights.safetensors',
): Promise<Record<string, string>> {
  const { tensors, metadata } = await readWeights(from, file);
  trainer.params.load(tensors, file);
  return metadata;
}
