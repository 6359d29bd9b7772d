// Drawing pad and photo upload: both end as RGBA pixels through preparePhoto (the same steps as
// `fmgpu predict`: background levelled, the object cropped and centred as in Fashion-MNIST), then
// `classify` runs, at most one at a time, the latest image winning. The preview shows what it sees.
// A colour model (web/colour.ts) takes uploaded photos resized to its input; drawings it refuses.
import { describePhoto, preparePhoto, type Preprocessed } from '../src/web.ts';
import { drawImage, el } from './charts.ts';
import { colourInput, drawBytes, type ColourModel } from './colour.ts';
import { byId, context2d } from './dom.ts';

/** A photo is first drawn at most this large: the 28×28 result is the same, the work far less. */
const MAX_SIDE = 1024;

type Pixels = { data: Uint8ClampedArray; w: number; h: number };

export function pad(
  classify: (p: Preprocessed) => Promise<void>,
  fail: (e: unknown) => void,
  colour: () => ColourModel | null = () => null,
): { again(): void } {
  const canvas = document.getElementById('pad') as HTMLCanvasElement;
  const preview = document.getElementById('preview') as HTMLCanvasElement;
  const photo = document.getElementById('photo') as HTMLInputElement;
  const g = context2d(canvas, { willReadFrequently: true });
  /** The photo shown on the pad, at the size it was read; null while the pad holds a drawing. */
  let source: Pixels | null = null;
  let busy = false;
  let queued = false;

  const clear = (): void => {
    g.fillStyle = '#000';
    g.fillRect(0, 0, canvas.width, canvas.height);
    source = null;
  };

  const run = async (): Promise<void> => {
    if (busy) {
      queued = true;
      return;
    }
    const img = source ?? {
      data: g.getImageData(0, 0, canvas.width, canvas.height).data,
      w: canvas.width,
      h: canvas.height,
    };
    const p = input(img, colour());
    if (!p) return;
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

  /** The network's input from the pad's pixels, shown in the preview; null for a drawing a colour model cannot take. */
  const input = (img: Pixels, m: ColourModel | null): Preprocessed | null => {
    if (m && !source) {
      byId('bars').replaceChildren(
        el('p', 'hint colour-only', 'This model takes colour images: the pad draws grey. Upload a colour photo.'),
      );
      return null;
    }
    if (m) {
      const c = colourInput(img.data, img.w, img.h, m);
      drawBytes(preview, c.bytes, m.shape);
      preview.title = c.title;
      return { pixels: c.pixels, inverted: false };
    }
    const p = preparePhoto(img.data, img.w, img.h);
    drawImage(preview, p.pixels);
    preview.title = describePhoto(p.steps);
    return p;
  };

  listenStrokes(canvas, g, {
    begin: () => {
      if (source) clear(); // drawing after a photo starts a new drawing
    },
    changed: () => void run(),
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
  return { again: () => void run() };
}

/** Pointer strokes on the pad: `begin` before a stroke, `changed` after each move and at its end. */
function listenStrokes(
  canvas: HTMLCanvasElement,
  g: CanvasRenderingContext2D,
  on: { begin(): void; changed(): void },
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
    stroke(g, last, last);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const p = at(e);
    stroke(g, last ?? p, p);
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

function stroke(g: CanvasRenderingContext2D, a: [number, number], b: [number, number]): void {
  g.strokeStyle = '#fff';
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
