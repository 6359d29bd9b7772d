// Parameters on the GPU: one buffer per named tensor, initialised as Keras does by default
// (Glorot-uniform weights, zero biases, batch-norm gamma 1, beta 0, moving variance 1).
import type { Gpu } from '../gpu/runtime.ts';
import { numel } from '../ops/geometry.ts';
import { Rng } from '../util/rng.ts';
import { DataError } from '../errors.ts';
import type { ParamSpec } from './build.ts';
import type { NamedTensor } from './safetensors.ts';
import { must } from '../util/must.ts';

export class ParamStore {
  readonly buffers = new Map<string, GPUBuffer>();
  readonly specs: ParamSpec[];

  constructor(
    private readonly gpu: Gpu,
    specs: ParamSpec[],
  ) {
    this.specs = specs;
    for (const s of specs) this.buffers.set(s.name, gpu.alloc(numel(s.shape) * 4, s.name));
  }

  /** The buffer of parameter `name`, one the model has. */
  buffer(name: string): GPUBuffer {
    return must(this.buffers, name, `buffer for parameter "${name}"`);
  }

  /** Keras default initialisation, seeded. */
  initialise(seed: number): void {
    const rng = new Rng(seed);
    for (const s of this.specs) {
      const data = new Float32Array(numel(s.shape));
      if (s.init === 'glorot') {
        const limit = Math.sqrt(6 / (s.fanIn + s.fanOut));
        for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-limit, limit);
      } else if (s.init === 'ones') data.fill(1);
      this.gpu.write(this.buffer(s.name), data);
    }
  }

  get trainableCount(): number {
    return this.specs.filter((s) => s.trainable).reduce((a, s) => a + numel(s.shape), 0);
  }

  async read(): Promise<Map<string, NamedTensor>> {
    const out = new Map<string, NamedTensor>();
    for (const s of this.specs) out.set(s.name, { shape: s.shape, data: await this.gpu.readF32(this.buffer(s.name)) });
    return out;
  }

  /** Loads every parameter from named tensors; names and shapes must match exactly. */
  load(tensors: ReadonlyMap<string, NamedTensor>, file = 'weights'): void {
    const checked = this.specs.map((s) => {
      const t = tensors.get(s.name);
      if (!t) throw new DataError(`${file}: no tensor "${s.name}" (the model needs [${s.shape.join(', ')}])`);
      if (t.shape.join() !== s.shape.join())
        throw new DataError(
          `${file}: tensor "${s.name}" has shape [${t.shape.join(', ')}] but the model needs [${s.shape.join(', ')}]`,
        );
      return { buffer: this.buffer(s.name), data: t.data };
    });
    for (const { buffer, data } of checked) this.gpu.write(buffer, data);
  }

  release(): void {
    for (const b of this.buffers.values()) this.gpu.release(b);
    this.buffers.clear();
  }
}
