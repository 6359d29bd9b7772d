// `fmgpu report RUN`: (re)writes RUN/report.html from the run's files, predictions on test images
// and a PCA of the penultimate features. `fmgpu train` calls runReport at the end of a run too.
import { onSignal } from './interrupt.ts';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { summarize } from '../../dsl/index.ts';
import type { Layer, ModelIR } from '../../dsl/ir.ts';
import { DEFAULT_DATA_DIR } from '../node/data.ts';
import { checkpointFolder, RunDir, writeFileAtomic } from '../node/rundir.ts';
import { parseState } from '../node/state.ts';
import { Trainer, type EpochLog } from '../train/trainer.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { perClass } from '../train/metrics.ts';
import { channelsOf, imageBytes, type Dataset } from '../data/dataset.ts';
import { DataError } from '../errors.ts';
import { renderReport, pickSamples, type ReportEnding, type ReportMetrics } from '../report/html.ts';
import { pca2 } from '../report/pca.ts';
import { UsageError, parseArgs, type FlagSpec } from './args.ts';
import {
  checkOutFile,
  HTML_FILE,
  openCliGpu,
  openRun,
  runClasses,
  runDirFiles,
  runNormalized,
  savedRunJson,
  type OpenRun,
} from './common.ts';
import { imagesOf } from '../data/batch.ts';
import { testSetFor, testSetLine } from './test-set.ts';
import type { Out } from './progress.ts';

export const REPORT_FLAGS: Record<string, FlagSpec> = {
  data: {
    type: 'string',
    meta: 'DIR',
    help:
      'idx files, CIFAR batches or class folders of images for the test images ' +
      `(default: the run's own test set; without one, ${DEFAULT_DATA_DIR})`,
  },
  'test-csv': { type: 'string', meta: 'FILE', help: "test data in Kaggle's CSV form instead (default: the run's own)" },
  out: { type: 'string', meta: 'FILE', help: 'where to write the page (default RUN/report.html)' },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
};

export interface ReportOptions {
  /** Test images predicted and projected (the first ones of the test set). */
  points?: number;
  /** Images shown in the grid. */
  samples?: number;
  /** Test metrics; default: RUN/metrics.json, else evaluated now. */
  metrics?: ReportMetrics;
  /** Evaluate the test metrics now, whatever RUN/metrics.json holds (another test set than the run's). */
  evaluate?: boolean;
}

function readJson<T>(file: string): T | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new DataError(`${file}: unreadable (${(e as Error).message})`);
  }
}

/** What the page shows of a run besides its weights: its run.json and its model.net's text. */
export type ReportedRun = Pick<OpenRun, 'dir' | 'json' | 'source'>;

/** The run `fmgpu train` has just written, for its report: run.json and model.net as they are now. */
export function writtenRun(dir: string): ReportedRun {
  const file = join(dir, 'model.net');
  return { dir, json: savedRunJson(dir), source: existsSync(file) ? readFileSync(file, 'utf8') : '' };
}

/** The page for a run, with `trainer` holding the run's weights. */
export async function runReport(
  trainer: Trainer,
  reported: ReportedRun,
  given: Dataset,
  o: ReportOptions = {},
): Promise<string> {
  const { dir } = reported;
  const run = reported.json as Record<string, unknown>;
  const test = runNormalized(reported, given);
  const history = readJson<EpochLog[]>(join(dir, 'history.json')) ?? [];
  const classNames = runClasses(reported, trainer.classes);
  let metrics = o.metrics ?? (o.evaluate ? null : readJson<ReportMetrics>(join(dir, 'metrics.json')));
  if (!metrics) {
    // Scored as `fmgpu train` scores it: with the model's test-time augmentation.
    const ev = await trainer.evaluate(test, undefined, { tta: trainer.ir.train.tta });
    metrics = {
      test_loss: ev.loss,
      test_accuracy: ev.accuracy,
      n: ev.n,
      per_class: perClass(ev.confusion, undefined, classNames),
      confusion: Array.from(ev.confusion),
    };
  }
  const n = Math.min(o.points ?? 1000, test.n);
  const pixels = test.rows * test.cols;
  const first: Dataset = {
    ...test,
    n,
    images: test.images.subarray(0, n * imageBytes(test)),
    labels: test.labels.subarray(0, n),
  };
  const x = imagesOf(first);
  const probs = await trainer.predict(x, n);
  const feats = await trainer.features(x, n);
  const width = n > 0 ? feats.length / n : 0;
  const samples = pickSamples(probs, first.labels, o.samples ?? 48).map((s) => ({
    ...s,
    label: first.labels[s.index]!,
    pixels: greyThumbnail(first, s.index, pixels),
    rows: test.rows,
    cols: test.cols,
  }));
  let projection = null;
  if (n >= 3 && width >= 2) {
    const p = pca2(feats, n, width);
    const dense = (ls: readonly Layer[]): boolean =>
      ls.some((l) => l.kind === 'dense' || (l.kind === 'residual' && dense(l.body)));
    const of = dense(trainer.ir.layers)
      ? 'input of the last dense layer'
      : 'output of the network (it has no dense layer)';
    projection = {
      points: p.points,
      labels: first.labels,
      explained: p.variance.map((v) => (p.total > 0 ? v / p.total : 0)) as [number, number],
      features: width,
      of,
    };
  }
  return renderReport({
    ending: ending(dir, trainer.ir, history),
    name: basename(resolve(dir)),
    generated: new Date().toISOString(),
    run,
    summary: summarize({ ...trainer.ir, file: typeof run.model === 'string' ? run.model : trainer.ir.file }),
    source: reported.source,
    history,
    metrics,
    samples,
    projection,
    classNames,
  });
}

