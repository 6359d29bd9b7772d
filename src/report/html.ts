// report.html: one self-contained page per run (inline CSS, inline SVG, images as data: URIs; no
// script, nothing fetched). A pure function of the data below, so the same page can be made in Node
// (fmgpu report) or in a browser.
import type { EpochLog } from '../train/trainer.ts';
import { argmaxRow, type ClassMetrics } from '../train/metrics.ts';
import { CLASS_NAMES } from '../data/classes.ts';
import { PALETTE, esc, heatmap, lineChart, scatter } from './svg.ts';
import { pngDataUri } from './png.ts';
import { STYLE, legendStyle } from './style.ts';

export interface ReportMetrics {
  test_loss: number;
  test_accuracy: number;
  n: number;
  per_class: ClassMetrics[];
  /** Row-major [classes × classes], rows: true class, columns: predicted. */
  confusion: number[];
}

export interface ReportSample {
  /** Position in the test set. */
  index: number;
  pixels: Uint8Array;
  rows: number;
  cols: number;
  label: number;
  pred: number;
  /** Probability of the predicted class. */
  prob: number;
}

export interface ReportData {
  /** The run's name (its directory). */
  name: string;
  /** When the page was made (ISO 8601). */
  generated: string;
  /** run.json as written by `fmgpu train` (seed, adapter, version, git, flags, started…); {} if absent. */
  run: Record<string, unknown>;
  /** The Keras-style model summary. */
  summary: string;
  /** The .net source. */
  source: string;
  history: EpochLog[];
  metrics: ReportMetrics | null;
  /** Test images to show, in the order shown (mistakes first: see pickSamples). */
  samples: ReportSample[];
  /** 2-D projection of the penultimate features: points [n, 2], labels [n], explained fractions. */
  projection: {
    points: ArrayLike<number>;
    labels: ArrayLike<number>;
    explained: [number, number];
    features: number;
    of: string;
  } | null;
  classNames?: readonly string[];
  /** How training ended (from the checkpoint's state); absent for runs that do not say. */
  ending?: ReportEnding;
}

/** Early stopping as the page tells it: epochs are 1-based; `metric` is what it watched. */
export interface ReportEnding {
  /** Epochs the run was set to train. */
  epochs: number;
  patience: number;
  /** The epoch early stopping ended training at, or null. */
  stopped: number | null;
  /** The best epoch whose weights were restored at the end (the weights scored), or null. */
  restored: number | null;
  metric: string;
}

/**
 * Which images to show, `count` in all: the mistakes first, most confident first (the instructive
 * ones), then correct predictions in test-set order. Mistakes fill at most two thirds of the grid
 * while there are correct ones to show, so that the page also shows what the model gets right.
 * probs: [n, classes].
 */
export function pickSamples(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  count: number,
  classes = 10,
): { index: number; pred: number; prob: number }[] {
  const all = Array.from({ length: labels.length }, (_, i) => {
    const pred = argmaxRow(probs, i, classes);
    return { index: i, pred, prob: probs[i * classes + pred]! };
  });
  const wrong = all.filter((s) => s.pred !== labels[s.index]).sort((a, b) => b.prob - a.prob || a.index - b.index);
  const right = all.filter((s) => s.pred === labels[s.index]);
  const nWrong = Math.min(wrong.length, Math.max(count - right.length, Math.ceil((2 * count) / 3)));
  return [...wrong.slice(0, nWrong), ...right].slice(0, count);
}

const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;
const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
/** The class's colour, as the PCA scatter draws it. */
const swatch = (c: number): string => `<span class="swatch" style="background:${PALETTE[c % PALETTE.length]}"></span>`;

