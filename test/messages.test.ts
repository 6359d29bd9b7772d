// Messages under hostile input: a model file of 200,000 layers, a byte-order mark, control
// characters in a .net file, a data cell or a file name, weights holding NaN or Inf. Each is
// answered by a clear line, never a stack overflow, an invisible character or a terminal escape.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureBuilt, encodePng, photo, syntheticImages, writeIdxDir } from './helpers/files.ts';
import { DslError, escapeControl, formatError, parseNet, summarize } from '../dsl/index.ts';
import { buildGraph } from '../src/model/build.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../src/model/safetensors.ts';
import { lineChart } from '../src/report/svg.ts';
import { parseArgs } from '../src/cli/args.ts';
import { DataError } from '../src/errors.ts';

const BIN = resolve('bin/fmgpu.js');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (args: string[]) => {
  const r = spawnSync('node', [BIN, ...args], { encoding: 'utf8', env, timeout: 300_000, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
// Had fmgpu opened the GPU before checking its input, the error would be about this adapter.
const NO_GPU = ['--adapter', 'no-such-gpu'];

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-messages-'));
const file = (name: string, text: string | Uint8Array): string => (
  writeFileSync(join(tmp, name), text), join(tmp, name)
);
const errorText = (source: string, name = 'model.net'): string => {
  try {
    parseNet(source, name);
  } catch (e) {
    if (e instanceof DslError) return formatError(e);
    throw e;
  }
  throw new Error('expected an error');
};

/** Nothing a terminal would act on: no C0 control but newline and tab, no DEL, no C1 control. */
function expectPrintable(text: string): void {
  const bad = [...text]
    .map((ch) => ch.codePointAt(0)!)
    .filter((c) => (c < 0x20 && c !== 0x0a && c !== 0x09) || (c >= 0x7f && c <= 0x9f));
  expect(
    bad.map((c) => `U+${c.toString(16).padStart(4, '0')}`),
    JSON.stringify(text),
  ).toEqual([]);
}

beforeAll(() => {
  ensureBuilt();
}, 120_000);

describe('a model file of 200,000 layers: no stack overflow', () => {
  const RELUS = `${'relu\n'.repeat(200_000)}dense 10\n`;

  it('parseNet and summarize take it; one row per layer', () => {
    const ir = parseNet(RELUS, 'relus.net');
    expect(ir.layers).toHaveLength(200_002); // the relus, the implied flatten, the dense layer
    const text = summarize(ir).split('\n');
    expect(text).toHaveLength(200_002 + 10); // and the title, header, totals, mult-adds and rules
    expect(text).toContain(' act200000 (Activation)      (None, 28, 28, 1)         0');
    expect(text.at(-5)).toBe('Total params: 7,850');
  });

  it('fmgpu summary prints it', () => {
    const r = fmgpu(['summary', file('relus.net', RELUS)]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(' act200000 (Activation)');
    expect(r.out).toContain('Total params: 7,850');
  });

  it("a report's curves over 200,000 epochs", () => {
    const points: [number, number][] = Array.from({ length: 200_000 }, (_, i) => [i + 1, 1 / (i + 1)]);
    expect(
      lineChart({
        title: 'Loss',
        xLabel: 'epoch',
        format: String,
        series: [{ name: 'loss', color: '#2f6db5', points }],
      }),
    ).toMatch(/^<svg /);
  });

  it('200,000 arguments after --', () => {
    const rest = Array.from({ length: 200_000 }, (_, i) => `img${i}.png`);
    expect(parseArgs(['--', ...rest], {}).positional).toHaveLength(200_000);
  });
});

describe('a UTF-8 byte-order mark is skipped, and columns on line 1 do not count it', () => {
  const BOM = '\uFEFF';

  it('the model parses as without it', () => {
    const src = 'conv 4 3x3 relu\npool 2\ndense 10 softmax\n';
    expect(summarize(parseNet(BOM + src, 'm.net'))).toBe(summarize(parseNet(src, 'm.net')));
  });

  it('errors on line 1 name the column and excerpt the line without it', () => {
    expect(errorText(`${BOM}cnv 4 3x3\ndense 10`)).toBe(
      'model.net:1:1: error: unknown layer "cnv" (did you mean "conv"?)\n  1 │ cnv 4 3x3\n    ╵ ~~~',
    );
    expect(errorText(`${BOM}conv 4 3x3 relux\ndense 10`)).toBe(
      'model.net:1:12: error: unknown conv option "relux" (did you mean "relu"?)\n' +
        '  1 │ conv 4 3x3 relux\n    ╵            ~~~~~',
    );
    expect(errorText(`${BOM}conv 4 3x3\ncnv 4`).split('\n')[0]).toBe(
      'model.net:2:1: error: unknown layer "cnv" (did you mean "conv"?)',
    );
  });

  it('an empty file with a mark: the network is empty', () => {
    expect(errorText(BOM)).toBe('model.net:1:1: error: expected a layer but found end of file\n  1 │ \n    ╵ ^');
  });

  it('fmgpu summary of a file saved with a mark', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('conv 4 3x3 relu\ndense 10\n')]);
    const ok = fmgpu(['summary', file('bom.net', bytes)]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('conv1 (Conv2D)');
    const bad = fmgpu([
      'summary',
      file('bom-bad.net', new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('conv 4 3x3 relux\n')])),
    ]);
    expect(bad.err).toBe(
      `${join(tmp, 'bom-bad.net')}:1:12: error: unknown conv option "relux" (did you mean "relu"?)\n` +
        '  1 │ conv 4 3x3 relux\n    ╵            ~~~~~\n',
    );
  });
});

