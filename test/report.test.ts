// report.html: the pure pieces (PCA by power iteration against the eigen-equation, the PNG encoder
// against zlib's inflate, sample order, the page's self-containment), then end to end: train a tiny
// run through the CLI, `fmgpu report` it, and render the page in headless Chromium
// (screenshot in test-artifacts/report.png).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { ensureBuilt, writeIdxDir } from './helpers/files.ts';
import { Rng } from '../src/util/rng.ts';
import { pca2 } from '../src/report/pca.ts';
import { grayPng, pngDataUri } from '../src/report/png.ts';
import { pickSamples, renderReport, type ReportData } from '../src/report/html.ts';
import { niceTicks } from '../src/report/svg.ts';
import { CLASS_NAMES } from '../src/data/classes.ts';
import { DEFAULT_DATA_DIR } from '../src/node/data.ts';

const REPO = resolve(import.meta.dirname, '..');
const CHROMIUM = '/usr/bin/chromium';
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (...args: string[]) => {
  const r = spawnSync('node', ['bin/fmgpu.js', ...args], { encoding: 'utf8', env, timeout: 120_000 });
  return {
    code: r.status,
    out: r.stdout,
    err: r.stderr
      .split('\n')
      .filter((l) => !l.includes('artificially reduced'))
      .join('\n'),
  };
};

/** No network: no URL with a scheme other than data:, no external stylesheet, script, font or image. */
function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/https?:\/\//);
  expect(html).not.toMatch(/<link\b/i);
  expect(html).not.toMatch(/<script[^>]*\bsrc=/i);
  expect(html).not.toMatch(/@import|url\(/i);
  for (const m of html.matchAll(/\b(?:src|href)="([^"]*)"/g)) expect(m[1]).toMatch(/^data:image\/png;base64,/);
}

/** The first images of the real Fashion-MNIST when installed (a page worth looking at), else generated ones. */
function writeData(dir: string, nTrain: number, nTest: number): void {
  const real = (f: string): string => join(DEFAULT_DATA_DIR, `${f}.gz`);
  if (
    !['train', 't10k'].every(
      (p) => existsSync(real(`${p}-images-idx3-ubyte`)) && existsSync(real(`${p}-labels-idx1-ubyte`)),
    )
  ) {
    writeIdxDir(dir, nTrain, nTest);
    return;
  }
  mkdirSync(dir, { recursive: true });
  for (const [prefix, n] of [
    ['train', nTrain],
    ['t10k', nTest],
  ] as const) {
    for (const [kind, head, per] of [
      ['images-idx3', 16, 784],
      ['labels-idx1', 8, 1],
    ] as const) {
      const name = `${prefix}-${kind}-ubyte`;
      const bytes = Buffer.from(gunzipSync(readFileSync(real(name))).subarray(0, head + n * per));
      bytes.writeUInt32BE(n, 4);
      writeFileSync(join(dir, `${name}.gz`), gzipSync(bytes));
    }
  }
}

/** n points in 3-D with variances about 9, 4, 1 along a rotated basis, plus an offset. */
function cloud(n: number): Float64Array {
  const rng = new Rng(7);
  const g = (): number => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const c = Math.cos(0.6),
    s = Math.sin(0.6);
  const out = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = 3 * g(),
      b = 2 * g(),
      z = g();
    out.set([5 + c * a - s * b, -2 + s * a + c * b, 1 + z], i * 3);
  }
  return out;
}

