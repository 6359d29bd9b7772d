// `fmgpu predict RUN --test 5,8,10-19`: the top classes of test images picked by index (from 0, as
// x_test[5] in Keras), from the run's own test set or the one --data/--test-csv gives; and
// `fmgpu predict RUN --csv FILE --out predictions.csv`: every image of a CSV file, written as a
// Kaggle-style submission: a header row, then per image its id (its position in FILE, from 1, as
// Kaggle's ImageId), the predicted label (the class index) and each class's probability.
import { dirname } from 'node:path';
import { channelsOf, gather, imageBytes, type Dataset } from '../data/dataset.ts';
import { grayPng, rgbPng } from '../report/png.ts';
import { savePngs } from './photo.ts';
import { loadCsvImages } from '../node/data.ts';
import { writeFileAtomic } from '../node/write.ts';
import { argmaxRow, topClasses } from '../train/metrics.ts';
import { Trainer } from '../train/trainer.ts';
import { UsageError, type FlagSpec, type Flags } from './args.ts';
import {
  checkOutFile,
  openCliGpu,
  openRun,
  PREDICTIONS_CSV,
  runClasses,
  runDirFiles,
  runNormalized,
  type OpenRun,
} from './common.ts';
import type { Out } from './progress.ts';
import { runCsvForm, testSetFor, testSetLine } from './test-set.ts';

export const PREDICT_SET_FLAGS: Record<string, FlagSpec> = {
  test: {
    type: 'string',
    meta: 'INDICES',
    help: "test images by index from 0 (5, 3,8 or 10-19): the run's own test set, or --data / --test-csv",
  },
  data: {
    type: 'string',
    meta: 'DIR',
    help: 'with --test: the test set of this folder (idx files, CIFAR batches or class folders)',
  },
  'test-csv': { type: 'string', meta: 'FILE', help: 'with --test: the test set of this Kaggle CSV file' },
  csv: {
    type: 'string',
    meta: 'FILE',
    help: 'predict every image of a CSV file (label,pixel1..pixel784 or the pixels alone)',
  },
  out: {
    type: 'string',
    meta: 'FILE',
    help: 'with --csv: write the predictions there as CSV, a Kaggle submission (id,label,one column a class)',
  },
};

/** Whether the command line asks for test images or a CSV file rather than image files. */
export function wantsSets(flags: Flags): boolean {
  return Object.keys(PREDICT_SET_FLAGS).some((k) => flags[k] !== undefined);
}

/** predict's flags that apply to --test and --csv too (the others are for image files). */
const SHARED = ['adapter', 'json', 'debug', 'top', 'save-input'];

/** How many classes predict shows an image: --top N, else 3 (topClasses stops at the run's classes). */
export const topCount = (flags: Flags): number => Number(flags.top ?? 3);

/** The most test images one --test lists. */
const MAX_PICKED = 100_000;

/** `5`, `3,8`, `10-19` (inclusive), each index within `n` images. */
export function parseIndices(text: string, n: number): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UsageError(`--test "${text}": expected indices like 5, 3,8 or 10-19`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new UsageError(`--test ${part.trim()}: a range runs from the lower index to the higher`);
    if (to >= n)
      throw new UsageError(
        `--test ${part.trim()}: the test set has ${n.toLocaleString('en-US')} images (indices 0–${n - 1})`,
      );
    if (out.length + to - from + 1 > MAX_PICKED)
      throw new UsageError(`--test ${text}: more than ${MAX_PICKED.toLocaleString('en-US')} images`);
    for (let i = from; i <= to; i++) out.push(i);
  }
  return out;
}

/** The class probabilities [n, classes] of every image, as the run scores its test set (its tta). */
async function probabilities(flags: Flags, r: OpenRun, images: Dataset): Promise<{ p: Float32Array; classes: number }> {
  const { ir } = r;
  const { h, w, c } = ir.input;
  const channels = channelsOf(images);
  if (h !== images.rows || w !== images.cols || c !== channels)
    throw new UsageError(
      `${r.dir}: the model's input is ${h}x${w}x${c} but the images are ${images.rows}x${images.cols}x${channels}`,
    );
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  const t = new Trainer(gpu, ir, 0);
  try {
    t.params.load(r.weights, r.weightsFile);
    return { p: await t.probabilities(runNormalized(r, images), { tta: ir.train.tta }), classes: t.classes };
  } finally {
    t.release();
    gpu.destroy();
  }
}

