// Small things every command shares.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import pkg from '../../package.json' with { type: 'json' };
import { join } from 'node:path';
import { UsageError, type Flags } from './args.ts';
import { openNodeGpu } from '../node/gpu.ts';
import { NET_MAX_BYTES, readInput } from '../node/files.ts';
import { readWeights, trainedSource } from '../node/rundir.ts';
import { readRun, type RunInfo } from '../node/run-read.ts';
import { DataError, GpuError, ShapeError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { Dataset } from '../data/dataset.ts';
import {
  DslError,
  TRAIN_KEYS,
  escapeControl,
  formatError,
  overrideTrain,
  parseNet,
  type ModelIR,
  type SpatialShape,
  type TrainConfig,
} from '../../dsl/index.ts';
import { differenceText, networkDifference } from '../../dsl/compare.ts';
import { namesForOutputs } from '../data/classes.ts';
import type { Out } from './progress.ts';
import { buildGraph } from '../model/build.ts';
import { checkLimits, type BufferLimits } from '../graph/plan.ts';
import { checkShapes, type NamedTensor } from '../model/safetensors.ts';

export const VERSION: string = pkg.version;

/**
 * A .net file's text, or a usage error that names it: missing, a directory, not a regular file
 * (a FIFO, /dev/zero), or over 1.5 MiB, refused before reading. The language costs up to ~350
 * bytes of memory a source byte (a 1 MB file of 200,000 `relu` lines takes 430 MB to summarize,
 * 1.5 MiB of them 530 MB), so the cap keeps any source under the 700 MB a command may use.
 */
export function readSource(file: string): string {
  const bytes = readInput(file, { what: 'a .net file', maxBytes: NET_MAX_BYTES, error: UsageError });
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

/**
 * The GPU for a command. Dawn rejects an `--adapter` that matches nothing with "no suitable
 * backends found"; say which flag to change instead.
 */
export async function openCliGpu(adapter: string | undefined): Promise<Gpu> {
  try {
    return await openNodeGpu({ adapter });
  } catch (e) {
    if (adapter && !(e instanceof GpuError)) {
      // Dawn lists what there is as lines ` * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6)'`.
      const names = [...String((e as Error).message).matchAll(/name: '([^']*)'/g)].map((m) => m[1]);
      const there = names.length ? `adapters: ${names.join('; ')}` : 'no adapters found';
      throw new UsageError(`--adapter ${adapter}: no WebGPU adapter's name contains "${adapter}" (${there})`);
    }
    throw e;
  }
}

/**
 * Refuses a model whose buffers at this batch exceed the adapter's limits (ShapeError, exit 2),
 * before anything is allocated: the forward graph's tensors, the largest a plan holds (gradients
 * and saved values have the same shapes; plan() checks those too).
 */
export function checkBatchFits(ir: ModelIR, batch: number, limits: BufferLimits): void {
  checkLimits(buildGraph(ir, batch).graph, limits);
}

/** Weights whose names or shapes disagree with the model are refused by file, before the GPU is opened. */
export function checkWeights(ir: ModelIR, weights: ReadonlyMap<string, NamedTensor>, file: string): void {
  checkShapes(weights, buildGraph(ir, 1).params, file);
}

/**
 * A command's error as the CLI reports it, returning the exit code: one line `fmgpu: error: …`
 * (language errors in their FILE:LINE:COL form with the excerpt), the stack first with --debug.
 * Control characters a message quotes (a file name, a source line, a data cell) are escaped.
 */
export function reportError(e: unknown, out: Out, debug: boolean): number {
  if (debug && e instanceof Error) out.err((e.stack ?? String(e)).split('\n').map(escapeControl).join('\n'));
  if (e instanceof DslError) {
    out.err(formatError(e));
    return 2;
  }
  out.err(`fmgpu: error: ${oneLine(e)}`);
  // Bad input (flags, files, data, shapes) is the user's to fix: 2. The rest (GPU failures, a
  // diverged loss, I/O, bugs) is a runtime failure: 1.
  return e instanceof UsageError || e instanceof DataError || e instanceof ShapeError ? 2 : 1;
}

/** The message, one line; Node's file-system errors without their errno prefix ("EACCES: …"). */
function oneLine(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof Error && err.code && err.syscall && err.path) {
    const why = err.message.replace(/^[A-Z]+: /, '').split(',')[0];
    return escapeControl(`${err.path}: ${why}`);
  }
  const [line = ''] = (e instanceof Error ? e.message : String(e)).split('\n');
  return escapeControl(line);
}

/** A kind of file a command writes, known by its first bytes: an existing file of another kind is not replaced. */
export interface FileKind {
  what: string;
  is(head: Uint8Array): boolean;
}

export const ONNX_FILE: FileKind = { what: 'an ONNX model', is: (h) => h[0] === 0x08 }; // ModelProto's ir_version
const text = (h: Uint8Array): string => new TextDecoder().decode(h).replace(/^\uFEFF/, '');
export const HTML_FILE: FileKind = { what: 'an HTML page', is: (h) => /^\s*<(!doctype html|html)/i.test(text(h)) };
export const PREDICTIONS_CSV: FileKind = {
  what: 'a predictions CSV (id,label,…)',
  is: (h) => /^id,label\b/.test(text(h)),
};

/**
 * The file --out names, checked before any work: a folder there is refused, `folder` saying what to
 * give instead ("is a folder: name the CSV file to write"); with `parent`, so is a file whose folder
 * does not exist; so is any of the files `keep` lists (the command's input, a run's own files; listed only
 * where the target exists) under whatever name or link it is given: writing it would lose it; and so is a
 * file that is not empty and not of the `kind` the command writes (a model.net given to export -o).
 */
export function checkOutFile(
  file: string,
  o: { folder: string; kind: FileKind; parent?: string; keep?: () => readonly string[] },
): void {
  const stat = (p: string) => statSync(p, { throwIfNoEntry: false });
  const target = stat(file);
  if (target?.isDirectory()) throw new UsageError(`--out ${file} is a ${o.folder}`);
  if (o.parent !== undefined && !stat(o.parent)?.isDirectory())
    throw new UsageError(`--out ${file}: the folder ${o.parent} does not exist`);
  if (!target) return;
  const same = (o.keep?.() ?? []).find((k) => {
    const s = stat(k);
    return s !== undefined && s.dev === target.dev && s.ino === target.ino;
  });
  if (same) throw new UsageError(`--out ${file} would overwrite ${same}, which fmgpu reads: name another file`);
  if (target.isFile() && target.size > 0 && !o.kind.is(readHead(file)))
    throw new UsageError(
      `--out ${file} holds a file that is not ${o.kind.what}: fmgpu replaces only a file of the kind it writes; ` +
        'name another file, or remove that one first',
    );
}

/** A file's first 64 bytes. */
function readHead(file: string): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const head = new Uint8Array(64);
    return head.subarray(0, readSync(fd, head, 0, 64, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * The files of run directory `dir` (its weights, model, history…, and its checkpoint folder's) but `except`:
 * what --out must not overwrite.
 */
export function runDirFiles(dir: string, except?: string): string[] {
  const entries = readdirSync(dir, { withFileTypes: true });
  const inside = (d: string): string[] =>
    readdirSync(join(dir, d), { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(dir, d, e.name));
  return [
    ...entries.filter((e) => e.isFile() && e.name !== except).map((e) => join(dir, e.name)),
    ...entries.filter((e) => e.isDirectory()).flatMap((e) => inside(e.name)),
  ];
}

/** Flag name → `train` key of the language: every key has its flag, `early_stop` as --early-stop. */
export const TRAIN_KEY: Readonly<Record<string, string>> = Object.fromEntries(
  Object.keys(TRAIN_KEYS).map((k) => [k.replace(/_/g, '-'), k]),
);

export function applyTrainFlags(config: TrainConfig, flags: Flags): TrainConfig {
  let c = config;
  for (const [flag, key] of Object.entries(TRAIN_KEY)) {
    const v = flags[flag];
    if (v === undefined) continue;
    const r = overrideTrain(c, key, String(v));
    if (!r.ok) throw new UsageError(`--${flag}: ${r.message}`);
    c = r.config;
  }
  return c;
}

/** `config` with the train flags a run's run.json records; a value the flag would refuse is refused naming the file. */
export function recordedTrain(config: TrainConfig, json: RunJson, dir: string): TrainConfig {
  try {
    return applyTrainFlags(config, json.flags ?? {});
  } catch (e) {
    if (e instanceof UsageError) throw new DataError(`${join(dir, 'run.json')}: "flags": ${e.message}`);
    throw e;
  }
}

/** What a run.json says: the flags it was trained with, and its data's class names and image shape. */
export interface RunJson {
  flags?: Flags;
  model?: unknown;
  /** The data's class names in label order (absent in runs from before they were recorded). */
  classes?: string[];
  /** The data's image shape (absent likewise: those runs were 28x28x1). */
  shape?: SpatialShape;
  /** Per-channel mean and std its images were normalised by (absent: pixel/255, as grey runs). */
  normalize?: { mean: number[]; std: number[] };
  /** How its training images frame their object (photo.ts runForm reads it). */
  input?: unknown;
}

/** A run directory's run.json: what it was trained with. */
export function readRunJson(dir: string): RunJson {
  const file = join(dir, 'run.json');
  let json: RunJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as RunJson;
  } catch (e) {
    throw new DataError(`${file}: unreadable (${(e as Error).message.split('\n')[0]})`);
  }
  const object = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!object(json)) throw new DataError(`${file}: not a run's record (a JSON object)`);
  const scalar = (v: unknown): boolean => ['string', 'number', 'boolean'].includes(typeof v);
  const { flags } = json;
  if (flags !== undefined && !(object(flags) && Object.values(flags).every(scalar)))
    throw new DataError(`${file}: "flags" is not a set of flags (each a string, a number or true/false)`);
  const { classes, shape } = json;
  if (classes !== undefined && !(Array.isArray(classes) && classes.every((c) => typeof c === 'string')))
    throw new DataError(`${file}: "classes" is not a list of class names`);
  const side = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;
  if (shape !== undefined && !(side(shape?.h) && side(shape?.w) && side(shape?.c)))
    throw new DataError(`${file}: "shape" is not an image shape {h, w, c}`);
  const norm = json.normalize;
  const numbers = (v: unknown, ok: (x: number) => boolean): boolean =>
    Array.isArray(v) && v.length === (shape?.c ?? 1) && v.every((x) => typeof x === 'number' && ok(x));
  if (norm !== undefined && !(numbers(norm?.mean, Number.isFinite) && numbers(norm?.std, (x) => x > 0)))
    throw new DataError(`${file}: "normalize" is not a mean and a std > 0 for each of the image's channels`);
  return json;
}

/** A run's run.json, or nothing for a run without one (from before fmgpu wrote it). */
export function savedRunJson(dir: string): RunJson {
  return existsSync(join(dir, 'run.json')) ? readRunJson(dir) : {};
}

/** A run as eval, predict, report and export use it: its files read and checked once. */
export interface OpenRun extends RunInfo {
  json: RunJson;
  /** Its model as trained: model.net checked against run.json's classes and shape, its train flags applied. */
  ir: ModelIR;
}

/**
 * A run directory, read once: model.net and the weights (readRun), run.json, the model as it was
 * trained, and the weights checked against it (refused by file, before the GPU is opened).
 */
export function openRun(dir: string): OpenRun {
  const run = readRun(dir);
  const json = savedRunJson(dir);
  const parsed = parseNet(run.source, run.modelFile, { classes: json.classes?.length, input: json.shape });
  checkTrainedAs(run, parsed);
  const ir = { ...parsed, train: recordedTrain(parsed.train, json, dir) };
  const scored = { ...run, ...restoredBest(run, ir) };
  checkWeights(ir, scored.weights, scored.weightsFile);
  return { ...scored, json, ir };
}

/**
 * A run stopped before its end with early stopping is scored with the weights its end would restore, the best
 * epoch's (best.safetensors: with ema=, the averages its validation scored), as a finished run is.
 */
function restoredBest(run: RunInfo, ir: ModelIR): Partial<RunInfo> {
  const best = run.checkpoint && join(run.checkpoint, 'best.safetensors');
  if (!best || ir.train.earlyStop === 0 || !existsSync(best)) return {};
  return { weights: readWeights(best).tensors, weightsFile: best };
}

/**
 * model.net must describe the network the weights were trained as (the source their metadata keeps): an
 * edited one is refused, naming what changed, not run with those weights.
 */
function checkTrainedAs(run: RunInfo, ir: ModelIR): void {
  const source = trainedSource(run.metadata);
  if (source === null || source === run.source) return;
  const trained = parseNet(source, run.modelFile, { classes: null, input: ir.input });
  const d = networkDifference(trained, ir);
  if (!d) return;
  throw new UsageError(
    `${run.modelFile}: ${differenceText(d, run.weightsFile)}: ` +
      "restore the run's model.net (the weights keep the source they were trained from)",
  );
}

/** The test images as a run normalises them: its run.json's per-channel mean and std, if any. */
export function runNormalized(run: { json: RunJson }, ds: Dataset): Dataset {
  const { normalize, ...rest } = ds;
  return run.json.normalize ? { ...rest, normalize: run.json.normalize } : rest;
}

/**
 * A run's class names: as its run.json records them, or for a run from before they were recorded
 * (trained on Fashion-MNIST, the only data fmgpu read then), named by its output count.
 */
export function runClasses(run: { json: RunJson }, outputs: number): string[] {
  const { classes } = run.json;
  return classes?.length === outputs ? classes : namesForOutputs(outputs);
}
