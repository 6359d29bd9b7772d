// Photos brought to Fashion-MNIST's form (src/data/photo.ts, the page's and `fmgpu predict`'s
// steps): borders, gradients, dark and transparent backgrounds, EXIF orientations 1–8, tiny and
// huge pictures; the explanation line; the form a training set is recorded with.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { describePhoto, inputForm, preparePhoto } from '../src/data/photo.ts';
import { fitBackground } from '../src/data/background.ts';
import { preprocessImage } from '../src/data/image.ts';
import { loadFashionMnist, DEFAULT_DATA_DIR } from '../src/node/data.ts';
import { syntheticImages } from './helpers/files.ts';
import {
  boxOf,
  clear,
  dark,
  greyGradient,
  overlap,
  render,
  storeForOrientation,
  tight,
  type Scene,
} from './helpers/photos.ts';

/** A 420×340 photo of a T-shirt in a 310×280 box, a white border round it. */
const BORDERED: Scene = { w: 420, h: 340, box: { x: 60, y: 25, w: 310, h: 280 } };

const maxDiff = (a: Float32Array, b: Float32Array): number =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** The garment fills the 28×28 box on its longer side and is centred on the other; the corners are black. */
function expectFashionMnistForm(p: Float32Array): void {
  const box = boxOf(p);
  expect(box).not.toBeNull();
  const [x0, y0, x1, y1] = box!;
  expect(Math.max(x1 - x0, y1 - y0)).toBeGreaterThanOrEqual(26);
  expect(Math.abs(x0 + x1 - 27)).toBeLessThanOrEqual(2);
  expect(Math.abs(y0 + y1 - 27)).toBeLessThanOrEqual(2);
  for (const i of [0, 27, 27 * 28, 28 * 28 - 1]) expect(p[i]).toBeLessThan(0.05);
}

