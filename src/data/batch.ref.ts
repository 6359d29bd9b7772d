// CPU reference of shaders/batch.wgsl's training gather, with the same random draws (src/util/hash.ts).
import { rand01, randU32 } from '../util/hash.ts';
import type { Dataset } from './dataset.ts';
import type { AugmentParams } from './batch.ts';

const f = Math.fround;

export function gatherTrainRef(ds: Dataset, indices: Uint32Array, step: number, s: { batch: number; stepsPerEpoch: number; seed: number; augment?: AugmentParams }): { x: Float64Array; labels: Uint32Array } {
  const { rows: h, cols: w } = ds;
  const a = s.augment ?? {};
  const x = new Float64Array(s.batch * h * w);
  const labels = new Uint32Array(s.batch);
  const pixel = (sample: number, sy: number, sx: number): number => (sy < 0 || sx < 0 || sy >= h || sx >= w ? 0 : ds.images[sample * h * w + sy * w + sx]! / 255);
  for (let b = 0; b < s.batch; b++) {
    const sample = indices[(step % s.stepsPerEpoch) * s.batch + b]!;
    labels[b] = ds.labels[sample]!;
    const key = b * 8;
    const r = (k: number): number => rand01(s.seed, step, key + k);
    const flip = a.flip && r(0) < 0.5;
    const span = 2 * (a.shift ?? 0) + 1;
    const sx0 = a.shift ? Math.floor(f(r(1) * span)) - a.shift : 0;
    const sy0 = a.shift ? Math.floor(f(r(2) * span)) - a.shift : 0;
    const geo = (a.rotate ?? 0) > 0 || (a.zoom ?? 0) > 0;
    const theta = ((r(3) * 2 - 1) * (a.rotate ?? 0) * Math.PI) / 180;
    const scale = 1 + (r(4) * 2 - 1) * (a.zoom ?? 0);
    let erase: { top: number; left: number; eh: number; ew: number } | null = null;
    if ((a.erase ?? 0) > 0 && r(5) < f(a.erase!)) {
      const rr = randU32(s.seed, step, key + 6);
      const area = f(f(0.02 + f(f(0.31 * f((rr & 0xffff) / 65536)))) * (h * w));
      const aspect = f(Math.exp(f(Math.log(0.3)) + f(f(Math.log(3.3)) - f(Math.log(0.3))) * f((rr >>> 16) / 65536)));
      const eh = Math.min(Math.floor(f(Math.sqrt(f(area * aspect)))), h);
      const ew = Math.min(Math.floor(f(Math.sqrt(f(area / aspect)))), w);
      const pos = randU32(s.seed, step, key + 7);
      erase = { eh, ew, top: (pos & 0xffff) % (h - eh + 1), left: (pos >>> 16) % (w - ew + 1) };
    }
    for (let oy = 0; oy < h; oy++) {
      for (let ox = 0; ox < w; ox++) {
        let fx = flip ? w - 1 - ox : ox;
        let fy = oy;
        fx -= sx0;
        fy -= sy0;
        let v: number;
        if (geo) {
          const cy = (h - 1) / 2, cx = (w - 1) / 2, dy = fy - cy, dx = fx - cx;
          const c = Math.cos(theta), si = Math.sin(theta);
          const py = (si * dx + c * dy) / scale + cy, px = (c * dx - si * dy) / scale + cx;
          const y0 = Math.floor(py), x0 = Math.floor(px), ty = py - y0, tx = px - x0;
          const top = pixel(sample, y0, x0) * (1 - tx) + pixel(sample, y0, x0 + 1) * tx;
          const bottom = pixel(sample, y0 + 1, x0) * (1 - tx) + pixel(sample, y0 + 1, x0 + 1) * tx;
          v = top * (1 - ty) + bottom * ty;
        } else v = pixel(sample, fy, fx);
        if (erase && oy >= erase.top && oy < erase.top + erase.eh && ox >= erase.left && ox < erase.left + erase.ew) v = 0;
        x[(b * h + oy) * w + ox] = v;
      }
    }
  }
  return { x, labels };
}
