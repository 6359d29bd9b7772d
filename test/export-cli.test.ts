// `fmgpu export` end to end: a briefly trained run (with a moving average of its weights, which
// eval scores) exported and scored by ONNX Runtime on the whole Fashion-MNIST test set gives
// `fmgpu eval`'s accuracy; the file's metadata; the refusals, one line and exit 2.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { ensureBuilt } from './helpers/files.ts';
import { loadFashionMnistTest } from '../src/node/data.ts';
import { decodeOnnx } from '../src/node/onnx.ts';
import { CLASS_NAMES } from '../src/data/classes.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.ts';
import pkg from '../package.json' with { type: 'json' };

const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (...args: string[]) => {
  const r = spawnSync('node', ['bin/fmgpu.js', ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-export-'));
const run = join(tmp, 'run');
const onnxFile = join(tmp, 'quick.onnx');

beforeAll(() => {
  ensureBuilt();
  const args = ['examples/quick.net', '--epochs', '1', '--subset', '2000', '--ema', '0.9', '--out', run];
  const r = fmgpu('train', ...args);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
}, 300_000);

describe('fmgpu export', () => {
  it('ONNX Runtime scores the exported model as fmgpu eval scores the run, on all 10,000 test images', async () => {
    const r = fmgpu('export', run, '-o', onnxFile);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/quick\.onnx: ONNX opset 17, [\d,]+ bytes; input pixels float32 \[N, 1, 28, 28\]/);

    const ev = fmgpu('eval', run, '--json');
    expect(ev.code).toBe(0);
    const evalAccuracy = (JSON.parse(ev.out) as { test_accuracy: number }).test_accuracy;

    const test = loadFashionMnistTest();
    const session = await ort.InferenceSession.create(onnxFile);
    const pixels = Float32Array.from(test.images, (v) => v / 255);
    const out = await session.run({ pixels: new ort.Tensor('float32', pixels, [test.n, 1, 28, 28]) });
    const probs = out.probabilities?.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < test.n; i++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (probs[i * 10 + c]! > probs[i * 10 + best]!) best = c;
      if (best === test.labels[i]) correct++;
    }
    const onnxAccuracy = correct / test.n;
    console.log(`test-set accuracy: ONNX Runtime ${onnxAccuracy}, fmgpu eval ${evalAccuracy} (${test.n} images)`);
    expect(onnxAccuracy).toBe(evalAccuracy);
    expect(evalAccuracy).toBeGreaterThan(0.5); // trained, not chance
  });

  it('holds the class names, the .net source and the fmgpu version; RUN/model.onnx by default; --json', () => {
    const r = fmgpu('export', run, '--json');
    expect(r.code).toBe(0);
    const line = JSON.parse(r.out) as { file: string; bytes: number; opset: number; tta: boolean };
    expect(line).toMatchObject({ file: join(run, 'model.onnx'), opset: 17, tta: false });
    expect(line.bytes).toBe(statSync(line.file).size);
    const model = decodeOnnx(readFileSync(join(run, 'model.onnx')));
    const meta = Object.fromEntries(
      (model.metadata_props as { key: string; value: string }[]).map((p) => [p.key, p.value]),
    );
    expect(JSON.parse(meta.classes ?? '')).toEqual(CLASS_NAMES);
    expect(meta.net).toBe(readFileSync(join(run, 'model.net'), 'utf8'));
    expect(meta.fmgpu_version).toBe(pkg.version);
    expect(model).toMatchObject({ producer_name: 'fmgpu', producer_version: pkg.version });
  });

  it.each([
    ['no run', [], 'fmgpu: error: export takes one run directory: fmgpu export RUN [-o FILE.onnx]'],
    ['two runs', ['a', 'b'], 'fmgpu: error: export takes one run directory: fmgpu export RUN [-o FILE.onnx]'],
    ['a missing run', ['/nonexistent/run'], 'fmgpu: error: run directory /nonexistent/run not found'],
    ['an unknown flag', ['x', '--frobnicate'], 'fmgpu: error: unknown option --frobnicate'],
  ])('refuses %s in one line, exit 2', (_, args, message) => {
    const r = fmgpu('export', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${message}\n`);
  });

  it('refuses to write into a run another fmgpu is writing (its lock), and an --out that is a folder', () => {
    const lock = join(run, 'fmgpu.lock');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'test' }));
    try {
      const r = fmgpu('export', run);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(new RegExp(`^fmgpu: error: .*${process.pid}.*\\n$`));
    } finally {
      rmSync(lock);
    }
    const r = fmgpu('export', run, '--out', tmp);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `fmgpu: error: --out ${tmp} is a directory: give the model's file name, e.g. ${join(tmp, 'model.onnx')}\n`,
    );
    // A file in a folder that does not exist: refused (exit 2) as predict --out refuses it.
    const missing = join(tmp, 'no-such-folder', 'model.onnx');
    const m = fmgpu('export', run, '-o', missing);
    expect(m.code).toBe(2);
    expect(m.err).toBe(`fmgpu: error: --out ${missing}: the folder ${join(tmp, 'no-such-folder')} does not exist\n`);
    // A file of another kind (a .net source given to -o by mistake) is kept; a model exported before is replaced.
    const source = join(tmp, 'mine.net');
    writeFileSync(source, 'dense 10 softmax\n');
    const o = fmgpu('export', run, '-o', source);
    expect(o.code).toBe(2);
    expect(o.err).toBe(
      `fmgpu: error: --out ${source} holds a file that is not an ONNX model: fmgpu replaces only a file of the kind ` +
        'it writes; name another file, or remove that one first\n',
    );
    expect(readFileSync(source, 'utf8')).toBe('dense 10 softmax\n');
    const again = join(tmp, 'again.onnx');
    expect(fmgpu('export', run, '-o', again).code).toBe(0);
    expect(fmgpu('export', run, '-o', again).code).toBe(0);
  });

  it('refuses weights that do not fit the model, naming the tensor, and writes nothing', () => {
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'model.net'), 'conv 8 3x3 relu\npool 2\ndense 10 softmax\n');
    const trained = readFileSync(join(run, 'weights.safetensors'));
    // Weights that keep the source they were trained from (fmgpu.source): the layer that differs is named.
    writeFileSync(join(bad, 'weights.safetensors'), trained);
    const r = fmgpu('export', bad);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^fmgpu: error: .*model\.net: layer conv1 is "conv 8 3x3 relu" but .*weights\.safetensors was trained with/,
    );
    expect(r.err.trim().split('\n')).toHaveLength(1);
    // Weights that do not say (written by another tool): the tensor that does not fit is named.
    const { tensors } = decodeSafetensors(trained, 'weights.safetensors');
    writeFileSync(join(bad, 'weights.safetensors'), encodeSafetensors(tensors));
    const t = fmgpu('export', bad);
    expect(t.code).toBe(2);
    expect(t.err).toMatch(/^fmgpu: error: .*weights\.safetensors: tensor "conv1\.weight" has shape \[16, 1, 3, 3\]/);
    expect(t.err.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(bad, 'model.onnx'))).toBe(false);
  });
});