/** `predict RUN --test …` or `predict RUN --csv FILE [--out FILE]`. */
export async function predictSets(positional: readonly string[], flags: Flags, out: Out): Promise<number> {
  const [dir, extra] = positional;
  if (!dir) throw new UsageError('predict needs a run: fmgpu predict RUN --test 5 (or --csv FILE)');
  if (extra !== undefined)
    throw new UsageError(`predict takes image files or --test or --csv, not both ("${extra}" and the flag)`);
  const theirs = Object.keys(flags).find((k) => !Object.hasOwn(PREDICT_SET_FLAGS, k) && !SHARED.includes(k));
  if (theirs) throw new UsageError(`--${theirs} applies to image files, not to --test or --csv`);
  if (flags.test !== undefined && flags.csv !== undefined) throw new UsageError('--test and --csv: give one');
  if (flags.csv !== undefined) {
    if (flags.data !== undefined || flags['test-csv'] !== undefined)
      throw new UsageError('--data and --test-csv pick the test set of --test, not images for --csv');
    if (flags.top !== undefined)
      throw new UsageError("--top goes with images or --test: --csv writes every class's probability");
    if (flags['save-input'] !== undefined) throw new UsageError('--save-input goes with images or --test, not --csv');
    return await predictCsv(openRun(dir), flags, out);
  }
  if (flags.out !== undefined) throw new UsageError('--out goes with --csv FILE');
  if (flags.test === undefined) throw new UsageError('--data and --test-csv go with --test INDICES');
  const r = openRun(dir);
  const set = testSetFor([r], flags);
  const indices = parseIndices(String(flags.test), set.ds.n);
  const picked = gather(set.ds, indices);
  if (flags['save-input'] !== undefined) saveTestImages(String(flags['save-input']), picked, indices);
  const { p, classes } = await probabilities(flags, r, picked);
  const names = runClasses(r, classes);
  const className = (c: number): string => names[c] ?? `class ${c}`;
  if (!flags.json) out.log(testSetLine(set));
  indices.forEach((index, k) => {
    const top = topClasses(p, k, classes, names, topCount(flags));
    const truth = picked.labels[k] as number;
    if (flags.json) out.log(JSON.stringify({ test: index, truth: { class: className(truth), label: truth }, top }));
    else {
      const classesText = top.map((c) => `${c.class} ${(c.probability * 100).toFixed(1)}%`).join(', ');
      const mark = top[0]?.label === truth ? 'right' : 'wrong';
      out.log(`test[${index}]: ${classesText} (true: ${className(truth)}, ${mark})`);
    }
  });
  return 0;
}

/** Every image of a CSV file, as a Kaggle submission: to --out (written whole or not at all), else to stdout. */
async function predictCsv(r: OpenRun, flags: Flags, out: Out): Promise<number> {
  const target = flags.out === undefined ? null : String(flags.out);
  if (target)
    checkOutFile(target, {
      folder: 'folder: name the CSV file to write',
      kind: PREDICTIONS_CSV,
      parent: dirname(target),
      keep: () => [String(flags.csv), ...runDirFiles(r.dir)],
    });
  const { ds } = loadCsvImages(String(flags.csv), runCsvForm(r));
  const { p, classes } = await probabilities(flags, r, ds);
  const names = runClasses(r, classes);
  const className = (c: number): string => names[c] ?? `class ${c}`;
  // A class name with a comma, a quote or a line end is quoted (RFC 4180), so every row keeps its columns.
  const field = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const header = ['id', 'label', ...Array.from({ length: classes }, (_, c) => field(className(c)))].join(',');
  const rows = Array.from({ length: ds.n }, (_, i) => {
    const probs = Array.from(p.subarray(i * classes, (i + 1) * classes), (v) => Number(v.toPrecision(6)));
    return [i + 1, argmaxRow(p, i, classes), ...probs].join(',');
  });
  const text = `${header}\n${rows.join('\n')}\n`;
  if (!target) {
    out.log(text.trimEnd());
    return 0;
  }
  writeFileAtomic(target, text);
  const said = { predictions: ds.n, csv: String(flags.csv), out: target };
  if (flags.json) out.log(JSON.stringify(said));
  else out.log(`${ds.n.toLocaleString('en-US')} predictions of ${said.csv} written to ${target}`);
  return 0;
}

/** --save-input DIR with --test: each test image as it is in the data (DIR/test-5.png), grey or RGB. */
function saveTestImages(dir: string, picked: Dataset, indices: readonly number[]): void {
  const c = channelsOf(picked);
  if (c !== 1 && c !== 3)
    throw new UsageError(`--save-input writes grey or RGB images; these test images have ${c} channels`);
  const px = imageBytes(picked);
  const { rows: h, cols: w } = picked;
  const png = (k: number) => () => {
    const bytes = picked.images.subarray(k * px, (k + 1) * px);
    return c === 3 ? rgbPng(bytes, w, h) : grayPng(bytes, w, h);
  };
  savePngs(
    dir,
    indices.map((index, k) => ({ stem: `test-${index}`, png: png(k) })),
  );
}
