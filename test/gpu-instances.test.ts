// Dawn's instance outlives the devices opened from it (src/node/gpu.ts keeps one per set of flags): when
// a collected instance was torn down under a destroyed device's driver threads, the process died (a bus
// error, an abort in pthread_mutex_lock) or hung, at a random later moment. Here devices are opened, used,
// destroyed (half with work in flight, as a lost device leaves it) and dropped, with collections between.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { openNodeGpu } from '../src/node/gpu.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { matmul } from '../src/ops/matmul.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

it('a hundred devices opened, used, destroyed (mid-flight or drained) and collected: the process goes on', async () => {
  const sums: number[] = [];
  let settled = 0;
  for (let i = 0; i < 100; i++) {
    let g: Gpu | null = await openNodeGpu();
    const n = 256;
    const a = g.alloc(n * n * 4, 'a');
    const c = g.alloc(n * n * 4, 'c');
    const d = matmul(g, { a, b: a, c }, { m: n, n, k: n });
    for (let j = 0; j < 3; j++) g.run(d);
    const read = g.readF32(c).then(
      (v) => void sums.push(v.length),
      () => void settled++,
    );
    if (i % 2 === 1)
      g.device.destroy(); // as a driver reset would: the submits still in flight
    else await read;
    g.destroy();
    g = null;
    gc();
    await new Promise((r) => setTimeout(r, i % 3));
    gc();
  }
  await new Promise((r) => setTimeout(r, 100));
  expect(sums).toEqual(new Array(50).fill(256 * 256));
  expect(settled).toBe(50);
});
