// The activations a fused backward takes the derivative of, each with where it reads it from: the
// layer's output Y (those whose derivative Y gives), or its input X (every one; gelu only so).
import type { Act } from '../../dsl/ir.ts';

export const ACT_DERIVATIVES: [Act, 'output' | 'input'][] = [
  [{ kind: 'linear' }, 'output'],
  [{ kind: 'relu' }, 'output'],
  [{ kind: 'leaky', alpha: 0.1 }, 'output'],
  [{ kind: 'sigmoid' }, 'output'],
  [{ kind: 'tanh' }, 'output'],
  [{ kind: 'relu' }, 'input'],
  [{ kind: 'gelu' }, 'input'],
];
