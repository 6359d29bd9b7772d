// Drawing pad and photo upload: both end as RGBA pixels through preprocessImage (the same steps as
// `fmgpu predict`), then `classify` runs, at most one at a time, the latest image winning.
import { preprocessImage, type Preprocessed } from '../src/web.ts';
import { drawImage } from './charts.ts';

/** A photo is first drawn at most this large: the 28×28 result is the same, the work far less. */
const MAX_SIDE = 1024;

export function pad(classify: (p: Preprocessed) => Promise<void>, fail: (e: unknown) => void): { again(): void } {
  const canvas = document.getElementById('pad') as HTMLCanvasElement;
  const preview = document.getElementById('preview') as HTMLCanvasElement;
  const photo = document.getElementById('photo') as HTMLInputElement;
  const g = canvas.getContext('2d', { willReadFrequently: true })!;
  let source: { data: Uint8ClampedArray; w: number; h: number } | null = null;
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
    const p = preprocessImage(img.data, img.w, img.h);
    drawImage(preview, p.pixels);
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

  let drawing = false;
  let last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    if (source) clear(); // drawing after a photo starts a new drawing
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    stroke(last, last);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const p = at(e);
    stroke(last ?? p, p);
    last = p;
    void run();
  });
  const end = (): void => {
    if (!drawing) return;
    drawing = false;
    last = null;
    void run();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  function stroke(a: [number, number], b: [number, number]): void {
    g.strokeStyle = '#fff';
    g.lineWidth = 22;
    g.lineCap = 'round';
    g.lineJoin = 'round';
    g.beginPath();
    g.moveTo(a[0], a[1]);
    g.lineTo(b[0], b[1]);
    g.stroke();
  }

  (document.getElementById('clear') as HTMLButtonElement).addEventListener('click', () => {
    clear();
    void run();
  });

  photo.addEventListener('change', async () => {
    const f = photo.files?.[0];
    if (!f) return;
    photo.value = '';
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(f);
    } catch {
      fail(new Error(`${f.name}: not an image this browser can decode`));
      return;
    }
    const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const w = Math.max(1, Math.round(bitmap.width * k)),
      h = Math.max(1, Math.round(bitmap.height * k));
    const off = new OffscreenCanvas(w, h);
    const og = off.getContext('2d')!;
    og.drawImage(bitmap, 0, 0, w, h);
    // Show the photo on the pad, letterboxed, so the user sees what was classified.
    clear();
    source = { data: og.getImageData(0, 0, w, h).data, w, h };
    const s = Math.min(canvas.width / w, canvas.height / h);
    g.drawImage(bitmap, (canvas.width - w * s) / 2, (canvas.height - h * s) / 2, w * s, h * s);
    bitmap.close();
    await run();
  });

  clear();
  return { again: () => void run() };
}