function tiles(d: ReportData): string {
  const h = d.history;
  const last = h.at(-1);
  // The first epoch with the highest validation accuracy.
  const best = h.reduce<{ accuracy: number; epoch: number } | undefined>(
    (b, e) =>
      e.val_accuracy !== undefined && (b === undefined || e.val_accuracy > b.accuracy)
        ? { accuracy: e.val_accuracy, epoch: e.epoch }
        : b,
    undefined,
  );
  const seconds = h.reduce((a, e) => a + e.seconds, 0);
  const params = /Total params: ([\d,]+)/.exec(d.summary)?.[1];
  const t: [string, string, string?][] = [];
  if (d.metrics)
    t.push(
      ['test accuracy', pct(d.metrics.test_accuracy, 2), `${d.metrics.n.toLocaleString('en-US')} images`],
      ['test loss', d.metrics.test_loss.toFixed(4), 'cross-entropy'],
    );
  const time = `${seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`} of training`;
  const end = d.ending;
  if (last && end?.stopped) t.push(['epochs', `${last.epoch} of ${end.epochs}`, `stopped early · ${time}`]);
  else if (last) t.push(['epochs', String(last.epoch), time]);
  if (end?.restored) t.push(['weights kept', `epoch ${end.restored}`, `the best ${end.metric}, restored`]);
  if (last) t.push(['train accuracy', pct(last.accuracy), `loss ${last.loss.toFixed(4)}`]);
  if (best) t.push(['best val accuracy', pct(best.accuracy), `epoch ${best.epoch}`]);
  if (params) t.push(['parameters', params, 'trainable and not']);
  const tile = ([k, v, sub]: [string, string, string?]): string =>
    `<div class="tile"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div>` +
    `${sub ? `<div class="sub">${esc(sub)}</div>` : ''}</div>`;
  return `<div class="tiles">${t.map(tile).join('')}</div>`;
}

function runInfo(d: ReportData): string {
  const r = d.run;
  const s = (k: string): string | null => (r[k] === undefined || r[k] === null || r[k] === '' ? null : String(r[k]));
  const flags =
    r.flags && typeof r.flags === 'object'
      ? Object.entries(r.flags as Record<string, unknown>)
          .filter(([, v]) => v !== undefined && v !== false)
          .map(([k, v]) => (v === true ? `--${k}` : `--${k} ${v}`))
          .join(' ')
      : null;
  const started = s('started');
  const rows: [string, string | null][] = [
    ['model', s('model')],
    ['adapter', s('adapter')],
    ['seed', s('seed')],
    ['flags', flags || (r.flags ? '(none)' : null)],
    ['started', started ? started.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : null],
    ['fmgpu', s('version')],
    ['node', s('node')],
    ['git', s('git')?.slice(0, 12) ?? null],
    ['report made', d.generated.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')],
  ];
  return `<dl class="info">${rows
    .filter((x): x is [string, string] => x[1] !== null)
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
    .join('')}</dl>`;
}

/** What the curves' note says about early stopping and the weights kept. */
function endingNote(e: ReportEnding): string {
  const kept =
    e.restored === null
      ? 'the weights are those of the last epoch.'
      : `the weights of epoch ${e.restored}, the best, were restored at the end: the test scores are theirs.`;
  if (e.stopped === null) return e.restored === null ? '' : `<p class="note">As early_stop does, ${kept}</p>`;
  const why = `${e.metric} had not improved in ${plural(e.stopped - (e.restored ?? e.stopped - e.patience), 'epoch')}`;
  const stopped = `Training stopped early at epoch ${e.stopped} of ${e.epochs} (${why}, patience ${e.patience})`;
  return `<p class="note">${stopped}; ${kept}</p>`;
}

function curves(h: EpochLog[], ending?: ReportEnding): string {
  if (h.length === 0) return '<p class="muted">No training history in this run (history.json is missing or empty).</p>';
  const marks = ending?.restored ? [{ x: ending.restored, label: `best epoch ${ending.restored}` }] : undefined;
  const series = (key: keyof EpochLog, name: string, color: string, dashed = false) => ({
    name,
    color,
    dashed,
    points: h.map((e) => [e.epoch, e[key]] as [number, number | undefined]),
  });
  const acc = lineChart({
    title: 'Accuracy',
    xLabel: 'epoch',
    format: (y) => pct(y, Number.isInteger(Math.round(y * 1e6) / 1e4) ? 0 : 1),
    precise: (y) => pct(y, 2),
    series: [series('accuracy', 'train', '#2f6db5'), series('val_accuracy', 'validation', '#e8772e', true)],
    marks,
  });
  const loss = lineChart({
    title: 'Loss',
    xLabel: 'epoch',
    format: (y) => String(+y.toPrecision(3)),
    precise: (y) => y.toFixed(4),
    series: [series('loss', 'train', '#2f6db5'), series('val_loss', 'validation', '#e8772e', true)],
    marks,
  });
  return `${ending ? endingNote(ending) : ''}<div class="two">${acc}${loss}</div>`;
}

function classTable(m: ReportMetrics, names: readonly string[]): string {
  const bar = (x: number): string =>
    `<td class="num"><span class="bar" style="--w:${(x * 100).toFixed(1)}%"></span>` +
    `<span class="bv">${x.toFixed(3)}</span></td>`;
  const row = (cls: string, first: string, x: Pick<ClassMetrics, 'precision' | 'recall' | 'f1'>, n: number) =>
    `<tr${cls}><td>${first}</td>${bar(x.precision)}${bar(x.recall)}${bar(x.f1)}<td class="num">${n}</td></tr>`;
  const rows = m.per_class.map((c, i) => row('', `${swatch(i)}${esc(names[i] ?? c.name)}`, c, c.support));
  const k = m.per_class.length,
    total = m.per_class.reduce((a, c) => a + c.support, 0);
  const mean = (f: 'precision' | 'recall' | 'f1'): number => m.per_class.reduce((a, c) => a + c[f], 0) / Math.max(1, k);
  const macro = { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') };
  rows.push(row(' class="avg"', 'macro average', macro, total));
  const head = ['class', 'precision', 'recall', 'F1', 'support'].map((h) => `<th>${h}</th>`).join('');
  return `<table class="classes"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function grid(samples: ReportSample[], names: readonly string[]): string {
  if (samples.length === 0) return '<p class="muted">No test images.</p>';
  const wrong = samples.filter((s) => s.pred !== s.label).length;
  const cards = samples.map((s) => {
    const ok = s.pred === s.label;
    const alt = `test image ${s.index}: predicted ${names[s.pred]}, true ${names[s.label]}`;
    const src = pngDataUri(s.pixels, s.cols, s.rows);
    const img = `<img src="${src}" width="84" height="84" alt="${esc(alt)}" title="${esc(alt)}">`;
    const truth = ok ? '✓ correct' : `true: ${esc(names[s.label] ?? String(s.label))}`;
    const caption =
      `<span class="pred">${esc(names[s.pred] ?? String(s.pred))}</span> <span class="prob">${pct(s.prob, 0)}</span>` +
      `<span class="truth">${truth}</span>`;
    return `<figure class="sample ${ok ? 'ok' : 'bad'}">${img}<figcaption>${caption}</figcaption></figure>`;
  });
  const right = samples.length - wrong;
  const note =
    `${plural(wrong, 'mistake')} (most confident first), then ${plural(right, 'correct prediction')}. ` +
    'The percentage is the probability of the predicted class.';
  return `<p class="note">${note}</p><div class="grid">${cards.join('')}</div>`;
}

