// Two dispatches as one (src/gpu/pair.ts, src/gpu/wgsl-pair.ts): the composed WGSL, the rules that
// allow a pair, and, bit for bit, a pair against its halves run one after the other: toy kernels that
// read every builtin a half can, and a dense layer's dX and dW on both GEMM families.
import { describe, expect, it } from 'vitest';
import { useGpu, f32, useGemmVariant } from './helpers/gpu.ts';
import { expectSameBits } from './helpers/bits.ts';
import { expectAllclose } from './helpers/allclose.ts';
import { bindingAccess, pairConstants, pairSource } from '../src/gpu/wgsl-pair.ts';
import { dependence, pair, pairAdjacent, unpairable } from '../src/gpu/pair.ts';
import type { Dispatch, Gpu } from '../src/gpu/runtime.ts';
import { streamWork, tiledGemm } from '../src/gpu/work.ts';
import { matmul, matmulPartsLength, type MatmulShape } from '../src/ops/matmul.ts';
import { matmulRef } from '../src/ops/matmul.ref.ts';
import { conv2dBackwardWeights, conv2dForward, type Conv2dShape } from '../src/ops/conv2d.ts';
import { predictDispatch } from '../src/gpu/cost.ts';
import { loadProfile } from '../src/node/profiles.ts';
import { Rng } from '../src/util/rng.ts';

// Half A: y[i] = scaled x through a workgroup tile and a barrier, over a 1-D grid of 2-D workgroups.
const A = `enable subgroups;
struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> unused_here: array<f32>;
override WX: u32 = 8u;
override WY: u32 = 4u;
var<workgroup> tile: array<f32, WX * WY>;
fn scaled(i: u32) -> f32 { return x[i] * P.scale; }
@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let i = wg.x * WX * WY + lid.y * WX + lid.x;
  if (i < P.n) { tile[li] = scaled(i); }
  workgroupBarrier();
  let j = wg.x * WX * WY + (WX * WY - 1u - li);
  if (j < P.n) { y[j] = tile[WX * WY - 1u - li] + f32(li); }
}
@compute @workgroup_size(WX, WY)
fn other(@builtin(workgroup_id) wg: vec3u) { unused_here[wg.x] = 1.0; }
`;

// Half B: the same names for other things; a 2-D grid, its own tile size, the grid and a subgroup lane read.
const B = `enable subgroups;
struct Params { n: u32, offset: f32, cols: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
override WX: u32 = 32u;
override ROWS: u32 = 1u;
var<workgroup> tile: array<f32, WX * ROWS>;
fn scaled(i: u32) -> f32 { return x[i] + P.offset; }
@compute @workgroup_size(WX)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let i = (wg.y * nwg.x + wg.x) * WX + li;
  if (i < P.n) { tile[li] = scaled(i); }
  workgroupBarrier();
  if (i < P.n) { y[i] = tile[li] * 2.0 + f32(wg.y) + f32(lane) * 0.0; }
}
`;