describe('preparePhoto: a photo in the form of Fashion-MNIST', () => {
  it('a garment with a white border comes out as its tight crop: cropped, centred, inverted', () => {
    const p = preparePhoto(render(BORDERED), 420, 340);
    const t = preparePhoto(tight(BORDERED), 310, 280);
    expect(p.steps.crop).toEqual({ x: 60, y: 25, w: 310, h: 280 });
    expect(describePhoto(p.steps)).toBe('photo 420×340 RGB, background white → cropped 310×280 → 28×28, inverted');
    expect(maxDiff(p.pixels, t.pixels)).toBeLessThan(0.02);
    expectFashionMnistForm(p.pixels);
    // Light garment: its body (the middle of the picture) is bright.
    expect(p.pixels[14 * 28 + 14]).toBeGreaterThan(0.6);
  });

  it('the tight crop itself (the garment touches every side) keeps its background estimate', () => {
    const t = preparePhoto(tight(BORDERED), 310, 280);
    expect(t.steps).toMatchObject({ background: 'white', gradient: false, inverted: true });
    expect(t.steps.crop).toEqual({ x: 0, y: 0, w: 310, h: 280 });
  });

  it('a 120-pixel white border makes no difference (the issue: Bag became Sandal)', () => {
    const scene: Scene = { w: 480, h: 440, box: { x: 120, y: 120, w: 240, h: 200 } };
    const p = preparePhoto(render(scene), scene.w, scene.h);
    expect(maxDiff(p.pixels, preparePhoto(tight(scene), 240, 200).pixels)).toBeLessThan(0.02);
  });

  it('on a grey gradient: the background is levelled to black, the garment kept', () => {
    const scene: Scene = { ...BORDERED, background: greyGradient(420, 340), grain: 6 };
    const p = preparePhoto(render(scene), 420, 340);
    expect(describePhoto(p.steps)).toBe(
      'photo 420×340 RGB, background grey gradient → cropped 310×280 → 28×28, inverted',
    );
    const crop = p.steps.crop!;
    expect(
      Math.abs(crop.x - 60) + Math.abs(crop.y - 25) + Math.abs(crop.w - 310) + Math.abs(crop.h - 280),
    ).toBeLessThan(6);
    expectFashionMnistForm(p.pixels);
    const reference = preparePhoto(tight(BORDERED), 310, 280).pixels;
    expect(overlap(p.pixels, reference)).toBeGreaterThan(0.9);
    // Where the tight crop has no garment, nothing but background: black.
    for (let i = 0; i < 784; i++) if (reference[i] === 0) expect(p.pixels[i]).toBeLessThan(0.1);
  });

  it('a light garment on a dark background is not inverted', () => {
    const scene: Scene = { ...BORDERED, ink: [225, 220, 210, 255], background: dark };
    const p = preparePhoto(render(scene), 420, 340);
    expect(describePhoto(p.steps)).toBe('photo 420×340 RGB, background dark → cropped 310×280 → 28×28');
    expect(overlap(p.pixels, preparePhoto(tight(BORDERED), 310, 280).pixels)).toBeGreaterThan(0.95);
  });

  it('transparency: a dark garment goes over white (then inverted), a light one over black', () => {
    const t = preparePhoto(tight(BORDERED), 310, 280).pixels;
    const onClear = preparePhoto(render({ ...BORDERED, background: clear }), 420, 340);
    expect(describePhoto(onClear.steps)).toBe(
      'photo 420×340 RGBA, background transparent, over white → cropped 310×280 → 28×28, inverted',
    );
    expect(maxDiff(onClear.pixels, t)).toBeLessThan(0.05);
    const light = preparePhoto(render({ ...BORDERED, ink: [230, 230, 230, 255], background: clear }), 420, 340);
    expect(light.steps).toMatchObject({ over: 'black', inverted: false });
    expect(overlap(light.pixels, t)).toBeGreaterThan(0.95);
  });

  it("transparency in a photo with its own background: those parts take the frame's shade, as if opaque", () => {
    // A transparent strip down the left side of a dark garment on light grey and of a light one on black: the
    // same as the opaque photo (over black, the first strip was a dark bar beside the garment).
    const grey = (): [number, number, number, number] => [200, 200, 200, 255];
    const scenes: Scene[] = [
      { ...BORDERED, background: grey },
      { ...BORDERED, ink: [230, 230, 230, 255], background: dark },
    ];
    for (const scene of scenes) {
      const opaque = render(scene);
      const strip = Uint8ClampedArray.from(opaque);
      for (let y = 0; y < 340; y++) for (let x = 0; x < 12; x++) strip[4 * (y * 420 + x) + 3] = 0;
      const [a, b] = [preparePhoto(opaque, 420, 340), preparePhoto(strip, 420, 340)];
      expect(b.steps).toMatchObject({ transparent: true, over: 'the frame', crop: a.steps.crop });
      expect(maxDiff(b.pixels, a.pixels)).toBeLessThan(0.02);
      expect(describePhoto(b.steps)).toMatch(/, background (white|dark), transparent parts in its shade → /);
    }
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('EXIF orientation %i: the same as the upright photo', (o) => {
    const upright = render(BORDERED);
    const stored = storeForOrientation(upright, 420, 340, o);
    expect(stored.w * stored.h).toBe(420 * 340);
    const p = preparePhoto(stored.data, stored.w, stored.h, { orientation: o });
    expect(p.pixels).toEqual(preparePhoto(upright, 420, 340).pixels);
    expect(p.steps.crop).toEqual({ x: 60, y: 25, w: 310, h: 280 });
    const said = ['', ', EXIF mirrored', ', EXIF rotated', ', EXIF mirrored', ', EXIF rotated and mirrored'];
    const turned = { 1: '', 2: said[1], 3: said[2], 4: said[3], 5: said[4], 6: said[2], 7: said[4], 8: said[2] }[o];
    expect(describePhoto(p.steps)).toBe(
      `photo ${stored.w}×${stored.h} RGB${turned}, background white → cropped 310×280 → 28×28, inverted`,
    );
  });

  it('grain on the background does not widen the crop', () => {
    const p = preparePhoto(render({ ...BORDERED, grain: 12, seed: 3 }), 420, 340);
    const c = p.steps.crop!;
    expect(Math.abs(c.x - 60) + Math.abs(c.y - 25) + Math.abs(c.w - 310) + Math.abs(c.h - 280)).toBeLessThanOrEqual(4);
    expectFashionMnistForm(p.pixels);
  });

  it('a tiny 3×5 photo: a dark bar on white becomes a centred light bar, 28 tall', () => {
    const px = render({ w: 3, h: 5, box: { x: 1, y: 1, w: 1, h: 3 }, shape: () => true, ink: [0, 0, 0, 255] });
    const p = preparePhoto(px, 3, 5);
    expect(p.steps.crop).toEqual({ x: 1, y: 1, w: 1, h: 3 });
    // 1×3 → 9×28 (the longer side 28), columns 9…17.
    for (let y = 0; y < 28; y++) {
      expect(p.pixels[y * 28 + 8]).toBe(0);
      expect(p.pixels[y * 28 + 13]).toBeGreaterThan(0.9);
      expect(p.pixels[y * 28 + 19]).toBe(0);
    }
    for (const [w, h] of [
      [1, 1],
      [2, 1],
      [1, 7],
    ] as const) {
      const q = preparePhoto(new Uint8Array(w * h * 4).fill(255), w, h);
      expect(q.pixels.every((v) => v >= 0 && v <= 1)).toBe(true);
    }
  });

  it('a huge photo (4000×3000, a 12-megapixel phone photo) with a border', () => {
    const scene: Scene = { w: 4000, h: 3000, box: { x: 900, y: 400, w: 2200, h: 2400 }, grain: 4 };
    const p = preparePhoto(render(scene), 4000, 3000);
    const c = p.steps.crop!;
    expect(Math.abs(c.x - 900) + Math.abs(c.y - 400) + Math.abs(c.w - 2200) + Math.abs(c.h - 2400)).toBeLessThan(10);
    expectFashionMnistForm(p.pixels);
  }, 60_000);

  it('nothing stands out from the background: the whole picture, said so', () => {
    const p = preparePhoto(new Uint8Array(40 * 30 * 4).fill(255), 40, 30);
    expect(p.steps.crop).toBeNull();
    expect(Math.max(...p.pixels)).toBe(0);
    expect(describePhoto(p.steps)).toBe('photo 40×30 grey, background white → no object found: whole picture → 28×28');
  });

  it('--invert / --no-invert: only what is darker, or only what is lighter, than the background', () => {
    const scene: Scene = { ...BORDERED, background: greyGradient(420, 340) };
    expect(preparePhoto(render(scene), 420, 340, { invert: true }).steps.inverted).toBe(true);
    const lighterOnly = preparePhoto(render(scene), 420, 340, { invert: false });
    expect(lighterOnly.steps).toMatchObject({ inverted: false, crop: null });
    expect(Math.max(...lighterOnly.pixels)).toBe(0);
  });

  it('the plain form (runs on other data) resizes the whole picture, as preprocessImage', () => {
    const px = render(BORDERED);
    const p = preparePhoto(px, 420, 340, { form: { form: 'plain' } });
    expect(p.pixels).toEqual(preprocessImage(px, 420, 340).pixels);
    expect(describePhoto(p.steps)).toBe('photo 420×340 RGB → whole picture → 28×28, inverted');
  });

  it('a box of 20 (a run whose objects fill 20 pixels, as MNIST digits) scales the longer side to 20', () => {
    const p = preparePhoto(render(BORDERED), 420, 340, { form: { form: 'object', box: 20 } });
    const [x0, , x1] = boxOf(p.pixels)!;
    expect(x1 - x0 + 1).toBe(20);
  });

  it("a picture in the data's own form (28×28 grey, dark frame, object centred) is taken as it is", () => {
    const img = new Uint8Array(784);
    for (let y = 3; y < 25; y++) for (let x = 6; x < 22; x++) img[y * 28 + x] = 40 + 7 * ((x + y) % 25);
    const rgba = new Uint8Array(784 * 4);
    img.forEach((v, j) => rgba.set([v, v, v, 255], 4 * j));
    const p = preparePhoto(rgba, 28, 28);
    expect(p.steps).toMatchObject({ asIs: true, crop: null, inverted: false });
    Array.from(p.pixels).forEach((v, j) => expect(v).toBeCloseTo(img[j]! / 255, 6));
    const said = "photo 28×28 grey, dark frame, object centred → as it is (the data's own form)";
    expect(describePhoto(p.steps)).toBe(said);
    // Off centre, or asked to invert: brought to the form as any photo is.
    const off = new Uint8Array(784 * 4);
    for (let j = 0; j < 784; j++) off.set(j % 28 < 10 && j < 400 ? [200, 200, 200, 255] : [0, 0, 0, 255], 4 * j);
    expect(preparePhoto(off, 28, 28).steps.asIs).toBeUndefined();
    expect(preparePhoto(rgba, 28, 28, { invert: true }).steps.asIs).toBeUndefined();
  });

  it.skipIf(!existsSync(DEFAULT_DATA_DIR))(
    'Fashion-MNIST test images come out as they are, or but for centring',
    () => {
      const { test } = loadFashionMnist(DEFAULT_DATA_DIR, { subset: 1 });
      let total = 0;
      let asIs = 0;
      // Mean absolute difference, the result moved by (dx, dy) (their bounding boxes are not all centred).
      const moved = (p: Float32Array, img: Uint8Array, dx: number, dy: number): number => {
        let sum = 0;
        for (let y = 0; y < 28; y++)
          for (let x = 0; x < 28; x++) sum += Math.abs((p[(y + dy) * 28 + x + dx] ?? 0) - img[y * 28 + x]! / 255);
        return sum / 784;
      };
      for (let i = 0; i < 50; i++) {
        const img = test.images.subarray(i * 784, (i + 1) * 784);
        const rgba = new Uint8Array(784 * 4);
        img.forEach((v, j) => rgba.set([v, v, v, 255], 4 * j));
        const p = preparePhoto(rgba, 28, 28);
        expect(p.steps).toMatchObject({ background: 'dark', inverted: false });
        if (p.steps.asIs) {
          asIs++;
          expect(Math.max(...Array.from(p.pixels, (v, j) => Math.abs(v - img[j]! / 255)))).toBeLessThan(1e-6);
          continue;
        }
        const shifts = [-1, 0, 1].flatMap((dx) => [-1, 0, 1].map((dy) => moved(p.pixels, img, dx, dy)));
        total += Math.min(...shifts);
        // Where the garment spans all 28 pixels it is not scaled (where it spans 27, it is, a little).
        const { w, h } = p.steps.crop!;
        if (Math.max(w, h) === 28) expect(Math.min(...shifts), `test image ${i}`).toBeLessThan(0.04);
      }
      expect(total / 50).toBeLessThan(0.04);
      expect(asIs).toBeGreaterThan(40); // nearly every test image is centred in its dark frame
    },
  );
});

describe('fitBackground', () => {
  it('recovers a quadratic background from the frame, though an object covers part of an edge', () => {
    const [w, h] = [200, 150];
    const truth = (x: number, y: number): number => 0.5 + 0.2 * (x / w) - 0.1 * (y / h) + 0.15 * ((x - 100) / 100) ** 2;
    const gray = new Float32Array(w * h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) gray[y * w + x] = x > 60 && x < 140 && y > 40 ? 0.05 : truth(x, y);
    const bg = fitBackground(gray, w, h);
    for (const [x, y] of [
      [100, 75],
      [10, 10],
      [190, 140],
      [100, 140],
    ] as const)
      expect(Math.abs(bg.at(x, y) - truth(x, y))).toBeLessThan(0.01);
    expect(bg.noise).toBeLessThan(0.01);
  });
});

describe('inputForm: the form a run records of its training images', () => {
  it.skipIf(!existsSync(DEFAULT_DATA_DIR))("Fashion-MNIST's: a light object on black, 28 pixels, centred", () => {
    expect(inputForm(loadFashionMnist(DEFAULT_DATA_DIR, { subset: 500 }).train)).toEqual({ form: 'object', box: 28 });
  });

  it('bars at different heights (not centred) and noise are plain', () => {
    const { images, labels } = syntheticImages(200, 1);
    expect(inputForm({ images, labels, n: 200, rows: 28, cols: 28 })).toEqual({ form: 'plain' });
    const noise = Uint8Array.from({ length: 200 * 784 }, (_, i) => (i * 7919) % 256);
    expect(inputForm({ images: noise, labels, n: 200, rows: 28, cols: 28 })).toEqual({ form: 'plain' });
  });

  it('centred 20-pixel objects on black (as MNIST) record a box of 20', () => {
    const n = 50;
    const images = new Uint8Array(n * 784);
    for (let i = 0; i < n; i++)
      for (let y = 4; y < 24; y++) for (let x = 8 + (i % 3); x < 19 + (i % 3); x++) images[i * 784 + y * 28 + x] = 220;
    expect(inputForm({ images, labels: new Uint8Array(n), n, rows: 28, cols: 28 })).toEqual({
      form: 'object',
      box: 20,
    });
  });
});
