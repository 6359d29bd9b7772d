// Command-line parsing (src/cli/args.ts) and how train flags override a file's settings
// (src/cli/train.ts): in-process, no GPU; then the same through the built CLI, where main.ts reads them.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseArgs, flagHelp, UsageError, type FlagSpec } from '../src/cli/args.ts';
import { TRAIN_FLAGS, TRAIN_KEY, applyTrainFlags } from '../src/cli/train.ts';
import { SUMMARY_FLAGS } from '../src/cli/summary.ts';
import { parseNet, TRAIN_KEYS } from '../dsl/index.ts';
import { fmgpu } from './helpers/cli.ts';
import { ensureBuilt } from './helpers/files.ts';

/** The message of the UsageError `f` throws, exactly (a test fails on anything else). */
function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error('no error');
}

const SPECS: Record<string, FlagSpec> = {
  epochs: { type: 'int', min: 1, help: 'epochs' },
  lr: { type: 'number', above: 0, help: 'rate' },
  frac: { type: 'number', min: 0, max: 1, help: 'fraction' },
  out: { type: 'string', help: 'dir' },
  json: { type: 'bool', help: 'json' },
};

describe('parseArgs', () => {
  const ok: [string, string[], object, string[]][] = [
    ['values after the flag', ['a.net', '--epochs', '3', '--out', 'r'], { epochs: 3, out: 'r' }, ['a.net']],
    ['--flag=value', ['--epochs=3', '--lr=1e-3'], { epochs: 3, lr: 0.001 }, []],
    ['bools: bare, =false, --no-', ['--json', '--no-json'], { json: false }, []],
    ['bool =true', ['--json=true'], { json: true }, []],
    ['-- ends the options', ['--', '--epochs', '-x'], {}, ['--epochs', '-x']],
    ['a lone - is positional (stdin by convention)', ['-'], {}, ['-']],
    ['the last repeat wins', ['--epochs', '2', '--epochs', '5'], { epochs: 5 }, []],
    ['zero and exponents', ['--frac', '0', '--lr', '2e-4'], { frac: 0, lr: 0.0002 }, []],
  ];
  it.each(ok)('%s', (_, args, flags, positional) => {
    expect(parseArgs(args, SPECS)).toEqual({ flags, positional });
  });

  const bad: [string, string[], string][] = [
    ['unknown long option', ['--epoch', '3'], 'unknown option --epoch (did you mean --epochs?)'],
    ['letters swapped', ['--otu', 'r'], 'unknown option --otu (did you mean --out?)'],
    ["Keras's name", ['--learning-rate', '0.1'], 'unknown option --learning-rate (did you mean --lr?)'],
    ['nothing near', ['--frobnicate'], 'unknown option --frobnicate'],
    ['unknown short option', ['-e'], 'unknown option -e'],
    ['missing value', ['--out'], '--out needs a value'],
    ['empty value', ['--out='], '--out needs a value'],
    ['not a number', ['--epochs', 'three'], '--epochs must be a whole number, not "three"'],
    ['not whole', ['--epochs', '1.5'], '--epochs must be a whole number, not "1.5"'],
    ['below the minimum', ['--epochs', '0'], '--epochs must be at least 1, not 0'],
    ['not above the bound', ['--lr', '-1'], '--lr must be greater than 0, not -1'],
    ['above the maximum', ['--frac', '1.5'], '--frac must be at most 1, not 1.5'],
    ['infinity', ['--lr', 'Infinity'], '--lr must be a number, not "Infinity"'],
    ['blank', ['--lr', ' '], '--lr must be a number, not " "'],
    ['a bool given a word', ['--json=yes'], '--json takes true or false, not "yes"'],
    ['--no- on a non-bool', ['--no-epochs'], 'unknown option --no-epochs'],
  ];
  it.each(bad)('%s: a UsageError naming the flag', (_, args, message) => {
    expect(() => parseArgs(args, SPECS)).toThrow(UsageError);
    expect(() => parseArgs(args, SPECS)).toThrow(message);
  });

  it.each([
    ['hex', ['--epochs', '0x10'], '--epochs must be a whole number, not "0x10"'],
    ['an exponent', ['--epochs', '1e2'], '--epochs must be a whole number, not "1e2"'],
    ['a leading space', ['--epochs', ' 3'], '--epochs must be a whole number, not " 3"'],
    ['a trailing space', ['--epochs=3 '], '--epochs must be a whole number, not "3 "'],
    ['a plus sign', ['--epochs', '+3'], '--epochs must be a whole number, not "+3"'],
    ['binary', ['--epochs', '0b11'], '--epochs must be a whole number, not "0b11"'],
    ['a hex number', ['--lr', '0x1'], '--lr must be a number, not "0x1"'],
    ['a number with spaces', ['--lr', ' 0.1 '], '--lr must be a number, not " 0.1 "'],
    ['a number past float range', ['--lr', '1e999'], '--lr must be a number, not "1e999"'],
  ])('numbers are written in decimal, %s refused', (_, args, message) => {
    expect(usageError(() => parseArgs(args, SPECS))).toBe(message);
  });

  it('numbers in decimal, exponents included, as the .net language writes them', () => {
    expect(parseArgs(['--epochs', '07', '--lr', '.5e+1', '--frac', '1.'], SPECS).flags).toEqual({
      epochs: 7,
      lr: 5,
      frac: 1,
    });
  });

  it("the real whole-number flags refuse hex and spaces: summary's --batch, train's --subset", () => {
    const summary = (v: string) => usageError(() => parseArgs(['m.net', '--batch', v], SUMMARY_FLAGS));
    expect(summary('0x10')).toBe('--batch must be a whole number, not "0x10"');
    expect(summary(' 3')).toBe('--batch must be a whole number, not " 3"');
    expect(summary('1e2')).toBe('--batch must be a whole number, not "1e2"');
    expect(parseArgs(['m.net', '--batch', '16'], SUMMARY_FLAGS).flags).toEqual({ batch: 16 });
    expect(usageError(() => parseArgs(['--subset', '0x20'], TRAIN_FLAGS))).toBe(
      '--subset must be a whole number, not "0x20"',
    );
  });

  const switches: [string, string[], object, string[]][] = [
    ['a switch before a file leaves the file', ['--json', 'a.net'], { json: true }, ['a.net']],
    ['a switch never takes the next argument', ['--json', 'a.net'], { json: true }, ['a.net']],
    ['a file named true after a switch, as ./true', ['--json', './true'], { json: true }, ['./true']],
    ['a switch takes =false', ['a.net', '--json=false'], { json: false }, ['a.net']],
    ['a switch before a flag', ['--json', '--epochs', '2'], { json: true, epochs: 2 }, []],
  ];
  it.each(switches)('%s', (_, args, flags, positional) => {
    expect(parseArgs(args, SPECS)).toEqual({ flags, positional });
  });

  it('the words true and false after a switch: its old spelling, refused saying how to write it', () => {
    expect(usageError(() => parseArgs(['--json', 'false', 'a.net'], SPECS))).toBe(
      '--json is a switch: --json, --no-json or --json=false, not "--json false"',
    );
    expect(usageError(() => parseArgs(['--no-json', 'true'], SPECS))).toBe(
      '--no-json is a switch: --json, --no-json or --json=true, not "--no-json true"',
    );
  });

  it('--no-X takes no value', () => {
    expect(usageError(() => parseArgs(['--no-json=true'], SPECS))).toBe('--no-json takes no value, not "true"');
    expect(usageError(() => parseArgs(['--no-json=false'], SPECS))).toBe('--no-json takes no value, not "false"');
  });

  it('help text: one aligned row per flag, the value named', () => {
    expect(flagHelp({ epochs: SPECS.epochs!, json: SPECS.json!, out: { ...SPECS.out!, meta: 'DIR' } })).toBe(
      '  --epochs N  epochs\n  --json      json\n  --out DIR   dir',
    );
  });
});

