// The one pipeline cache: compute pipelines keyed by shader + entry point + override constants,
// shader modules by shader (a lane kernel's by shader and tile: shaders.ts moduleName), and each entry
// point's uniform layout (read from its WGSL once).
// Shared by every tuned view of a Gpu (Gpu.withTuning): a key names everything that makes a
// pipeline differ, so views with other tile sizes simply get other keys.
import { moduleName, shaderSource, type ShaderName } from './shaders.ts';
import { entryUniform, type UniformLayout } from './uniforms.ts';

/** A module made of shaders (a pair's: pair.ts): its name and code. */
export interface Composed {
  name: string;
  code: string;
}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly uniforms = new Map<string, UniformLayout | null>();

  constructor(private readonly device: GPUDevice) {}

  /** A compute pipeline, cached by shader (or composed module), entry point and override constants. */
  pipeline(shader: ShaderName | Composed, entry: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const name = typeof shader === 'string' ? moduleName(shader, constants) : shader.name;
    const keys = Object.keys(constants).sort();
    const key = `${name}:${entry}:${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(name);
      if (!module) {
        const code = typeof shader === 'string' ? shaderSource(shader, constants) : shader.code;
        module = this.device.createShaderModule({ code, label: name });
        this.modules.set(name, module);
      }
      p = this.device.createComputePipeline({
        layout: 'auto',
        label: key,
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** The struct of the uniform `entry` reads (bound at binding 0), or null when it reads none. */
  uniform(shader: ShaderName, entry: string): UniformLayout | null {
    const key = `${shader}:${entry}`;
    let layout = this.uniforms.get(key);
    if (layout === undefined) {
      layout = entryUniform(shaderSource(shader), entry);
      this.uniforms.set(key, layout);
    }
    return layout;
  }

  get size(): number {
    return this.pipelines.size;
  }

  clear(): void {
    this.pipelines.clear();
    this.modules.clear();
  }
}
