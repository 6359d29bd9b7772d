// Drawing pad and photo upload: both end as RGBA pixels brought to the model's input the way
// `fmgpu predict` brings a photo: for 28×28×1 through preparePhoto (background levelled, the object
// cropped and centred as in Fashion-MNIST), for any other shape (colour, or grey of another size:
// web/colour.ts) resized whole to it. Then `classify` runs, at most one at a time, the latest image
// winning. The preview shows what the network sees. For a colour model the pad has a pen colour.
import { DEFAULT_INPUT, describePhoto, preparePhoto, type ImageShape, type Preprocessed } from '../src/web.ts';
import { drawImage } from './charts.ts';
import { drawBytes, shapedPixels, type ShapedInput } from './colour.ts';
import { byId, context2d } from './dom.ts';

/** A photo is first drawn at most this large: the 28×28 result is the same, the work far less. */
const MAX_SIDE = 1024;

type Pixels = { data: Uint8ClampedArray; w: number; h: number };

/** Pen colours are for colour models; grey ones draw white on black, as Fashion-MNIST's images are. */
const GREY_PEN = '#ffffff';

export function pad(
  classify: (p: Preprocessed | null) => Promise<void>,
  fail: (e: unknown) => void,
  target: () => ShapedInput | null = () => null,
): { again(): void; refresh(): void } {
  const canvas = document.getElementById('pad') as HTMLCanvasElement;
  const preview = document.getElementById('preview') as HTMLCanvasElement;
  const photo = document.getElementById('photo') as HTMLInputElement;
  const pen = document.getElementById('pen') as HTMLInputElement;
  const colourModel = (): boolean => target()?.shape.c === 3;
  /** The pen colour shows for colour models; the preview's caption says the input's size. */
  const refresh = (): void => {
    byId('pen-label').hidden = !colourModel();
    const s: ImageShape = target()?.shape ?? DEFAULT_INPUT;
    byId('preview-size').textContent = `${s.w}×${s.h}${s.c === 3 ? ' RGB' : ''}`;
  };
  const g = context2d(canvas, { willReadFrequently: true });
  /** The photo shown on the pad, at the size it was read; null while the pad holds a drawing. */
  let source: Pixels | null = null;
  /** Whether the pad holds strokes (an empty pad is not classified: a blank picture would get bars). */
  let drawn = false;
  let busy = false;
  let queued = false;

  const clear = (): void => {
    g.fillStyle = '#000';
    g.fillRect(0, 0, canvas.width, canvas.height);
    source = null;
    drawn = false;
  };

  const run = async (): Promise<void> => {
    if (busy) {
      queued = true;
      return;
    }
    if (!source && !drawn) {
      context2d(preview).clearRect(0, 0, preview.width, preview.height);
      preview.title = '';
      await classify(null);
      return;
    }
    const img = source ?? {
      data: g.getImageData(0, 0, canvas.width, canvas.height).data,
      w: canvas.width,
      h: canvas.height,
    };
    let p: Preprocessed;
    try {
      refresh();
      p = shown(preview, img, target(), source ? 'photo' : 'drawing');
    } catch (e) {
      fail(e);
      return;
    }
    busy = true;
    try {
      await classify(p);
    } catch (e) {
      fail(e);
    } finally {
      busy = false;
      if (queued) {
        queued = false;
        void run();
      }
    }
  };

  listenStrokes(canvas, g, {
    begin: () => {
      if (source) clear(); // drawing after a photo starts a new drawing
      drawn = true;
    },
    changed: () => void run(),
    colour: () => (colourModel() ? pen.value : GREY_PEN),
  });
  (document.getElementById('clear') as HTMLButtonElement).addEventListener('click', () => {
    clear();
    void run();
  });
  photo.addEventListener('change', async () => {
    const f = photo.files?.[0];
    if (!f) return;
    photo.value = '';
    let read: { pixels: Pixels; bitmap: ImageBitmap };
    try {
      read = await readPhoto(f);
    } catch (e) {
      fail(e);
      return;
    }
    // Show the photo on the pad, letterboxed, so the user sees what was classified.
    clear();
    source = read.pixels;
    const s = Math.min(canvas.width / source.w, canvas.height / source.h);
    const [w, h] = [source.w * s, source.h * s];
    g.drawImage(read.bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    read.bitmap.close();
    await run();
  });

  clear();
  refresh();
  return {
    again: () => void run(),
    refresh,
  };
}

/** The network's input from the pad's pixels (a photo's, or the drawing's), shown in the preview. */
function shown(preview: HTMLCanvasElement, img: Pixels, m: ShapedInput | null, what: string): Preprocessed {
  if (m) {
    const c = shapedPixels(img.data, img.w, img.h, m);
    drawBytes(preview, c.bytes, m.shape);
    preview.title = c.title.replace(/^photo/, what);
    return { pixels: c.pixels, inverted: c.inverted };
  }
  const p = preparePhoto(img.data, img.w, img.h);
  drawImage(preview, p.pixels);
  preview.title = describePhoto(p.steps).replace(/^photo/, what);
  return p;
}

/** Pointer strokes on the pad: `begin` before a stroke, `changed` after each move and at its end. */
function listenStrokes(
  canvas: HTMLCanvasElement,
  g: CanvasRenderingContext2D,
  on: { begin(): void; changed(): void; colour(): string },
): void {
  let drawing = false;
  let last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    on.begin();
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    stroke(g, last, last, on.colour());
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const p = at(e);
    stroke(g, last ?? p, p, on.colour());
    last = p;
    on.changed();
  });
  const end = (): void => {
    if (!drawing) return;
    drawing = false;
    last = null;
    on.changed();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
}

function stroke(g: CanvasRenderingContext2D, a: [number, number], b: [number, number], colour: string): void {
  g.strokeStyle = colour;
  g.lineWidth = 22;
  g.lineCap = 'round';
  g.lineJoin = 'round';
  g.beginPath();
  g.moveTo(a[0], a[1]);
  g.lineTo(b[0], b[1]);
  g.stroke();
}

/** A photo's pixels, scaled to at most MAX_SIDE a side, and its bitmap (the caller closes it). */
async function readPhoto(f: File): Promise<{ pixels: Pixels; bitmap: ImageBitmap }> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(f);
  } catch {
    throw new Error(`${f.name}: not an image this browser can decode`);
  }
  const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * k)),
    h = Math.max(1, Math.round(bitmap.height * k));
  const off = new OffscreenCanvas(w, h);
  const og = off.getContext('2d');
  if (!og) throw new Error('this browser gives no 2D canvas context');
  og.drawImage(bitmap, 0, 0, w, h);
  return { pixels: { data: og.getImageData(0, 0, w, h).data, w, h }, bitmap };
}
