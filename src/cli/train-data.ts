// The data `fmgpu train` trains, validates and tests on, read and checked before the GPU is opened:
// the training and test sets (idx files or Kaggle CSV), and the validation set, one of
//   - a fraction held out of the training set (`validation=0.1`): the last fraction (Keras's
//     validation_split) or a seeded random fraction of each class (`split=random`, the default for
//     data sorted by class);
//   - the test set (`validation=test`, as Keras's validation_data=(x_test, y_test));
//   - a set of its own (--val-data DIR, --val-csv FILE).
// A resumed run holds out its validation images as its checkpoint records.
import { MAX_INPUT, overrideTrain, type ModelIR } from '../../dsl/index.ts';
import { basename, dirname } from 'node:path';
import { CLASS_NAMES, checkLabels, labelNumbers, labelRange, NUM_CLASSES } from '../data/classes.ts';
import { channelsOf, imageBytes, type Dataset } from '../data/dataset.ts';
import { chooseValidation, normalizedBy, trainingNormalization, type SplitKind } from '../data/split.ts';
import { LabelNames } from '../data/csv.ts';
import type { ServedFormat } from '../data/served.ts';
import {
  DEFAULT_DATA_DIR,
  loadCsv,
  loadFashionMnist,
  loadIdxFolder,
  readClassList,
  type ClassList,
  type CsvForm,
} from '../node/data.ts';
import type { CheckpointState, ValidationRecord } from '../node/state.ts';
import { UsageError, type Flags } from './args.ts';

/** Where the validation images came from. */
export interface Validation {
  set: ValidationRecord['set'];
  /** How the announcement says it: "the last 10% of the training images (Keras's validation_split)". */
  text: string;
}

export interface Data {
  train: Dataset;
  val: Dataset | null;
  test: Dataset;
  from: string;
  /** The data's class names, in label order: as many as the network's outputs must be. */
  classes: string[];
  /** null: no validation. */
  validation: Validation | null;
}

const percent = (f: number): string => `${Number((f * 100).toFixed(2))}%`;

/**
 * The model with the validation the flags ask for: --val-data or --val-csv replace the file's
 * `validation` (it is set to 0: the run holds nothing out); given with --validation, or with a
 * `split` that then has nothing to split, they are refused.
 */
export function withValidationFlags(ir: ModelIR, flags: Flags): ModelIR {
  const file = flags['val-data'] !== undefined ? '--val-data' : flags['val-csv'] !== undefined ? '--val-csv' : null;
  if (!file) return ir;
  if (flags['val-data'] !== undefined && flags['val-csv'] !== undefined)
    throw new UsageError('--val-data and --val-csv are two validation sets: give one');
  if (flags.validation !== undefined)
    throw new UsageError(`--validation ${flags.validation} and ${file} are two validation sets: give one`);
  if (ir.train.validation === 0) return ir;
  const r = overrideTrain(ir.train, 'validation', '0');
  if (!r.ok)
    throw new UsageError(`${file} replaces the file's validation=${ir.train.validation}, and then ${r.message}`);
  return { ...ir, train: r.config };
}

/**
 * The training, validation and test sets, and the model with the validation flags applied
 * (withValidationFlags); `recorded` is a resumed run's checkpoint.
 */
export function loadData(flags: Flags, given: ModelIR, recorded: CheckpointState | null): { ir: ModelIR; data: Data } {
  const ir = withValidationFlags(given, flags);
  const { train: all, test, from, classes, heldOut } = trainAndTest(flags, ir);
  const { validation, split, seed } = ir.train;
  const set = givenValidation(flags, ir, given, { test, from, classes, heldOut });
  // One tree's held-out part is its validation set as it is: no split of the training images to choose.
  if (heldOut && set?.val === test && split !== 'auto')
    throw new UsageError(
      `split=${split} does not apply to one tree of class folders (${from}): the validation set is its held-out ` +
        `part, ${heldOut}`,
    );
  const kind = split === 'auto' ? (recordedSplit(recorded) ?? 'auto') : split;
  const fraction = validation === 'test' ? 0 : validation;
  const s = chooseValidation(all, { given: set?.val ?? null, fraction, split: kind, seed });
  if (s.split && s.val.n === 0)
    throw new UsageError(`validation ${validation} of ${all.n} images leaves no validation images`);
  const how = s.split ? { set: s.split, text: splitText(s.split, kind, fraction) } : (set?.validation ?? null);
  // Colour: every set normalised by the images trained on; grey data stays pixel / 255.
  const norm = trainingNormalization(s.train);
  const own = (x: Dataset): Dataset => normalizedBy(x, norm);
  return {
    ir,
    data: { train: own(s.train), val: s.val && own(s.val), test: own(test), from, classes, validation: how },
  };
}

