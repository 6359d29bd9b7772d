// The real CLI as a subprocess (node bin/fmgpu.js, built by `npm run build`): conventions, each
// command, end to end on generated data, interruption and resume, documented error paths.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { encodePng, ensureBuilt, photo, syntheticImages, writeIdxDir } from './helpers/files.ts';
import { encodeSafetensors } from '../src/model/safetensors.ts';

const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (...args: string[]) => {
  const r = spawnSync('node', ['bin/fmgpu.js', ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return {
    code: r.status,
    out: r.stdout,
    err: r.stderr,
  };
};

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-cli-'));
const data = join(tmp, 'data');
const TINY = join(tmp, 'tiny.net');

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(data, 640, 200);
  writeFileSync(TINY, 'conv 4 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=2 batch=32 lr=0.01\n');
}, 120_000);

describe('conventions', () => {
  it('--version', () =>
    expect(fmgpu('--version')).toMatchObject({
      code: 0,
      out: `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`,
    }));
  it('--help lists the commands', () => {
    const r = fmgpu('--help');
    expect(r.code).toBe(0);
    for (const c of ['train', 'eval', 'predict', 'summary', 'report', 'export', 'serve'])
      expect(r.out).toContain(`  ${c}`);
  });
  it.each(['train', 'eval', 'predict', 'summary', 'report', 'export', 'serve'])('%s --help', (c) => {
    const r = fmgpu(c, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^usage: fmgpu ${c}`));
  });
  const usage: [string, string[], string][] = [
    ['no command', [], ''],
    [
      'unknown command',
      ['trian'],
      'fmgpu: error: unknown command "trian" (did you mean "train"? ' +
        'commands: train, eval, predict, summary, report, export, serve)',
    ],
    ['unknown flag', ['train', 'examples/quick.net', '--frobnicate'], 'fmgpu: error: unknown option --frobnicate'],
    [
      'batch 0',
      ['train', 'examples/quick.net', '--batch', '0'],
      'fmgpu: error: --batch: expected a whole number ≥ 1 for batch but found "0"',
    ],
    ['negative lr', ['train', 'examples/quick.net', '--lr', '-1'], 'fmgpu: error: --lr: '],
    ['flag without value', ['train', 'examples/quick.net', '--subset'], 'fmgpu: error: --subset needs a value'],
    ['missing model file', ['train', 'nope.net'], 'fmgpu: error: nope.net: no such file'],
    [
      'missing data directory',
      ['train', 'examples/quick.net', '--data', '/nonexistent'],
      'fmgpu: error: data directory /nonexistent not found: ' +
        'install Fashion-MNIST with `apt-get install dataset-fashion-mnist`',
    ],
    ['missing run directory', ['eval', '/nonexistent-run'], 'fmgpu: error: run directory /nonexistent-run not found'],
    ['predict without images', ['predict', '/nonexistent-run'], 'fmgpu: error: predict needs a run and images'],
  ];
  it.each(usage)('%s: exit 2, one line on stderr (no command: the usage), nothing on stdout', (name, args, message) => {
    const r = fmgpu(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    if (name === 'no command') expect(r.err).toMatch(/^fmgpu \S+: .*\n\nusage: fmgpu COMMAND \[options\]\n/);
    else {
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toContain(message);
    }
  });
});

describe('summary', () => {
  it('prints the table, exit 0', () => {
    const r = fmgpu('summary', 'examples/reference.net');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Total params: 241,546');
    expect(r.out).toContain('Mult-adds per image (M): 7.64');
  });
  it('takes a model of any class count: a file alone has no data to check it against', () => {
    const file = join(tmp, 'three-classes.net');
    writeFileSync(file, 'input 16x16x1\nconv 4 3x3 relu\npool 2\ndense 3 softmax\n');
    const r = fmgpu('summary', file, '--fusions');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(' dense1 (Dense)              (None, 3)                 591'); // 196·3 + 3
    // It says what train will check: the data's class count (Fashion-MNIST's 10 without --data).
    expect(r.out).toContain(
      'note: the network ends in 3 outputs: it trains on data of 3 classes (Fashion-MNIST, the default data, has 10)',
    );
    expect(fmgpu('summary', 'examples/reference.net').out).not.toContain('note:');
  });
  it('--cost DEVICE: the training images/s the cost model predicts, said to be a prediction', () => {
    const r = fmgpu('summary', 'examples/reference.net', '--cost', 'h100', '--batch', '256');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\nCost model, h100: [\d,]+ training images\/s at batch 256, \d+ dispatches a step/);
    expect(r.out).toContain('(a prediction, not a measurement');
  });
  it('--fusions: one line per fused kernel of a training step and of inference, naming its layers and ops', () => {
    const r = fmgpu('summary', 'examples/reference.net', '--fusions');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Fused kernels in a training step (8;');
    expect(r.out).toContain('\n  forward   conv1 conv2d + pool1 maxpool + dropout1 dropout: conv+maxpool+dropout\n');
    // conv3's 7x7 output pools in valid windows: its last row and column are in no window.
    expect(r.out).toContain('\n  forward   conv3 conv2d + pool3 maxpool + dropout3 dropout: conv+maxpool+dropout\n');
    expect(r.out).toContain('\n  forward   dense1 dense + dropout4 dropout: dense+dropout\n');
    expect(r.out).toContain(
      "\n  backward  dense1 dense (relu') + dropout4 dropout: dropout+relu' in dense2 dense's dX\n",
    );
    // Then inference's: the convs' poolings alone (no dropout, no backward).
    expect(r.out).toContain(
      '\nFused kernels at inference (3; each replaces the unfused dispatches of its ops):\n' +
        '  forward   conv1 conv2d + pool1 maxpool: conv+maxpool\n',
    );
    expect(fmgpu('summary', 'examples/best.net', '--fusions').out).toContain(
      '\n  both ways res1.bn1 batchnorm + res1.act1 activation: batchnorm+relu\n',
    );
    // strided.net: no pooling, no dropout, no batch norm: each layer's relu' alone, in the dX of the layer above.
    const strided = fmgpu('summary', 'examples/strided.net', '--fusions').out;
    expect(strided).toContain(
      '\nFused kernels in a training step (4; each replaces the unfused dispatches of its ops):\n' +
        "  backward  conv1 conv2d (relu'): relu' in conv2 conv2d's dX\n",
    );
    expect(strided).toContain("\n  backward  conv3 conv2d (relu'): relu' in dense1 dense's dX\n");
    expect(strided).toContain('Fused kernels at inference: none');
  });
  it('--cost DEVICE --fusions: also the GEMMs that device runs side by side at the batch', () => {
    const r = fmgpu('summary', 'examples/reference.net', '--cost', 'h100', '--fusions');
    expect(r.code).toBe(0);
    expect(r.out).toContain('\nGEMMs side by side at batch 64 (3; each pair one dispatch):\n');
    expect(r.out).toContain("\n  matmul 64x10x128 + dropout+relu' p=0.25 ∥ matmul 128x64x10 + bias grad\n");
    // And the conv passes it runs by Winograd (src/ops/conv2d_winograd.ts): conv2's and conv3's forward, dX and dW
    // (conv2's dW on the 32-side tile, 132 even splits filling the device: apart from its dX, which fills alone).
    expect(r.out).toContain(
      '\nConv passes by Winograd at batch 64 (6; 16 multiply-adds where the direct conv takes 36):\n',
    );
    expect(r.out).toContain(
      '\n  conv2d backward weights winograd 64x32x14x14 k64 3x3/1x1 same + bias grad split 132\n',
    );
    // Without a device there is no plan to pair.
    expect(fmgpu('summary', 'examples/reference.net', '--fusions').out).not.toContain('side by side');
  });
  it("--cost DEVICE --fusions: where the batch is gathered, in the first conv's forward or its own pass", () => {
    const h100 = fmgpu('summary', 'examples/reference.net', '--cost', 'h100', '--fusions').out;
    const conv1 = 'gather + conv2d forward 64x1x28x28 k32 3x3/1x1 same';
    expect(h100).toContain(`\nThe batch gathered at batch 64 in the first conv's forward: ${conv1}`);
    // The igpu profile's kernels bind 8 storage buffers: conv1's pooled, gathering forward would bind 13.
    const igpu = fmgpu('summary', 'examples/reference.net', '--cost', 'igpu', '--fusions').out;
    expect(igpu).toContain('\nThe batch gathered at batch 64 in its own pass');
    // conv1's weight gradient by the narrow kernel; the loss in dense2's GEMM (two bands of 32 rows), whose
    // totals the update adds with the weight gradients' sums as it ends the step.
    expect(h100).toContain('\n  conv2d backward weights narrow 64x1x28x28 k32 3x3/1x1 same + bias grad split 132\n');
    expect(h100).toContain("\nThe loss at batch 64 in the logits' GEMM: matmul 64x128x10 + softmax_xent\n");
    expect(h100).toMatch(/\nThe step ended at batch 64 by its update: adam .* conv1 132, .* splits \+ loss totals 2\n/);
    // The igpu profile binds 8 storage buffers: no loss in the GEMM (10), its own pass, which adds its totals.
    expect(igpu).toContain('\nThe loss at batch 64 in its own pass: softmax_xent 64x10 + totals\n');
  });
  it('--cost DEVICE --fusions: the dX passes completing the gradient of a tensor two layers read', () => {
    // residual.net (at its own batch, 128): each block's input (read by its first conv and its shortcut) gets its
    // gradient summed, and the relu' of the add before it, where the block's first conv's dX stores; reference.net
    // has no such tensor.
    expect(fmgpu('summary', 'examples/residual.net', '--cost', 'h100', '--fusions').out).toContain(
      '\nGradients of tensors two layers read, completed in a dX at batch 128 (2; the earlier gradient added, and ' +
        "the writer's act', as it stores):\n  conv2d backward input 128x16x28x28 k32 3x3/2x2 same + sum+relu'\n" +
        "  conv2d backward input winograd 128x16x28x28 k16 3x3/1x1 same + sum+relu'\n",
    );
    expect(fmgpu('summary', 'examples/reference.net', '--cost', 'h100', '--fusions').out).not.toContain('two layers');
  });
  it('--cost DEVICE --fusions: the batch norm passes taking their channels whole', () => {
    // fast.net at batch 64 on an H100: conv5's batch norm (64x128x49: 13 elements a thread) is one slice a
    // channel, one pass each way; the others (64x32x784, 64x64x196) keep their slices and two passes.
    const out = fmgpu('summary', 'examples/fast.net', '--cost', 'h100', '--batch', '64', '--fusions').out;
    expect(out).toContain(
      '\nBatch norm passes taking their channels whole at batch 64 (2; one slice a channel: each pass makes the ' +
        'statistics or sums it uses, no pass of their own):\n' +
        '  batchnorm stats+train 64x128x49 + relu + maxpool 2x2/2x2\n  batchnorm sums+backward 64x128x49\n',
    );
    expect(out).not.toMatch(/(stats\+train|sums\+backward) 64x(32|64)x/);
  });
  it("--cost with a model past the device's limits: exit 2 before anything is printed", () => {
    const f = join(tmp, 'wide.net');
    writeFileSync(f, 'conv 64 3x3 same relu\nflatten\ndense 2048 relu\ndense 10 softmax\n');
    const r = fmgpu('summary', f, '--cost', 'h100');
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `fmgpu: error: ${f} at batch 32 does not fit h100: buffer "parameters 1" needs 411041792 bytes but h100 ` +
        'allows at most 268435456\n',
    );
    expect(r.code).toBe(2);
  });
  it('--cost with an unknown device: exit 2 before anything is printed', () => {
    const r = fmgpu('summary', 'examples/reference.net', '--cost', 'abacus');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^fmgpu: error: no device profile abacus \(profiles: h100, h200, igpu\)/);
  });
  it('language errors: FILE:LINE:COL, excerpt, exit 2, no stack trace', () => {
    const f = join(tmp, 'bad.net');
    writeFileSync(f, 'conv 8 3x3 relu\ncnv 3 3x3\n');
    const r = fmgpu('summary', f);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${f}:2:1: error: unknown layer "cnv" (did you mean "conv"?)\n  2 │ cnv 3 3x3\n    ╵ ~~~\n`);
  });
});

describe('end to end on generated data', () => {
  const run = join(tmp, 'run');
  it('train writes a complete run directory and reports the test result as JSON', () => {
    const r = fmgpu('train', TINY, '--data', data, '--out', run, '--validation', '0.1', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const events = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0].event).toBe('start');
    expect(events.filter((e) => e.event === 'epoch')).toHaveLength(2);
    const last = events.at(-1);
    expect(last.event).toBe('test');
    expect(last.test_accuracy).toBeGreaterThan(0.5);
    for (const f of [
      'model.net',
      'run.json',
      'history.json',
      'history.csv',
      'metrics.json',
      'weights.safetensors',
      'checkpoint/weights.safetensors',
      'checkpoint/optimizer.safetensors',
      'checkpoint/state.json',
    ])
      expect(existsSync(join(run, f)), f).toBe(true);
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    expect(metrics.per_class).toHaveLength(10);
    expect(metrics.confusion.reduce((a: number, b: number) => a + b, 0)).toBe(200);
    expect(readFileSync(join(run, 'history.csv'), 'utf8').split('\n')[0]).toBe(
      'epoch,seconds,loss,accuracy,val_loss,val_accuracy,lr',
    );
  });

  it('eval prints accuracy, the confusion matrix and a classification report; two runs ensemble', () => {
    const r = fmgpu('eval', run, '--data', data);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/test loss \d\.\d{4} {2}accuracy \d+\.\d\d% \(200 images\)/);
    expect(r.out).toContain('precision    recall  f1-score   support');
    expect(r.out).toContain('weighted avg');
    const two = fmgpu('eval', run, run, '--data', data);
    expect(two.out).toContain('ensemble of 2 runs, averaged probabilities');
    expect(two.out).toContain('ensemble of 2 runs, majority vote');
    // An ensemble of one run twice scores as that run (its probabilities, averaged with themselves).
    const plain = JSON.parse(fmgpu('eval', run, '--data', data, '--json').out.trim());
    const ensemble = fmgpu('eval', run, run, '--data', data, '--json')
      .out.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(ensemble[2].test_accuracy).toBe(plain.test_accuracy);
    expect(ensemble[2].test_loss).toBeCloseTo(plain.test_loss, 5);
  });

  it('eval --tta scores each test image averaged with its mirror image', () => {
    const r = fmgpu('eval', run, '--data', data, '--tta');
    expect(r.err).toBe('');
    expect(r.out).toMatch(/accuracy \d+\.\d\d% \(200 images, each averaged with its mirror image\)/);
    const j = JSON.parse(fmgpu('eval', run, '--data', data, '--tta', '--json').out.trim());
    expect(j.tta).toBe(true);
    expect(j.confusion.reduce((a: number, b: number) => a + b, 0)).toBe(200);
    expect(JSON.parse(fmgpu('eval', run, '--data', data, '--no-tta', '--json').out.trim()).tta).toBe(false);
  });

  it('train --tta scores the test set averaging each image with its mirror, and says so', () => {
    expect(JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')).tta).toBe(false); // the run above, without it
    const args = ['train', TINY, '--data', data, '--subset', '64', '--epochs', '1', '--tta'];
    const dir = join(tmp, 'tta');
    const r = fmgpu(...args, '--out', dir, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const last = JSON.parse(r.out.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ event: 'test', tta: true, n: 200 });
    const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
    expect(metrics).toMatchObject({ tta: true, test_accuracy: last.test_accuracy, test_loss: last.test_loss });
    // eval scores the run as it was trained (the --tta flag saved in run.json), the same as train.
    const ev = JSON.parse(fmgpu('eval', dir, '--data', data, '--json').out.trim());
    expect(ev.tta).toBe(true);
    expect(ev.test_accuracy).toBe(metrics.test_accuracy);
    expect(ev.test_loss).toBeCloseTo(metrics.test_loss, 5);
    const plain = fmgpu(...args, '--out', join(tmp, 'tta-plain'));
    expect(plain.code).toBe(0);
    expect(plain.out).toMatch(
      /^test: loss \d\.\d{4} {2}accuracy \d+\.\d\d% \(200 images, each averaged with its mirror image\) {2}→ /m,
    );
    // Then what to do with the run: its report, a prediction, an export.
    const made = join(tmp, 'tta-plain');
    expect(plain.out.trim().split('\n').at(-1)).toBe(
      `next: open ${join(made, 'report.html')} (curves, confusion, mistakes); fmgpu predict ${made} photo.jpg; ` +
        `fmgpu export ${made}`,
    );
  });

  it("report without metrics.json scores the test set with the model file's tta", () => {
    // A run directory without metrics.json: one dense layer whose weights are not mirror-symmetric,
    // so that an image and its mirror score apart.
    const dir = join(tmp, 'tta-report');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.net'), 'dense 10 softmax\ntrain tta=true\n');
    const w = Float32Array.from({ length: 784 * 10 }, (_, i) => 0.05 * Math.sin(i * 0.7));
    writeFileSync(
      join(dir, 'weights.safetensors'),
      encodeSafetensors(
        new Map([
          ['dense1.weight', { shape: [784, 10], data: w }],
          ['dense1.bias', { shape: [10], data: new Float32Array(10) }],
        ]),
      ),
    );
    const loss = (flag: string): string =>
      JSON.parse(fmgpu('eval', dir, '--data', data, flag, '--json').out.trim()).test_loss.toFixed(4);
    const [tta, plain] = [loss('--tta'), loss('--no-tta')];
    expect(tta).not.toBe(plain); // the page can tell them apart
    expect(fmgpu('report', dir, '--data', data).code).toBe(0);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain(
      `<div class="k">test loss</div><div class="v">${tta}</div>`,
    );
  });

  it('predict reads PNG (RGB, gray 16-bit, RGBA) and JPEG, inverts light backgrounds, prints the top 3', () => {
    const img = photo(40, 60);
    writeFileSync(join(tmp, 'rgb.png'), encodePng(40, 60, img, 2, 8));
    writeFileSync(join(tmp, 'gray16.png'), encodePng(40, 60, img, 0, 16));
    writeFileSync(join(tmp, 'rgba.png'), encodePng(40, 60, img, 6, 8));
    writeFileSync(join(tmp, 'photo.jpg'), jpeg.encode({ data: img, width: 40, height: 60 }, 90).data);
    const r = fmgpu(
      'predict',
      run,
      join(tmp, 'rgb.png'),
      join(tmp, 'gray16.png'),
      join(tmp, 'rgba.png'),
      join(tmp, 'photo.jpg'),
      '--json',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row.inverted).toBe(true);
      expect(row.top).toHaveLength(3);
      expect(row.top[0].probability).toBeGreaterThanOrEqual(row.top[1].probability);
    }
    const plain = fmgpu('predict', run, join(tmp, 'rgb.png'));
    // Trained on bars at different heights (not centred objects): the plain path, the whole picture.
    expect(plain.out).toMatch(
      /rgb\.png: [A-Za-z/ -]+ \d+\.\d%, .*\n {2}photo 40×60 RGB → whole picture → 28×28, inverted\n/,
    );
    // --top N: as many classes (every one: Keras's predictions[i]), likeliest first, summing to 1.
    const all = JSON.parse(fmgpu('predict', run, join(tmp, 'rgb.png'), '--json', '--top', '10').out.trim());
    expect(all.top).toHaveLength(10);
    expect(all.top.reduce((s: number, c: { probability: number }) => s + c.probability, 0)).toBeCloseTo(1, 5);
    expect(fmgpu('predict', run, join(tmp, 'rgb.png'), '--top', '1').out.split('\n')[0]).toMatch(/^.*rgb\.png: [^,]+$/);
    expect(fmgpu('predict', run, '--test', '0', '--top', '50', '--json', '--data', data).out).toMatch(/"top":\[/);
  });

  it("--init starts from another run's weights (fine-tuning)", () => {
    const dir = join(tmp, 'finetune');
    const r = fmgpu('train', TINY, '--data', data, '--out', dir, '--init', run, '--epochs', '1', '--json');
    expect(r.code).toBe(0);
    const first = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'epoch');
    // Starting from trained weights, the first epoch's loss is already low.
    expect(first.loss).toBeLessThan(1.5);
  });

  it("trains from Kaggle's CSV form, and refuses a malformed CSV with its line number", () => {
    const csv = (n: number, seed: number): string => {
      const { images, labels } = syntheticImages(n, seed);
      const rows = [`label,${Array.from({ length: 784 }, (_, i) => `pixel${i + 1}`).join(',')}`];
      for (let i = 0; i < n; i++) rows.push([labels[i], ...images.subarray(i * 784, (i + 1) * 784)].join(','));
      return `${rows.join('\n')}\n`;
    };
    writeFileSync(join(tmp, 'train.csv'), csv(320, 5));
    writeFileSync(join(tmp, 'test.csv'), csv(100, 6));
    const r = fmgpu(
      'train',
      TINY,
      '--csv',
      join(tmp, 'train.csv'),
      '--test-csv',
      join(tmp, 'test.csv'),
      '--out',
      join(tmp, 'csvrun'),
      '--epochs',
      '1',
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('(100 images)');
    const lines = csv(3, 7).split('\n');
    lines[1] += ',7';
    writeFileSync(join(tmp, 'bad.csv'), lines.join('\n'));
    const bad = fmgpu('train', TINY, '--csv', join(tmp, 'bad.csv'), '--test-csv', join(tmp, 'test.csv'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/bad\.csv:2: 786 columns, expected 785/);
  });

  it('predict refuses a file that is not an image', () => {
    writeFileSync(join(tmp, 'not.png'), 'hello');
    const r = fmgpu('predict', run, join(tmp, 'not.png'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('not.png: not a PNG or JPEG image');
  });

  it('Ctrl-C stops with a checkpoint (exit 130) and --resume finishes the run', async () => {
    const dir = join(tmp, 'interrupted');
    const child = spawn('node', ['bin/fmgpu.js', 'train', TINY, '--data', data, '--out', dir, '--epochs', '3'], {
      env,
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('epoch 1/3 ') && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code).toBe(130);
    const state = JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).toBeGreaterThanOrEqual(1);
    expect(readdirSync(dir).filter((f) => f.startsWith('checkpoint') || f.startsWith('fmgpu.lock'))).toEqual([
      'checkpoint',
    ]);
    const r = fmgpu('train', '--resume', dir);
    expect(r.code).toBe(0);
    expect(r.out).toContain('resuming at epoch');
    expect(r.out).toContain('epoch 3/3');
    expect(JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'))).toHaveLength(3);
  });

  // A resume that trains on makes the run's end (its final weights, metrics, report, an exported model) older
  // than its checkpoint: an interrupted one left them, and eval, predict, export and report read those old weights.
  it("a resume that trains on removes the run's older end, so that eval reads the checkpoint", async () => {
    const dir = join(tmp, 'extended');
    expect(fmgpu('train', TINY, '--data', data, '--out', dir, '--epochs', '1').code).toBe(0);
    expect(fmgpu('export', dir).code).toBe(0); // model.onnx, made from that end
    const ended = ['weights.safetensors', 'metrics.json', 'report.html', 'model.onnx'];
    expect(ended.filter((f) => existsSync(join(dir, f)))).toEqual(ended);
    const child = spawn('node', ['bin/fmgpu.js', 'train', '--resume', dir, '--epochs', '4'], { env });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('epoch 2/4 ') && !child.killed) child.kill('SIGINT');
    });
    expect(await new Promise<number | null>((done) => child.on('close', done))).toBe(130);
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')).epoch).toBeGreaterThanOrEqual(2);
    expect(ended.filter((f) => existsSync(join(dir, f)))).toEqual([]);
    const ev = fmgpu('eval', dir, '--data', data);
    expect(ev.code, ev.err).toBe(0);
  });

  it('a run stopped before its end with ema= is scored with its moving averages, as its end would be', () => {
    const dir = join(tmp, 'averaged');
    expect(
      fmgpu('train', TINY, '--data', data, '--out', dir, '--epochs', '1', '--subset', '64', '--ema', '0.9').code,
    ).toBe(0);
    const ended = JSON.parse(fmgpu('eval', dir, '--data', data, '--json').out.trim());
    // As an interrupted run leaves it: the checkpoint (live weights and, in its optimizer state, the averages).
    for (const f of ['weights.safetensors', 'metrics.json', 'report.html']) rmSync(join(dir, f));
    const stopped = JSON.parse(fmgpu('eval', dir, '--data', data, '--json').out.trim());
    expect([stopped.test_loss, stopped.test_accuracy]).toEqual([ended.test_loss, ended.test_accuracy]);
  });

  it('a run stopped before its end with early stopping is scored with the best epoch’s weights, as its end', () => {
    const [dir, other] = [join(tmp, 'stopped-best'), join(tmp, 'stopped-other')];
    const args = ['--data', data, '--epochs', '1', '--subset', '64', '--early-stop', '3'];
    expect(fmgpu('train', TINY, ...args, '--out', dir).code).toBe(0);
    expect(fmgpu('train', TINY, ...args, '--seed', '7', '--out', other).code).toBe(0);
    const otherScore = JSON.parse(fmgpu('eval', other, '--data', data, '--json').out.trim());
    // Stopped before its end: the checkpoint, whose best weights (here another run's) are what its end restores.
    for (const f of ['weights.safetensors', 'metrics.json', 'report.html']) rmSync(join(dir, f));
    copyFileSync(join(other, 'weights.safetensors'), join(dir, 'checkpoint', 'best.safetensors'));
    const stopped = JSON.parse(fmgpu('eval', dir, '--data', data, '--json').out.trim());
    expect([stopped.test_loss, stopped.test_accuracy]).toEqual([otherScore.test_loss, otherScore.test_accuracy]);
    expect(fmgpu('eval', dir, '--data', data).out).toContain(
      `${dir}: stopped before its end after epoch 1 (step 2): scored with its checkpoint, the best epoch’s weights, ` +
        'as its end would restore',
    );
  });

  it('what a resume is given is the run’s from then on: run.json records it, eval and a later resume read it', () => {
    const dir = join(tmp, 'recorded');
    expect(fmgpu('train', TINY, '--data', data, '--out', dir, '--epochs', '1', '--subset', '64').code).toBe(0);
    const r = fmgpu('train', '--resume', dir, '--epochs', '2', '--tta');
    expect(r.code, r.err).toBe(0);
    const flags = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).flags;
    expect(flags).toMatchObject({ epochs: '2', tta: true, subset: 64 });
    expect(flags.resume).toBeUndefined();
    expect(JSON.parse(fmgpu('eval', dir, '--json').out.trim()).tta).toBe(true);
    expect(fmgpu('train', '--resume', dir).out).toContain('all 2 epochs are trained: evaluating');
    expect(fmgpu('train', '--resume', dir, '--epochs', '1').out).toContain(
      'the checkpoint has 2 epochs, more than the 1 asked: evaluating it as it is',
    );
  });

  it('a resume given other --epochs says how a cosine schedule stretches over them: the rates either side', () => {
    const dir = join(tmp, 'stretched');
    const args = ['--data', data, '--epochs', '2', '--subset', '64'];
    expect(fmgpu('train', TINY, ...args, '--schedule', 'cosine', '--out', dir).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')).epochs).toBe(2);
    const r = fmgpu('train', '--resume', dir, '--epochs', '4');
    expect(r.code, r.err).toBe(0);
    // 2 steps an epoch: the last step was 3 of 4, the next is 4 of 8; lr 0.01.
    const rate = (t: number, T: number): string => (0.01 * 0.5 * (1 + Math.cos((Math.PI * t) / T))).toPrecision(3);
    expect(r.out).toContain(
      'changed since the checkpoint, from the next step on: --epochs 2 → 4: the cosine schedule now spans 4 ' +
        `epochs, its rate ${rate(3, 4)} at the last step and ${rate(4, 8)} at the next`,
    );
    // A constant rate does not stretch: nothing to say.
    const flat = join(tmp, 'flat');
    expect(fmgpu('train', TINY, ...args, '--out', flat).code).toBe(0);
    expect(fmgpu('train', '--resume', flat, '--epochs', '3').out).not.toContain('changed since');
  });
});

describe('the last partial batch of an epoch (issue 18)', () => {
  it('is a step of its own; a run checkpointed before, at floor(n / batch) steps an epoch, keeps that count', () => {
    const dir = join(tmp, 'partial');
    const r = fmgpu('train', TINY, '--data', data, '--subset', '100', '--epochs', '1', '--out', dir);
    expect(r.code).toBe(0);
    const file = join(dir, 'checkpoint', 'state.json');
    const s = JSON.parse(readFileSync(file, 'utf8'));
    const n: number = s.data.images;
    expect(n % 32).toBeGreaterThan(0);
    const [full, steps] = [Math.floor(n / 32), Math.ceil(n / 32)];
    expect(s).toMatchObject({ epoch: 1, step: steps, stepsPerEpoch: steps, lastBatch: 'train' });
    // As the code before it wrote it: the remainder dropped, no lastBatch.
    const { lastBatch: _, ...old } = { ...s, step: full, stepsPerEpoch: full };
    writeFileSync(file, JSON.stringify(old));
    const resumed = fmgpu('train', '--resume', dir, '--epochs', '2');
    expect(resumed.code).toBe(0);
    const after = JSON.parse(readFileSync(file, 'utf8'));
    expect(after).toMatchObject({ epoch: 2, step: 2 * full, stepsPerEpoch: full, lastBatch: 'drop' });
  });
});
