// Parameters on the GPU, initialised as Keras does by default (Glorot-uniform weights, zero biases,
// batch-norm gamma 1, beta 0, moving variance 1), in two sets of packed buffers (src/gpu/packed.ts):
// the trainable ones, whose layout their gradients, the optimizer's slots and the weight averages
// share, and the rest (batch-norm running statistics) apart, because a training forward writes those
// while it reads the trainable ones (one buffer cannot be bound both ways in a dispatch).
import type { BufferRef, Gpu } from '../gpu/runtime.ts';
import { Packed, packLayout } from '../gpu/packed.ts';
import { numel } from '../ops/geometry.ts';
import { Rng } from '../util/rng.ts';
import { DataError } from '../errors.ts';
import type { ParamSpec } from './build.ts';
import type { NamedTensor } from './safetensors.ts';
import { must } from '../util/must.ts';

export class ParamStore {
  /** Each tensor as a binding, by name: its range of its pack. */
  readonly buffers = new Map<string, BufferRef>();
  readonly specs: ParamSpec[];
  /** The trainable parameters, packed: the layout of their gradients, optimizer slots and averages. */
  readonly trainable: Packed;
  /** The non-trainable tensors, packed apart. */
  readonly state: Packed;

  constructor(gpu: Gpu, specs: ParamSpec[]) {
    this.specs = specs;
    this.trainable = new Packed(
      gpu,
      packLayout(
        specs.filter((s) => s.trainable),
        gpu.limits,
      ),
      'parameters',
    );
    this.state = new Packed(
      gpu,
      packLayout(
        specs.filter((s) => !s.trainable),
        gpu.limits,
      ),
      'parameter state',
    );
    for (const s of specs) this.buffers.set(s.name, this.packOf(s).ref(s.name));
  }

  private packOf(s: ParamSpec): Packed {
    return s.trainable ? this.trainable : this.state;
  }

  /** The binding of parameter `name`, one the model has. */
  buffer(name: string): BufferRef {
    return must(this.buffers, name, `buffer for parameter "${name}"`);
  }

  /** Keras default initialisation, seeded: the values drawn in the order of the specs. */
  initialise(seed: number): void {
    const rng = new Rng(seed);
    const values = new Map<string, Float32Array>();
    for (const s of this.specs) {
      const data = new Float32Array(numel(s.shape));
      if (s.init === 'glorot') {
        const limit = Math.sqrt(6 / (s.fanIn + s.fanOut));
        for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-limit, limit);
      } else if (s.init === 'ones') data.fill(1);
      values.set(s.name, data);
    }
    this.writeAll((name) => must(values, name, `initial values of "${name}"`));
  }

  get trainableCount(): number {
    return this.specs.filter((s) => s.trainable).reduce((a, s) => a + numel(s.shape), 0);
  }

  /** Every tensor, in the order of the specs (the shapes the model gives them). */
  async read(): Promise<Map<string, NamedTensor>> {
    const [trainable, state] = await Promise.all([this.trainable.read(), this.state.read()]);
    const out = new Map<string, NamedTensor>();
    for (const s of this.specs) {
      const t = must(s.trainable ? trainable : state, s.name, `values of "${s.name}"`);
      out.set(s.name, { shape: s.shape, data: t.data });
    }
    return out;
  }

  /** Loads every parameter from named tensors; names and shapes must match exactly. */
  load(tensors: ReadonlyMap<string, NamedTensor>, file = 'weights'): void {
    for (const s of this.specs) {
      const t = tensors.get(s.name);
      if (!t) throw new DataError(`${file}: no tensor "${s.name}" (the model needs [${s.shape.join(', ')}])`);
      if (t.shape.join() !== s.shape.join())
        throw new DataError(
          `${file}: tensor "${s.name}" has shape [${t.shape.join(', ')}] but the model needs [${s.shape.join(', ')}]`,
        );
    }
    this.writeAll((name) => must(tensors, name, `tensor "${name}"`).data);
  }

  private writeAll(data: (name: string) => Float32Array): void {
    this.trainable.writeAll((e) => data(e.name));
    this.state.writeAll((e) => data(e.name));
  }

  release(): void {
    this.trainable.release();
    this.state.release();
    this.buffers.clear();
  }
}