/**
 * A validation set given whole: a file's (--val-data, --val-csv: checked to have images, and labels
 * among the data's classes), or the test set (a tree's held-out part, or validation=test); else null.
 */
function givenValidation(
  flags: Flags,
  ir: ModelIR,
  given: ModelIR,
  data: { test: Dataset; from: string; classes: string[]; heldOut?: string | null },
): { val: Dataset; validation: Validation } | null {
  const { test, from, classes, heldOut } = data;
  if (flags['val-data'] !== undefined || flags['val-csv'] !== undefined) {
    const own = flags['val-data'] !== undefined ? loadIdxFolder(String(flags['val-data'])) : null;
    const form = csvForm(ir, new LabelNames(classes, true, from));
    const val = own ? own.ds : loadCsv(String(flags['val-csv']), { form });
    const source = own ? own.from : String(flags['val-csv']);
    if (val.n === 0) throw new UsageError(`the validation set has no images (${source})`);
    checkLabels(val.labels, classes.length, source, {
      lines: val.lines,
      why: ` (the data has ${classes.length} classes)`,
    });
    const was = given.train.validation;
    const replaced = was !== 0 ? ` (in place of the file's validation=${was})` : '';
    return { val, validation: { set: 'file', text: `${source}${replaced}` } };
  }
  if (heldOut) return { val: test, validation: { set: 'test', text: heldOut } };
  if (ir.train.validation === 'test')
    return { val: test, validation: { set: 'test', text: 'the test set (validation=test)' } };
  return null;
}

/**
 * The split a resumed run used: its record, or for a checkpoint older than the record (with or
 * without a data record at all), Keras's last fraction, which every run used then.
 */
function recordedSplit(state: CheckpointState | null): SplitKind | null {
  if (!state) return null;
  if (!state.data) return 'last';
  const set = state.data.validation?.set ?? 'last';
  return set === 'last' || set === 'random' ? set : null;
}

function splitText(split: SplitKind, asked: 'auto' | SplitKind, fraction: number): string {
  if (split === 'last') return `the last ${percent(fraction)} of the training images (Keras's validation_split)`;
  const why = asked === 'auto' ? ': the training data is sorted by class' : '';
  return `a seeded random ${percent(fraction)} of each class (split=random${why})`;
}

/** A CSV file's form: the model's input (28×28×1 without an input line), labels named by `names`. */
export function csvForm(ir: Pick<DataNeeds, 'input' | 'inputWhat'>, names: LabelNames): CsvForm {
  const { h, w, c } = ir.input;
  return { rows: h, cols: w, channels: c, what: ir.inputWhat ?? `the model's input ${h}x${w}x${c}`, names };
}

/**
 * A CSV pair's class names: `list`, the classes.txt beside the training file; else, for labels given as
 * names, those names in order of first appearance in the training file; else as many as the labels
 * reach, named by Fashion-MNIST for Kaggle's fashion-mnist_*.csv and by number otherwise.
 */
function csvClasses(
  list: ClassList | null,
  trainFile: string,
  train: Dataset,
  test: Dataset,
  testFile: string,
  met: LabelNames,
): string[] {
  const n = list ? list.names.length : met.list.length || labelRange(train.labels, test.labels);
  const fashion = n === NUM_CLASSES && /fashion/i.test(basename(trainFile));
  const names = list?.names ?? (met.list.length ? met.list : fashion ? [...CLASS_NAMES] : labelNumbers(n));
  const why = list ? ` (${list.file} names ${n})` : '';
  checkLabels(train.labels, n, trainFile, { lines: train.lines, why });
  checkLabels(test.labels, n, testFile, { lines: test.lines, why });
  return names;
}