describe('control characters are escaped in every error the CLI prints', () => {
  it('escapeControl: C0 but tab, DEL and C1 become visible escapes; the rest is kept', () => {
    expect(escapeControl('a\x1b[2Jb\x07\x00\r\n\tc\x7f\u0085\u009bé🙂\u00a0')).toBe(
      'a\\x1b[2Jb\\x07\\x00\\x0d\\x0a\tc\\x7f\\u0085\\u009bé🙂\u00a0',
    );
  });

  it('a .net excerpt: the escape in the line, the marker under its whole width', () => {
    expect(errorText('conv 4 3x3 \x1b[31mrelu\ndense 10')).toBe(
      'model.net:1:12: error: unexpected character "\\u001b"\n' +
        '  1 │ conv 4 3x3 \\x1b[31mrelu\n    ╵            ~~~~',
    );
    // A carriage return mid-line is blank to the lexer: the marker after it counts its escape's width.
    expect(errorText('conv 4\r3x3 relux # \x07\ndense 10')).toBe(
      'model.net:1:12: error: unknown conv option "relux" (did you mean "relu"?)\n' +
        '  1 │ conv 4\\x0d3x3 relux # \\x07\n    ╵               ~~~~~',
    );
    expect(errorText('dense 10\x7f\x7f relu')).toBe(
      'model.net:1:9: error: unexpected character "\\x7f"\n  1 │ dense 10\\x7f\\x7f relu\n    ╵         ~~~~',
    );
    expect(errorText('dense \u009b10')).toBe(
      'model.net:1:7: error: unexpected character "\\u009b"\n  1 │ dense \\u009b10\n    ╵       ~~~~~~',
    );
  });

  it('fmgpu summary of a .net file holding ESC and CSI', () => {
    const f = file('esc.net', 'conv 4 3x3 \x1b[31mrelu\x1b[0m\n\u009b2Jdense 10\n');
    const r = fmgpu(['summary', f]);
    expect(r.code).toBe(2);
    expectPrintable(r.err);
    expect(r.err).toBe(
      `${f}:1:12: error: unexpected character "\\u001b"\n` +
        '  1 │ conv 4 3x3 \\x1b[31mrelu\\x1b[0m\n    ╵            ~~~~\n',
    );
  });

  it('a CSV cell that would set the terminal title', () => {
    const { images, labels } = syntheticImages(4, 3);
    const rows = Array.from({ length: 4 }, (_, i) => [labels[i], ...images.subarray(i * 784, (i + 1) * 784)].join(','));
    rows[1] = rows[1]!.replace(/^(\d+),\d+,/, '$1,\x1b]0;PWNED\x07,');
    const bad = file('title.csv', `${rows.join('\n')}\n`);
    const good = file('good.csv', `${rows.filter((_, i) => i !== 1).join('\n')}\n`);
    const r = fmgpu([
      'train',
      file('tiny.net', 'conv 2 3x3 relu\npool 2\ndense 10 softmax\n'),
      '--csv',
      bad,
      '--test-csv',
      good,
      '--out',
      join(tmp, 'csv-run'),
      ...NO_GPU,
    ]);
    expect(r.code).toBe(2);
    expectPrintable(r.err);
    expect(r.err).toBe(`fmgpu: error: ${bad}:2: column 2 (pixel1) is not a number: "\\x1b]0;PWNED\\x07"\n`);
  });

  it('a file name that holds controls, with and without --debug', () => {
    const name = join(tmp, 'evil\x1b]0;PWNED\x07\u009b2J.net');
    const r = fmgpu(['summary', name]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`fmgpu: error: ${join(tmp, 'evil\\x1b]0;PWNED\\x07\\u009b2J.net')}: no such file\n`);
    const debug = fmgpu(['summary', name, '--debug']);
    expect(debug.code).toBe(2);
    expectPrintable(debug.err);
    expect(debug.err).toContain('\\x1b]0;PWNED\\x07');
  });
});

