// End to end in real headless Chromium (SwiftShader is its WebGPU adapter here): serve the page,
// compile a tiny model, train one epoch on a few hundred images, check the loss falls and the
// predictions render, classify an uploaded PNG, and keep a screenshot in test-artifacts/web.png.
// The data comes as `fmgpu serve` reads and serves it (/dataset/); CIFAR-10 comes from the data
// folder's files instead (the page copied to a static host, no /dataset/), and a 16×16 grey set of
// three classes shows the model, the class lists and the pad following the data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync, deflateSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { startServer, type RunningServer } from '../src/node/server.ts';
import { DEFAULT_DATA_DIR } from '../src/node/data.ts';
import type { BrowserContext } from 'playwright-core';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.ts';
import { channelStats, decodeCifar } from '../src/data/cifar.ts';
import { datasetFiles, readServedData } from '../src/cli/serve-data.ts';
import { cifarRecords, classTree, FOLDER_COLOURS, idxDir } from './helpers/datasets.ts';
import { fmgpu } from './helpers/cli.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const REPO = resolve(import.meta.dirname, '..');
const N_TRAIN = 512;
const N_TEST = 200;

// SwiftShader answers navigator.gpu.requestAdapter() with these; the rest keep the run offline.
const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-angle=swiftshader',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-default-apps',
  '--disable-extensions',
];

const TINY = 'conv 4 3x3 relu\npool 2\ndense 10 softmax\n';

/** The README's embedding example, as a page would write it. */
const EMBED_EXAMPLE = `(async () => {
  const { openGpu, adapterName, parseNet, Trainer, fitOptions, loadFashionMnist, imagesOf, CLASS_NAMES } =
    await import('/fmgpu.js');
  const gpu = await openGpu(navigator.gpu);
  const ir = parseNet('conv 4 3x3 relu\\npool 2\\ndense 10 softmax\\ntrain epochs=1 batch=32 lr=0.01');
  const { train, test } = await loadFashionMnist('data/');
  const trainer = new Trainer(gpu, ir, ir.train.seed);
  const losses = [];
  const onProgress = (p) => losses.push(p.loss);
  await trainer.fit(train, null, fitOptions(ir, { progressEvery: 1, stepsPerSubmit: 1, onProgress }));
  const { accuracy, n } = await trainer.evaluate(test);
  const probs = await trainer.predict(imagesOf(test, [0]), 1);
  const best = probs.indexOf(Math.max(...probs));
  return { adapter: adapterName(gpu.adapter), losses, accuracy, n, label: CLASS_NAMES[best] };
})()`;

/** idx files: the first images of the real set when installed, else drawn classes (a bar per class). */
function dataset(dir: string): void {
  const real = (name: string): Buffer | null => {
    const f = join(DEFAULT_DATA_DIR, `${name}.gz`);
    return existsSync(f) ? gunzipSync(readFileSync(f)) : null;
  };
  const write = (name: string, n: number, images: Buffer | null, labels: Buffer | null): void => {
    const img = Buffer.alloc(16 + n * 784);
    img.writeUInt32BE(2051, 0);
    img.writeUInt32BE(n, 4);
    img.writeUInt32BE(28, 8);
    img.writeUInt32BE(28, 12);
    const lab = Buffer.alloc(8 + n);
    lab.writeUInt32BE(2049, 0);
    lab.writeUInt32BE(n, 4);
    if (images && labels) {
      images.copy(img, 16, 16, 16 + n * 784);
      labels.copy(lab, 8, 8, 8 + n);
    } else {
      for (let i = 0; i < n; i++) {
        const c = i % 10;
        lab[8 + i] = c;
        for (let y = 4; y < 24; y++)
          for (let x = 2 + c * 2; x < 6 + c * 2; x++) img[16 + i * 784 + y * 28 + x] = 200 + ((i * 7 + x) % 55);
      }
    }
    writeFileSync(join(dir, `${name}-images-idx3-ubyte.gz`), gzipSync(img));
    writeFileSync(join(dir, `${name}-labels-idx1-ubyte.gz`), gzipSync(lab));
  };
  write('train', N_TRAIN, real('train-images-idx3-ubyte'), real('train-labels-idx1-ubyte'));
  write('t10k', N_TEST, real('t10k-images-idx3-ubyte'), real('t10k-labels-idx1-ubyte'));
}

