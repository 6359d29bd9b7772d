// `fmgpu predict RUN image.png …`: the top 3 classes with probabilities for each image.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseNet } from '../../dsl/index.ts';
import { Trainer } from '../train/trainer.ts';
import { readRun } from '../node/rundir.ts';
import { decodeImage, MAX_IMAGE_BYTES } from '../node/image.ts';
import { readInput } from '../node/files.ts';
import { preprocessImage } from '../data/image.ts';
import { CLASS_NAMES } from '../data/classes.ts';
import { UsageError, parseArgs, type FlagSpec } from './args.ts';
import { checkWeights, openCliGpu, readSource } from './common.ts';
import type { Out } from './progress.ts';

export const PREDICT_FLAGS: Record<string, FlagSpec> = {
  invert: {
    type: 'bool',
    help: 'always invert (dark items on light backgrounds); --no-invert never; default: decide per image',
  },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
  json: { type: 'bool', help: 'one JSON object per image on stdout' },
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
  const [dir, ...inputs] = positional;
  if (!dir || inputs.length === 0)
    throw new UsageError('predict needs a run and images: fmgpu predict RUN image.png [...]');
  const run = readRun(dir);
  const ir = parseNet(readSource(join(dir, 'model.net')), join(dir, 'model.net'));
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
  const prepared = files.map((f) => {
    const img = decodeImage(readInput(f, { what: 'a PNG or JPEG image', maxBytes: MAX_IMAGE_BYTES }), f);
    return { file: f, ...preprocessImage(img.data, img.width, img.height, invert) };
  });
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  const t = new Trainer(gpu, ir, 0);
  try {
    t.params.load(run.weights, run.weightsFile);
    const x = new Float32Array(prepared.length * 784);
    for (const [i, p] of prepared.entries()) x.set(p.pixels, i * 784);
    const probs = await t.predict(x, prepared.length);
    prepared.forEach((p, i) => {
      const row = Array.from(probs.subarray(i * t.classes, (i + 1) * t.classes));
      const top = row
        .map((v, c) => ({ class: CLASS_NAMES[c] ?? String(c), label: c, probability: v }))
        .sort((a, b) => b.probability - a.probability)
        .slice(0, 3);
      if (flags.json) out.log(JSON.stringify({ file: p.file, inverted: p.inverted, top }));
      else {
        const classes = top.map((c) => `${c.class} ${(c.probability * 100).toFixed(1)}%`).join(', ');
        out.log(`${p.file}${p.inverted ? ' (inverted)' : ''}: ${classes}`);
      }
    });
    return 0;
  } finally {
    t.release();
    gpu.destroy();
  }
}
