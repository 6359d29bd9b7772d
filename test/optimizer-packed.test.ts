// The optimizer over packed buffers (src/gpu/packed.ts, src/train/optimizer.ts): one dispatch per
// pack updates every trainable tensor with the weight average in the same pass, against the
// per-parameter float64 references, and bit for bit against one dispatch per tensor.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { expectAllclose } from './helpers/allclose.ts';
import type { BufferRef, Gpu } from '../src/gpu/runtime.ts';
import { Packed, packLayout, rangeOf } from '../src/gpu/packed.ts';
import { ParamStore } from '../src/model/params.ts';
import type { ParamSpec } from '../src/model/build.ts';
import { advanceCounter } from '../src/ops/optimizer.ts';
import { adamRef, emaRef, sgdRef } from '../src/ops/optimizer.ref.ts';
import { OptimizerState, updateRuns, type OptimizerConfig } from '../src/train/optimizer.ts';
import { WeightAverage } from '../src/train/ema.ts';
import { Rng } from '../src/util/rng.ts';

const TOL = { atol: 2e-6, rtol: 1e-5 };
const LR = [0.1, 0.05, 0.02, 0.01];
const spec = (name: string, shape: number[], trainable = true): ParamSpec => ({
  name,
  shape,
  init: 'glorot',
  fanIn: 3,
  fanOut: 5,
  trainable,
});
/** Sizes either side of the 64-float alignment, a non-trainable tensor among them (packed apart). */
const SPECS = [
  spec('a.weight', [4, 1, 3, 3]),
  spec('a.bias', [1]),
  spec('bn.moving_mean', [5], false),
  spec('b.weight', [63]),
  spec('b.bias', [64]),
  spec('c.weight', [65, 3]),
];

const CONFIGS: [string, OptimizerConfig][] = [
  ['adam', { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0 }],
  ['adam, L2 weight decay', { name: 'adam', momentum: 0, nesterov: false, weightDecay: 0.01 }],
  ['adamw', { name: 'adamw', momentum: 0, nesterov: false, weightDecay: 0.004, beta1: 0.5, beta2: 0.9 }],
  ['sgd', { name: 'sgd', momentum: 0, nesterov: false, weightDecay: 0 }],
  ['sgd momentum', { name: 'sgd', momentum: 0.9, nesterov: false, weightDecay: 0 }],
  ['sgd nesterov, weight decay', { name: 'sgd', momentum: 0.8, nesterov: true, weightDecay: 0.05 }],
];

interface Rig {
  params: ParamStore;
  opt: OptimizerState;
  ema: WeightAverage;
  counter: GPUBuffer;
  lrTable: GPUBuffer;
  release(): void;
}

function rig(g: Gpu, config: OptimizerConfig, seed: number): Rig {
  const params = new ParamStore(g, SPECS);
  params.initialise(seed);
  const opt = new OptimizerState(g, params, config);
  const ema = new WeightAverage(g, params);
  const counter = g.upload(new Uint32Array([0, 0, 0, 0]));
  const lrTable = g.upload(Float32Array.from(LR));
  return {
    params,
    opt,
    ema,
    counter,
    lrTable,
    release() {
      for (const x of [opt, ema, params]) x.release();
      g.release(counter);
      g.release(lrTable);
    },
  };
}

/** The per-parameter float64 reference of `steps` steps, the average after each. */
function reference(config: OptimizerConfig, p0: Float32Array, grads: Float32Array[], decay: number) {
  let param: ArrayLike<number> = p0;
  let s1: ArrayLike<number> = new Float64Array(p0.length),
    s2: ArrayLike<number> = new Float64Array(p0.length);
  let avg: ArrayLike<number> = p0;
  grads.forEach((grad, k) => {
    const base = { param, grads: [grad], lrTable: LR, startStep: k };
    const o = { count: p0.length, weightDecay: config.weightDecay };
    if (config.name === 'sgd') {
      const r = sgdRef({ ...base, velocity: s1 }, { ...o, momentum: config.momentum, nesterov: config.nesterov });
      [param, s1] = [r.param, r.velocity];
    } else {
      const adam = { ...o, beta1: config.beta1, beta2: config.beta2, decoupled: config.name === 'adamw' };
      const r = adamRef({ ...base, m: s1, v: s2 }, adam);
      [param, s1, s2] = [r.param, r.m, r.v];
    }
    avg = emaRef(avg, param, decay);
  });
  return { param, s1, s2, avg };
}

