// The top two principal components of n rows of F features, in float64, by power iteration on the
// covariance without forming it (each step is C·v = Xᵀ(X·v)/(n-1), O(n·F)), the second deflated
// by keeping it orthogonal to the first. Deterministic: a fixed start vector and sign convention.

export interface Pca2 {
  /** Unit principal axes, each of length F. */
  axes: [Float64Array, Float64Array];
  /** Variance along each axis (the covariance's two largest eigenvalues). */
  variance: [number, number];
  /** Total variance (the covariance's trace): variance[k] / total is the explained fraction. */
  total: number;
  /** The centred rows projected on the axes: [n, 2] row-major. */
  points: Float64Array;
}

const dot = (a: Float64Array, b: Float64Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export function pca2(
  x: ArrayLike<number>,
  n: number,
  f: number,
  opts: { iterations?: number; tol?: number } = {},
): Pca2 {
  const iterations = opts.iterations ?? 300,
    tol = opts.tol ?? 1e-10;
  const xc = new Float64Array(n * f);
  const mean = new Float64Array(f);
  for (let i = 0; i < n; i++) for (let j = 0; j < f; j++) mean[j]! += x[i * f + j]! / n;
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < f; j++) {
      const v = x[i * f + j]! - mean[j]!;
      xc[i * f + j] = v;
      total += v * v;
    }
  }
  const denom = Math.max(1, n - 1);
  total /= denom;

  const cov = (v: Float64Array): Float64Array => {
    const out = new Float64Array(f);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * f;
      for (let j = 0; j < f; j++) s += xc[row + j]! * v[j]!;
      for (let j = 0; j < f; j++) out[j]! += xc[row + j]! * s;
    }
    for (let j = 0; j < f; j++) out[j]! /= denom;
    return out;
  };
  const orthonormalise = (v: Float64Array, against: Float64Array[]): number => {
    for (const a of against) {
      const d = dot(v, a);
      for (let j = 0; j < f; j++) v[j]! -= d * a[j]!;
    }
    const norm = Math.sqrt(dot(v, v));
    if (norm > 0) for (let j = 0; j < f; j++) v[j]! /= norm;
    return norm;
  };

  /** Axis k (0 or 1), orthogonal to those `found` before it, and the variance along it. */
  const component = (k: number, found: Float64Array[]): { axis: Float64Array; variance: number } => {
    // A start vector unlikely to be orthogonal to any axis: a fixed, irregular sequence.
    let v: Float64Array = Float64Array.from({ length: f }, (_, j) => 1 + ((j * 0.618034 + k * 0.414214) % 1));
    orthonormalise(v, found);
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      const u = cov(v);
      lambda = orthonormalise(u, found);
      if (lambda === 0) break; // no variance left: any orthogonal unit vector will do
      let change = 0;
      for (let j = 0; j < f; j++) change = Math.max(change, Math.abs(u[j]! - v[j]!));
      v = u;
      if (change < tol) break;
    }
    // Sign: the largest-magnitude coordinate positive, so reruns draw the same picture.
    let big = 0;
    for (let j = 1; j < f; j++) if (Math.abs(v[j]!) > Math.abs(v[big]!)) big = j;
    if (v[big]! < 0) for (let j = 0; j < f; j++) v[j] = -v[j]!;
    return { axis: v, variance: lambda };
  };
  const first = component(0, []);
  const second = component(1, [first.axis]);
  const axes: Pca2['axes'] = [first.axis, second.axis];

  const points = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    for (const [k, axis] of axes.entries()) {
      let s = 0;
      for (let j = 0; j < f; j++) s += xc[i * f + j]! * axis[j]!;
      points[i * 2 + k] = s;
    }
  }
  return { axes, variance: [first.variance, second.variance], total, points };
}