describe('weights holding NaN or Inf are refused on load, naming the file, the tensor and the index', () => {
  const SRC = 'conv 2 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=2 batch=32 lr=0.01\n';
  const data = join(tmp, 'data');

  /** The model's parameters (every value 0.01), with `edit` applied. */
  function weights(edit: (w: Map<string, NamedTensor>) => void = () => undefined): Map<string, NamedTensor> {
    const params = buildGraph(parseNet(SRC, 'm.net'), 1).params;
    const w = new Map(
      params.map((p) => [
        p.name,
        { shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.01) },
      ]),
    );
    edit(w);
    return w;
  }
  const withNaN = (): Map<string, NamedTensor> => weights((w) => (w.get('conv1.weight')!.data[17] = NaN));

  /** A finished run as fmgpu train leaves it (model.net, weights.safetensors), made without a GPU. */
  function runDir(name: string, w: Map<string, NamedTensor>): string {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.net'), SRC);
    writeFileSync(join(dir, 'weights.safetensors'), encodeSafetensors(w));
    return dir;
  }

  /** A run interrupted after epoch 1: its checkpoint folder, made without a GPU (Adam's m and v slots). */
  function checkpointDir(name: string, w: Map<string, NamedTensor>, slots: Map<string, NamedTensor>): string {
    const dir = join(tmp, name);
    mkdirSync(join(dir, 'checkpoint'), { recursive: true });
    writeFileSync(join(dir, 'model.net'), SRC);
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ flags: { data } }));
    writeFileSync(join(dir, 'checkpoint', 'weights.safetensors'), encodeSafetensors(w));
    writeFileSync(join(dir, 'checkpoint', 'optimizer.safetensors'), encodeSafetensors(slots));
    const history = [{ epoch: 1, seconds: 1, loss: 2, accuracy: 0.2, val_loss: 2, val_accuracy: 0.2, lr: 0.01 }];
    writeFileSync(
      join(dir, 'checkpoint', 'state.json'),
      JSON.stringify({ epoch: 1, step: 4, seed: 0, optimizer: 'adam', best: null, history }),
    );
    return dir;
  }
  const slots = (bad?: [string, number, number]): Map<string, NamedTensor> => {
    const out = new Map<string, NamedTensor>();
    for (const [n, t] of weights())
      for (const s of ['m', 'v'])
        out.set(`${n}.${s}`, { shape: [t.data.length], data: new Float32Array(t.data.length) });
    if (bad) out.get(bad[0])!.data[bad[1]] = bad[2];
    return out;
  };

  beforeAll(() => void writeIdxDir(data, 128, 32));

  it('decodeSafetensors: the first value that is NaN, +Inf or -Inf', () => {
    const decode = (w: Map<string, NamedTensor>): unknown => {
      try {
        decodeSafetensors(encodeSafetensors(w), 'w.safetensors');
      } catch (e) {
        return e;
      }
      return null;
    };
    const nan = decode(withNaN());
    expect(nan).toBeInstanceOf(DataError);
    expect((nan as Error).message).toBe('w.safetensors: tensor "conv1.weight" holds NaN at index 17');
    const inf = decode(
      weights((w) => ((w.get('dense1.weight')!.data[3] = -Infinity), (w.get('dense1.weight')!.data[9] = NaN))),
    );
    expect((inf as Error).message).toBe('w.safetensors: tensor "dense1.weight" holds -Infinity at index 3');
    expect(decode(weights((w) => (w.get('dense1.bias')!.data[0] = 3.4e38)))).toBeNull(); // large is not infinite
  });

  const rows: [string, () => string[], () => string][] = [
    [
      'eval',
      () => ['eval', runDir('ev-nan', withNaN()), '--data', data],
      () => join(tmp, 'ev-nan', 'weights.safetensors'),
    ],
    [
      'predict',
      () => ['predict', runDir('pr-nan', withNaN()), file('ok.png', encodePng(40, 60, photo(40, 60)))],
      () => join(tmp, 'pr-nan', 'weights.safetensors'),
    ],
    [
      'train --init',
      () => [
        'train',
        file('init.net', SRC),
        '--data',
        data,
        '--init',
        runDir('init-nan', withNaN()),
        '--out',
        join(tmp, 'init-out'),
      ],
      () => join(tmp, 'init-nan', 'weights.safetensors'),
    ],
    [
      'train --resume, the weights',
      () => ['train', '--resume', checkpointDir('res-w', withNaN(), slots())],
      () => join(tmp, 'res-w', 'checkpoint', 'weights.safetensors'),
    ],
  ];
  it.each(rows)('%s: exit 2 with one line, before the GPU is opened', (_, args, weightsFile) => {
    const r = fmgpu([...args(), ...NO_GPU]);
    expect(r.err).toBe(`fmgpu: error: ${weightsFile()}: tensor "conv1.weight" holds NaN at index 17\n`);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
  });

  it('train --resume, the optimizer state', () => {
    const dir = checkpointDir('res-opt', weights(), slots(['dense1.weight.v', 5, Infinity]));
    const r = fmgpu(['train', '--resume', dir, ...NO_GPU]);
    expect(r.err).toBe(
      `fmgpu: error: ${join(dir, 'checkpoint', 'optimizer.safetensors')}: ` +
        'tensor "dense1.weight.v" holds Infinity at index 5\n',
    );
    expect(r.code).toBe(2);
  });

  // A slot missing or of another size was refused by the optimizer's load, after the GPU opened and the run's
  // banner printed; docs/reliability.md promises bad input is refused before.
  it('train --resume, optimizer state missing a slot or of another size: before the GPU is opened', () => {
    const file = (d: string) => join(d, 'checkpoint', 'optimizer.safetensors');
    const missing = slots();
    missing.delete('dense1.weight.m');
    const dir = checkpointDir('res-missing', weights(), missing);
    const r = fmgpu(['train', '--resume', dir, ...NO_GPU]);
    expect(r.err).toBe(`fmgpu: error: ${file(dir)}: no tensor "dense1.weight.m"\n`);
    expect([r.code, r.out]).toEqual([2, '']);
    const short = slots();
    short.set('dense1.weight.v', { shape: [3], data: new Float32Array(3) });
    const dir2 = checkpointDir('res-short', weights(), short);
    const r2 = fmgpu(['train', '--resume', dir2, ...NO_GPU]);
    expect(r2.err).toMatch(
      /^fmgpu: error: .*optimizer\.safetensors: tensor "dense1\.weight\.v" has 3 values, not \d+\n$/,
    );
    expect([r2.code, r2.out]).toEqual([2, '']);
  });

  it("a run.json that is not a run's record is refused in one line naming it, not with a TypeError", () => {
    const refused = (json: string, message: string, resume = false): void => {
      const dir = resume ? checkpointDir('json-res', weights(), slots()) : runDir('json-ev', weights());
      writeFileSync(join(dir, 'run.json'), json);
      const r = fmgpu(resume ? ['train', '--resume', dir, ...NO_GPU] : ['eval', dir, '--data', data, ...NO_GPU]);
      expect(r.err).toBe(`fmgpu: error: ${join(dir, 'run.json')}: ${message}\n`);
      expect([r.code, r.out]).toEqual([2, '']);
    };
    refused('null', "not a run's record (a JSON object)");
    const notFlags = '"flags" is not a set of flags (each a string, a number or true/false)';
    refused('{"flags": [1]}', notFlags);
    refused('{"flags": {"lr": null}}', notFlags);
    const lr = '"flags": --lr: expected a number > 0 for lr but found "abc"';
    refused('{"flags": {"lr": "abc"}}', lr);
    refused(JSON.stringify({ flags: { data, lr: 'abc' } }), lr, true);
    // A flag given again is the resume's own: the recorded one is not read.
    const dir = join(tmp, 'json-res');
    const r = fmgpu(['train', '--resume', dir, '--lr', '0.01', ...NO_GPU]);
    expect(r.err).toContain('fmgpu: error: --adapter no-such-gpu: no WebGPU adapter');
  });

  it('the same checkpoint with finite state gets as far as the adapter', () => {
    const r = fmgpu(['train', '--resume', checkpointDir('res-ok', weights(), slots()), ...NO_GPU]);
    expect(r.err).toContain('fmgpu: error: --adapter no-such-gpu: no WebGPU adapter');
    expect(r.code).toBe(2);
  });
});

