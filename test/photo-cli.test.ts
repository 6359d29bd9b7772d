// Photos through `fmgpu predict`: EXIF orientation read from JPEG (APP1, written here) and PNG
// (eXIf); the explanation line, --save-input and --json; the form a run records; a run trained on
// a Fashion-MNIST subset gives a bordered photo the class of its tight crop; memory stays bounded.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';
import { decodeImage } from '../src/node/image.ts';
import { jpegOrientation, tiffOrientation } from '../src/node/exif.ts';
import { preparePhoto } from '../src/data/photo.ts';
import { loadFashionMnist, DEFAULT_DATA_DIR } from '../src/node/data.ts';
import { pngFile } from '../src/report/png.ts';
import { parseNet } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { encodeSafetensors } from '../src/model/safetensors.ts';
import { encodePng, ensureBuilt } from './helpers/files.ts';
import { boxOf, exifSegment, jpegWithOrientation, render, storeForOrientation, type Scene } from './helpers/photos.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-photo-'));
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (...args: string[]) => {
  const r = spawnSync('node', ['bin/fmgpu.js', ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const file = (name: string, bytes: Uint8Array | string): string => (
  writeFileSync(join(tmp, name), bytes), join(tmp, name)
);
const SCENE: Scene = { w: 300, h: 240, box: { x: 50, y: 20, w: 200, h: 180 } };
const meanDiff = (a: Float32Array, b: Float32Array): number =>
  a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

beforeAll(() => ensureBuilt(), 120_000);

describe('EXIF orientation', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('a JPEG with orientation %i (APP1, both byte orders) is shown upright', (o) => {
    const upright = render(SCENE);
    const reference = preparePhoto(upright, SCENE.w, SCENE.h).pixels;
    for (const little of [true, false]) {
      const stored = storeForOrientation(upright, SCENE.w, SCENE.h, o);
      const img = decodeImage(jpegWithOrientation(stored.data, stored.w, stored.h, o, little), 'x.jpg');
      expect(img).toMatchObject({ width: stored.w, height: stored.h, orientation: o });
      const p = preparePhoto(img.data, img.width, img.height, { orientation: img.orientation });
      expect(meanDiff(p.pixels, reference), `orientation ${o}`).toBeLessThan(0.02);
    }
  });

  it("a PNG's eXIf chunk is read too", () => {
    const png = encodePng(4, 2, new Uint8Array(32).fill(200));
    const exif = exifSegment(6, false).subarray(10); // the TIFF structure alone
    const chunk = new Uint8Array(12 + exif.length);
    const v = new DataView(chunk.buffer);
    v.setUint32(0, exif.length);
    chunk.set(new TextEncoder().encode('eXIf'), 4);
    chunk.set(exif, 8); // the CRC is not checked
    const withExif = new Uint8Array([...png.subarray(0, 33), ...chunk, ...png.subarray(33)]);
    expect(decodeImage(withExif, 'x.png').orientation).toBe(6);
    expect(decodeImage(png, 'x.png').orientation).toBe(1);
  });

  it('malformed or absent EXIF means 1 (as stored)', () => {
    const tiff = exifSegment(6, true).subarray(10);
    expect(tiffOrientation(tiff)).toBe(6);
    expect(tiffOrientation(tiff.subarray(0, 20))).toBe(1); // the entry cut short
    expect(tiffOrientation(Uint8Array.from([0x41, 0x41, ...tiff.subarray(2)]))).toBe(1); // no byte order
    expect(tiffOrientation(exifSegment(9, true).subarray(10))).toBe(1); // out of range
    expect(tiffOrientation(new Uint8Array(0))).toBe(1);
    expect(jpegOrientation(Uint8Array.from([0xff, 0xd8, 0xff, 0xe1, 0x00, 0x01]))).toBe(1); // length < 2
    expect(jpegOrientation(Uint8Array.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 0x45]))).toBe(1); // runs past the end
  });
});

/** A photo of a Fashion-MNIST test image: inverted (dark on white), tinted, scaled ×s, in a white border. */
function productPhoto(img: Uint8Array, s: number, border: number): { rgba: Uint8Array; w: number; h: number } {
  const w = 28 * s + 2 * border;
  const rgba = new Uint8Array(w * w * 4).fill(255);
  for (let y = 0; y < 28 * s; y++)
    for (let x = 0; x < 28 * s; x++) {
      const v = 255 - img[Math.floor(y / s) * 28 + Math.floor(x / s)]!;
      rgba.set([v, Math.round(v * 0.9), Math.round(v * 0.8)], 4 * ((y + border) * w + x + border));
    }
  return { rgba, w, h: w };
}