/** A grayscale PNG: a dark trouser-like shape on a light background, 40×60 (not square). */
function png(): Buffer {
  const w = 40,
    h = 60;
  const raw = Buffer.alloc(h * (w + 1), 0);
  for (let y = 0; y < h; y++) {
    raw[y * (w + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const leg = y > 6 && y < 56 && ((x > 8 && x < 19) || (x > 21 && x < 32));
      const waist = y > 6 && y < 16 && x > 8 && x < 32;
      raw[y * (w + 1) + 1 + x] = leg || waist ? 30 : 235;
    }
  }
  return encodePng(w, h, 0, raw);
}

/** An RGB PNG, 40×30, of one colour everywhere. */
function rgbPng(rgb: [number, number, number]): Buffer {
  const w = 40,
    h = 30;
  const raw = Buffer.alloc(h * (3 * w + 1), 0);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(rgb, y * (3 * w + 1) + 1 + 3 * x);
  return encodePng(w, h, 2, raw);
}

/** PNG bytes from filtered scanlines (filter byte 0 each): colour type 0 grey, 2 RGB, 8 bits. */
function encodePng(w: number, h: number, colourType: 0 | 2, raw: Buffer): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = colourType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// CIFAR-10 has ten classes; the images here are of the first three, each bright in the plane it is
// named for (cifarRecords).
const COLOURS = ['red', 'green', 'blue', 'cyan', 'magenta', 'yellow', 'white', 'black', 'grey', 'brown'];
const COLOUR_NET = 'input 32x32x3\nconv 4 3x3 relu\npool 2\ndense 10 softmax\n';

function cifarDir(dir: string): void {
  mkdirSync(dir);
  writeFileSync(join(dir, 'data_batch_1.bin'), cifarRecords(128, 1, 3, 1));
  writeFileSync(join(dir, 'data_batch_2.bin'), cifarRecords(64, 1, 3, 2));
  writeFileSync(join(dir, 'test_batch.bin'), cifarRecords(48, 1, 3, 3));
  writeFileSync(join(dir, 'batches.meta.txt'), `${COLOURS.join('\n')}\n\n`);
}

const BANDS = ['low', 'mid', 'high'];
const FOLDERS = Object.keys(FOLDER_COLOURS).sort();

/** A vertical stroke down the pad (x 100, y 40 to 240 on screen); waits for its prediction. Returns the pad's box. */
async function stroke(page: import('playwright-core').Page): Promise<{ width: number; height: number }> {
  const box = (await page.locator('#pad').boundingBox())!;
  await page.mouse.move(box.x + 100, box.y + 40);
  await page.mouse.down();
  for (let i = 1; i <= 8; i++) await page.mouse.move(box.x + 100, box.y + 40 + i * 25);
  await page.mouse.up();
  await page.waitForFunction(() => (window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs !== null, null, {
    timeout: 20_000,
  });
  return box;
}

/**
 * `fmgpu serve --data DIR` as the CLI starts it: DIR read once through train's loaders and served under
 * /dataset/; with `files`, DIR's own files under /data/ too.
 */
function serveData(dataDir: string, root: string, files = false) {
  const served = readServedData({ dataDir, dataGiven: true, csv: null, testCsv: null, input: null });
  return startServer({ root, ...(files ? { dataDir } : {}), dataset: datasetFiles(served), port: 0 });
}

/** The model the page writes for the data: its input line and one output per class. */
async function expectDefaultModel(page: import('playwright-core').Page, input: string, classes: number) {
  const source = await page.inputValue('#source');
  expect(source).toContain(`\ninput ${input}\n`);
  expect(source).toContain(`\ndense ${classes} softmax\n`);
}

/** The page at `url` once it says Ready, with its page errors collected and its state readable. */
async function readyPage(context: import('playwright-core').BrowserContext, url: string) {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const state = (): Promise<PageState> =>
    page.evaluate(() => (window as unknown as { fmgpuPage: PageState }).fmgpuPage);
  await page.goto(url);
  await page.waitForFunction(() => /^Ready/.test(document.getElementById('status')!.textContent ?? ''), null, {
    timeout: 30_000,
  });
  return { page, problems, state };
}

/** Waits until the run the page started has trained and been evaluated, or has failed. */
async function trainedAndEvaluated(page: import('playwright-core').Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const p = (window as unknown as { fmgpuPage: PageState }).fmgpuPage;
      return (p.evaluation !== null && p.state === 'idle') || p.error !== '';
    },
    null,
    { timeout: 100_000, polling: 250 },
  );
}