describe('a loss that is NaN from the first step because the activations overflow says so, and where', () => {
  const data = join(tmp, 'data-overflow');
  beforeAll(() => void writeIdxDir(data, 64, 16));

  it('train --init with weights that overflow dense1: the layer is named, not the learning rate', () => {
    const src = 'dense 10 softmax\ntrain epochs=1 batch=16 lr=0.01\n';
    const net = file('overflow.net', src);
    const run = join(tmp, 'huge-weights');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'model.net'), src);
    // Finite weights whose products with 784 pixels exceed f32's range.
    const params = buildGraph(parseNet(src, 'm.net'), 1).params;
    writeFileSync(
      join(run, 'weights.safetensors'),
      encodeSafetensors(
        new Map(
          params.map((p) => [
            p.name,
            { shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(1e37) },
          ]),
        ),
      ),
    );
    const out = join(tmp, 'overflow-run');
    const r = fmgpu(['train', net, '--data', data, '--init', run, '--out', out]);
    expect(r.err.trim()).toBe(
      `fmgpu: error: the activations overflow with the weights of ${run}: ` +
        'dense1 (dense) gives Infinity on the first training images, before any training step, ' +
        'so the loss became NaN: the network needs normalisation (batchnorm) or fewer layers, ' +
        `not a lower learning rate; no checkpoint was written to ${out} yet`,
    );
    expect(r.code).toBe(1);
  });
});

