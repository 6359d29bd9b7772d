// Metrics from a confusion matrix (rows: true class, columns: predicted), as scikit-learn reports them.
// The class count is the matrix's side (or the width of the probabilities); names default to
// Fashion-MNIST's, and a class without a name is shown by its number.
import { CLASS_NAMES } from '../data/classes.ts';

/** The side of a square confusion matrix: its class count. */
export const classesOf = (confusion: ArrayLike<number>): number => Math.round(Math.sqrt(confusion.length));

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export function perClass(
  confusion: ArrayLike<number>,
  classes = classesOf(confusion),
  names: readonly string[] = CLASS_NAMES,
): ClassMetrics[] {
  const out: ClassMetrics[] = [];
  for (let c = 0; c < classes; c++) {
    let tp = 0,
      predicted = 0,
      support = 0;
    for (let j = 0; j < classes; j++) {
      support += confusion[c * classes + j]!;
      predicted += confusion[j * classes + c]!;
    }
    tp = confusion[c * classes + c]!;
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    out.push({ name: names[c] ?? String(c), precision, recall, f1, support });
  }
  return out;
}

/** scikit-learn's classification_report layout. */
export function classificationReport(
  confusion: ArrayLike<number>,
  classes = classesOf(confusion),
  names: readonly string[] = CLASS_NAMES,
): string {
  const rows = perClass(confusion, classes, names);
  const total = rows.reduce((a, r) => a + r.support, 0);
  let correct = 0;
  for (let c = 0; c < classes; c++) correct += confusion[c * classes + c]!;
  const w = Math.max(12, ...rows.map((r) => r.name.length));
  const f = (x: number): string => x.toFixed(2).padStart(9);
  const line = (name: string, p: string, r: string, f1: string, s: number): string =>
    `${name.padStart(w)} ${p} ${r} ${f1} ${String(s).padStart(9)}`;
  const head = ['precision', 'recall', 'f1-score', 'support'].map((h) => h.padStart(9)).join(' ');
  const lines = [`${''.padStart(w)} ${head}`, ''];
  for (const r of rows) lines.push(line(r.name, f(r.precision), f(r.recall), f(r.f1), r.support));
  lines.push('');
  lines.push(line('accuracy', ''.padStart(9), ''.padStart(9), f(total ? correct / total : 0), total));
  const mean = (k: 'precision' | 'recall' | 'f1'): number => rows.reduce((a, r) => a + r[k], 0) / classes;
  const wmean = (k: 'precision' | 'recall' | 'f1'): number =>
    total ? rows.reduce((a, r) => a + r[k] * r.support, 0) / total : 0;
  lines.push(line('macro avg', f(mean('precision')), f(mean('recall')), f(mean('f1')), total));
  lines.push(line('weighted avg', f(wmean('precision')), f(wmean('recall')), f(wmean('f1')), total));
  return lines.join('\n');
}

/**
 * The confusion matrix as text, true classes down, predictions across. Rows carry the class number
 * and its whole name (the legend of the numbered columns); every column, header included, is
 * right-aligned to the same width, so each number sits over its counts.
 */
export function confusionTable(
  confusion: ArrayLike<number>,
  classes = classesOf(confusion),
  names: readonly string[] = CLASS_NAMES,
): string {
  const counts = Array.from(confusion as ArrayLike<number>, (v) => String(v).length);
  const w = 1 + Math.max(4, String(classes - 1).length, ...counts);
  const digits = String(classes - 1).length;
  const cut = (s: string): string => (s.length > 20 ? `${s.slice(0, 19)}…` : s);
  const label = (c: number): string => `${String(c).padStart(digits)} ${cut(names[c] ?? String(c))}`;
  const corner = 'true \\ predicted';
  const nw = Math.max(corner.length, ...Array.from({ length: classes }, (_, c) => label(c).length));
  const cells = (f: (j: number) => string): string =>
    Array.from({ length: classes }, (_, j) => f(j).padStart(w)).join('');
  const lines = [`${corner.padEnd(nw)}${cells(String)}`];
  for (let i = 0; i < classes; i++)
    lines.push(`${label(i).padEnd(nw)}${cells((j) => String(confusion[i * classes + j]))}`);
  return lines.join('\n');
}

/** The class with the highest score in row i of scores [n, classes]; ties go to the lower class, as on the GPU. */
export function argmaxRow(scores: ArrayLike<number>, i: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) if (scores[i * classes + c]! > scores[i * classes + best]!) best = c;
  return best;
}

/** A class as predict names it: its name, its index, its probability. */
export interface ClassProbability {
  class: string;
  label: number;
  probability: number;
}

/** Row i's `k` most probable classes, the most probable first (`class N` for a class without a name). */
export function topClasses(
  probs: ArrayLike<number>,
  i: number,
  classes: number,
  names: readonly string[],
  k = 3,
): ClassProbability[] {
  return Array.from({ length: classes }, (_, c) => ({
    class: names[c] ?? `class ${c}`,
    label: c,
    probability: probs[i * classes + c] ?? 0,
  }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

/** The confusion matrix (rows: true class) and accuracy of predicted classes against labels. */
export function confusionMatrix(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): { accuracy: number; confusion: Uint32Array } {
  const confusion = new Uint32Array(classes * classes);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    confusion[y * classes + predicted[i]!]!++;
    if (predicted[i] === y) correct++;
  }
  return { accuracy: correct / labels.length, confusion };
}

/**
 * Loss (mean cross-entropy of the true class, probabilities floored at 1e-12), accuracy and the
 * confusion matrix (rows: true class) of class probabilities [n, classes] against labels [n].
 * Ties in the argmax go to the lower class, as on the GPU.
 */
export function metricsFromProbabilities(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes = probs.length / labels.length,
): { loss: number; accuracy: number; confusion: Uint32Array } {
  const n = labels.length;
  const predicted = Array.from({ length: n }, (_, i) => argmaxRow(probs, i, classes));
  let nll = 0;
  for (let i = 0; i < n; i++) nll -= Math.log(Math.max(probs[i * classes + labels[i]!]!, 1e-12));
  return { loss: nll / n, ...confusionMatrix(predicted, labels, classes) };
}
