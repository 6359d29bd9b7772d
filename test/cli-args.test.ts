// Command-line parsing (src/cli/args.ts) and how train flags override a file's settings
// (src/cli/train.ts): in-process, no GPU, no subprocess.
import { describe, expect, it } from 'vitest';
import { parseArgs, flagHelp, UsageError, type FlagSpec } from '../src/cli/args.ts';
import { TRAIN_FLAGS, TRAIN_KEY, applyTrainFlags } from '../src/cli/train.ts';
import { parseNet, TRAIN_KEYS } from '../dsl/index.ts';

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
    expect(apply(['--optimizer', 'sgd', '--momentum', '0.9', '--nesterov', 'true'])).toMatchObject({
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
    [['--nesterov', 'yes'], '--nesterov: expected true or false for nesterov but found "yes"'],
    [['--momentum', '0.9'], '--momentum: momentum applies only to optimizer=sgd but the optimizer is adam'],
  ])('%j: a UsageError naming the flag', (args, message) => {
    expect(() => apply(args)).toThrow(UsageError);
    expect(() => apply(args)).toThrow(message);
  });
});