describe('pieces', () => {
  it('pca2: both axes satisfy C·v = λv, are orthonormal, and are the two largest (3-D: λ3 = trace − λ1 − λ2)', () => {
    const n = 400,
      f = 3,
      x = cloud(n);
    const mean = [0, 1, 2].map((j) => Array.from({ length: n }, (_, i) => x[i * f + j]!).reduce((a, b) => a + b) / n);
    const C = Array.from({ length: f }, (_, j) =>
      Array.from({ length: f }, (_, k) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += (x[i * f + j]! - mean[j]!) * (x[i * f + k]! - mean[k]!);
        return s / (n - 1);
      }),
    );
    const p = pca2(x, n, f);
    for (let a = 0; a < 2; a++) {
      const v = p.axes[a]!;
      for (let j = 0; j < f; j++)
        expect(C[j]!.reduce((s, cjk, k) => s + cjk * v[k]!, 0)).toBeCloseTo(p.variance[a]! * v[j]!, 9);
      expect(v.reduce((s, q) => s + q * q, 0)).toBeCloseTo(1, 12);
    }
    expect(p.axes[0].reduce((s, q, j) => s + q * p.axes[1][j]!, 0)).toBeCloseTo(0, 12);
    const trace = C[0]![0]! + C[1]![1]! + C[2]![2]!;
    expect(p.total).toBeCloseTo(trace, 9);
    expect(p.variance[0]).toBeGreaterThanOrEqual(p.variance[1]);
    expect(p.variance[1]).toBeGreaterThanOrEqual(trace - p.variance[0] - p.variance[1]);
    expect(p.variance[0]).toBeGreaterThan(6); // about 9
    // Projections are the centred rows on the axes.
    expect(p.points[0]).toBeCloseTo(
      [0, 1, 2].reduce((s, j) => s + (x[j]! - mean[j]!) * p.axes[0][j]!, 0),
      9,
    );
  });

  it('pca2: constant features give zero variance, not NaN', () => {
    const p = pca2(new Float64Array(20).fill(3), 5, 4);
    expect(p.total).toBe(0);
    expect(Array.from(p.points).every((v) => v === 0)).toBe(true);
  });

  it('grayPng: zlib inflates it back to the pixels (filter byte 0 per row)', () => {
    const w = 28,
      h = 28,
      px = Uint8Array.from({ length: w * h }, (_, i) => (i * 37) % 256);
    const png = grayPng(px, w, h);
    const idat = png.subarray(8 + 25 + 8, png.length - 12 - 4);
    const raw = inflateSync(idat);
    expect(raw.length).toBe(h * (w + 1));
    for (let y = 0; y < h; y++) {
      expect(raw[y * (w + 1)]).toBe(0);
      expect(Array.from(raw.subarray(y * (w + 1) + 1, (y + 1) * (w + 1)))).toEqual(
        Array.from(px.subarray(y * w, (y + 1) * w)),
      );
    }
    expect(pngDataUri(px, w, h)).toMatch(/^data:image\/png;base64,iVBORw0KGgo/);
  });

  it('pickSamples: mistakes first, most confident first, then correct ones in order', () => {
    const probs = [0.9, 0.1, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4].flatMap((p) => [p, 1 - p, 0, 0, 0, 0, 0, 0, 0, 0]);
    const labels = [0, 0, 1, 1, 0, 0, 1, 1];
    expect(pickSamples(probs, labels, 6).map((s) => s.index)).toEqual([1, 3, 4, 6, 0, 2]);
    // Mistakes take at most two thirds of the grid when correct ones remain.
    expect(pickSamples(probs, labels, 3).map((s) => s.index)).toEqual([1, 3, 0]);
    expect(pickSamples(probs, labels, 3)[0]).toEqual({ index: 1, pred: 1, prob: 0.9 });
  });

  it('renderReport: a run with no history, metrics or projection still makes a page; text is escaped', () => {
    const d: ReportData = {
      name: 'a<b>&"c"',
      generated: '2026-01-02T03:04:05.000Z',
      run: {},
      summary: 'Model: "x"',
      source: 'dense 10 softmax\n',
      history: [],
      metrics: null,
      samples: [],
      projection: null,
    };
    const html = renderReport(d);
    expectSelfContained(html);
    expect(html).toContain('<h1>a&lt;b&gt;&amp;&quot;c&quot;</h1>');
    expect(html).toContain('No training history');
    expect(html).not.toContain('aria-label="confusion matrix"');
    expect(html).not.toContain('aria-label="PCA projection"');
  });

  it('renderReport: a run early stopping ended says so, and marks the best epoch on both curves', () => {
    const log = (epoch: number, val_loss: number) => ({
      epoch,
      seconds: 1,
      loss: 0.5,
      accuracy: 0.8,
      val_loss,
      lr: 0.001,
    });
    const d: ReportData = {
      name: 'r',
      generated: '2026-01-02T03:04:05.000Z',
      run: {},
      summary: 'Model: "x"',
      source: '',
      history: [log(1, 0.5), log(2, 0.4), log(3, 0.45), log(4, 0.47)],
      metrics: null,
      samples: [],
      projection: null,
      ending: { epochs: 12, patience: 2, stopped: 4, restored: 2, metric: 'val_loss' },
    };
    const html = renderReport(d);
    expect(html).toContain(
      '<p class="note">Training stopped early at epoch 4 of 12 (val_loss had not improved in 2 epochs, patience 2); ' +
        'the weights of epoch 2, the best, were restored at the end: the test scores are theirs.</p>',
    );
    expect(html.match(/<line x1="([\d.]+)" x2="\1" y1="34" y2="258" class="mark"/g)).toHaveLength(2);
    expect(html.match(/>best epoch 2<\/text>/g)).toHaveLength(2);
    expect(html).toContain('<div class="v">4 of 12</div><div class="sub">stopped early · 4.0 s of training</div>');
    expect(html).toContain('<div class="k">weights kept</div><div class="v">epoch 2</div>');
    // A run that ran its course with early_stop set still keeps the best epoch's weights, and says so.
    const ran = renderReport({ ...d, ending: { ...d.ending!, stopped: null } });
    expect(ran).toContain(
      '<p class="note">As early_stop does, the weights of epoch 2, the best, were restored at the end: ' +
        'the test scores are theirs.</p>',
    );
    expect(ran).toContain('<div class="v">4</div>');
    expect(renderReport({ ...d, ending: undefined })).not.toContain('class="mark"');
  });

  it('niceTicks: round steps covering the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
    expect(niceTicks(0.31, 0.92, 5).every((t) => Math.abs(t * 10 - Math.round(t * 10)) < 1e-9)).toBe(true);
  });
});

