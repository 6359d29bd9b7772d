// The training's live numbers (the stats row under the buttons) and its loss and accuracy curves,
// drawn from the progress reports and epoch logs the page has seen.
import type { EpochLog, Progress } from '../src/web.ts';
import { lineChart, type Series } from './charts.ts';
import { byId } from './dom.ts';

export const fmt = (x: number | undefined, digits = 4): string =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
export const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);

/** Train curves by step, validation by epoch; the x axis spans the epochs asked for. */
export function drawCurves(progress: readonly Progress[], epochs: readonly EpochLog[]): void {
  const pts = (f: (p: Progress) => number): [number, number][] =>
    progress.map((p) => [p.epoch - 1 + p.step / p.steps, f(p)]);
  const ep = (f: (e: EpochLog) => number | undefined): [number, number][] =>
    epochs.flatMap((e): [number, number][] => {
      const v = f(e);
      return v === undefined ? [] : [[e.epoch, v]];
    });
  const asked = Number((byId('epochs') as HTMLInputElement).value) || 1;
  const xMax = Math.max(1, asked, ...epochs.map((e) => e.epoch));
  const loss: Series[] = [
    { name: 'train', color: '#2f6fde', points: pts((p) => p.loss) },
    { name: 'validation', color: '#e0782f', points: ep((e) => e.val_loss), dots: true },
  ];
  const acc: Series[] = [
    { name: 'train', color: '#2f6fde', points: pts((p) => p.accuracy) },
    { name: 'validation', color: '#e0782f', points: ep((e) => e.val_accuracy), dots: true },
  ];
  lineChart(byId('loss-chart') as HTMLCanvasElement, loss, { xMax });
  lineChart(byId('acc-chart') as HTMLCanvasElement, acc, { xMax, yMin: 0, yMax: 1, percent: true });
}

/** The stats row after a progress report. */
export function showStep(p: Progress): void {
  byId('s-epoch').textContent = `${p.epoch} (${p.step}/${p.steps})`;
  byId('s-loss').textContent = fmt(p.loss);
  byId('s-acc').textContent = pct(p.accuracy);
  byId('s-speed').textContent = Math.round(p.imagesPerSec).toLocaleString('en');
}

/** The stats row's validation numbers after an epoch. */
export function showEpochStats(e: EpochLog): void {
  byId('s-vloss').textContent = fmt(e.val_loss);
  byId('s-vacc').textContent = pct(e.val_accuracy);
}