/**
 * What reading the data needs of a model: its input (a folder's images are resized to it, a CSV's
 * rows hold it) and the train line's hold-out (a tree of class folders keeps back its test set).
 */
export type DataNeeds = Pick<ModelIR, 'input'> & {
  train: Pick<ModelIR['train'], 'validation' | 'seed'>;
  /** What set the input, for errors (default "the model's input HxWxC"; serve's --input has no model). */
  inputWhat?: string;
};

/**
 * The training set (only --subset's first images) and the whole test set, from --data or
 * --csv/--test-csv: `fmgpu train`'s and `fmgpu serve`'s; `format` says which kind of data it was.
 */
export function trainAndTest(
  flags: Flags,
  ir: DataNeeds,
): { train: Dataset; test: Dataset; from: string; classes: string[]; heldOut?: string | null; format: ServedFormat } {
  let train: Dataset, test: Dataset, from: string, classes: string[];
  let heldOut: string | null | undefined;
  let format: ServedFormat = 'csv';
  const keep = flags.subset ? Number(flags.subset) : undefined;
  if (flags.csv || flags['test-csv']) {
    if (!flags.csv || !flags['test-csv']) throw new UsageError('--csv and --test-csv go together');
    if (flags.data) throw new UsageError('--data and --csv are two sources of training data: give one');
    // With --subset, only the images it keeps are read (and held). Names met in the training file
    // are the classes the test file's labels must be among.
    const list = readClassList(dirname(String(flags.csv)));
    const names = new LabelNames(list?.names, list !== null, list?.file ?? '');
    train = loadCsv(String(flags.csv), { subset: keep, form: csvForm(ir, names) });
    if (!names.fixed) [names.fixed, names.from] = [true, String(flags.csv)];
    test = loadCsv(String(flags['test-csv']), { form: csvForm(ir, names) });
    from = `${flags.csv}, ${flags['test-csv']}`;
    classes = csvClasses(list, String(flags.csv), train, test, String(flags['test-csv']), names);
  } else {
    const dir = String(flags.data ?? DEFAULT_DATA_DIR);
    const input = ir.inputWhat ? { ...ir.input, what: ir.inputWhat } : ir.input;
    const images = { input, validation: ir.train.validation, seed: ir.train.seed };
    ({ train, test, classes, heldOut, format } = loadFashionMnist(dir, { subset: keep, images }));
    from = dir;
  }
  if (keep)
    train = {
      ...train,
      n: Math.min(train.n, keep),
      images: train.images.subarray(0, keep * imageBytes(train)),
      labels: train.labels.subarray(0, keep),
    };
  return { train, test, from, classes, heldOut, format };
}

/** Empty sets and a model that does not take the data's images are refused before the GPU is opened. */
export function checkData(file: string, ir: ModelIR, data: Data): void {
  const { validation } = ir.train;
  const held =
    typeof validation === 'number' && validation > 0 ? ` are left after holding out validation ${validation}` : '';
  if (data.train.n === 0) throw new UsageError(`no training images${held} (${data.from})`);
  if (data.test.n === 0) throw new UsageError(`the test set has no images (${data.from})`);
  const { side, channels } = MAX_INPUT;
  const big = [data.train, data.test].find((ds) => Math.max(ds.rows, ds.cols) > side || channelsOf(ds) > channels);
  if (big)
    throw new UsageError(
      `${data.from}: images of ${big.rows}x${big.cols}x${channelsOf(big)}, more than the ${side}x${side}x${channels} ` +
        'fmgpu trains on (image folders and photos are resized to the input line)',
    );
  const { h, w, c } = ir.input;
  for (const [ds, what] of [
    [data.train, 'the data'],
    [data.val, `the validation images (${data.validation?.text})`],
  ] as const) {
    if (!ds || (h === ds.rows && w === ds.cols && c === channelsOf(ds))) continue;
    throw new UsageError(
      `${file}: the model's input is ${h}x${w}x${c} but ${what} is ${ds.rows}x${ds.cols}x${channelsOf(ds)}`,
    );
  }
}
