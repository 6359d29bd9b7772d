// Activation functions: their shader constants (shaders/lib/activation.wgsl) and which of them a
// fused forward may use. The kinds themselves are the language's (dsl/ir.ts); the CPU reference is
// act.ref.ts.
import type { Act, ActKind } from '../../dsl/ir.ts';

const CODES: { [K in ActKind]: number } = { linear: 0, relu: 1, leaky: 2, sigmoid: 3, tanh: 4, gelu: 5 };

/** Override constants for shaders built on shaders/lib/activation.wgsl (ALPHA is read by leaky only). */
export function actConstants(a: Act = { kind: 'linear' }): { ACT: number; ALPHA: number } {
  return { ACT: CODES[a.kind], ALPHA: a.kind === 'leaky' ? a.alpha : 0 };
}

/** Whether the gradient can be computed from the output alone (so a fused forward need not keep its input). */
export function gradFromOutput(a: Act): boolean {
  return a.kind !== 'gelu' && !(a.kind === 'leaky' && a.alpha <= 0);
}

/** `relu`, `leaky(0.1)`: how kernel labels and messages name an activation. */
export const actName = (a: Act): string => (a.kind === 'leaky' ? `leaky(${a.alpha})` : a.kind);
