// Reshape [N, …] → [N, features] (flatten every sample): a view of its input, no kernel either way.
import { numel } from './geometry.ts';
import type { AliasOp } from './op.ts';

export const RESHAPE: AliasOp<Record<string, never>> = {
  alias: 'always',
  shape: ([x = []]) => [x[0]!, numel(x.slice(1))],
};
