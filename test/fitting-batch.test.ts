// fittingBatch: the evaluation and prediction chunk, shrunk from the 1000 images wanted until the
// largest activation binds under the adapter's limits. No GPU: the limits are made up.
import { describe, expect, it } from 'vitest';
import { parseNet } from '../dsl/index.ts';
import { buildGraph, fittingBatch } from '../src/model/build.ts';
import { checkLimits } from '../src/graph/plan.ts';
import { ShapeError } from '../src/errors.ts';

// The largest tensor that grows with the batch is conv1's output, 8×28×28 floats an image: 25,088
// bytes (the input is 3,136; the weights, 8×1×3×3 and 8×10 floats, do not grow with the batch).
const WIDE = parseNet('conv 8 3x3 same relu\nglobalavgpool\ndense 10 softmax\n', 'wide.net');
const PER_IMAGE = 8 * 28 * 28 * 4;
const GIB = 2 ** 30;

describe('fittingBatch', () => {
  it.each([
    [
      'the binding limit is the smaller',
      { maxBufferSize: GIB, maxStorageBufferBindingSize: 300 * PER_IMAGE + 100 },
      300,
    ],
    ['the buffer limit is the smaller', { maxBufferSize: 250 * PER_IMAGE + 5, maxStorageBufferBindingSize: GIB }, 250],
    ['exactly 999 images', { maxBufferSize: 1000 * PER_IMAGE - 1, maxStorageBufferBindingSize: GIB }, 999],
    [
      'not even one image: 1, for checkBatchFits to refuse',
      { maxBufferSize: GIB, maxStorageBufferBindingSize: PER_IMAGE - 1 },
      1,
    ],
  ])('1000 images do not fit, %s: the largest batch that does', (_, limits, batch) => {
    expect(fittingBatch(WIDE, 1000, limits)).toBe(batch);
  });

  it("the batch it returns passes the planner's own check, one image more does not", () => {
    const limits = { maxBufferSize: GIB, maxStorageBufferBindingSize: 300 * PER_IMAGE + 100 };
    const b = fittingBatch(WIDE, 1000, limits);
    expect(() => checkLimits(buildGraph(WIDE, b).graph, limits)).not.toThrow();
    expect(() => checkLimits(buildGraph(WIDE, b + 1).graph, limits)).toThrow(ShapeError);
    expect(() => checkLimits(buildGraph(WIDE, b + 1).graph, limits)).toThrow(
      `the output of conv1 (conv2d) [${b + 1}, 8, 28, 28] needs`,
    );
  });

  it('a model that fits gets the batch wanted', () => {
    const limits = { maxBufferSize: GIB, maxStorageBufferBindingSize: 1000 * PER_IMAGE };
    expect(fittingBatch(WIDE, 1000, limits)).toBe(1000);
    expect(fittingBatch(WIDE, 64, limits)).toBe(64);
  });
});
