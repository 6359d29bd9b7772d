// Inline SVG charts for the report: line charts, the confusion heatmap and a class scatter. Pure
// functions from numbers to markup; sizes are in SVG user units and scale with the page (viewBox).

export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#79706e',
];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const r1 = (x: number): string => String(Math.round(x * 10) / 10);

/** The chart's root: it scales with the page (viewBox) and names itself to screen readers. */
const svgRoot = (cls: string, w: number, h: number, label: string, body: string): string =>
  `<svg class="${cls}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(label)}">${body}</svg>`;

/** A <text> whose attributes are `attrs` then its class (its look is the stylesheet's). */
const text = (attrs: string, cls: string, body: string | number): string =>
  `<text ${attrs} class="${cls}">${body}</text>`;

/** About `count` round tick values covering [lo, hi] (1, 2, 5 × 10^k steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

export interface Series {
  name: string;
  color: string;
  /** [x, y] pairs; y NaN or undefined points are skipped. */
  points: [number, number | undefined][];
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  series: Series[];
  xLabel: string;
  /** Tick labels. */
  format: (y: number) => string;
  /** Values in tooltips (default: format). */
  precise?: (y: number) => string;
  /** Force the y-range to include these values (e.g. 0 and 1 for accuracy). */
  yInclude?: number[];
  /** Vertical marks at these x values, each with a label at its top (e.g. the best epoch). */
  marks?: { x: number; label: string }[];
  width?: number;
  height?: number;
}

export function lineChart(c: LineChart): string {
  const W = c.width ?? 520,
    H = c.height ?? 300;
  const m = { l: 54, r: 16, t: 34, b: 42 };
  const pts = c.series.flatMap((s) =>
    s.points.filter((p): p is [number, number] => p[1] !== undefined && Number.isFinite(p[1])),
  );
  if (pts.length === 0)
    return svgRoot('chart', W, H, c.title, text(`x="${W / 2}" y="${H / 2}" text-anchor="middle"`, 'muted', 'no data'));
  const xs = pts.map((p) => p[0]),
    ys = [...pts.map((p) => p[1]), ...(c.yInclude ?? [])];
  // Folds, not Math.min(...xs): one argument per epoch would overflow the stack on a long history.
  let x0 = xs.reduce((a, b) => Math.min(a, b)),
    x1 = xs.reduce((a, b) => Math.max(a, b));
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  let y0 = ys.reduce((a, b) => Math.min(a, b)),
    y1 = ys.reduce((a, b) => Math.max(a, b));
  const pad = (y1 - y0) * 0.06 || Math.abs(y0) * 0.1 || 1;
  if (!c.yInclude?.includes(y0)) y0 -= pad;
  if (!c.yInclude?.includes(y1)) y1 += pad;
  const px = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(text(`x="${m.l}" y="20"`, 'ctitle', esc(c.title)));
  for (const t of niceTicks(y0, y1, 5)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${r1(py(t))}" y2="${r1(py(t))}" class="grid"/>`);
    parts.push(text(`x="${m.l - 6}" y="${r1(py(t) + 4)}" text-anchor="end"`, 'tick', esc(c.format(t))));
  }
  const xt = niceTicks(x0, x1, Math.min(8, Math.max(1, Math.round(x1 - x0)))).filter((t) => Number.isInteger(t));
  for (const t of xt) parts.push(text(`x="${r1(px(t))}" y="${H - m.b + 16}" text-anchor="middle"`, 'tick', t));
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" class="axis"/>`);
  for (const k of c.marks ?? []) {
    const x = r1(px(k.x));
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${H - m.b}" class="mark" stroke-dasharray="3 3"/>`);
    const anchor = px(k.x) > (m.l + W - m.r) / 2 ? 'end' : 'start';
    parts.push(text(`x="${x}" y="${m.t - 2}" text-anchor="${anchor}"`, 'tick mark', esc(k.label)));
  }
  parts.push(text(`x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle"`, 'alabel', esc(c.xLabel)));
  let lx = W - m.r;
  const legend: string[] = [];
  for (const s of [...c.series].reverse()) {
    const p = s.points.filter((q): q is [number, number] => q[1] !== undefined && Number.isFinite(q[1]));
    if (p.length === 0) continue;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const points = p.map(([x, y]) => `${r1(px(x))},${r1(py(y))}`).join(' ');
    parts.push(`<polyline class="line" fill="none" stroke="${s.color}"${dash} points="${points}"/>`);
    for (const [x, y] of p) {
      const tip = `<title>${esc(s.name)}, epoch ${x}: ${esc((c.precise ?? c.format)(y))}</title>`;
      parts.push(`<circle cx="${r1(px(x))}" cy="${r1(py(y))}" r="3.2" fill="${s.color}">${tip}</circle>`);
    }
    const w = 30 + s.name.length * 6.6;
    lx -= w;
    legend.push(
      `<line x1="${r1(lx)}" x2="${r1(lx + 18)}" y1="16" y2="16" stroke="${s.color}" stroke-width="2.5"${dash}/>`,
      text(`x="${r1(lx + 23)}" y="20"`, 'tick', esc(s.name)),
    );
  }
  return svgRoot('chart', W, H, c.title, parts.join('') + legend.join(''));
}

