// A photo's background, estimated from its border: a smooth surface fitted to the pixels of the
// frame (a constant for tiny images; a quadratic in x and y otherwise, which holds flat
// backgrounds, linear gradients and vignettes), robustly: pixels far from the current fit are left
// out and the fit redone, so an object that touches an edge does not pull the background.

/** Fit coefficients of 1, u, v, u², v², uv, with u and v the position scaled to [-1, 1]. */
type Coefficients = readonly number[];

export interface Background {
  /** The background's level (0 black, 1 white) at pixel (x, y). */
  at(x: number, y: number): number;
  /** Per row y: [p, q, r] with the level at column x = p + q·u + r·u², u = x scaled to [-1, 1]. */
  row(y: number): readonly [number, number, number];
  u(x: number): number;
  /** Its mean over the image, and its lowest and highest (on a 5×5 grid). */
  mean: number;
  low: number;
  high: number;
  /** How far the frame's pixels stray from the fit (a robust standard deviation): noise, grain. */
  noise: number;
}

/** Smaller images get a constant background: too few frame pixels to fit a surface. */
const MIN_SIDE_FOR_SURFACE = 12;
/** Fit, leave out the pixels beyond the cut, fit again: this many times. */
const ROUNDS = 4;

export function fitBackground(gray: Float32Array, w: number, h: number): Background {
  const k = Math.max(1, Math.round(Math.min(w, h) * 0.02)); // the frame's thickness
  const u = (x: number): number => (w > 1 ? (2 * x) / (w - 1) - 1 : 0);
  const v = (y: number): number => (h > 1 ? (2 * y) / (h - 1) - 1 : 0);
  const frame = (visit: (x: number, y: number, g: number) => void): void => {
    for (let y = 0; y < h; y++) {
      const whole = y < k || y >= h - k || w <= 2 * k;
      for (let x = 0; x < w; x++) {
        if (!whole && x === k) x = w - k; // the middle of a row inside the frame is not frame
        visit(x, y, gray[y * w + x]!);
      }
    }
  };
  const surface = Math.min(w, h) >= MIN_SIDE_FOR_SURFACE;
  const at = (c: Coefficients, x: number, y: number): number => {
    const [a = 0, b = 0, cv = 0, d = 0, e = 0, f = 0] = c;
    const uu = u(x),
      vv = v(y);
    return a + b * uu + cv * vv + d * uu * uu + e * vv * vv + f * uu * vv;
  };
  const spread = (c: Coefficients): number => {
    const hist = new Histogram();
    frame((x, y, g) => hist.add(Math.abs(g - at(c, x, y))));
    return 1.4826 * hist.median();
  };
  // Started from the corners' level (as Fashion-MNIST trimmed what matched its corner pixels): in a
  // tight crop the object may cover half the frame, rarely the corners.
  const start = new Histogram();
  frame((x, y, g) => {
    if ((x < k || x >= w - k) && (y < k || y >= h - k)) start.add(g);
  });
  let c: Coefficients = [start.median()];
  for (let round = 0; surface && round < ROUNDS; round++) {
    const cut = Math.max(3 * spread(c), 0.02);
    const fit = new LeastSquares(6);
    frame((x, y, g) => {
      if (Math.abs(g - at(c, x, y)) > cut) return;
      const uu = u(x),
        vv = v(y);
      fit.add([1, uu, vv, uu * uu, vv * vv, uu * vv], g);
    });
    c = fit.solve() ?? c;
  }
  const grid = [0, 1, 2, 3, 4].flatMap((i) => [0, 1, 2, 3, 4].map((j) => at(c, ((w - 1) * i) / 4, ((h - 1) * j) / 4)));
  const [a = 0, b = 0, cv = 0, d = 0, e = 0, f = 0] = c;
  return {
    at: (x, y) => at(c, x, y),
    row: (y) => [a + cv * v(y) + e * v(y) ** 2, b + f * v(y), d],
    u,
    mean: grid.reduce((s, g) => s + g, 0) / grid.length,
    low: Math.min(...grid),
    high: Math.max(...grid),
    noise: spread(c),
  };
}

/** Values in [0, 1] counted in 1024 bins: a median without holding the values. */
class Histogram {
  private bins = new Uint32Array(1024);
  private n = 0;
  add(value: number): void {
    this.bins[Math.min(1023, Math.max(0, Math.floor(value * 1024)))]!++;
    this.n++;
  }
  median(): number {
    let seen = 0;
    for (let i = 0; i < 1024; i++) {
      seen += this.bins[i]!;
      if (seen * 2 >= this.n) return (i + 0.5) / 1024;
    }
    return 0;
  }
}

/** Least squares by its normal equations, accumulated one sample at a time, solved in float64. */
class LeastSquares {
  private ata: Float64Array;
  private atb: Float64Array;
  constructor(private n: number) {
    this.ata = new Float64Array(n * n);
    this.atb = new Float64Array(n);
  }
  add(row: readonly number[], value: number): void {
    for (let i = 0; i < this.n; i++) {
      this.atb[i]! += row[i]! * value;
      for (let j = 0; j < this.n; j++) this.ata[i * this.n + j]! += row[i]! * row[j]!;
    }
  }
  /** The coefficients, or null when the samples do not determine them. Gaussian elimination, partial pivoting. */
  solve(): number[] | null {
    const { n } = this;
    const m = this.ata.slice();
    const r = this.atb.slice();
    const scale = Math.max(1e-300, ...m.map(Math.abs));
    for (let col = 0; col < n; col++) {
      let p = col;
      for (let i = col + 1; i < n; i++) if (Math.abs(m[i * n + col]!) > Math.abs(m[p * n + col]!)) p = i;
      if (Math.abs(m[p * n + col]!) < 1e-9 * scale) return null;
      for (let j = 0; j < n; j++) [m[col * n + j], m[p * n + j]] = [m[p * n + j]!, m[col * n + j]!];
      [r[col], r[p]] = [r[p]!, r[col]!];
      for (let i = col + 1; i < n; i++) {
        const f = m[i * n + col]! / m[col * n + col]!;
        for (let j = col; j < n; j++) m[i * n + j]! -= f * m[col * n + j]!;
        r[i]! -= f * r[col]!;
      }
    }
    const x = new Array<number>(n).fill(0);
    for (let i = n - 1; i >= 0; i--) {
      let s = r[i]!;
      for (let j = i + 1; j < n; j++) s -= m[i * n + j]! * x[j]!;
      x[i] = s / m[i * n + i]!;
    }
    return x;
  }
}
