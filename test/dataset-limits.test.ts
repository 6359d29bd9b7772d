// A dataset too large for the adapter's buffers is refused before anything is allocated, naming its
// bytes and the limit (issue 19): checked by `fmgpu train` before the trainer exists, and by
// uploadDataset before it uploads.
import { describe, expect, it } from 'vitest';
import { checkDatasetFits, uploadDataset } from '../src/data/batch.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { ShapeError } from '../src/errors.ts';
import type { Gpu } from '../src/gpu/runtime.ts';

const ds = (n: number, channels?: number): Dataset => ({
  images: new Uint8Array(n * 8 * 8 * (channels ?? 1)),
  labels: new Uint8Array(n),
  n,
  rows: 8,
  cols: 8,
  ...(channels ? { channels } : {}),
});

describe("datasets over the adapter's buffer limits", () => {
  it('fits up to the smaller of the two limits, and is refused past it naming bytes and limit', () => {
    const limits = { maxStorageBufferBindingSize: 640, maxBufferSize: 1000 };
    expect(() => checkDatasetFits(ds(10), limits)).not.toThrow();
    expect(() => checkDatasetFits(ds(11), limits, 'the training set (DIR)')).toThrow(
      "the training set (DIR): 11 images of 8x8x1 take 704 bytes but this adapter's maxStorageBufferBindingSize " +
        'is 640: use --subset N, fewer images or a smaller input',
    );
    const e = (() => {
      try {
        checkDatasetFits(ds(4, 3), { maxStorageBufferBindingSize: 4096, maxBufferSize: 700 });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ShapeError); // exit 2
    expect((e as Error).message).toContain("4 images of 8x8x3 take 768 bytes but this adapter's maxBufferSize is 700");
  });

  it('uploadDataset refuses before it allocates anything', () => {
    let uploads = 0;
    const gpu = {
      limits: { maxStorageBufferBindingSize: 100, maxBufferSize: 1 << 20 },
      upload: () => {
        uploads++;
        return {};
      },
    } as unknown as Gpu;
    expect(() => uploadDataset(gpu, ds(2))).toThrow(
      /take 128 bytes but this adapter's maxStorageBufferBindingSize is 100/,
    );
    expect(uploads).toBe(0);
  });
});