/** Gradients of every trainable tensor, in one pack of the parameters' layout or one buffer each. */
function gradients(g: Gpu, params: ParamStore, packed: boolean) {
  const layout = params.trainable.layout;
  const pack = packed ? new Packed(g, layout, 'gradients') : null;
  const own = new Map(layout.entries.map((e) => [e.name, packed ? null : g.alloc(e.count * 4, e.name)]));
  const refs = new Map<string, BufferRef>(
    layout.entries.map((e) => [e.name, pack ? pack.ref(e.name) : (own.get(e.name) as GPUBuffer)]),
  );
  return {
    refs,
    write(values: Map<string, Float32Array>) {
      if (pack) pack.writeAll((e) => values.get(e.name) as Float32Array);
      else for (const [name, b] of own) if (b) g.write(b, values.get(name) as Float32Array);
    },
    release() {
      pack?.release();
      for (const b of own.values()) if (b) g.release(b);
    },
  };
}

/** Runs `steps` steps (one submit each, fresh gradients written before each); returns what was read. */
async function train(g: Gpu, r: Rig, packed: boolean, steps: Map<string, Float32Array>[], decay: number) {
  const grads = gradients(g, r.params, packed);
  const ds = [
    ...r.opt.updates(
      r.params,
      { grads: grads.refs },
      { counter: r.counter, lrTable: r.lrTable },
      {
        averages: r.ema.averages,
        decay,
      },
    ),
    ...advanceCounter(g, { counter: r.counter }),
  ];
  for (const s of steps) {
    grads.write(s);
    g.run(ds);
  }
  const out = {
    dispatches: ds.length - 1,
    params: await r.params.read(),
    slots: await r.opt.tensors(),
    averages: await r.ema.tensors(),
    packs: await Promise.all([...r.params.trainable.buffers, ...r.ema.averages.buffers].map((b) => g.readF32(b))),
  };
  g.free(ds);
  grads.release();
  return out;
}

function randomSteps(n: number, seed: number): Map<string, Float32Array>[] {
  const rng = new Rng(seed);
  const trainable = SPECS.filter((s) => s.trainable);
  return Array.from(
    { length: n },
    () => new Map(trainable.map((s) => [s.name, Float32Array.from(rng.floats(s.shape.reduce((a, b) => a * b, 1)))])),
  );
}

