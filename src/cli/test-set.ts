// Which test set `eval`, `predict --test` and `report` score: the one given (--data DIR, --test-csv FILE), or
// else the one the runs were trained with, as their run.json records it (a run trained from CSV has
// its --test-csv; one trained on idx files its --data folder, by default Debian's).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { DEFAULT_DATA_DIR, loadCsv, loadIdxTest, type CsvForm, type FolderOptions } from '../node/data.ts';
import { folderLayout } from '../node/folders.ts';
import { UsageError, type Flags } from './args.ts';
import { shapeSize } from '../../dsl/index.ts';
import { LabelNames } from '../data/csv.ts';
import { checkLabels } from '../data/classes.ts';
import { DataError } from '../errors.ts';
import { runClasses, type OpenRun } from './common.ts';
import { csvForm } from './train-data.ts';

export interface TestSet {
  ds: Dataset;
  /** The folder of idx files or the CSV file. */
  from: string;
  /** How it was chosen, for the line that names it: "given", or the run it was trained with. */
  why: string;
  /** Given by --data or --test-csv (else the runs' own). */
  given: boolean;
}

type Source = { csv: string } | { dir: string };
const nameOf = (s: Source): string => ('csv' in s ? s.csv : s.dir);

/** The test set a run was trained with, from its run.json (a run without one: the default folder). */
function ownSource(run: OpenRun): Source {
  const flags = run.json.flags ?? {};
  if (typeof flags['test-csv'] === 'string') return { csv: flags['test-csv'] };
  return { dir: typeof flags.data === 'string' ? flags.data : DEFAULT_DATA_DIR };
}

/** The test set for these runs; runs trained on different test sets need one given. */
export function testSetFor(runs: readonly OpenRun[], flags: Flags): TestSet {
  if (flags.data !== undefined && flags['test-csv'] !== undefined)
    throw new UsageError('--data and --test-csv are two sources of test data: give one');
  // Runs scored together (an ensemble) average their probabilities class by class: the same classes, in order.
  const classesOf = (r: OpenRun): string[] => runClasses(r, shapeSize(r.ir.output));
  const [first] = runs;
  const classes = first ? classesOf(first) : [];
  const other = runs.find((r) => classesOf(r).join('\n') !== classes.join('\n'));
  if (first && other)
    throw new UsageError(
      `${first.dir} and ${other.dir} have different classes (${classes.join(', ')}; ` +
        `${classesOf(other).join(', ')}): runs scored together need the same classes in the same order`,
    );
  let source: Source;
  let why: string;
  if (flags['test-csv'] !== undefined || flags.data !== undefined) {
    source = flags['test-csv'] !== undefined ? { csv: String(flags['test-csv']) } : { dir: String(flags.data) };
    why = flags['test-csv'] !== undefined ? 'given by --test-csv' : 'given by --data';
  } else {
    const own = runs.map((r) => ({ run: r.dir, source: ownSource(r) }));
    const [first] = own;
    if (!first) throw new UsageError('no run directory given');
    const other = own.find((o) => nameOf(o.source) !== nameOf(first.source));
    if (other)
      throw new UsageError(
        `${first.run} was tested on ${nameOf(first.source)} but ${other.run} on ${nameOf(other.source)}: ` +
          'give the test set to score them on with --data DIR or --test-csv FILE',
      );
    source = first.source;
    why = runs.length > 1 ? 'the one the runs were trained with' : `the one ${first.run} was trained with`;
    if ('csv' in source && !existsSync(source.csv))
      throw new UsageError(
        `${source.csv}: no such file (the test set ${first.run} was trained with): ` +
          'give one with --test-csv FILE or --data DIR',
      );
  }
  const from = nameOf(source);
  // A CSV's names are read as the run's (runCsvForm); a folder's (its classes.txt, CIFAR's names, image
  // folders) are put in the run's order here.
  const loaded =
    'csv' in source
      ? { ds: loadCsv(source.csv, { form: runCsvForm(runs[0]) }), classes: null }
      : loadIdxTest(source.dir, imagesFor(source.dir, runs));
  const ds = loaded.classes && first ? onRunClasses(loaded.ds, loaded.classes, first.dir, classes, from) : loaded.ds;
  if (ds.n === 0) throw new UsageError(`the test set has no images (${from})`);
  // Every run has the first's classes (checked above).
  if (first) {
    const why = ` (${first.dir} has ${classes.length} classes)`;
    checkLabels(ds.labels, classes.length, from, { lines: ds.lines, why });
  }
  return { ds, from, why, given: flags['test-csv'] !== undefined || flags.data !== undefined };
}

/**
 * A test set whose folder names its classes, labelled by the runs' classes of those names (a folder of two of
 * a run's three classes, or its classes in another order; runs scored together have the same classes).
 * Where a class with images is not among the run's and either side only numbers its classes (0, 1, …), the
 * labels are taken as they are; else it is refused.
 */
function onRunClasses(
  ds: Dataset,
  names: readonly string[],
  run: string,
  theirs: readonly string[],
  from: string,
): Dataset {
  if (names.every((n, i) => n === theirs[i])) return ds;
  const used = new Set(ds.labels);
  const index = names.map((n) => theirs.indexOf(n));
  const stray = names.findIndex((_, i) => index[i] === -1 && used.has(i));
  const numbered = (l: readonly string[]): boolean => l.every((n, i) => n === String(i));
  if (stray >= 0 && (numbered(names) || numbered(theirs))) return ds;
  if (stray >= 0)
    throw new DataError(`${from}: class "${names[stray]}" is not a class of ${run} (${theirs.join(', ')})`);
  return { ...ds, labels: ds.labels.map((l) => index[l] ?? l) };
}

/**
 * A folder of images is read at the (first) run's input size, and a single tree's test set is the
 * part its train line's validation and seed held out.
 */
function imagesFor(dir: string, runs: readonly OpenRun[]): FolderOptions | undefined {
  if (!runs[0] || !folderLayout(dir)) return undefined;
  const { ir } = runs[0];
  return { input: ir.input, validation: ir.train.validation, seed: ir.train.seed };
}

/** A CSV file as a run reads it: at its input size, its labels numbers or among its classes' names. */
export function runCsvForm(run: OpenRun | undefined): CsvForm | undefined {
  if (!run) return undefined;
  const { ir } = run;
  return csvForm(ir, new LabelNames(runClasses(run, shapeSize(ir.output)), true, join(run.dir, 'run.json')));
}

/** The one line that names the test set scored. */
export function testSetLine(t: TestSet): string {
  return `test set: ${t.from} (${t.ds.n.toLocaleString('en-US')} images, ${t.why})`;
}
