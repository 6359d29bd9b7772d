// Reshape [N, …] → [N, features] (flatten every sample): a view of its input, no kernel either way.
import { batched, numel } from './geometry.ts';
import type { AliasOp } from './op.ts';

export const RESHAPE: AliasOp<Record<string, never>> = {
  alias: 'always',
  shape: ([x]) => {
    const [n, ...features] = batched(x, 'reshape input');
    return [n, numel(features)];
  },
};