describe.skipIf(!existsSync(DEFAULT_DATA_DIR))(
  'fmgpu predict on photos (a run trained on a Fashion-MNIST subset)',
  () => {
    const run = join(tmp, 'run');
    const photos: { tight: string; bordered: string; turned: string }[] = [];

    beforeAll(() => {
      const net = file(
        'small.net',
        'conv 8 3x3 relu\npool 2\nconv 16 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=3 batch=64 lr=0.01\n',
      );
      const r = fmgpu('train', net, '--subset', '6000', '--out', run, '--json');
      expect(r.code, r.err).toBe(0);
      const { test } = loadFashionMnist(DEFAULT_DATA_DIR, { subset: 1 });
      for (let i = 0; i < 8; i++) {
        const img = test.images.subarray(i * 784, (i + 1) * 784);
        const t = productPhoto(img, 8, 0);
        const b = productPhoto(img, 8, 120);
        const turned = storeForOrientation(b.rgba, b.w, b.h, 6);
        photos.push({
          tight: file(`tight${i}.png`, encodePng(t.w, t.h, t.rgba)),
          bordered: file(`bordered${i}.png`, encodePng(b.w, b.h, b.rgba)),
          turned: file(`turned${i}.jpg`, jpegWithOrientation(turned.data, turned.w, turned.h, 6)),
        });
      }
    }, 300_000);

    it('records the form of its training images in run.json', () => {
      expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).input).toEqual({ form: 'object', box: 28 });
    });

    it('a bordered photo, and one stored turned (EXIF 6), get the class of the tight crop', () => {
      const r = fmgpu('predict', run, ...photos.flatMap((p) => [p.tight, p.bordered, p.turned]), '--json');
      expect(r.code, r.err).toBe(0);
      const rows = r.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(rows).toHaveLength(3 * photos.length);
      for (let i = 0; i < photos.length; i++) {
        const [tight, bordered, turned] = rows.slice(3 * i, 3 * i + 3);
        expect(bordered.top[0].label, bordered.file).toBe(tight.top[0].label);
        expect(turned.top[0].label, turned.file).toBe(tight.top[0].label);
        expect(bordered.steps).toMatchObject({ background: 'white', inverted: true, orientation: 1 });
        expect(turned.steps.orientation).toBe(6);
      }
    });

    it('--json: file, top [{class, label, probability}], the steps and the explanation', () => {
      const r = fmgpu('predict', run, photos[0]!.bordered, '--json');
      const row = JSON.parse(r.out);
      expect(Object.keys(row)).toEqual(['file', 'top', 'inverted', 'steps', 'explanation']);
      expect(row.file).toBe(photos[0]!.bordered);
      expect(row.top).toHaveLength(3);
      expect(Object.keys(row.top[0])).toEqual(['class', 'label', 'probability']);
      expect(row.steps).toMatchObject({ width: 464, height: 464, colour: 'RGB', form: 'object', background: 'white' });
      expect(row.steps.crop).toHaveLength(4);
      expect(row.explanation).toMatch(/^photo 464×464 RGB, background white → cropped \d+×224 → 28×28, inverted$/);
    });

    it('prints the explanation under the classes; --save-input writes the 28×28 input the network saw', () => {
      const dir = join(tmp, 'inputs');
      const r = fmgpu('predict', run, photos[1]!.bordered, photos[1]!.turned, '--save-input', dir);
      expect(r.code, r.err).toBe(0);
      const lines = r.out.trim().split('\n');
      expect(lines[0]).toMatch(/bordered1\.png: [A-Za-z/ -]+ \d+\.\d%, /);
      expect(lines[1]).toMatch(/^ {2}photo 464×464 RGB, background white → cropped \d+×\d+ → 28×28, inverted$/);
      expect(lines[3]).toMatch(/^ {2}photo 464×464 RGB, EXIF rotated, background white → cropped/);
      expect(readdirSync(dir).sort()).toEqual(['bordered1.png', 'turned1.png']);
      const saved = ['bordered1.png', 'turned1.png'].map((f) => decodeImage(readFileSync(join(dir, f)), f));
      for (const s of saved) {
        expect([s.width, s.height]).toEqual([28, 28]);
        const gray = Float32Array.from({ length: 784 }, (_, i) => s.data[4 * i]! / 255);
        const [x0, y0, x1, y1] = boxOf(gray)!;
        expect(Math.max(x1 - x0, y1 - y0)).toBeGreaterThanOrEqual(26);
        expect(Math.abs(x0 + x1 - 27)).toBeLessThanOrEqual(2);
        expect(gray[0]).toBeLessThan(0.1); // black corner (this pullover's sleeve comes near it)
      }
      // The same photo, stored turned: the same input within JPEG's loss.
      const [a, b] = saved.map((s) => Float32Array.from({ length: 784 }, (_, i) => s.data[4 * i]! / 255));
      expect(meanDiff(a!, b!)).toBeLessThan(0.03);
    });

    it('--save-input into the folder of the photos writes over none of them', () => {
      const before = readFileSync(photos[2]!.tight);
      const r = fmgpu('predict', run, photos[2]!.tight, '--save-input', tmp);
      expect(r.code, r.err).toBe(0);
      expect(readFileSync(photos[2]!.tight)).toEqual(before);
      expect(decodeImage(readFileSync(join(tmp, 'tight2-2.png')), 'tight2-2.png').width).toBe(28);
    });

    it('--save-input into a folder holding a file of that name writes beside it, not over it', () => {
      const dir = join(tmp, 'kept');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'tight3.png'), 'a file of the user');
      const r = fmgpu('predict', run, photos[3]!.tight, '--save-input', dir);
      expect(r.code, r.err).toBe(0);
      expect(readFileSync(join(dir, 'tight3.png'), 'utf8')).toBe('a file of the user');
      expect(decodeImage(readFileSync(join(dir, 'tight3-2.png')), 'tight3-2.png').width).toBe(28);
    });

    it("a folder's hidden files (macOS's ._ files) are not photos", () => {
      const dir = join(tmp, 'with-junk');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'a.png'), readFileSync(photos[4]!.tight));
      writeFileSync(join(dir, '._a.png'), 'AppleDouble');
      const r = fmgpu('predict', run, dir, '--json');
      expect(r.code, r.err).toBe(0);
      expect(
        r.out
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).file),
      ).toEqual([join(dir, 'a.png')]);
    });

    it("a run that scores with tta (its run.json's flags) averages each photo with its mirror image", () => {
      const tta = join(tmp, 'run-tta');
      cpSync(run, tta, { recursive: true });
      const info = JSON.parse(readFileSync(join(tta, 'run.json'), 'utf8'));
      writeFileSync(join(tta, 'run.json'), JSON.stringify({ ...info, flags: { ...info.flags, tta: true } }));
      const probs = (dir: string): number[] =>
        JSON.parse(fmgpu('predict', dir, photos[5]!.bordered, '--json').out).top.map(
          (t: { probability: number }) => t.probability,
        );
      const [plain, averaged] = [probs(run), probs(tta)];
      expect(averaged.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-6);
      expect(averaged).not.toEqual(plain);
    });

    it('--save-input naming a file: exit 2, one line saying so, the file as it was', () => {
      const file = photos[2]!.tight;
      const before = readFileSync(file);
      const r = fmgpu('predict', run, photos[0]!.bordered, '--save-input', file);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`fmgpu: error: --save-input ${file} is a file: give the folder to write the inputs into\n`);
      expect(readFileSync(file)).toEqual(before);
    });

    it('a run recorded as plain resizes the whole picture; a malformed record is refused (exit 2)', () => {
      const plain = join(tmp, 'plain-run');
      mkdirSync(plain);
      for (const f of ['model.net', 'weights.safetensors']) writeFileSync(join(plain, f), readFileSync(join(run, f)));
      writeFileSync(join(plain, 'run.json'), JSON.stringify({ version: '0.1.0', input: { form: 'plain' } }));
      const r = fmgpu('predict', plain, photos[0]!.bordered);
      expect(r.out).toContain('  photo 464×464 RGB → whole picture → 28×28, inverted');
      writeFileSync(join(plain, 'run.json'), JSON.stringify({ version: '0.1.0', input: { form: 'object', box: 99 } }));
      const bad = fmgpu('predict', plain, photos[0]!.bordered);
      expect(bad.code).toBe(2);
      expect(bad.err.trim()).toBe(
        `fmgpu: error: ${join(plain, 'run.json')}: "input" must be {"form": "object", "box": 1 to 28} or ` +
          '{"form": "plain"}, not {"form":"object","box":99}',
      );
    });
  },
);