describe('the paired module (wgsl-pair.ts)', () => {
  const p = pairSource({ code: A, entry: 'main' }, { code: B, entry: 'main' });

  it('reads the bindings an entry point reaches, with their access', () => {
    expect([...bindingAccess(A, 'main')]).toEqual([
      [0, 'uniform'],
      [1, 'read'],
      [2, 'read_write'],
    ]);
    expect([...bindingAccess(A, 'other')]).toEqual([[3, 'read_write']]);
  });

  it("moves the second half's names and bindings out of the way, members and fields left alone", () => {
    expect(p.offset).toBe(4);
    expect(p.code).toContain('struct Params_pb { n: u32, offset: f32, cols: u32 }');
    expect(p.code).toContain('@group(0) @binding(4) var<uniform> P_pb: Params_pb;');
    expect(p.code).toContain('@group(0) @binding(6) var<storage, read_write> y_pb: array<f32>;');
    expect(p.code).toContain('fn scaled_pb(i: u32) -> f32 { return x_pb[i] + P_pb.offset; }');
    expect(p.code).toContain('fn scaled(i: u32) -> f32 { return x[i] * P.scale; }');
    expect(pairConstants({ WX: 32 })).toEqual({ WX_pb: 32 });
  });

  it('shares a workgroup variable both declare, sized for the larger, and hoists the directives', () => {
    expect(p.code.match(/var<workgroup> tile/g)).toHaveLength(1);
    expect(p.code).toContain('var<workgroup> tile: array<f32, max(u32(WX * WY), u32(WX_pb * ROWS_pb))>;');
    expect(p.code.startsWith('enable subgroups;\n')).toBe(true);
    expect(p.code.match(/enable subgroups/g)).toHaveLength(1);
  });

  it('turns the entry points into functions that `pair` calls with their builtins', () => {
    expect(p.code).toMatch(/\nfn main\(wg: vec3u, lid: vec3u,\n\s+li: u32\) \{/);
    expect(p.code).toMatch(/\nfn main_pb\(wg: vec3u, nwg: vec3u,\n\s+li: u32, lane: u32\) \{/);
    expect(p.code).toContain('@compute @workgroup_size(u32(WX) * u32(WY) * u32(1u))');
    expect(p.code).toContain(
      'main(pair_at(pair_f, pair_grid.a.xyz), pair_at(pair_li, vec3u(u32(WX), u32(WY), u32(1u))), pair_li)',
    );
    expect(p.code).toContain('main_pb(pair_at(pair_f, pair_grid.b.xyz), pair_grid.b.xyz, pair_li, pair_lane)');
    // The other entry point of a half stays one.
    expect(p.code).toContain('@compute @workgroup_size(WX, WY)\nfn other(');
  });

  it('reads neither comments nor attributes as declarations', () => {
    const noted = A.replace(
      'fn scaled(i: u32) -> f32 {',
      '// not @group(0) @binding(9) var<storage, read_write> here\n' +
        '@diagnostic(off, derivative_uniformity)\nfn scaled(i: u32) -> f32 {',
    );
    // scaled() reads x: binding 1 stays read-only, and no binding 9 appears.
    expect([...bindingAccess(noted, 'main')]).toEqual([...bindingAccess(A, 'main')]);
    const q = pairSource({ code: noted, entry: 'main' }, { code: B, entry: 'main' });
    expect(q.code).toContain('@diagnostic(off, derivative_uniformity)\nfn scaled(i: u32)');
    expect(q.code.startsWith('enable subgroups;\n')).toBe(true);
  });

  it('refuses a shader that declares a name the paired entry point uses', () => {
    const taken = B.replace('fn scaled(', 'fn pair_at(x: u32) -> u32 { return x; }\nfn scaled(');
    expect(() => pairSource({ code: A, entry: 'main' }, { code: taken, entry: 'main' })).toThrow(/pair_at/);
  });

  it('refuses an entry point that reads a builtin it cannot hand on', () => {
    const g = A.replace('@builtin(local_invocation_index) li: u32', '@builtin(global_invocation_id) li3: vec3u');
    expect(() => pairSource({ code: g, entry: 'main' }, { code: B, entry: 'main' })).toThrow(/global_invocation_id/);
  });
});

describe('a pair runs as its halves do, bit for bit', () => {
  const gpu = useGpu();

  it('toy halves: 1-D and 2-D grids, 2-D and 1-D workgroups of 32 threads, a shared tile', async ({ skip }) => {
    const g = gpu();
    if (!g.hasSubgroups) skip(`${g.adapter.description} has no subgroups, which the toy half B reads`);
    const rng = new Rng(3);
    const [na, nb] = [200, 300];
    const xa = g.upload(f32(rng.floats(na, -1, 1)));
    const xb = g.upload(f32(rng.floats(nb, -1, 1)));
    const uniform = (data: ArrayBufferView) => {
      const b = g.alloc(16, 'toy params', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      g.write(b, data);
      return b;
    };
    const pa = uniform(new Uint32Array([na, new Uint32Array(f32([1.5]).buffer)[0] as number, 0, 0]));
    const pb = uniform(new Uint32Array([nb, new Uint32Array(f32([0.25]).buffer)[0] as number, 0, 0]));
    const work = streamWork({ flops: 1, bytesRead: 4, bytesWritten: 4, threads: 32, perThread: 1 });
    const toy = (name: string, code: string, bound: (GPUBuffer | null)[], wgs: [number, number, number]) => {
      const shader = { name, code };
      const pipeline = g.pipeline(shader, 'main', {});
      const d: Dispatch = {
        label: name,
        pipeline,
        bindGroup: g.bindGroup(pipeline, bound, name),
        workgroups: wgs,
        params: [],
        work,
      };
      return { d, shader, bound };
    };
    const [ya, yb] = [g.alloc(4 * na), g.alloc(4 * nb)];
    const a = toy('toy a', A, [pa, xa, ya], [Math.ceil(na / 32), 1, 1]);
    const b = toy('toy b', B, [pb, xb, yb], [5, 2, 1]);
    g.run([a.d, b.d]);
    const [alone, aloneB] = [await g.readF32(ya), await g.readF32(yb)];
    for (const y of [ya, yb]) g.write(y, new Float32Array(y.size / 4));
    // The toys are not made by Gpu.kernel, so the pair is composed here as pair.ts composes one.
    const p = pairSource({ code: A, entry: 'main' }, { code: B, entry: 'main' });
    const pipeline = g.pipeline({ name: 'toy pair', code: p.code }, 'pair', {});
    const grids = g.alloc(32, 'toy grids', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    g.write(grids, new Uint32Array([7, 1, 1, 7, 5, 2, 1, 10]));
    expect(p.grid).toBe(7);
    const bound = [pa, xa, ya, null, pb, xb, yb, grids];
    g.run([{ ...a.d, pipeline, bindGroup: g.bindGroup(pipeline, bound, 'toy pair'), workgroups: [17, 1, 1] }]);
    expectSameBits('half a', await g.readF32(ya), alone);
    expectSameBits('half b', await g.readF32(yb), aloneB);
    const x = await g.readF32(xa);
    expect(alone[5]).toBeCloseTo((x[5] as number) * 1.5 + (31 - 5), 5);
    for (const buf of [xa, xb, pa, pb, ya, yb, grids]) g.release(buf);
  });

  it('a workgroup size of i32 overrides compiles', async () => {
    const g = gpu();
    const signed = `override SIDE = 4;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<workgroup> seen: array<u32, SIDE * SIDE>;
@compute @workgroup_size(SIDE, SIDE)
fn main(@builtin(local_invocation_index) li: u32, @builtin(local_invocation_id) lid: vec3u) {
  seen[li] = lid.x;
  workgroupBarrier();
  out[li] = seen[li];
}`;
    const other = signed.replace('override SIDE = 4;', 'override SIDE: u32 = 4u;');
    const p = pairSource({ code: signed, entry: 'main' }, { code: other, entry: 'main' });
    expect(p.code).toContain('var<workgroup> seen: array<u32, max(u32(SIDE * SIDE), u32(SIDE_pb * SIDE_pb))>;');
    g.pipeline({ name: 'toy pair, i32 sizes', code: p.code }, 'pair', {});
    await g.check();
  });

  // A Winograd conv keeps its slices in lib/gemm.wgsl's staging array (gemm_ab): paired with a tiled
  // GEMM of its workgroup size, the two share it whole.
  it('a Winograd conv forward beside a GEMM of its workgroup size, sharing gemm_ab whole', async ({ skip }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const s: Conv2dShape = { n: 2, c: 8, h: 8, w: 8, k: 16, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
    const rng = new Rng(3);
    const up = (n: number): GPUBuffer => g.upload(f32(rng.floats(n, -1, 1)));
    const [x, w, b, y] = [up(2 * 8 * 64), up(16 * 8 * 9), up(16), g.alloc(4 * 2 * 16 * 64)];
    const [ma, mb, mc] = [up(64 * 64), up(64 * 64), g.alloc(4 * 64 * 64)];
    const make = (): Dispatch[] => [
      ...conv2dForward(g, { x, w, b, y }, s, { kind: 'relu' }, { winograd: 16 }),
      // One workgroup aimed at: the 64×64 GEMM takes one tile of 8×8 blocks, 64 threads as the 16-side Winograd's.
      ...matmul(g, { a: ma, b: mb, c: mc }, { m: 64, n: 64, k: 64 }, { split: false, target: 1 }),
    ];
    const plain = make();
    expect(plain.map((d) => d.work.threads)).toEqual([64, 64]);
    expect(unpairable(g, plain[0]!, plain[1]!)).toBeNull();
    g.run(plain);
    const alone = [await g.readF32(y), await g.readF32(mc)];
    for (const o of [y, mc]) g.write(o, new Float32Array(o.size / 4).fill(Number.NaN));
    const [cv, mm] = make();
    const p = pair(g, cv!, mm!);
    // Both stage 8 KB (16 GEMMs' 4 channels of 16 tiles and 16 filters; 64 + 64 rows of 16 steps): one array.
    expect(p.work.sharedBytes).toBe(8192);
    g.run([p]);
    expectSameBits('Winograd y', await g.readF32(y), alone[0] as Float32Array);
    expectSameBits('matmul c', await g.readF32(mc), alone[1] as Float32Array);
    g.free([...plain, p, cv!, mm!]);
    for (const buf of [x, w, b, y, ma, mb, mc]) g.release(buf);
  });

  // The narrow weight gradient (32 × 2 threads, its own workgroup memory, no gemm_ab) beside a GEMM of 64
  // threads (8 × 8): each half's local ids from its own workgroup shape, their memory side by side.
  it('a narrow weight gradient beside a GEMM of its workgroup size, bit for bit', async ({ skip }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const s: Conv2dShape = { n: 2, c: 1, h: 9, w: 9, k: 20, kh: 3, kw: 3, strideH: 1, strideW: 1, padding: 'same' };
    const rng = new Rng(4);
    const up = (n: number): GPUBuffer => g.upload(f32(rng.floats(n, -1, 1)));
    const [x, dy, dw, db] = [up(2 * 81), up(2 * 20 * 81), g.alloc(4 * 180), g.alloc(4 * 20)];
    const [ma, mb, mc] = [up(64 * 64), up(64 * 64), g.alloc(4 * 64 * 64)];
    const make = (): Dispatch[] => [
      ...conv2dBackwardWeights(g, { dy, x, dw, db }, s, { target: 2 }), // 162 positions: one split
      ...matmul(g, { a: ma, b: mb, c: mc }, { m: 64, n: 64, k: 64 }, { split: false, target: 1 }),
    ];
    const plain = make();
    expect(plain[0]?.label).toMatch(/^conv2d backward weights narrow .* \+ bias grad$/);
    expect(plain.map((d) => d.work.threads)).toEqual([64, 64]);
    expect(unpairable(g, plain[0]!, plain[1]!)).toBeNull();
    g.run(plain);
    const alone = [await g.readF32(dw), await g.readF32(db), await g.readF32(mc)];
    for (const o of [dw, db, mc]) g.write(o, new Float32Array(o.size / 4).fill(Number.NaN));
    const [nw, mm] = make();
    const p = pair(g, nw!, mm!);
    // Its trees' 8 KB beside the GEMM's 8 KB staging: nothing shared.
    expect(p.work.sharedBytes).toBe(16384);
    g.run([p]);
    expectSameBits('narrow dw', await g.readF32(dw), alone[0] as Float32Array);
    expectSameBits('narrow db', await g.readF32(db), alone[1] as Float32Array);
    expectSameBits('matmul c', await g.readF32(mc), alone[2] as Float32Array);
    g.free([...plain, p, nw!, mm!]);
    for (const buf of [x, dy, dw, db, ma, mb, mc]) g.release(buf);
  });

  // A dense layer's backward: dX = dY·Wᵀ and dW = Xᵀ·dY with its bias gradient, K split or not.
  // The planner pairs the tiled kernels only (the lane kernels measured no faster paired): a GPU's tiles.
  for (const variant of ['gpu tiles'] as const) {
    it(`a dense layer's dX and dW (${variant})`, async ({ skip }) => {
      const g = useGemmVariant(gpu(), variant, skip);
      for (const [batch, inputs, outputs] of [
        [8, 24, 10],
        [320, 40, 16],
      ] as const) {
        const rng = new Rng(batch);
        const dy = f32(rng.floats(batch * outputs, -1, 1));
        const w = f32(rng.floats(inputs * outputs, -1, 1));
        const xs = f32(rng.floats(batch * inputs, -1, 1));
        const [dyB, wB, xB] = [g.upload(dy), g.upload(w), g.upload(xs)];
        const [dxB, dwB, dbB] = [g.alloc(4 * batch * inputs), g.alloc(4 * inputs * outputs), g.alloc(4 * outputs)];
        const sx: MatmulShape = { m: batch, n: inputs, k: outputs, transB: true };
        const sw: MatmulShape = { m: inputs, n: outputs, k: batch, transA: true };
        const partsX = matmulPartsLength(g, sx);
        const partsW = matmulPartsLength(g, sw, { dbias: g.lanes === 0 });
        const [px, pw] = [g.alloc(4 * Math.max(1, partsX)), g.alloc(4 * Math.max(1, partsW))];
        const make = (): Dispatch[] => [
          ...matmul(g, { a: dyB, b: wB, c: dxB, parts: partsX > 0 ? px : undefined }, sx),
          ...matmul(
            g,
            { a: xB, b: dyB, c: dwB, dbias: g.lanes === 0 ? dbB : undefined, parts: partsW > 0 ? pw : undefined },
            sw,
          ),
        ];
        const plain = make();
        // On the tiles the largest batch splits dW's K: its partner moves up past dX's reduce pass, or dX's split.
        if (g.lanes === 0 && batch === 320) expect(plain.length, 'a split-K pass').toBeGreaterThan(2);
        g.run(plain);
        const alone = [await g.readF32(dxB), await g.readF32(dwB), await g.readF32(dbB)];
        for (const b of [dxB, dwB, dbB]) g.write(b, new Float32Array(b.size / 4).fill(Number.NaN));
        const paired = pairAdjacent(g, make());
        const shape = `${batch}x${inputs}x${outputs}`;
        expect(paired.length, `${shape}: one pair`).toBe(plain.length - 1);
        expect(
          paired.filter((d) => d.label.includes(' ∥ ')),
          shape,
        ).toHaveLength(1);
        g.run(paired);
        // The lane kernels compute no bias gradient: db is compared on the tiles only.
        const names = g.lanes === 0 ? ['dX', 'dW', 'db'] : ['dX', 'dW'];
        const now = [await g.readF32(dxB), await g.readF32(dwB), await g.readF32(dbB)];
        names.forEach((name, i) =>
          expectSameBits(`${shape} ${name}`, now[i] as Float32Array, alone[i] as Float32Array),
        );
        if (g.lanes === 0) expectAllclose(`${shape} db`, now[2] as Float32Array, columnSums(dy, batch, outputs));
        expectAllclose(`${shape} dX`, now[0] as Float32Array, matmulRef(dy, w, null, sx), { atol: 1e-5, rtol: 1e-4 });
        expectAllclose(`${shape} dW`, now[1] as Float32Array, matmulRef(xs, dy, null, sw), { atol: 1e-5, rtol: 1e-4 });
        g.free([...plain, ...paired]);
        for (const b of [dyB, wB, xB, dxB, dwB, dbB, px, pw]) g.release(b);
      }
    });
  }
});

const columnSums = (x: Float32Array, rows: number, cols: number): Float64Array =>
  Float64Array.from({ length: cols }, (_, j) =>
    Array.from({ length: rows }, (_, i) => x[i * cols + j] as number).reduce((a, b) => a + b, 0),
  );

const tileOf = (side: number) => ({
  rows: side,
  cols: side,
  inner: 16,
  tiles: 1,
  tileM: side,
  tileN: side,
  kSteps: 1,
  bytesRead: 0,
  bytesWritten: 0,
});
const block = (threads: number) => ({ threads, rowsPerThread: 4, colsPerThread: 4, sums: 0 as const });

describe('what may pair (pair.ts)', () => {
  const gpu = useGpu();

  /** dX and dW of a dense layer (64 × 64 to 64) on the GPU tiles, a pass that reads dX, and its output. */
  function layer(g: Gpu, k = 64) {
    const buf = () => g.alloc(64 * 64 * 4);
    const [dy, w, x, dx, dw, out] = [buf(), buf(), buf(), buf(), buf(), buf()];
    const one = (io: Parameters<typeof matmul>[1], s: MatmulShape) => matmul(g, io, s, { split: false })[0] as Dispatch;
    const dX = one({ a: dy, b: w, c: dx }, { m: 64, n: 64, k, transB: true });
    const dW = one({ a: x, b: dy, c: dw }, { m: 64, n: 64, k, transA: true });
    const reader = one({ a: dx, b: w, c: out }, { m: 64, n: 64, k: 64 });
    // Another weight gradient, of the reader's output.
    const after = one({ a: x, b: out, c: g.alloc(64 * 64 * 4) }, { m: 64, n: 64, k: 64, transA: true });
    return { dX, dW, reader, after };
  }

  it('independent GEMMs of one workgroup size pair; a reader of one half does not; a pair does not pair again', ({
    skip,
  }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const { dX, dW, reader } = layer(g);
    expect([dW.work.threads, reader.work.threads]).toEqual([dX.work.threads, dX.work.threads]);
    expect(unpairable(g, dX, dW)).toBeNull();
    expect(dependence(g, dX, reader)).toMatch(/^both bind /);
    expect(unpairable(g, dX, reader)).toMatch(/^both bind /);
    const p = pair(g, dX, dW);
    expect(p.workgroups[0]).toBe(dX.workgroups[0] * dX.workgroups[1] + dW.workgroups[0] * dW.workgroups[1]);
    expect(unpairable(g, p, reader)).toBe('not a kernel of its own');
  });

  it('a partner moves up past a dispatch it does not depend on, never past one it does', ({ skip }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const { dX, dW, reader } = layer(g);
    // dX, reader, dW: dW does not read dX, so it moves up to dX; the reader stays after.
    expect(pairAdjacent(g, [dX, reader, dW]).map((d) => d.label)).toEqual([`${dX.label} ∥ ${dW.label}`, reader.label]);
    // A weight gradient of the reader's output cannot move past the reader, nor pair with it.
    const late = layer(g);
    expect(dependence(g, late.reader, late.after)).toMatch(/^both bind /);
    expect(pairAdjacent(g, [late.dX, late.reader, late.after]).map((d) => d.label)).toEqual(
      [late.dX, late.reader, late.after].map((d) => d.label),
    );
  });

  it("two halves writing apart in one buffer (two layers' dW in one gradient pack), bit for bit", async ({ skip }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const rng = new Rng(9);
    const [x, dy] = [g.upload(f32(rng.floats(64 * 64, -1, 1))), g.upload(f32(rng.floats(64 * 64, -1, 1)))];
    const pack = g.alloc(2 * 64 * 64 * 4 + 256);
    const at = (offset: number) => ({ buffer: pack, offset, size: 64 * 64 * 4 });
    const dW = (c: { buffer: GPUBuffer; offset: number; size: number }, a: GPUBuffer) =>
      matmul(g, { a, b: dy, c }, { m: 64, n: 64, k: 64, transA: true }, { split: false })[0] as Dispatch;
    const two = () => [dW(at(0), x), dW(at(64 * 64 * 4 + 256), dy)];
    const apart = two();
    g.write(pack, new Float32Array(pack.size / 4).fill(Number.NaN)); // the gap between stays NaN both ways
    g.run(apart);
    const alone = await g.readF32(pack);
    g.write(pack, new Float32Array(pack.size / 4).fill(Number.NaN));
    const paired = pairAdjacent(g, two());
    expect(paired).toHaveLength(1);
    g.run(paired);
    expectSameBits('the pack', await g.readF32(pack), alone);
    g.free([...apart, ...paired]);
    for (const b of [x, dy, pack]) g.release(b);
  });

  it('pairs of other shapes but the same kernels share one pipeline (the grids are a uniform)', ({ skip }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const [one, other] = [layer(g, 32), layer(g, 48)];
    const first = pair(g, one.dX, one.dW);
    const before = g.pipelineCount;
    const second = pair(g, other.dX, other.dW);
    expect(second.pipeline).toBe(first.pipeline);
    expect(g.pipelineCount).toBe(before);
    expect(second.params).toHaveLength(first.params.length);
  });

  it('refuses other workgroup sizes and non-GEMMs', ({ skip }) => {
    const g = useGemmVariant(gpu(), 'gpu tiles', skip);
    const { dX, dW } = layer(g);
    const wide = { ...dW, work: { ...dW.work, threads: dW.work.threads * 2 } };
    expect(unpairable(g, dX, wide)).toBe('workgroups of other sizes');
    const stream = { ...dW, work: streamWork({ flops: 1, bytesRead: 4, bytesWritten: 4, perThread: 1 }) };
    expect(unpairable(g, dX, stream)).toBe('not two GEMMs');
  });
});

describe('what a pair costs (cost.ts)', () => {
  const h100 = loadProfile('h100').profile;
  const half = (workgroups: number, kSteps: number) => ({
    label: `${workgroups} workgroups`,
    workgroups,
    work: tiledGemm({ ...tileOf(64), kSteps, tiles: workgroups, inner: 16 * kSteps }, block(256)),
  });
  const pairOf = (a: ReturnType<typeof half>, b: ReturnType<typeof half>) => ({
    label: 'pair',
    workgroups: [a.workgroups + b.workgroups],
    work: {
      ...a.work,
      flops: a.work.flops + b.work.flops,
      paddedFlops: a.work.paddedFlops + b.work.paddedFlops,
      shape: { kind: 'pair' as const, halves: [a, b] as const },
    },
  });
  const alone = (h: ReturnType<typeof half>) =>
    predictDispatch({ label: h.label, workgroups: [h.workgroups], work: h.work }, h100).kernelUs;

  it('two halves that leave the device mostly idle take as long as the longer', () => {
    const [a, b] = [half(8, 64), half(12, 32)];
    const p = predictDispatch(pairOf(a, b), h100);
    expect(p.kernelUs).toBeCloseTo(Math.max(alone(a), alone(b)), 6);
  });

  it('two halves that fill the device take about as long as both', () => {
    const [a, b] = [half(1320, 16), half(1320, 16)];
    const p = predictDispatch(pairOf(a, b), h100);
    expect(p.kernelUs).toBeCloseTo(alone(a) + alone(b), 6);
    expect(p.us).toBeCloseTo(alone(a) + alone(b) + h100.v.dispatchUs, 6);
  });
});
