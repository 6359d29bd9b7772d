// CPU references for the reductions of shaders/reduce.wgsl, float64 (counts as plain integers).

export function sumRowsRef(x: ArrayLike<number>, m: number, n: number, prior?: ArrayLike<number>): Float64Array {
  const out = prior ? Float64Array.from(prior) : new Float64Array(n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j] = out[j]! + x[i * n + j]!;
  return out;
}

/** First index of each row's maximum (the prediction confusionRef counts). */
function argmaxRowsRef(x: ArrayLike<number>, m: number, n: number): Uint32Array {
  const out = new Uint32Array(m);
  for (let i = 0; i < m; i++) {
    let best = 0;
    for (let j = 1; j < n; j++) if (x[i * n + j]! > x[i * n + best]!) best = j;
    out[i] = best;
  }
  return out;
}

/** [classes, classes] counts, row = true label, column = argmax of scores; labels ≥ classes skipped. */
export function confusionRef(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  classes: number,
  prior?: ArrayLike<number>,
): Uint32Array {
  const out = prior ? Uint32Array.from(prior) : new Uint32Array(classes * classes);
  const pred = argmaxRowsRef(scores, labels.length, classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    const k = y * classes + pred[i]!;
    if (y < classes) out[k] = out[k]! + 1;
  }
  return out;
}

/** Whether any value is NaN or ±Inf. */
export function nonFiniteRef(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return true;
  return false;
}