describe('train flags', () => {
  it('every train key of the language has a flag, with help', () => {
    for (const key of Object.keys(TRAIN_KEYS)) {
      const flag = key.replace(/_/g, '-');
      expect(TRAIN_KEY[flag], key).toBe(key);
      expect(TRAIN_FLAGS[flag]?.help, flag).toBeTruthy();
    }
  });

  const file = parseNet('dense 10 softmax\ntrain epochs=4 lr=0.01 optimizer=adam\n', 'm.net').train;
  const apply = (args: string[]) => applyTrainFlags(file, parseArgs(args, TRAIN_FLAGS).flags);

  it('flags override the file; the rest keeps the file or the defaults', () => {
    const c = apply(['--epochs', '2', '--batch', '64', '--early-stop', '3', '--label-smoothing', '0.1']);
    expect(c).toMatchObject({ epochs: 2, batch: 64, earlyStop: 3, labelSmoothing: 0.1, lr: 0.01, optimizer: 'adam' });
  });

  it('a changed optimizer brings its own defaults (AdamW weight decay), unless set', () => {
    expect(apply(['--optimizer', 'adamw']).weightDecay).toBe(0.004);
    expect(apply(['--optimizer', 'adamw', '--weight-decay', '0']).weightDecay).toBe(0);
    expect(apply(['--optimizer', 'sgd', '--momentum', '0.9', '--nesterov'])).toMatchObject({
      optimizer: 'sgd',
      momentum: 0.9,
      nesterov: true,
    });
  });

  it.each([
    [['--lr', '-1'], '--lr: expected a number > 0 for lr but found "-1"'],
    [['--batch', '0'], '--batch: expected a whole number ≥ 1 for batch but found "0"'],
    [['--optimizer', 'adagrad'], '--optimizer: expected adam, adamw or sgd for optimizer but found "adagrad"'],
    [
      ['--schedule', 'cosin'],
      '--schedule: expected constant, cosine, onecycle or plateau for schedule ' +
        'but found "cosin" (did you mean "cosine"?)',
    ],
    [['--validation', '1'], '--validation: expected a number in [0, 1) or test for validation but found "1"'],
    [['--nesterov=yes'], '--nesterov takes true or false, not "yes"'],
    [['--momentum', '0.9'], '--momentum: momentum applies only to optimizer=sgd but the optimizer is adam'],
  ])('%j: a UsageError naming the flag', (args, message) => {
    expect(() => apply(args)).toThrow(UsageError);
    expect(() => apply(args)).toThrow(message);
  });
});