describe('end to end: fmgpu train, fmgpu report, the page in headless Chromium', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-report-'));
  const data = join(tmp, 'data');
  const run = join(tmp, 'run');
  const page = join(run, 'report.html');
  let html = '';

  beforeAll(() => {
    ensureBuilt();
    writeData(data, 960, 300);
    writeFileSync(
      join(tmp, 'tiny.net'),
      'conv 4 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=3 batch=32 lr=0.01\n',
    );
  }, 60_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('train writes report.html; fmgpu report rewrites it', () => {
    const t = fmgpu(
      'train',
      join(tmp, 'tiny.net'),
      '--data',
      data,
      '--out',
      run,
      '--validation',
      '0.2',
      '--seed',
      '3',
      '--json',
    );
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    expect(existsSync(page)).toBe(true);
    rmSync(page);
    // Without --data: the run's own test set (its --data folder), named.
    const r = fmgpu('report', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`test set: ${data} (300 images, the one ${run} was trained with)\nreport: ${page}\n`);
    html = readFileSync(page, 'utf8');
  }, 90_000);

  it('the page holds the curves, heatmap, class names, image grid and PCA scatter, and nothing remote', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expectSelfContained(html);
    expect(html).toContain('aria-label="Accuracy"');
    expect(html).toContain('aria-label="Loss"');
    expect((html.match(/<polyline class="line"/g) ?? []).length).toBe(4); // train and validation, twice
    expect((html.match(/<rect class="cell"/g) ?? []).length).toBe(100);
    for (const name of CLASS_NAMES) expect(html).toContain(`>${name}<`);
    expect((html.match(/<figure class="sample/g) ?? []).length).toBe(48);
    expect((html.match(/<img src="data:image\/png;base64,/g) ?? []).length).toBe(48);
    expect(html).toContain('aria-label="PCA projection"');
    expect((html.match(/<g class="cls"/g) ?? []).length).toBe(10);
    expect((html.match(/<circle cx="[\d.-]+" cy="[\d.-]+" r="3"\/>/g) ?? []).length).toBe(300);
    expect(html).toMatch(/Total params: 6,810/);
    expect(html).toMatch(/<dt>seed<\/dt><dd>3<\/dd>/);
    expect(html).toMatch(/<dt>adapter<\/dt><dd>[^<]+<\/dd>/);
    // Mistakes come first in the grid.
    const kinds = [...html.matchAll(/<figure class="sample (ok|bad)"/g)].map((m) => m[1]);
    expect(kinds.indexOf('ok') === -1 || kinds.lastIndexOf('bad') < kinds.indexOf('ok')).toBe(true);
  });

  // Another test set: its metrics are evaluated, not the run's metrics.json (once shown beside that set's images).
  it('report --data OTHER scores that test set; --out into a missing folder is refused before the GPU', () => {
    const other = join(tmp, 'other-data');
    writeData(other, 960, 40);
    const file = join(tmp, 'other.html');
    const r = fmgpu('report', run, '--data', other, '--out', file);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const page = readFileSync(file, 'utf8');
    expect(page).toContain('>40 images<');
    expect(page).not.toContain('>300 images<');
    const missing = fmgpu('report', run, '--out', join(tmp, 'no-such-folder', 'r.html'));
    expect(missing.code).toBe(2);
    expect(missing.err).toBe(
      `fmgpu: error: --out ${join(tmp, 'no-such-folder', 'r.html')}: the folder ${join(tmp, 'no-such-folder')} ` +
        'does not exist\n',
    );
    // A page written before is replaced; a file of another kind is kept.
    expect(fmgpu('report', run, '--data', other, '--out', file).code).toBe(0);
    const notes = join(tmp, 'notes.txt');
    writeFileSync(notes, 'my notes\n');
    const kept = fmgpu('report', run, '--out', notes);
    expect([kept.code, readFileSync(notes, 'utf8')]).toEqual([2, 'my notes\n']);
    expect(kept.err).toMatch(/^fmgpu: error: --out .*notes\.txt holds a file that is not an HTML page: /);
  }, 90_000);

  it("Ctrl-C while report makes the page: said, exit 130, the run's lock let go, the page as it was", async () => {
    const before = readFileSync(page);
    // A test set of 20,000 images: the page takes seconds to make, so the signal lands while it is made (on a
    // busy machine a small set's page was done, and its handler gone, before the signal came).
    const big = join(tmp, 'big-test');
    writeIdxDir(big, 64, 20_000);
    const child = spawn('node', ['bin/fmgpu.js', 'report', run, '--data', big], { env });
    let err = '';
    child.stderr.on('data', (d) => void (err += d));
    const lock = join(run, 'fmgpu.lock');
    const end = new Promise<number | null>((done) => child.on('close', done));
    // The lock is taken as the handler is set: a Ctrl-C from then on is the report's.
    while (!existsSync(lock) && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGINT');
    expect(await end).toBe(130);
    expect(err).toContain(`fmgpu: interrupted; ${page} not written`);
    expect(existsSync(lock)).toBe(false);
    expect(readFileSync(page).equals(before)).toBe(true);
  }, 60_000);

  it('report needs a run directory: exit 2', () => {
    const r = fmgpu('report');
    expect(r.code).toBe(2);
    expect(r.err).toBe('fmgpu: error: report needs a run directory: fmgpu report RUN\n');
    expect(fmgpu('report', join(tmp, 'nope')).err).toBe(`fmgpu: error: run directory ${join(tmp, 'nope')} not found\n`);
  });

  it.skipIf(!existsSync(CHROMIUM))(
    'renders in headless Chromium with no requests and no errors (test-artifacts/report.png)',
    async () => {
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless=new',
          '--no-sandbox',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
          '--disable-extensions',
        ],
      });
      try {
        const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const requests: string[] = [],
          problems: string[] = [];
        p.on('request', (r) => requests.push(r.url()));
        p.on('pageerror', (e) => problems.push(e.message));
        p.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
        await p.goto(`file://${page}`);
        await p.waitForLoadState('load');
        const images = await p.$$eval('figure.sample img', (els) =>
          els.map((e) => (e as HTMLImageElement).naturalWidth),
        );
        expect(images).toHaveLength(48);
        expect(images.every((w) => w === 28)).toBe(true);
        // The legend picks out one class: the others fade, and come back once the pointer leaves.
        const opacities = (): Promise<string[]> =>
          p.$$eval('.pca .cls', (els) => els.map((e) => getComputedStyle(e).opacity));
        await p.hover('ul.legend li[data-class="3"]');
        expect(await opacities()).toEqual(CLASS_NAMES.map((_, c) => (c === 3 ? '1' : '0.08')));
        mkdirSync(join(REPO, 'test-artifacts'), { recursive: true });
        await p.mouse.move(0, 0);
        expect(await opacities()).toEqual(CLASS_NAMES.map(() => '1'));
        await p.screenshot({ path: join(REPO, 'test-artifacts', 'report.png'), fullPage: true });
        expect(requests.filter((u) => !u.startsWith('data:') && u !== `file://${page}`)).toEqual([]);
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