/** White → colour by t in [0, 1]. */
function tint(hex: string, t: number): string {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgb(${c.map((v) => Math.round(255 + (v - 255) * Math.min(1, Math.max(0, t)))).join(',')})`;
}

/** A count on a dark cell is written in white. */
const countClass = (shade: number): string => (shade > 0.55 ? 'count light' : 'count');

/**
 * Confusion matrix, true classes down and predictions across, counts in the cells. Shade is the
 * fraction of the row (recall for the diagonal): blue for right, red for confusions, so that the
 * common mistakes stand out whatever the class sizes.
 */
export function heatmap(confusion: ArrayLike<number>, names: readonly string[]): string {
  const k = names.length,
    cell = 44,
    left = 108,
    top = 112;
  const W = left + k * cell + 60,
    H = top + k * cell + 34; // right: room for the last rotated label
  const parts: string[] = [];
  for (const [i, truth] of names.entries()) {
    let row = 0;
    for (let j = 0; j < k; j++) row += confusion[i * k + j]!;
    for (const [j, pred] of names.entries()) {
      const v = confusion[i * k + j]!;
      const frac = row ? v / row : 0;
      // Confusions are rarer: a square root lifts the small ones into view.
      const t = i === j ? frac : Math.sqrt(frac) * 0.9;
      const fill = v === 0 ? '#f7f8fa' : tint(i === j ? '#2f6db5' : '#d9483b', t);
      const x = left + j * cell,
        y = top + i * cell;
      const tip = `true ${esc(truth)}, predicted ${esc(pred)}: ${v} (${(frac * 100).toFixed(1)}% of the row)`;
      const size = `width="${cell - 2}" height="${cell - 2}"`;
      parts.push(`<rect class="cell" x="${x}" y="${y}" ${size} rx="3" fill="${fill}"><title>${tip}</title></rect>`);
      if (v > 0)
        parts.push(text(`x="${x + (cell - 2) / 2}" y="${y + cell / 2 + 3}" text-anchor="middle"`, countClass(t), v));
    }
    const name = esc(truth);
    parts.push(text(`x="${left - 8}" y="${top + i * cell + cell / 2 + 3}" text-anchor="end"`, 'tick', name));
    parts.push(text(`transform="translate(${left + i * cell + cell / 2 + 3},${top - 8}) rotate(-45)"`, 'tick', name));
  }
  parts.push(text(`x="${left + (k * cell) / 2}" y="${H - 8}" text-anchor="middle"`, 'alabel', 'predicted class'));
  const side = `transform="translate(14,${top + (k * cell) / 2}) rotate(-90)" text-anchor="middle"`;
  parts.push(text(side, 'alabel', 'true class'));
  return svgRoot('heatmap', W, H, 'confusion matrix', parts.join(''));
}

/** Points [n, 2] coloured by class, one <g class="cls"> per class (the legend can highlight one). */
export function scatter(
  points: ArrayLike<number>,
  labels: ArrayLike<number>,
  names: readonly string[],
  axes: [string, string],
): string {
  const W = 800,
    H = 520,
    m = { l: 50, r: 16, t: 14, b: 44 };
  const n = labels.length;
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = points[2 * i]!,
      y = points[2 * i + 1]!;
    [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
  }
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x1 + 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y1 + 1];
  const padX = (x1 - x0) * 0.04,
    padY = (y1 - y0) * 0.04;
  [x0, x1, y0, y1] = [x0 - padX, x1 + padX, y0 - padY, y1 + padY];
  const px = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  for (const t of niceTicks(y0, y1, 6))
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${r1(py(t))}" y2="${r1(py(t))}" class="grid"/>`,
      text(`x="${m.l - 6}" y="${r1(py(t) + 4)}" text-anchor="end"`, 'tick', +t.toPrecision(3)),
    );
  for (const t of niceTicks(x0, x1, 7))
    parts.push(
      `<line y1="${m.t}" y2="${H - m.b}" x1="${r1(px(t))}" x2="${r1(px(t))}" class="grid"/>`,
      text(`x="${r1(px(t))}" y="${H - m.b + 16}" text-anchor="middle"`, 'tick', +t.toPrecision(3)),
    );
  parts.push(text(`x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle"`, 'alabel', esc(axes[0])));
  const side = `transform="translate(13,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle"`;
  parts.push(text(side, 'alabel', esc(axes[1])));
  for (const [c, name] of names.entries()) {
    const dots: string[] = [];
    for (let i = 0; i < n; i++)
      if (labels[i] === c)
        dots.push(`<circle cx="${r1(px(points[2 * i]!))}" cy="${r1(py(points[2 * i + 1]!))}" r="3"/>`);
    const title = `<title>${esc(name)}</title>`;
    parts.push(`<g class="cls" data-class="${c}" fill="${PALETTE[c % PALETTE.length]}">${title}${dots.join('')}</g>`);
  }
  return svgRoot('scatter', W, H, 'PCA projection', parts.join(''));
}
