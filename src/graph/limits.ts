// Whether a graph's tensors fit the adapter's buffers, checked before anything is allocated.
import { ShapeError } from '../errors.ts';
import { numel, type Graph, type Tensor } from './graph.ts';

export type BufferLimits = Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize'>;

/**
 * Every tensor of a plan gets a storage buffer bound whole, so each must fit both the adapter's
 * buffer size and its binding size. Checked before anything is allocated: a clear refusal that
 * names the tensor and the limit, not a bind-group validation error once training has started.
 * `scratch` adds the shapes of the backward's scratch buffers.
 */
export function checkLimits(graph: Graph, limits: BufferLimits, scratch: readonly (readonly number[])[] = []): void {
  const producer = new Map<number, { op: string; layer: string | null }>();
  for (const n of graph.nodes) {
    // A node's layer is the prefix of its parameters' names (conv1.weight → conv1).
    const [param] = n.inputs.flatMap((i) => (i.kind === 'param' ? [i.name] : []));
    producer.set(n.out.id, {
      op: n.op,
      layer: param ? param.replace(/\.[^.]*$/, '').replace(/\.proj$/, '') : null,
    });
  }
  const describe = (t: Tensor): string => {
    if (t.kind === 'param' || t.kind === 'state') return `parameter "${t.name}"`;
    if (t.kind === 'input') return 'the input batch';
    if (t.kind === 'label') return 'the batch labels';
    const p = producer.get(t.id);
    if (p) return `the output of ${p.layer ? `${p.layer} (${p.op})` : p.op}`;
    return 'a temporary buffer';
  };
  const items = [
    ...graph.tensors.map((t) => ({
      what: describe(t),
      shape: t.shape,
      persistent: t.kind === 'param' || t.kind === 'state',
    })),
    ...scratch.map((shape) => ({ what: 'a scratch buffer', shape, persistent: false })),
  ];
  for (const { what, shape, persistent } of items) {
    const bytes = numel(shape) * 4;
    const [limit, name] =
      bytes > limits.maxBufferSize
        ? [limits.maxBufferSize, 'maxBufferSize']
        : [limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize'];
    if (bytes <= limit) continue;
    const n = (x: number): string => x.toLocaleString('en-US');
    const advice = persistent ? 'use a smaller layer' : 'use a smaller batch or smaller layers';
    throw new ShapeError(
      `${what} [${shape.join(', ')}] needs ${n(bytes)} bytes but this adapter's ${name} is ${n(limit)}: ${advice}`,
    );
  }
}