describe('train switches', () => {
  const file = parseNet('dense 10 softmax\ntrain optimizer=sgd nesterov=true tta=true\n', 'm.net').train;
  const parse = (args: string[]) => parseArgs(args, TRAIN_FLAGS);

  it('every true/false train key is a switch, as --tta is on eval and export', () => {
    const bools = Object.entries(TRAIN_KEYS).filter(([, k]) => k.spec.type === 'bool');
    expect(bools.map(([key]) => key)).toEqual(['nesterov', 'tta']);
    for (const [key] of bools) expect(TRAIN_FLAGS[key.replace(/_/g, '-')]?.type, key).toBe('bool');
  });

  it('a switch before the model file leaves the file a positional', () => {
    expect(parse(['--tta', 'examples/quick.net'])).toEqual({
      flags: { tta: true },
      positional: ['examples/quick.net'],
    });
    expect(parse(['--nesterov', 'm.net'])).toEqual({ flags: { nesterov: true }, positional: ['m.net'] });
  });

  it('--no-tta and --no-nesterov turn off what the file turns on', () => {
    const c = applyTrainFlags(file, parse(['m.net', '--no-tta', '--no-nesterov']).flags);
    expect(c).toMatchObject({ tta: false, nesterov: false });
    expect(applyTrainFlags(file, {})).toMatchObject({ tta: true, nesterov: true });
  });

  it('--tta=true and --tta=false say it with a value', () => {
    expect(parse(['m.net', '--tta=false']).flags).toEqual({ tta: false });
    expect(parse(['--tta=true', 'm.net'])).toEqual({ flags: { tta: true }, positional: ['m.net'] });
  });

  it('a run.json\'s saved flags from before (the strings "true" and "false") still apply', () => {
    expect(applyTrainFlags(file, { tta: 'false', nesterov: 'false' })).toMatchObject({ tta: false, nesterov: false });
  });
});

describe('through the CLI', () => {
  beforeAll(() => ensureBuilt(), 300_000);

  it("fmgpu help CMD prints the command's help, as CMD --help does", () => {
    const help = fmgpu('help', 'train');
    expect(help.code).toBe(0);
    expect(help.out).toBe(fmgpu('train', '--help').out);
    expect(help.out.split('\n')[0]).toBe('usage: fmgpu train model.net [options]');
    expect(fmgpu('help', 'export').out.split('\n')[0]).toBe('usage: fmgpu export RUN [-o FILE.onnx] [options]');
  });

  it('fmgpu help alone: the general help; help of no command: a usage error', () => {
    const general = fmgpu('help');
    expect(general.code).toBe(0);
    expect(general.out).toContain('usage: fmgpu COMMAND [options]');
    const bad = fmgpu('help', 'trian');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      'fmgpu: error: unknown command "trian" (did you mean "train"? ' +
        'commands: train, eval, predict, summary, report, export, serve)',
    );
  });

  it("train's --help lists its switches with their --no- form", () => {
    const out = fmgpu('train', '--help').out;
    expect(out).toMatch(/^ {2}--tta +test-time augmentation: .* \(--no-tta: not\)$/m);
    expect(out).toMatch(/^ {2}--nesterov +SGD Nesterov momentum \(--no-nesterov: not\)$/m);
  });

  // --epochs 0 is refused once the file is read, before any data is: the file name reached train.
  it('train --tta FILE takes FILE as the model; --no-tta is an option', () => {
    const epochs = 'fmgpu: error: --epochs: expected a whole number ≥ 1 for epochs but found "0"';
    for (const args of [
      ['--tta', 'examples/quick.net', '--epochs', '0'],
      ['examples/quick.net', '--no-tta', '--no-nesterov', '--epochs', '0'],
    ]) {
      const r = fmgpu('train', ...args);
      expect({ code: r.code, err: r.err }, args.join(' ')).toEqual({ code: 2, err: epochs });
    }
  });

  it('summary --batch 0x10: a usage error, not batch 16', () => {
    const r = fmgpu('summary', 'examples/quick.net', '--cost', 'h100', '--batch', '0x10');
    expect({ code: r.code, out: r.out, err: r.err }).toEqual({
      code: 2,
      out: '',
      err: 'fmgpu: error: --batch must be a whole number, not "0x10"',
    });
  });
});
