// Activation functions: the kinds the engine knows, their shader constants and their CPU reference.

export type ActKind = 'linear' | 'relu' | 'leaky' | 'sigmoid' | 'tanh' | 'gelu';
export interface Act {
  kind: ActKind;
  /** Leaky relu's slope below zero (Keras default 0.3). */
  alpha?: number;
}

const CODES: { [K in ActKind]: number } = { linear: 0, relu: 1, leaky: 2, sigmoid: 3, tanh: 4, gelu: 5 };

/** Override constants for shaders built on shaders/lib/activation.wgsl. */
export function actConstants(a: Act = { kind: 'linear' }): { ACT: number; ALPHA: number } {
  return { ACT: CODES[a.kind], ALPHA: a.alpha ?? 0.3 };
}

/** Whether the gradient can be computed from the output alone (so a fused forward need not keep its input). */
export function gradFromOutput(a: Act): boolean {
  return a.kind !== 'gelu' && !(a.kind === 'leaky' && (a.alpha ?? 0.3) <= 0);
}
