// Holding out a validation fraction of the training set, two ways: Keras's validation_split (the
// last fraction in file order: dataset.ts), or a seeded random split that takes the same fraction of
// every class. The random split is the default for data sorted by class (image folders, a CSV made
// class by class), whose last fraction would be the last class or two alone. Then what follows from
// the split, the same for `fmgpu train` and the page: the validation set chosen, and the
// normalisation the images trained on give every set of the run.
import { Rng } from '../util/rng.ts';
import { channelStats } from './cifar.ts';
import { channelsOf, gather, validationSplit, type Dataset } from './dataset.ts';

/** How a validation fraction was held out. */
export type SplitKind = 'last' | 'random';

/**
 * Whether the labels are grouped by class: each class in one run of consecutive samples (sorted,
 * or in any order of the classes), with at least two classes.
 */
export function sortedByClass(labels: Uint8Array): boolean {
  const seen = new Set<number>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (i > 0 && l === labels[i - 1]) continue;
    if (seen.has(l)) return false;
    seen.add(l);
  }
  return seen.size > 1;
}

/**
 * How many of each class's `counts` go to validation: `total` in all, each class its share
 * (counts·total/n rounded down, the rest one each to the largest remainders, ties to the lower class).
 */
export function classQuotas(counts: readonly number[], total: number): number[] {
  const n = counts.reduce((a, b) => a + b, 0);
  const exact = counts.map((c) => (n === 0 ? 0 : (c * total) / n));
  const quotas = exact.map(Math.floor);
  let left = total - quotas.reduce((a, b) => a + b, 0);
  const order = exact.map((e, k) => [e - Math.floor(e), k] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, k] of order) {
    if (left === 0) break;
    if ((quotas[k] as number) < (counts[k] as number)) {
      quotas[k] = (quotas[k] as number) + 1;
      left--;
    }
  }
  return quotas;
}

/**
 * A seeded random split holding out the same fraction of every class: as many validation samples
 * as Keras's split would (n − floor(n·(1 − fraction))), each class's drawn at random. Both parts
 * keep the file's order.
 */
export function stratifiedSplit(ds: Dataset, fraction: number, seed: number): { train: Dataset; val: Dataset } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < ds.n; i++) {
    const l = ds.labels[i] as number;
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const members = classes.map((c) => byClass.get(c) ?? []);
  const quotas = classQuotas(
    members.map((m) => m.length),
    ds.n - Math.floor(ds.n * (1 - fraction)),
  );
  const held = new Uint8Array(ds.n);
  const rng = new Rng(seed);
  members.forEach((m, k) => {
    const drawn = rng.shuffle(Int32Array.from(m)).subarray(0, quotas[k]);
    for (const i of drawn) held[i] = 1;
  });
  const train: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < ds.n; i++) (held[i] ? val : train).push(i);
  return { train: gather(ds, train), val: gather(ds, val) };
}

/**
 * The training set with a validation fraction held out as `split` says (`auto`: random when the
 * data is sorted by class, else the last fraction), and the way it was taken.
 */
export function holdOut(
  ds: Dataset,
  fraction: number,
  split: 'auto' | SplitKind,
  seed: number,
): { train: Dataset; val: Dataset; split: SplitKind } {
  const kind = split === 'auto' ? (sortedByClass(ds.labels) ? 'random' : 'last') : split;
  const parts = kind === 'random' ? stratifiedSplit(ds, fraction, seed) : validationSplit(ds, fraction);
  return { ...parts, split: kind };
}

/** A run's validation set: a `given` one (split null), or a fraction held out of the training set (its split). */
export type ValidationChoice =
  | { train: Dataset; val: Dataset | null; split: null }
  | { train: Dataset; val: Dataset; split: SplitKind };

/**
 * The training set and the set it validates on: `given` (a set of its own, or the test set) as it
 * is; else, for a `fraction` above 0, that fraction held out as `split` says (holdOut; its val may be
 * empty: callers say what that means); else none.
 */
export function chooseValidation(
  train: Dataset,
  o: { given: Dataset | null; fraction: number; split: 'auto' | SplitKind; seed: number },
): ValidationChoice {
  if (o.given) return { train, val: o.given, split: null };
  if (o.fraction <= 0) return { train, val: null, split: null };
  return holdOut(train, o.fraction, o.split, o.seed);
}

/**
 * The normalisation a training set gives every set of its run: for colour images, the per-channel
 * mean and std of the images trained on (a held-out validation fraction left out; an empty set's is
 * the identity); grey data has none, and stays pixel / 255.
 */
export function trainingNormalization(train: Dataset): Dataset['normalize'] {
  return channelsOf(train) > 1 ? channelStats(train) : undefined;
}

/** A set with `norm` as its normalisation, or as it is when there is none. */
export const normalizedBy = <D extends Dataset>(ds: D, norm: Dataset['normalize']): D =>
  norm ? { ...ds, normalize: norm } : ds;
