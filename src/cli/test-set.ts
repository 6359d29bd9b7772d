// Which test set `eval` and `predict --test` score: the one given (--data DIR, --test-csv FILE), or
// else the one the runs were trained with, as their run.json records it (a run trained from CSV has
// its --test-csv; one trained on idx files its --data folder, by default Debian's).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { DEFAULT_DATA_DIR, loadCsv, loadFashionMnistTest } from '../node/data.ts';
import { UsageError, type Flags } from './args.ts';
import { readRunJson } from './common.ts';

export interface TestSet {
  ds: Dataset;
  /** The folder of idx files or the CSV file. */
  from: string;
  /** How it was chosen, for the line that names it: "given", or the run it was trained with. */
  why: string;
}

type Source = { csv: string } | { dir: string };
const nameOf = (s: Source): string => ('csv' in s ? s.csv : s.dir);

/** The test set a run was trained with, from its run.json (a run without one: the default folder). */
function ownSource(dir: string): Source {
  const flags = existsSync(join(dir, 'run.json')) ? (readRunJson(dir).flags ?? {}) : {};
  if (typeof flags['test-csv'] === 'string') return { csv: flags['test-csv'] };
  return { dir: typeof flags.data === 'string' ? flags.data : DEFAULT_DATA_DIR };
}

/** The test set for these runs; runs trained on different test sets need one given. */
export function testSetFor(runs: readonly string[], flags: Flags): TestSet {
  if (flags.data !== undefined && flags['test-csv'] !== undefined)
    throw new UsageError('--data and --test-csv are two sources of test data: give one');
  let source: Source;
  let why: string;
  if (flags['test-csv'] !== undefined || flags.data !== undefined) {
    source = flags['test-csv'] !== undefined ? { csv: String(flags['test-csv']) } : { dir: String(flags.data) };
    why = flags['test-csv'] !== undefined ? 'given by --test-csv' : 'given by --data';
  } else {
    const own = runs.map((r) => ({ run: r, source: ownSource(r) }));
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
  const ds = 'csv' in source ? loadCsv(source.csv) : loadFashionMnistTest(source.dir);
  if (ds.n === 0) throw new UsageError(`the test set has no images (${nameOf(source)})`);
  return { ds, from: nameOf(source), why };
}

/** The one line that names the test set scored. */
export function testSetLine(t: TestSet): string {
  return `test set: ${t.from} (${t.ds.n.toLocaleString('en-US')} images, ${t.why})`;
}
