// Canvas drawing for the page: line charts (curves), 28×28 images and probability bars. No chart
// library: a few hundred points need none. The confusion heatmap is the report's SVG (src/report/svg.ts).
import { DEFAULT_INPUT } from '../src/web.ts';
import { context2d } from './dom.ts';

export interface Series {
  name: string;
  color: string;
  /** [x, y] in data units; x is epochs (fractional during an epoch). */
  points: [number, number][];
  /** Dots at each point (per-epoch validation values). */
  dots?: boolean;
}

/** Sizes the backing store to the displayed size × devicePixelRatio, so lines stay crisp. */
function context(canvas: HTMLCanvasElement): { g: CanvasRenderingContext2D; w: number; h: number } {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h =
    Math.round((w * Number(canvas.getAttribute('height'))) / Number(canvas.getAttribute('width'))) || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = context2d(canvas);
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  return { g, w, h };
}

/** Round tick steps: 1, 2 or 5 × 10^k, about `count` of them over the span. */
function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function lineChart(
  canvas: HTMLCanvasElement,
  series: Series[],
  opts: { xMax: number; yMin?: number; yMax?: number; percent?: boolean },
): void {
  const { g, w, h } = context(canvas);
  const pad = { l: 44, r: 10, t: 22, b: 24 };
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  let y0 = opts.yMin ?? (ys.length ? Math.min(...ys) : 0);
  let y1 = opts.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (opts.yMin === undefined) y0 = Math.max(0, y0 - (y1 - y0) * 0.08);
  if (opts.yMax === undefined) y1 = y1 + (y1 - y0) * 0.08;
  if (y1 - y0 < 1e-6) y1 = y0 + 1;
  const x1 = Math.max(opts.xMax, 1e-6);
  const X = (x: number): number => pad.l + (x / x1) * (w - pad.l - pad.r);
  const Y = (y: number): number => h - pad.b - ((y - y0) / (y1 - y0)) * (h - pad.t - pad.b);
  g.font = '11px system-ui, sans-serif';
  g.strokeStyle = '#e6e9ef';
  g.fillStyle = '#667085';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const t of ticks(y0, y1, 5)) {
    g.beginPath();
    g.moveTo(pad.l, Y(t) + 0.5);
    g.lineTo(w - pad.r, Y(t) + 0.5);
    g.stroke();
    g.fillText(opts.percent ? `${Math.round(t * 100)}%` : String(t), pad.l - 5, Y(t));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (const t of ticks(0, x1, Math.min(8, Math.max(1, Math.ceil(x1))))) {
    if (t !== Math.round(t)) continue;
    g.fillText(String(t), X(t), h - pad.b + 5);
  }
  for (const s of series) {
    g.strokeStyle = s.color;
    g.fillStyle = s.color;
    g.lineWidth = 2;
    g.beginPath();
    for (const [i, [x, y]] of s.points.entries()) {
      if (i === 0) g.moveTo(X(x), Y(y));
      else g.lineTo(X(x), Y(y));
    }
    g.stroke();
    if (s.dots || s.points.length === 1) {
      for (const [x, y] of s.points) {
        g.beginPath();
        g.arc(X(x), Y(y), 3, 0, 2 * Math.PI);
        g.fill();
      }
    }
  }
  // Legend, top left.
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  let lx = pad.l + 6;
  for (const s of series) {
    g.fillStyle = s.color;
    g.fillRect(lx, 8, 14, 3);
    g.fillStyle = '#1d2430';
    g.fillText(s.name, lx + 18, 10);
    lx += 26 + g.measureText(s.name).width;
  }
}

/** A grey image, 28×28 unless told, values in [0, 1] (light on dark, as Fashion-MNIST). */
export function drawImage(
  canvas: HTMLCanvasElement,
  pixels: ArrayLike<number>,
  width = DEFAULT_INPUT.w,
  height = DEFAULT_INPUT.h,
): void {
  canvas.width = width;
  canvas.height = height;
  const g = context2d(canvas);
  const img = g.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = Math.max(0, Math.min(255, Math.round(pixels[i]! * 255)));
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

/** Probability bars, highest first; `limit` rows. */
export function bars(
  host: HTMLElement,
  probs: ArrayLike<number>,
  names: readonly string[],
  limit = probs.length,
): void {
  // A class without a name is shown by its number.
  const order = Array.from(probs, (p, c) => ({ c, p, name: names[c] ?? String(c) })).sort((a, b) => b.p - a.p);
  host.replaceChildren(
    ...order.slice(0, limit).map(({ c, p, name }, rank) => {
      const row = el('div', rank === 0 ? 'bar top' : 'bar');
      const fill = el('div', 'fill');
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      const track = el('div', 'track');
      track.append(fill);
      row.append(el('span', '', name), track, el('span', '', `${(p * 100).toFixed(p < 0.1 ? 1 : 0)}%`));
      row.dataset.class = String(c);
      return row;
    }),
  );
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls = '', text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export const argmax = (p: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return best;
};

/** Cards of sample images (`draw` paints card i), the true class and, once there is a model, its guess and top 3. */
export function sampleGrid(
  host: HTMLElement,
  draw: (canvas: HTMLCanvasElement, i: number) => void,
  truths: number[],
  probs: Float32Array | null,
  names: readonly string[],
): void {
  const k = names.length;
  host.replaceChildren(
    ...truths.map((truth, i) => {
      const card = el('div', 'sample');
      const c = el('canvas');
      draw(c, i);
      card.append(c);
      if (probs) {
        const p = probs.subarray(i * k, (i + 1) * k);
        const best = argmax(p);
        card.append(
          el('div', `label ${best === truth ? 'right' : 'wrong'}`, names[best] ?? String(best)),
          el('div', 'truth', `true: ${names[truth]}`),
        );
        const b = el('div', 'probs');
        bars(b, p, names, 3);
        card.append(b);
        card.dataset.predicted = String(best);
      } else card.append(el('div', 'label', '?'), el('div', 'truth', `true: ${names[truth]}`));
      return card;
    }),
  );
}

/** k different indices below n, at random (the sample test images shown). */
export function pickSamples(n: number, k: number): number[] {
  const out = new Set<number>();
  while (out.size < Math.min(k, n)) out.add(Math.floor(Math.random() * n));
  return [...out];
}