describe('a loss that is NaN from the first step because the gradients overflow says so, and where', () => {
  const data = join(tmp, 'data-gradients');
  beforeAll(() => void writeIdxDir(data, 64, 16));

  it('train --init with weights whose first gradients overflow: the parameter is named, not the learning rate', () => {
    const src = 'dense 4\ndense 4\ndense 10 softmax\ntrain epochs=1 batch=16 lr=0.01\n';
    const net = file('gradients.net', src);
    const run = join(tmp, 'huge-gradients');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'model.net'), src);
    // Finite activations (dense1 tiny, dense2 and dense3 huge) whose backward products overflow.
    const params = buildGraph(parseNet(src, 'm.net'), 1).params;
    const value = (name: string, i: number): number =>
      name.endsWith('.bias')
        ? 0
        : name === 'dense1.weight'
          ? 1e-30
          : name === 'dense2.weight'
            ? 1e30
            : i % 10 === 0
              ? 1e30
              : 0;
    writeFileSync(
      join(run, 'weights.safetensors'),
      encodeSafetensors(
        new Map(
          params.map((p) => [
            p.name,
            {
              shape: p.shape,
              data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => value(p.name, i)),
            },
          ]),
        ),
      ),
    );
    const r = fmgpu(['train', net, '--data', data, '--init', run, '--out', join(tmp, 'gradients-run')]);
    expect(r.err.trim()).toMatch(
      new RegExp(
        `^fmgpu: error: the gradients overflow with the weights of ${run}: ` +
          'the gradient of dense1\\.weight holds Infinity at the first training step ' +
          '\\(the activations reach [0-9.]+e\\d+ at dense3\\), so the loss became NaN: ' +
          'the network needs normalisation \\(batchnorm\\) or fewer layers, not a lower learning rate; ' +
          'no checkpoint was written to .* yet$',
      ),
    );
    expect(r.code).toBe(1);
  });
});