describe('one optimizer dispatch for every parameter (packed), with the weight average', () => {
  const gpu = useGpu();

  it.each(CONFIGS)('%s: against the per-parameter reference', async (_name, config) => {
    const g = gpu();
    const decay = 0.9;
    const r = rig(g, config, 3);
    const p0 = await r.params.read();
    const steps = randomSteps(4, 9);
    const got = await train(g, r, true, steps, decay);
    expect(got.dispatches, 'one update dispatch for all five trainable tensors').toBe(1);
    for (const s of SPECS) {
      const start = p0.get(s.name)!.data;
      if (!s.trainable) {
        expect(Array.from(got.params.get(s.name)!.data), `${s.name} is not trained`).toEqual(Array.from(start));
        continue;
      }
      const ref = reference(
        config,
        start,
        steps.map((m) => m.get(s.name)!),
        decay,
      );
      expectAllclose(`${s.name}`, got.params.get(s.name)!.data, ref.param, TOL, s.shape);
      expectAllclose(`${s.name}.ema`, got.averages.get(`${s.name}.ema`)!.data, ref.avg, TOL, s.shape);
      if (config.name !== 'sgd') {
        expectAllclose(`${s.name}.m`, got.slots.get(`${s.name}.m`)!.data, ref.s1, TOL);
        expectAllclose(`${s.name}.v`, got.slots.get(`${s.name}.v`)!.data, ref.s2, TOL);
      } else if (config.momentum > 0) {
        expectAllclose(`${s.name}.velocity`, got.slots.get(`${s.name}.velocity`)!.data, ref.s1, TOL);
      } else expect(got.slots.size).toBe(0);
    }
    // The padding between tensors stays zero in the weights and the averages.
    const layout = r.params.trainable.layout;
    for (const pack of got.packs) {
      const used = new Set(layout.entries.flatMap((e) => Array.from({ length: e.count }, (_, i) => e.offset / 4 + i)));
      pack.forEach((v, i) => {
        if (!used.has(i)) expect(v, `padding at float ${i}`).toBe(0);
      });
    }
    r.release();
    expect(g.liveBytes).toBe(0);
  });

  it.each(CONFIGS)('%s: bit for bit the same as one dispatch per tensor', async (_name, config) => {
    const g = gpu();
    const steps = randomSteps(3, 21);
    const packed = rig(g, config, 5);
    const a = await train(g, packed, true, steps, 0.99);
    packed.release();
    const apart = rig(g, config, 5);
    const b = await train(g, apart, false, steps, 0.99);
    apart.release();
    expect(b.dispatches, 'gradients in buffers of their own: one run per tensor').toBe(5);
    const bits = (m: Map<string, { data: Float32Array }>) =>
      [...m].map(([k, v]) => [k, Array.from(new Uint32Array(v.data.buffer, v.data.byteOffset, v.data.length))]);
    expect(bits(a.params)).toEqual(bits(b.params));
    expect(bits(a.slots)).toEqual(bits(b.slots));
    expect(bits(a.averages)).toEqual(bits(b.averages));
  });

  // Gradients in buffers of their own: five update runs, each ending the step, several workgroups each.
  it('an update of several runs that ends the step: the counter advances once; the same bits', async () => {
    const g = gpu();
    const got: { counter: number[]; params: Map<string, { data: Float32Array }> }[] = [];
    for (const endsStep of [true, false]) {
      const r = rig(g, CONFIGS[0]![1], 9);
      const grads = gradients(g, r.params, false);
      grads.write(randomSteps(1, 3)[0]!);
      // Where the update ends the step it must read the running step from word 1 alone.
      g.write(r.counter, new Uint32Array(endsStep ? [999, 2, 0, 0] : [2, 0, 0, 0]));
      const ds = r.opt.updates(r.params, { grads: grads.refs }, { counter: r.counter, lrTable: r.lrTable, endsStep });
      expect(ds).toHaveLength(5);
      g.run(ds);
      got.push({ counter: [...(await g.readU32(r.counter))], params: await r.params.read() });
      g.free(ds);
      grads.release();
      r.release();
    }
    expect(got.map((x) => x.counter)).toEqual([
      [3, 2, 0, 0],
      [2, 0, 0, 0],
    ]);
    for (const [name, t] of got[1]!.params) expect(got[0]!.params.get(name)?.data, name).toEqual(t.data);
  });

  it('a model whose tensors fill more than one bindable buffer: one dispatch per pack', async () => {
    const base = gpu();
    // Each pack may bind at most 1 KiB here: c.weight (195 floats) begins a second one.
    const limits = { ...base.limits, maxStorageBufferBindingSize: 1024 };
    const g = new Proxy(base, { get: (t, k) => (k === 'limits' ? limits : Reflect.get(t, k)) });
    const config = CONFIGS[0]![1];
    const r = rig(g, config, 7);
    expect(r.params.trainable.layout.packBytes).toEqual([1024, 780]);
    const p0 = await r.params.read();
    const steps = randomSteps(2, 4);
    const got = await train(g, r, true, steps, 0.5);
    expect(got.dispatches).toBe(2);
    for (const s of SPECS.filter((x) => x.trainable)) {
      const ref = reference(
        config,
        p0.get(s.name)!.data,
        steps.map((m) => m.get(s.name)!),
        0.5,
      );
      expectAllclose(s.name, got.params.get(s.name)!.data, ref.param, TOL, s.shape);
      expectAllclose(`${s.name}.ema`, got.averages.get(`${s.name}.ema`)!.data, ref.avg, TOL, s.shape);
    }
    r.release();
  });
});

describe('packed layouts and update runs', () => {
  const t = (name: string, n: number) => ({ name, shape: [n] });

  it('aligns every tensor and starts a pack where the next would not bind', () => {
    const l = packLayout([t('a', 1), t('b', 64), t('c', 65), t('d', 300)], {
      minStorageBufferOffsetAlignment: 256,
      maxStorageBufferBindingSize: 1024,
    });
    expect(l.entries.map((e) => [e.name, e.pack, e.offset, e.count])).toEqual([
      ['a', 0, 0, 1],
      ['b', 0, 256, 64],
      ['c', 0, 512, 65],
      ['d', 1, 0, 300],
    ]);
    expect(l.packBytes).toEqual([772, 1200]);
  });

  it('groups tensors whose gradients lie alike; a missing or foreign gradient splits a run', () => {
    const l = packLayout([t('a', 3), t('b', 70), t('c', 5), t('d', 5)], {});
    const grad = {} as GPUBuffer,
      other = {} as GPUBuffer;
    const at = (name: string, buffer = grad): BufferRef => {
      const e = l.entries.find((x) => x.name === name)!;
      return { buffer, offset: e.offset, size: e.count * 4 };
    };
    const whole = updateRuns(l.entries, new Map(['a', 'b', 'c', 'd'].map((n) => [n, at(n)])));
    expect(whole.map((r) => [r.offset, r.bytes, r.tensors])).toEqual([[0, 1024 + 20, 4]]);
    const split = updateRuns(
      l.entries,
      new Map([
        ['a', at('a')],
        ['c', at('c')],
        ['d', at('d', other)],
      ]),
    );
    expect(split.map((r) => [r.offset, r.bytes, r.tensors, r.grad === other])).toEqual([
      [0, 12, 1, false],
      [768, 20, 1, false],
      [1024, 20, 1, true],
    ]);
    expect(rangeOf(at('b'))).toEqual({ buffer: grad, offset: 256, size: 280 });
  });
});