interface PageState {
  state: string;
  adapter: string;
  progress: { loss: number; accuracy: number; step: number; steps: number }[];
  epochs: { loss: number; accuracy: number; val_loss?: number }[];
  evaluation: { n: number; accuracy: number; confusion: Record<string, number> } | null;
  lastInput: Record<string, number> | null;
  lastProbs: Record<string, number> | null;
  error: string;
}

describe.skipIf(!HAVE_CHROMIUM)(
  'the page in headless Chromium (WebGPU on SwiftShader; ' +
    'skipped where /usr/bin/chromium is not installed: apt-get install chromium)',
  () => {
    let dir: string;
    let srv: RunningServer;
    let context: BrowserContext;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fmgpu-web-'));
      const site = join(dir, 'site');
      mkdirSync(join(site, 'dist', 'web'), { recursive: true });
      mkdirSync(join(dir, 'data'));
      symlinkSync(join(REPO, 'web'), join(site, 'web'));
      // The same bundling as build.mjs, into this test's own folder (the test needs no prior build).
      await esbuild.build({
        bundle: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        loader: { '.wgsl': 'text' },
        logLevel: 'warning',
        entryPoints: { fmgpu: join(REPO, 'src/web.ts'), app: join(REPO, 'web/app.ts') },
        outdir: join(site, 'dist', 'web'),
      });
      dataset(join(dir, 'data'));
      // As `fmgpu serve --data DIR` serves it: the files under /data/ (the library example reads
      // those), and the dataset as the CLI read it under /dataset/ (the page reads that).
      srv = await serveData(join(dir, 'data'), site, true);
      const { chromium } = await import('playwright-core');
      context = await chromium.launchPersistentContext(join(dir, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: ARGS,
        viewport: { width: 1280, height: 900 },
      });
    });

    afterAll(async () => {
      await context?.close();
      await srv?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('compiles, trains (loss falls), predicts, classifies an upload, stays on its origin', async () => {
      const page = await context.newPage();
      const requests: string[] = [];
      const problems: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      const state = (): Promise<PageState> =>
        page.evaluate(() => (window as unknown as { fmgpuPage: PageState }).fmgpuPage);

      await page.goto(srv.url);
      await page.waitForFunction(() => /^Ready/.test(document.getElementById('status')!.textContent ?? ''), null, {
        timeout: 30_000,
      });
      expect((await state()).adapter).toMatch(/swiftshader/i);
      expect(await page.textContent('#adapter')).toMatch(/swiftshader/i);

      // A language error shows inline with line and column, and disables Train.
      await page.fill('#source', 'conv 4 3x3 relu\ncnv 8 3x3\ndense 10 softmax\n');
      await page.waitForSelector('#errors:not([hidden])');
      expect(await page.textContent('#errors')).toContain(
        'model.net:2:1: error: unknown layer "cnv" (did you mean "conv"?)',
      );
      expect(await page.textContent('#gutter .err')).toBe('2');
      expect(await page.isDisabled('#train')).toBe(true);

      // The form shows the file's train line, not defaults of its own: the page's model first.
      const form = (): Promise<string[]> =>
        Promise.all(['#epochs', '#batch', '#lr', '#validation'].map((f) => page.inputValue(f)));
      await page.fill('#source', `${TINY}train epochs=5 batch=64 lr=0.002 validation=0.2\n`);
      await page.waitForSelector('#errors', { state: 'hidden' });
      await page.waitForFunction(() => (document.getElementById('epochs') as HTMLInputElement).value === '5');
      expect(await form()).toEqual(['5', '64', '0.002', '0.2']);
      // A value typed in the form stays until the file changes that setting.
      await page.fill('#batch', '16');
      await page.fill('#source', `${TINY}train epochs=7 batch=64 lr=0.002 validation=0.2\n`);
      await page.waitForFunction(() => (document.getElementById('epochs') as HTMLInputElement).value === '7');
      expect(await form()).toEqual(['7', '16', '0.002', '0.2']);
      // Without a train line: the language's defaults (Keras's), as the run would use them.
      await page.fill('#source', TINY);
      await page.waitForFunction(() => (document.getElementById('epochs') as HTMLInputElement).value === '10');
      expect(await form()).toEqual(['10', '32', '0.001', '0']);

      // The tiny model: live summary, then one epoch on the small set.
      await page.waitForSelector('#errors', { state: 'hidden' });
      expect(await page.textContent('#summary')).toContain('Total params: 6,810');
      await page.fill('#subset', String(N_TRAIN));
      await page.fill('#epochs', '1');
      await page.fill('#batch', '32');
      await page.fill('#lr', '0.01');
      await page.fill('#validation', '0.125');
      // Pause at the first report, then resume: the run finishes the epoch from there. The page
      // presses Pause itself, between two steps: a click sent from here could land after the last.
      const pressed = page.evaluate(
        () =>
          new Promise<void>((done) => {
            const page = (window as unknown as { fmgpuPage: PageState }).fmgpuPage;
            const poll = (): void => {
              if (page.progress.length === 0) return void setTimeout(poll, 0);
              (document.getElementById('pause') as HTMLButtonElement).click();
              done();
            };
            poll();
          }),
      );
      await page.click('#train');
      await pressed;
      await page.waitForFunction(
        () => {
          const p = (window as unknown as { fmgpuPage: PageState }).fmgpuPage;
          return p.state === 'paused' || p.error !== '';
        },
        null,
        { timeout: 30_000, polling: 100 },
      );
      expect((await state()).state).toBe('paused');
      expect(await page.textContent('#train')).toBe('Resume');
      expect(await page.isEnabled('#stop')).toBe(true);
      await page.click('#train');
      await trainedAndEvaluated(page);
      const s = await state();
      expect(s.error).toBe('');
      expect(s.progress.length).toBeGreaterThanOrEqual(3);
      const first = s.progress[0]!,
        last = s.progress.at(-1)!;
      expect(last.step).toBe(last.steps);
      expect(last.loss).toBeLessThan(first.loss);
      expect(s.epochs).toHaveLength(1);
      expect(s.epochs[0]!.loss).toBeLessThan(Math.log(10));
      expect(s.epochs[0]!.val_loss).toBeLessThan(Math.log(10));
      expect(s.evaluation!.n).toBe(N_TEST);
      expect(Object.values(s.evaluation!.confusion).reduce((a, b) => a + b, 0)).toBe(N_TEST);

      // Predictions render: a label and three probability bars per test image.
      const cards = await page.$$eval('#grid .sample', (els) =>
        els.map((e) => ({
          label: e.querySelector('.label')?.textContent ?? '',
          bars: e.querySelectorAll('.bar').length,
        })),
      );
      expect(cards.length).toBe(12);
      for (const c of cards) {
        expect(c.label).not.toBe('?');
        expect(c.bars).toBe(3);
      }
      expect(await page.textContent('#test-acc')).toMatch(/test accuracy \d/);
      // The confusion heatmap is the report's SVG: a cell per (true, predicted) pair, counts that add up.
      expect(await page.$$eval('#confusion svg.heatmap rect.cell', (els) => els.length)).toBe(100);
      const counts = await page.$$eval('#confusion svg.heatmap text.count', (els) => els.map((e) => e.textContent));
      expect(counts.reduce((a, c) => a + Number(c), 0)).toBe(N_TEST);

      // An uploaded photo: light background inverted, fitted to 28×28, classified.
      await page.evaluate(() => ((window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs = null));
      await page.setInputFiles('#photo', { name: 'trousers.png', mimeType: 'image/png', buffer: png() });
      await page.waitForFunction(
        () => (window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs !== null,
        null,
        { timeout: 20_000 },
      );
      const after = await state();
      const probs = Object.values(after.lastProbs!);
      expect(probs).toHaveLength(10);
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      const input = Object.values(after.lastInput!);
      expect(input[0]).toBeLessThan(0.05); // a corner: padding, black
      expect(input[14 * 28 + 10]).toBeGreaterThan(0.7); // a leg: dark in the photo, light after inversion
      // The preview says what was done, as `fmgpu predict` does: the trousers cropped, their height 28.
      expect(await page.getAttribute('#preview', 'title')).toBe(
        'photo 40×60 grey, background white → cropped 23×49 → 28×28, inverted',
      );
      expect(await page.$$eval('#bars .bar', (els) => els.length)).toBe(10);

      // Drawing on the pad classifies as it goes.
      await page.click('#clear');
      await page.evaluate(() => ((window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs = null));
      const box = (await page.locator('#pad').boundingBox())!;
      await page.mouse.move(box.x + 100, box.y + 40);
      await page.mouse.down();
      for (let i = 1; i <= 8; i++) await page.mouse.move(box.x + 100, box.y + 40 + i * 25);
      await page.mouse.up();
      await page.waitForFunction(
        () => (window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs !== null,
        null,
        { timeout: 20_000 },
      );
      const drawn = Object.values((await state()).lastInput!);
      expect(Math.max(...drawn)).toBeGreaterThan(0.5);
      expect(drawn[0]).toBe(0);

      // Download weights: safetensors with the model's tensors and its source.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const saved = readFileSync((await download.path())!);
      const { tensors, metadata } = decodeSafetensors(new Uint8Array(saved));
      expect([...tensors.keys()].sort()).toEqual(['conv1.bias', 'conv1.weight', 'dense1.bias', 'dense1.weight']);
      expect(tensors.get('conv1.weight')!.shape).toEqual([4, 1, 3, 3]);
      expect(metadata['fmgpu.source']).toBe(TINY);
      mkdirSync(join(dir, 'run'));
      writeFileSync(join(dir, 'run', 'weights.safetensors'), saved);
      writeFileSync(join(dir, 'run', 'model.net'), TINY);

      mkdirSync(join(REPO, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: join(REPO, 'test-artifacts', 'web.png'), fullPage: true });

      const origin = new URL(srv.url).origin;
      const foreign = requests.filter(
        (u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:'),
      );
      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
      await page.close();
    }, 150_000);

    it('the library bundle (fmgpu.js) runs the README embedding example', async () => {
      const page = await context.newPage();
      // Any document of the origin will do; not the page itself, whose app would open a device too.
      await page.goto(`${srv.url}style.css`);
      // A string, so the test runner leaves its import() alone: the browser resolves it.
      const r = (await page.evaluate(EMBED_EXAMPLE)) as {
        adapter: string;
        losses: number[];
        accuracy: number;
        n: number;
        label: string;
      };
      expect(r.adapter).toMatch(/swiftshader/i);
      expect(r.losses).toHaveLength(N_TRAIN / 32);
      expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]!);
      expect(r.n).toBe(N_TEST);
      expect(r.accuracy).toBeGreaterThan(0.2);
      expect(typeof r.label).toBe('string');
      await page.close();
    }, 90_000);

    it('opens a served run (fmgpu serve --run) with its model and weights', async () => {
      const run = await startServer({
        root: join(dir, 'site'),
        dataDir: join(dir, 'data'),
        runDir: join(dir, 'run'),
        port: 0,
      });
      try {
        const page = await context.newPage();
        await page.goto(run.url);
        await page.waitForFunction(() => /^Ready/.test(document.getElementById('status')!.textContent ?? ''), null, {
          timeout: 30_000,
        });
        const s = await page.evaluate(
          () => (window as unknown as { fmgpuPage: PageState & { loaded: string } }).fmgpuPage,
        );
        expect(s.loaded).toBe('run/weights.safetensors');
        expect(await page.inputValue('#source')).toBe(TINY);
        await page.waitForFunction(() => document.querySelectorAll('#grid .sample .bar').length === 36, null, {
          timeout: 30_000,
        });
        expect(await page.isEnabled('#evaluate')).toBe(true);
        await page.close();
      } finally {
        await run.close();
      }
    }, 60_000);

    it('loads a served CIFAR-10 folder, trains a colour network, classifies a colour photo', async () => {
      const cifar = join(dir, 'cifar');
      cifarDir(cifar);
      const run = await startServer({ root: join(dir, 'site'), dataDir: cifar, port: 0 });
      try {
        const { page, problems, state } = await readyPage(context, run.url);
        expect(await page.textContent('#status')).toMatch(/^Ready: CIFAR-10, 192 training and 48 test images/);
        // The samples are the test set's, named by batches.meta.txt.
        const truths = await page.$$eval('#grid .sample .truth', (els) => els.map((e) => e.textContent));
        expect(truths.length).toBe(12);
        for (const t of truths) expect(COLOURS.map((c) => `true: ${c}`)).toContain(t);

        // The form follows the model's train line once the editor has checked it.
        await page.fill('#source', `${COLOUR_NET}train epochs=1 batch=16 lr=0.01 validation=0\n`);
        await page.waitForFunction(() => (document.getElementById('batch') as HTMLInputElement).value === '16');
        await page.fill('#subset', '192');
        await page.click('#train');
        await trainedAndEvaluated(page);
        const s = await state();
        expect(s.error).toBe('');
        expect(s.epochs).toHaveLength(1);
        expect(s.evaluation!.n).toBe(48);
        expect(await page.$$eval('#confusion svg.heatmap rect.cell', (els) => els.length)).toBe(100);
        const labels = await page.$$eval('#grid .sample .label', (els) => els.map((e) => e.textContent));
        for (const l of labels) expect(COLOURS).toContain(l);

        // A red photo: resized whole to 32×32 RGB, normalised with the training set's channel stats.
        const redPhoto = async (): Promise<PageState> => {
          await page.evaluate(() => ((window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs = null));
          const buffer = rgbPng([230, 20, 20]);
          await page.setInputFiles('#photo', { name: 'red.png', mimeType: 'image/png', buffer });
          await page.waitForFunction(
            () => (window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs !== null,
            null,
            { timeout: 20_000 },
          );
          return state();
        };
        const after = await redPhoto();
        expect(await page.getAttribute('#preview', 'title')).toBe('photo 40×30 RGB → 32×32 RGB');
        const input = Object.values(after.lastInput!);
        expect(input).toHaveLength(3 * 32 * 32);
        const train = decodeCifar(
          new Uint8Array(Buffer.concat([cifarRecords(128, 1, 3, 1), cifarRecords(64, 1, 3, 2)])),
          'cifar10',
          'train',
        );
        const { mean, std } = channelStats(train);
        [230, 20, 20].forEach((v, c) => expect(input[c * 1024 + 500]).toBeCloseTo((v / 255 - mean[c]!) / std[c]!, 4));
        const probs = Object.values(after.lastProbs!);
        expect(probs).toHaveLength(10);
        expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
        expect(probs.indexOf(Math.max(...probs))).toBe(0); // red
        expect(await page.textContent('#bars .bar.top')).toContain('red');

        // A drawing in colour: the pad has a pen colour for this model; a red stroke on black, resized
        // whole to 32×32 RGB and normalised as the photo was, is classified.
        await page.click('#clear');
        await page.waitForSelector('#pen-label:not([hidden])');
        await page.fill('#pen', '#ff0000');
        await page.evaluate(() => ((window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs = null));
        const box = await stroke(page);
        const drawn = await state();
        expect(await page.getAttribute('#preview', 'title')).toBe('drawing 280×280 RGB → 32×32 RGB');
        expect(await page.textContent('#preview-size')).toBe('32×32 RGB');
        const pixels = Object.values(drawn.lastInput!);
        expect(pixels).toHaveLength(3 * 32 * 32);
        const on = 16 * 32 + Math.floor((100 * 32) / box.width); // on the stroke, in the 32×32 input
        const norm = (c: number, v: number): number => (v / 255 - mean[c]!) / std[c]!;
        expect(pixels[on]).toBeCloseTo(norm(0, 255), 1);
        expect(pixels[1024 + on]).toBeCloseTo(norm(1, 0), 1);
        expect(pixels[0]).toBeCloseTo(norm(0, 0), 4); // a corner: the pad's black
        expect(Object.values(drawn.lastProbs!)).toHaveLength(10);
        // The weights downloaded carry the classes and the normalisation they were trained with; weights whose
        // metadata says another normalisation and other classes are read with that one, and the page says so.
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
        const saved = decodeSafetensors(new Uint8Array(readFileSync((await download.path())!)));
        expect(JSON.parse(saved.metadata['fmgpu.classes']!)).toEqual(COLOURS);
        expect(JSON.parse(saved.metadata['fmgpu.normalize']!)).toEqual({ mean: [...mean], std: [...std] });
        const other = {
          ...saved.metadata,
          'fmgpu.classes': JSON.stringify(COLOURS.map((c) => `not ${c}`)),
          'fmgpu.normalize': JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }),
        };
        const buffer = Buffer.from(encodeSafetensors(saved.tensors, other));
        await page.setInputFiles('#weights', {
          name: 'other.safetensors',
          mimeType: 'application/octet-stream',
          buffer,
        });
        await page.waitForFunction(() =>
          /^Loaded other\.safetensors/.test(document.getElementById('status')!.textContent!),
        );
        expect(await page.textContent('#status')).toBe(
          'Loaded other.safetensors and its model. They were trained on the classes not red, not green, not blue, … ' +
            "(10); the data's are red, green, blue, … (10), as the page shows.",
        );
        const reread = Object.values((await redPhoto()).lastInput!);
        [230, 20, 20].forEach((v, c) => expect(reread[c * 1024 + 500]).toBeCloseTo((v / 255 - 0.5) / 0.25, 4));
        expect(problems).toEqual([]);
        await page.close();
      } finally {
        await run.close();
      }
    }, 150_000);

    it('opens a served run of 16x16 data whose model has no input line: read as trained, on that data', async () => {
      const data = idxDir(join(dir, 'bands-run-data'), { side: 16, names: BANDS, train: 96, test: 24 });
      const runDir = join(dir, 'bands-run');
      const net = join(dir, 'bands.net');
      writeFileSync(net, 'conv 4 3x3 relu\npool 2\ndense 3 softmax\ntrain epochs=1 batch=16\n');
      const trained = fmgpu('train', net, '--data', data, '--out', runDir);
      expect(trained.code, trained.err).toBe(0);
      const served = readServedData({ dataDir: data, dataGiven: true, csv: null, testCsv: null, input: null });
      const run = await startServer({ root: join(dir, 'site'), dataset: datasetFiles(served), runDir, port: 0 });
      try {
        const { page, problems, state } = await readyPage(context, run.url);
        expect(await page.textContent('#status')).toMatch(/^Ready: bands-run-data, 96 training and 24 test images/);
        const s = (await state()) as PageState & { loaded: string };
        expect(s.error).toBe('');
        expect(s.loaded).toBe('run/weights.safetensors');
        expect(await page.inputValue('#source')).toBe(readFileSync(join(runDir, 'model.net'), 'utf8'));
        expect(await page.isEnabled('#evaluate')).toBe(true);
        expect(problems).toEqual([]);
        await page.close();
      } finally {
        await run.close();
      }
    }, 90_000);

    it('a 16x16 grey set of three classes from fmgpu serve: the model, classes and pad follow it', async () => {
      const data = idxDir(join(dir, 'bands'), { side: 16, names: BANDS, train: 192, test: 48 });
      const run = await serveData(data, join(dir, 'site'));
      try {
        const { page, problems, state } = await readyPage(context, run.url);
        expect(await page.textContent('#status')).toBe(
          'Ready: bands, 192 training and 48 test images (16×16×1, 3 classes). Press Train.',
        );
        // The default model fits the data: its input line and one output per class.
        await expectDefaultModel(page, '16x16x1', 3);
        expect(await page.isHidden('#errors')).toBe(true);
        expect(await page.textContent('#summary')).toContain('(None, 3)');
        const truths = await page.$$eval('#grid .sample .truth', (els) => els.map((e) => e.textContent));
        expect(truths).toHaveLength(12);
        for (const t of truths) expect(BANDS.map((b) => `true: ${b}`)).toContain(t);

        await page.fill('#subset', '192');
        await page.fill('#epochs', '1');
        await page.fill('#batch', '32');
        await page.click('#train');
        await trainedAndEvaluated(page);
        const s = await state();
        expect(s.error).toBe('');
        expect(s.epochs).toHaveLength(1);
        expect(s.evaluation!.n).toBe(48);
        expect(await page.$$eval('#confusion svg.heatmap rect.cell', (els) => els.length)).toBe(9);
        expect(await page.textContent('#confusion')).toContain('high');
        const labels = await page.$$eval('#grid .sample .label', (els) => els.map((e) => e.textContent));
        for (const l of labels) expect(BANDS).toContain(l);

        // The empty pad is not classified (a blank picture got bars): it says what to do.
        await page.waitForFunction(
          () => document.getElementById('bars')!.textContent === 'Draw or upload: the classes appear here.',
        );
        expect(await page.$$eval('#bars .bar', (els) => els.length)).toBe(0);
        // A drawing comes out at the model's 16×16, grey, and is classified among the three.
        expect(await page.isHidden('#pen-label')).toBe(true);
        await page.click('#clear');
        await page.evaluate(() => ((window as unknown as { fmgpuPage: PageState }).fmgpuPage.lastProbs = null));
        await stroke(page);
        const drawn = await state();
        const input = Object.values(drawn.lastInput!);
        expect(input).toHaveLength(16 * 16);
        expect(Math.max(...input)).toBeGreaterThan(0.5);
        expect(input[0]).toBe(0);
        expect(Object.values(drawn.lastProbs!)).toHaveLength(3);
        expect(await page.getAttribute('#preview', 'title')).toBe('drawing 280×280 grey → 16×16 grey');
        expect(await page.$$eval('#bars .bar', (els) => els.length)).toBe(3);

        // A model of another class count is refused in the editor, naming both counts.
        await page.fill('#source', TINY);
        await page.waitForSelector('#errors:not([hidden])');
        expect(await page.textContent('#errors')).toContain(
          'model.net:3:1: error: the network ends in 10 outputs but the data has 3 classes',
        );
        expect(problems).toEqual([]);
        await page.close();
      } finally {
        await run.close();
      }
    }, 150_000);

    it('one tree of class folders (PNG, JPEG, mixed sizes): resized, held out, validated as train does', async () => {
      const tree = classTree(join(dir, 'tree'), 20);
      const run = await serveData(tree, join(dir, 'site'));
      try {
        const { page, problems, state } = await readyPage(context, run.url);
        // 20 images a class, a seeded 20% of each class held out as the test set; resized to 32×32×3.
        expect(await page.textContent('#status')).toBe(
          'Ready: tree, 48 training and 12 test images (32×32×3, 3 classes). Press Train.',
        );
        await expectDefaultModel(page, '32x32x3', 3);
        const truths = await page.$$eval('#grid .sample .truth', (els) => els.map((e) => e.textContent));
        for (const t of truths) expect(FOLDERS.map((c) => `true: ${c}`)).toContain(t);

        await page.fill('#epochs', '1');
        await page.fill('#batch', '16');
        await page.fill('#validation', '0.1');
        await page.click('#train');
        // The tree's test set was held out of its images: it validates, as fmgpu train's does.
        await page.waitForFunction(() =>
          /validating on 12: the test set/.test(document.getElementById('status')!.textContent ?? ''),
        );
        await trainedAndEvaluated(page);
        const s = await state();
        expect(s.error).toBe('');
        expect(s.epochs).toHaveLength(1);
        expect(s.epochs[0]!.val_loss).toBeGreaterThan(0);
        expect(s.evaluation!.n).toBe(12);
        expect(await page.$$eval('#confusion svg.heatmap rect.cell', (els) => els.length)).toBe(9);
        const labels = await page.$$eval('#grid .sample .label', (els) => els.map((e) => e.textContent));
        for (const l of labels) expect(FOLDERS).toContain(l);
        expect(problems).toEqual([]);
        await page.close();
      } finally {
        await run.close();
      }
    }, 150_000);

    it('says clearly when the browser has no WebGPU, and still checks models', async () => {
      const page = await context.newPage();
      await page.addInitScript(() =>
        Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }),
      );
      await page.goto(srv.url);
      await page.waitForSelector('#nogpu:not([hidden])');
      const text = await page.textContent('#nogpu');
      expect(text).toContain('This browser has no WebGPU');
      expect(text).toContain('chrome://flags/#enable-unsafe-webgpu');
      expect(await page.textContent('#adapter')).toBe('no WebGPU');
      expect(await page.isDisabled('#train')).toBe(true);
      expect(await page.textContent('#summary')).toContain('Total params:');
      await page.close();
    }, 30_000);
  },
);