/**
 * What early stopping did, from the run's last checkpoint (state.json: the epoch it stopped at, the
 * best epoch); undefined for a run without early stopping or without a checkpoint.
 */
function ending(dir: string, ir: ModelIR, history: EpochLog[]): ReportEnding | undefined {
  const folder = checkpointFolder(dir);
  const file = folder && join(folder, 'state.json');
  if (!file || !existsSync(file) || ir.train.earlyStop === 0) return undefined;
  const state = parseState(readFileSync(file, 'utf8'), file);
  const best = state.best?.epoch ?? null;
  const watched = history.find((e) => e.epoch === best);
  return {
    epochs: ir.train.epochs,
    patience: ir.train.earlyStop,
    stopped: state.monitor?.stopped ?? null,
    restored: best,
    metric: watched?.val_loss === undefined ? 'loss' : 'val_loss',
  };
}

export async function reportCommand(args: readonly string[], out: Out): Promise<number> {
  const { flags, positional } = parseArgs(args, REPORT_FLAGS);
  const [dir, extra] = positional;
  if (dir === undefined) throw new UsageError('report needs a run directory: fmgpu report RUN');
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const info = openRun(dir);
  const { ir } = info;
  // The page goes into the run (under its lock: not while fmgpu train writes it) or to --out.
  const file = flags.out === undefined ? join(dir, 'report.html') : String(flags.out);
  const page = `directory: give the page's file name, e.g. ${join(file, 'report.html')}`;
  checkOutFile(file, {
    folder: page,
    kind: HTML_FILE,
    parent: dirname(resolve(file)),
    keep: () => [
      ...runDirFiles(dir, 'report.html'),
      ...(flags['test-csv'] === undefined ? [] : [String(flags['test-csv'])]),
    ],
  });
  // The run's own test set (its --test-csv, or its --data folder) unless one is given, as `fmgpu eval`.
  const set = testSetFor([info], flags);
  const test = set.ds;
  const { h, w, c } = ir.input;
  if (h !== test.rows || w !== test.cols || c !== channelsOf(test))
    throw new UsageError(
      `${info.modelFile}: the model's input is ${h}x${w}x${c} ` +
        `but the test data is ${test.rows}x${test.cols}x${channelsOf(test)}`,
    );
  const run = flags.out === undefined ? RunDir.open(dir) : null;
  // Ctrl-C while the page is made: said, the run's lock let go, nothing written (the page is written whole).
  const stop = (code: number) => () => {
    run?.release();
    out.err(`fmgpu: interrupted; ${file} not written`);
    process.exit(code);
  };
  const signals = [onSignal('SIGINT', stop(130)), onSignal('SIGTERM', stop(143))];
  const done = (): void => {
    for (const release of signals) release();
    run?.release();
  };
  let gpu: Gpu;
  try {
    gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  } catch (e) {
    done();
    throw e;
  }
  const trainer = new Trainer(gpu, ir, 0);
  try {
    trainer.params.load(info.weights, info.weightsFile);
    // A test set given, not the run's own: its metrics are evaluated now, not the run's metrics.json.
    const page = await runReport(trainer, info, test, { evaluate: set.given });
    if (run) run.write('report.html', page);
    else writeFileAtomic(file, page);
    out.log(testSetLine(set));
    out.log(`report: ${file}`);
    return 0;
  } finally {
    trainer.release();
    gpu.destroy();
    done();
  }
}

/** Image i as grey pixels for the grid: its channels' mean (grey images as they are). */
function greyThumbnail(ds: Dataset, i: number, pixels: number): Uint8Array {
  const c = channelsOf(ds);
  const img = ds.images.subarray(i * c * pixels, (i + 1) * c * pixels);
  if (c === 1) return img;
  return Uint8Array.from({ length: pixels }, (_, p) => {
    let sum = 0;
    for (let k = 0; k < c; k++) sum += img[k * pixels + p] as number;
    return Math.round(sum / c);
  });
}