function projection(p: NonNullable<ReportData['projection']>, names: readonly string[]): string {
  const n = p.labels.length;
  const legend = names.map((name, c) => `<li data-class="${c}">${swatch(c)}${esc(name)}</li>`).join('');
  const svg = scatter(p.points, p.labels, names, [
    `PC 1 (${pct(p.explained[0])} of variance)`,
    `PC 2 (${pct(p.explained[1])} of variance)`,
  ]);
  const note =
    `The ${p.features}-dimensional ${esc(p.of)} for ${n.toLocaleString('en-US')} test images, projected on its ` +
    'first two principal components (power iteration in float64), coloured by true class. ' +
    'Hover a class to pick it out.';
  return `<p class="note">${note}</p><div class="pca">${svg}<ul class="legend">${legend}</ul></div>`;
}

export function renderReport(d: ReportData): string {
  const names = d.classNames ?? CLASS_NAMES;
  const section = (id: string, title: string, body: string): string =>
    `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`;
  const acc = d.metrics ? ` · ${pct(d.metrics.test_accuracy, 2)}` : '';
  const body = [
    `<header><div class="brand">fmgpu report</div><h1>${esc(d.name)}</h1>` +
      `<p class="muted">${esc(String(d.run.model ?? 'model.net'))}${acc}</p>${tiles(d)}</header>`,
    section(
      'run',
      'Model and run',
      `<div class="two top">${runInfo(d)}<div><pre class="summary">${esc(d.summary)}</pre>` +
        `<details><summary>.net source</summary><pre class="source">${esc(d.source)}</pre></details></div></div>`,
    ),
    section('curves', 'Training curves', curves(d.history, d.ending)),
    d.metrics
      ? section(
          'confusion',
          'Confusion matrix and per-class metrics',
          `<div class="two">${heatmap(d.metrics.confusion, names)}${classTable(d.metrics, names)}</div>`,
        )
      : '',
    section('samples', 'Test images', grid(d.samples, names)),
    d.projection ? section('pca', 'Penultimate layer, PCA', projection(d.projection, names)) : '',
    `<footer>Made by fmgpu ${esc(String(d.run.version ?? ''))} on ${esc(d.generated.slice(0, 10))}. ` +
      'Self-contained: this page loads nothing from the network.</footer>',
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(d.name)}${acc}: fmgpu report</title>
<style>${STYLE}${legendStyle(names.length)}
</style></head>
<body><main>
${body.join('\n')}
</main></body></html>
`;
}
