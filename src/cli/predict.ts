// `fmgpu predict RUN image.png …`: the top 3 classes with probabilities for each image.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Trainer } from '../train/trainer.ts';
import { readRun } from '../node/rundir.ts';
import { photoLines, preparePhotoFile, runForm, saveInputs } from './photo.ts';
import { UsageError, parseArgs, type FlagSpec } from './args.ts';
import { checkWeights, openCliGpu, runClasses, runModel } from './common.ts';
import type { Out } from './progress.ts';
import { PREDICT_SET_FLAGS, predictSets, wantsSets } from './predict-sets.ts';

export const PREDICT_FLAGS: Record<string, FlagSpec> = {
  invert: {
    type: 'bool',
    help: 'dark items on light backgrounds only; --no-invert light items only; default: decide per image',
  },
  'save-input': { type: 'string', meta: 'DIR', help: 'write the 28x28 image the network sees as DIR/<image>.png' },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
  json: { type: 'bool', help: 'one JSON object per image on stdout' },
  ...PREDICT_SET_FLAGS,
};

const IMAGE = /\.(png|jpe?g)$/i;

/** Whether a path is a folder (a broken link is not: reading it says what is wrong). */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export async function predict(args: readonly string[], out: Out): Promise<number> {
  const { flags, positional } = parseArgs(args, PREDICT_FLAGS);
  if (wantsSets(flags)) return await predictSets(positional, flags, out);
  const [dir, ...inputs] = positional;
  if (!dir || inputs.length === 0)
    throw new UsageError('predict needs a run and images: fmgpu predict RUN image.png [...] (or --test N, --csv FILE)');
  const run = readRun(dir);
  const ir = runModel(dir);
  if (ir.input.h !== 28 || ir.input.w !== 28 || ir.input.c !== 1)
    throw new UsageError(
      `${dir}: predict needs a 28x28x1 model, this one takes ${ir.input.h}x${ir.input.w}x${ir.input.c}`,
    );
  checkWeights(ir, run.weights, run.weightsFile);
  const files: string[] = [];
  for (const p of inputs) {
    if (!existsSync(p)) throw new UsageError(`${p}: no such file`);
    // One push per file, not push(...list): a folder of 200,000 images would overflow the stack.
    // Folders inside it are skipped, even one named like an image (x.png/).
    if (!statSync(p).isDirectory()) files.push(p);
    else
      for (const f of readdirSync(p)
        .filter((f) => IMAGE.test(f))
        .sort())
        if (!isDirectory(join(p, f))) files.push(join(p, f));
  }
  if (files.length === 0) throw new UsageError(`no PNG or JPEG images in ${inputs.join(', ')}`);
  const invert = flags.invert === undefined ? 'auto' : (flags.invert as boolean);
  // Every image is decoded (and every bad one refused) before the GPU is touched.
  const form = runForm(dir);
  const prepared = files.map((f) => preparePhotoFile(f, form, invert));
  if (flags['save-input'] !== undefined) saveInputs(String(flags['save-input']), prepared);
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  const t = new Trainer(gpu, ir, 0);
  try {
    t.params.load(run.weights, run.weightsFile);
    const x = new Float32Array(prepared.length * 784);
    for (const [i, p] of prepared.entries()) x.set(p.pixels, i * 784);
    const probs = await t.predict(x, prepared.length);
    const names = runClasses(dir, t.classes);
    prepared.forEach((p, i) => {
      const row = Array.from(probs.subarray(i * t.classes, (i + 1) * t.classes));
      const top = row
        .map((v, c) => ({ class: names[c] ?? String(c), label: c, probability: v }))
        .sort((a, b) => b.probability - a.probability)
        .slice(0, 3);
      for (const line of photoLines(p, top, flags.json === true)) out.log(line);
    });
    return 0;
  } finally {
    t.release();
    gpu.destroy();
  }
}