describe('memory: the largest photo fmgpu decodes stays within the bound', () => {
  it('a 6144×4096 16-bit RGBA PNG (the worst per pixel) through predict, under 700 MB', () => {
    const RUN = join(tmp, 'mem-run');
    mkdirSync(RUN, { recursive: true });
    writeFileSync(join(RUN, 'model.net'), 'dense 10 softmax\n');
    const [w, h] = [6144, 4096];
    const raw = new Uint8Array(h * (1 + w * 8)); // all zero: filter 0, transparent black
    const png = file('huge.png', pngFile(w, h, 16, 6, new Uint8Array(deflateSync(raw))));
    const preload = file(
      'peak.cjs',
      'const peak = () => String(process.resourceUsage().maxRSS);\n' +
        "process.on('exit', () => require('node:fs').writeFileSync(process.env.PEAK_FILE, peak()));\n",
    );
    const peakFile = join(tmp, 'peak');
    const params = buildGraph(parseNet('dense 10 softmax\n', 'm.net'), 1).params;
    const zeros = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    writeFileSync(
      join(RUN, 'weights.safetensors'),
      encodeSafetensors(new Map(params.map((q) => [q.name, zeros(q.shape)]))),
    );
    // The photo is prepared before the GPU is opened: an adapter that does not exist stops it there.
    const r = spawnSync(
      process.execPath,
      ['--require', preload, resolve('bin/fmgpu.js'), 'predict', RUN, png, '--adapter', 'none'],
      {
        encoding: 'utf8',
        env: { ...env, PEAK_FILE: peakFile },
        timeout: 120_000,
      },
    );
    expect(r.stderr).toContain('adapter');
    expect(r.status).toBe(2);
    const peak = Number(readFileSync(peakFile, 'utf8')) * 1024;
    expect(peak / 1e6).toBeLessThan(700);
  }, 150_000);
});
