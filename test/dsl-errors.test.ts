// The language's error messages, pinned exactly: the first line (file, line, column, message,
// suggestion) and the excerpt with its marker, for malformed inputs of every kind.
import { describe, expect, it } from 'vitest';
import { DslError, formatError, parseNet } from '../dsl/index.ts';

function errorText(source: string): string {
  try {
    parseNet(source, 'model.net');
  } catch (e) {
    if (e instanceof DslError) return formatError(e);
    throw e;
  }
  throw new Error('parsed without an error');
}

const cases: [string, string, string][] = [
  [
    'unknown layer, suggestion',
    'cnv 64 3x3 relu',
    `model.net:1:1: error: unknown layer "cnv" (did you mean "conv"?)
  1 │ cnv 64 3x3 relu
    ╵ ~~~`,
  ],
  [
    'unknown layer on line 3',
    'conv 32 3x3 same relu\npool 2\ncnv 64 3x3 relu\ndense 10',
    `model.net:3:1: error: unknown layer "cnv" (did you mean "conv"?)
  3 │ cnv 64 3x3 relu
    ╵ ~~~`,
  ],
  [
    'keywords are lower case',
    'Conv 32 3x3\ndense 10',
    `model.net:1:1: error: unknown layer "Conv" (did you mean "conv"?)
  1 │ Conv 32 3x3
    ╵ ~~~~`,
  ],
  [
    'unknown layer, nothing near',
    'banana 3\ndense 10',
    `model.net:1:1: error: unknown layer "banana"
  1 │ banana 3
    ╵ ~~~~~~`,
  ],
  [
    'shape: valid conv on 2x2',
    'conv 32 3x3 same relu\npool 2\nconv 64 3x3 relu\npool 2\nconv 64 3x3 relu\npool 2\nconv 64 3x3 relu\ndense 10',
    `model.net:7:1: error: conv 3x3 valid needs at least 3x3 input but gets 2x2x64
  7 │ conv 64 3x3 relu
    ╵ ~~~~~~~~~~~~~~~~`,
  ],
  [
    'shape: valid pool on 6x6',
    'conv 8 7x7 stride=4; pool 7; pool 2\ndense 10',
    `model.net:1:22: error: pool 7x7 valid needs at least 7x7 input but gets 6x6x8
  1 │ conv 8 7x7 stride=4; pool 7; pool 2
    ╵                      ~~~~~~`,
  ],
  [
    'shape: conv after dense',
    'dense 10; conv 8 3x3',
    `model.net:1:11: error: conv needs an image input (HxWxC) but gets 10
  1 │ dense 10; conv 8 3x3
    ╵           ~~~~~~~~~~`,
  ],
  [
    'shape: globalavgpool after dense',
    'dense 10; globalavgpool',
    `model.net:1:11: error: globalavgpool needs an image input (HxWxC) but gets 10
  1 │ dense 10; globalavgpool
    ╵           ~~~~~~~~~~~~~`,
  ],
  [
    'shape: does not end in 10',
    'dense 128 relu',
    `model.net:1:1: error: the network must end in 10 outputs (one per class) but ends in 128
  1 │ dense 128 relu
    ╵ ~~~~~~~~~~~~~~`,
  ],
  [
    'shape: ends in 3x3x10',
    'conv 10 3x3 stride=4 valid',
    `model.net:1:1: error: the network must end in 10 outputs (one per class) but ends in 7x7x10
  1 │ conv 10 3x3 stride=4 valid
    ╵ ~~~~~~~~~~~~~~~~~~~~~~~~~~`,
  ],
  [
    'unknown conv option',
    'conv 32 3x3 sme relu\ndense 10',
    `model.net:1:13: error: unknown conv option "sme" (did you mean "same"?)
  1 │ conv 32 3x3 sme relu
    ╵             ~~~`,
  ],
  [
    'two activations',
    'conv 32 3x3 same relu relu\ndense 10',
    `model.net:1:23: error: the activation is already given ("relu")
  1 │ conv 32 3x3 same relu relu
    ╵                       ~~~~`,
  ],
  [
    'two paddings',
    'conv 32 3x3 same valid\ndense 10',
    `model.net:1:18: error: the padding is already given ("same")
  1 │ conv 32 3x3 same valid
    ╵                  ~~~~~`,
  ],
  [
    'bias twice',
    'dense 10 bias=false bias=true',
    `model.net:1:21: error: the bias is already given
  1 │ dense 10 bias=false bias=true
    ╵                     ~~~~`,
  ],
  [
    'zero filters',
    'conv 0 3x3\ndense 10',
    `model.net:1:6: error: expected a whole number from 1 to 65536 for the number of filters but found "0"
  1 │ conv 0 3x3
    ╵      ~`,
  ],
  [
    'fractional filters',
    'conv 32.5 3x3\ndense 10',
    `model.net:1:6: error: expected a whole number from 1 to 65536 for the number of filters but found "32.5"
  1 │ conv 32.5 3x3
    ╵      ~~~~`,
  ],
  [
    'kernel too large',
    'conv 32 9x9\ndense 10',
    `model.net:1:9: error: expected a whole number from 1 to 7 for the conv kernel but found "9x9"
  1 │ conv 32 9x9
    ╵         ~~~`,
  ],
  [
    'kernel with three parts',
    'conv 32 3x3x3\ndense 10',
    `model.net:1:9: error: expected a conv kernel like 3 or 3x3 but found "3x3x3"
  1 │ conv 32 3x3x3
    ╵         ~~~~~`,
  ],
  [
    'missing kernel',
    'conv 32\ndense 10',
    `model.net:1:8: error: expected a conv kernel like 3 or 3x3 but found end of line
  1 │ conv 32
    ╵        ^`,
  ],
  [
    'conv stride beyond the engine',
    'conv 32 3x3 stride=5\ndense 10',
    `model.net:1:20: error: expected a whole number from 1 to 4 for the conv stride but found "5"
  1 │ conv 32 3x3 stride=5
    ╵                    ~`,
  ],
  [
    'stride without =',
    'conv 32 3x3 stride 2\ndense 10',
    `model.net:1:20: error: expected "=" after stride but found "2"
  1 │ conv 32 3x3 stride 2
    ╵                    ~`,
  ],
  [
    'bias not a boolean',
    'conv 32 3x3 bias=no\ndense 10',
    `model.net:1:18: error: expected true or false for bias but found "no"
  1 │ conv 32 3x3 bias=no
    ╵                  ~~`,
  ],
  [
    'number glued to a word',
    'conv 32relu 3x3\ndense 10',
    `model.net:1:6: error: expected a number or a size like 3x3 but found "32relu"
  1 │ conv 32relu 3x3
    ╵      ~~~~~~`,
  ],
  [
    'stray character',
    'conv 32 3x3 @ relu\ndense 10',
    `model.net:1:13: error: unexpected character "@"
  1 │ conv 32 3x3 @ relu
    ╵             ~`,
  ],
  [
    'stray =, after a tab',
    'conv 32 3x3 same\tstride=2 = 3\ndense 10',
    `model.net:1:27: error: expected a conv option or end of statement but found "="
  1 │ conv 32 3x3 same\tstride=2 = 3
    ╵                 \t         ~`,
  ],
  [
    'pool size too large',
    'pool 9\ndense 10',
    `model.net:1:6: error: expected a whole number from 1 to 7 for the pool size but found "9"
  1 │ pool 9
    ╵      ~`,
  ],
  [
    'pool stride too large',
    'pool 2 stride=8\ndense 10',
    `model.net:1:15: error: expected a whole number from 1 to 7 for the pool stride but found "8"
  1 │ pool 2 stride=8
    ╵               ~`,
  ],
  [
    'avgpool option misspelt',
    'avgpool 2 sme\ndense 10',
    `model.net:1:11: error: unknown avgpool option "sme" (did you mean "same"?)
  1 │ avgpool 2 sme
    ╵           ~~~`,
  ],
  [
    'softmax before the last layer',
    'dense 10 softmax\ndropout 0.5',
    `model.net:1:10: error: softmax is only allowed on the last layer
  1 │ dense 10 softmax
    ╵          ~~~~~~~`,
  ],
  [
    'softmax misspelt',
    'dense 10 sofmax',
    `model.net:1:10: error: unknown dense option "sofmax" (did you mean "softmax"?)
  1 │ dense 10 sofmax
    ╵          ~~~~~~`,
  ],
  [
    'leaky slope out of range',
    'dense 10 leaky(2)',
    `model.net:1:16: error: expected a number in [0, 1] for the leaky slope but found "2"
  1 │ dense 10 leaky(2)
    ╵                ~`,
  ],
  [
    'leaky missing )',
    'dense 10 leaky(0.1',
    `model.net:1:19: error: expected ")" but found end of file
  1 │ dense 10 leaky(0.1
    ╵                   ^`,
  ],
  [
    'activation layer takes no argument',
    'relu(0.1)\ndense 10',
    `model.net:1:5: error: expected end of statement but found "("
  1 │ relu(0.1)
    ╵     ~`,
  ],
  [
    'dropout rate 1',
    'dropout 1\ndense 10',
    `model.net:1:9: error: expected a number in [0, 1) for the dropout rate but found "1"
  1 │ dropout 1
    ╵         ~`,
  ],
  [
    'dropout rate negative',
    'dropout -0.1\ndense 10',
    `model.net:1:9: error: expected a number in [0, 1) for the dropout rate but found "-0.1"
  1 │ dropout -0.1
    ╵         ~~~~`,
  ],
  [
    'dropout rate missing',
    'dropout\ndense 10',
    `model.net:1:8: error: expected a number in [0, 1) for the dropout rate but found end of line
  1 │ dropout
    ╵        ^`,
  ],
  [
    'flatten takes nothing',
    'flatten 3\ndense 10',
    `model.net:1:9: error: expected end of statement but found "3"
  1 │ flatten 3
    ╵         ~`,
  ],
  [
    'batchnorm momentum 1',
    'batchnorm momentum=1\ndense 10',
    `model.net:1:20: error: expected a number in [0, 1) for momentum but found "1"
  1 │ batchnorm momentum=1
    ╵                    ~`,
  ],
  [
    'batchnorm eps 0',
    'batchnorm eps=0\ndense 10',
    `model.net:1:15: error: expected a number > 0 for eps but found "0"
  1 │ batchnorm eps=0
    ╵               ~`,
  ],
  [
    'batchnorm eps without value',
    'batchnorm eps\ndense 10',
    `model.net:1:14: error: expected "=" after eps but found end of line
  1 │ batchnorm eps
    ╵              ^`,
  ],
  [
    'epochs 0',
    'dense 10\ntrain epochs=0',
    `model.net:2:14: error: expected a whole number ≥ 1 for epochs but found "0"
  2 │ train epochs=0
    ╵              ~`,
  ],
  [
    'fractional batch',
    'dense 10 relu\ntrain batch=1.5',
    `model.net:2:13: error: expected a whole number ≥ 1 for batch but found "1.5"
  2 │ train batch=1.5
    ╵             ~~~`,
  ],
  [
    'train key misspelt',
    'dense 10\ntrain epoch=5',
    `model.net:2:7: error: unknown train option "epoch" (did you mean "epochs"?)
  2 │ train epoch=5
    ╵       ~~~~~`,
  ],
  [
    'optimizer misspelt',
    'dense 10\ntrain optimizer=adan',
    `model.net:2:17: error: expected adam, adamw or sgd for optimizer but found "adan" (did you mean "adam"?)
  2 │ train optimizer=adan
    ╵                 ~~~~`,
  ],
  [
    'lr 0',
    'dense 10\ntrain lr=0',
    `model.net:2:10: error: expected a number > 0 for lr but found "0"
  2 │ train lr=0
    ╵          ~`,
  ],
  [
    'train key without value',
    'dense 10\ntrain epochs',
    `model.net:2:13: error: expected "=" after epochs but found end of file
  2 │ train epochs
    ╵             ^`,
  ],
  [
    'train key given twice',
    'dense 10\ntrain epochs=5\ntrain epochs=6',
    `model.net:3:7: error: epochs is already given on line 2
  3 │ train epochs=6
    ╵       ~~~~~~`,
  ],
  [
    'momentum without sgd',
    'dense 10\ntrain momentum=0.9',
    `model.net:2:7: error: momentum applies only to optimizer=sgd but the optimizer is adam
  2 │ train momentum=0.9
    ╵       ~~~~~~~~`,
  ],
  [
    'validation 1',
    'dense 10\ntrain validation=1',
    `model.net:2:18: error: expected a number in [0, 1) or test for validation but found "1"
  2 │ train validation=1
    ╵                  ~`,
  ],
  [
    'nesterov not a boolean',
    'dense 10\ntrain nesterov=yes',
    `model.net:2:16: error: expected true or false for nesterov but found "yes"
  2 │ train nesterov=yes
    ╵                ~~~`,
  ],
  [
    'seed beyond 32 bits',
    'dense 10\ntrain lr=1e-3 seed=4294967296',
    `model.net:2:20: error: expected a whole number from 0 to 4294967295 for seed but found "4294967296"
  2 │ train lr=1e-3 seed=4294967296
    ╵                    ~~~~~~~~~~`,
  ],
  [
    'schedule misspelt',
    'dense 10\ntrain schedule=cosin',
    'model.net:2:16: error: expected constant, cosine, onecycle or plateau for schedule ' +
      `but found "cosin" (did you mean "cosine"?)
  2 │ train schedule=cosin
    ╵                ~~~~~`,
  ],
  [
    'augment shift too large',
    'dense 10\naugment shift=9',
    `model.net:2:15: error: expected a whole number from 0 to 8 for shift but found "9"
  2 │ augment shift=9
    ╵               ~`,
  ],
  [
    'augment flip not a boolean',
    'dense 10\naugment flip=maybe',
    `model.net:2:14: error: expected true or false for flip but found "maybe"
  2 │ augment flip=maybe
    ╵              ~~~~~`,
  ],
  [
    'augment key misspelt',
    'dense 10\naugment rotat=10',
    `model.net:2:9: error: unknown augment option "rotat" (did you mean "rotate"?)
  2 │ augment rotat=10
    ╵         ~~~~~`,
  ],
  [
    'augment zoom too large',
    'dense 10\naugment zoom=0.8',
    `model.net:2:14: error: expected a number in [0, 0.5] for zoom but found "0.8"
  2 │ augment zoom=0.8
    ╵              ~~~`,
  ],
  [
    'input after a layer',
    'dense 10\ninput 28x28x1',
    `model.net:2:1: error: input must come before the first layer
  2 │ input 28x28x1
    ╵ ~~~~~`,
  ],
  [
    'input twice',
    'input 28x28x1\ninput 28x28x1\ndense 10',
    `model.net:2:1: error: input is already given on line 1
  2 │ input 28x28x1
    ╵ ~~~~~`,
  ],
  [
    'input height 0',
    'input 0x28\ndense 10',
    `model.net:1:7: error: expected a whole number from 1 to 128 for the input height but found "0x28"
  1 │ input 0x28
    ╵       ~~~~`,
  ],
  // The batch gather's limits (src/data/batch.ts): refused here, before any data is read or run written.
  [
    'input wider than the gather takes',
    'input 28x224x3\ndense 10',
    `model.net:1:7: error: expected a whole number from 1 to 128 for the input width but found "28x224x3"
  1 │ input 28x224x3
    ╵       ~~~~~~~~`,
  ],
  [
    'input of 5 channels',
    'input 4x4x5\ndense 10',
    `model.net:1:7: error: expected a whole number from 1 to 4 for the input channels but found "4x4x5"
  1 │ input 4x4x5
    ╵       ~~~~~`,
  ],
  [
    'input not a size',
    'input 28\ndense 10',
    `model.net:1:7: error: expected an input size like 28x28x1 but found "28"
  1 │ input 28
    ╵       ~~`,
  ],
  [
    'residual: valid conv changes size',
    'residual { conv 32 3x3 relu }\ndense 10',
    'model.net:1:1: error: residual block turns 28x28x1 into 26x26x32, ' +
      `which a 1x1 shortcut with stride 1x1 cannot match (it gives 28x28x32)
  1 │ residual { conv 32 3x3 relu }
    ╵ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~`,
  ],
  [
    'residual: flattens',
    'conv 8 3x3 same; residual { conv 8 3x3 same; dense 10 }',
    'model.net:1:18: error: residual block turns 28x28x8 into 10, ' +
      `but a shortcut can only be projected between HxWxC shapes
  1 │ conv 8 3x3 same; residual { conv 8 3x3 same; dense 10 }
    ╵                  ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~`,
  ],
  [
    'residual: stride beyond the shortcut',
    'conv 8 3x3 same; residual { pool 2 same; pool 2 same; pool 2 same }\ndense 10',
    `model.net:1:18: error: residual block has a total stride of 8x8, but its 1x1 shortcut can stride at most 4
  1 │ conv 8 3x3 same; residual { pool 2 same; pool 2 same; pool 2 same }
    ╵                  ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~`,
  ],
  [
    'residual: unclosed',
    'conv 16 3x3 same\nresidual {\n  conv 16 3x3 same\n',
    `model.net:4:1: error: expected "}" to close the residual block on line 2 but found end of file
  4 │ 
    ╵ ^`,
  ],
  [
    'residual: empty',
    'residual { }\ndense 10',
    `model.net:1:12: error: expected a layer but found "}"
  1 │ residual { }
    ╵            ~`,
  ],
  [
    'residual: train inside',
    'residual { train epochs=3 }\ndense 10',
    `model.net:1:12: error: train is only allowed at the top level, not inside residual
  1 │ residual { train epochs=3 }
    ╵            ~~~~~`,
  ],
  [
    'residual: no brace',
    'residual conv 8 3x3\ndense 10',
    `model.net:1:10: error: expected "{" after residual but found "conv"
  1 │ residual conv 8 3x3
    ╵          ~~~~`,
  ],
  [
    'stray }',
    'dense 10 softmax\n}',
    `model.net:2:1: error: expected a layer but found "}"
  2 │ }
    ╵ ~`,
  ],
  [
    'empty file',
    '',
    `model.net:1:1: error: expected a layer but found end of file
  1 │ 
    ╵ ^`,
  ],
  [
    'only comments',
    '# nothing here\n',
    `model.net:2:1: error: expected a layer but found end of file
  2 │ 
    ╵ ^`,
  ],
  [
    'CRLF line endings',
    'dense 10\r\ntrain epochs=0\r\n',
    `model.net:2:14: error: expected a whole number ≥ 1 for epochs but found "0"
  2 │ train epochs=0
    ╵              ~`,
  ],
  [
    'CRLF: end of line where a number is due, at the column of the LF file',
    'dropout\r\ndense 10\r\n',
    `model.net:1:8: error: expected a number in [0, 1) for the dropout rate but found end of line
  1 │ dropout
    ╵        ^`,
  ],
  [
    'CRLF: end of line after stride=',
    'conv 8 3 stride=\r\ndense 10\r\n',
    `model.net:1:17: error: expected a conv stride like 2 or 2x2 but found end of line
  1 │ conv 8 3 stride=
    ╵                 ^`,
  ],
  [
    'CRLF: end of line after leaky(',
    'conv 8 3 leaky(\r\ndense 10\r\n',
    `model.net:1:16: error: expected a number in [0, 1] for the leaky slope but found end of line
  1 │ conv 8 3 leaky(
    ╵                ^`,
  ],
  [
    'CRLF: end of line after a comment',
    'dropout # rate?\r\ndense 10\r\n',
    `model.net:1:16: error: expected a number in [0, 1) for the dropout rate but found end of line
  1 │ dropout # rate?
    ╵                ^`,
  ],
  [
    'an activation on batchnorm: a layer of its own, not "did you mean" itself',
    'conv 8 3\nbatchnorm relu\ndense 10',
    `model.net:2:11: error: unknown batchnorm option "relu" (batchnorm takes no activation: write relu on the next line)
  2 │ batchnorm relu
    ╵           ~~~~`,
  ],
  [
    'an activation on pool',
    'conv 8 3\npool 2 relu\ndense 10',
    `model.net:2:8: error: unknown pool option "relu" (pool takes no activation: write relu on the next line)
  2 │ pool 2 relu
    ╵        ~~~~`,
  ],
  [
    "Keras's activation= on pool",
    'conv 8 3\npool 2 activation=relu\ndense 10',
    `model.net:2:8: error: unknown pool option "activation" (pool takes no activation: write relu on the next line)
  2 │ pool 2 activation=relu
    ╵        ~~~~~~~~~~~~~~~`,
  ],
  [
    "Keras's LeakyReLU on avgpool",
    'conv 8 3\navgpool 2 LeakyReLU\ndense 10',
    'model.net:2:11: error: unknown avgpool option "LeakyReLU" ' +
      `(avgpool takes no activation: write leaky on the next line)
  2 │ avgpool 2 LeakyReLU
    ╵           ~~~~~~~~~`,
  ],
  [
    "Keras's alpha= on batchnorm",
    'conv 8 3\nbatchnorm alpha=0.2\ndense 10',
    'model.net:2:11: error: unknown batchnorm option "alpha" ' +
      `(batchnorm takes no activation: write leaky(0.2) on the next line)
  2 │ batchnorm alpha=0.2
    ╵           ~~~~~~~~~`,
  ],
  [
    'a Keras option the layer has no spelling for: no suggestion (dense has no padding)',
    'dense 10 padding=same',
    `model.net:1:10: error: unknown dense option "padding"
  1 │ dense 10 padding=same
    ╵          ~~~~~~~`,
  ],
  [
    'statement after a block on its line',
    'residual { conv 1 1 } relu\ndense 10',
    `model.net:1:23: error: expected end of statement but found "relu"
  1 │ residual { conv 1 1 } relu
    ╵                       ~~~~`,
  ],
];

describe('dsl errors', () => {
  it.each(cases)('%s', (_name, source, expected) => {
    expect(errorText(source)).toBe(expected);
  });

  it.each([
    'dropout\ndense 10',
    'conv 8 3 stride=\ndense 10',
    'conv 8 3 leaky(\ndense 10',
    'dropout # the rate?\ndense 10',
    'dense 10\ntrain epochs=\n',
  ])('CRLF line ends give the LF file its error, column and marker: %j', (source) => {
    expect(errorText(source.replace(/\n/g, '\r\n'))).toBe(errorText(source));
  });

  it('carries offset, length, line, column and the suggestion as fields', () => {
    const source = 'conv 32 3x3 same relu\npool 2\ncnv 64 3x3 relu\ndense 10';
    let err: unknown;
    try {
      parseNet(source, 'a/b.net');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DslError);
    const d = err as DslError;
    expect([d.file, d.offset, d.length, d.line, d.column, d.message, d.suggestion]).toEqual([
      'a/b.net',
      29,
      3,
      3,
      1,
      'unknown layer "cnv"',
      'conv',
    ]);
  });

  it('counts columns in characters and keeps tabs under the marker', () => {
    const source = 'conv 8 1x1 # é\n\tdense 10 relux';
    expect(errorText(source)).toBe(
      'model.net:2:11: error: unknown dense option "relux" (did you mean "relu"?)\n' +
        '  2 │ \tdense 10 relux\n    ╵ \t         ~~~~~',
    );
    const wide = 'dense 10 # 🙂\n🙂';
    expect(errorText(wide)).toBe('model.net:2:1: error: unexpected character "🙂"\n  2 │ 🙂\n    ╵ ~');
  });

  it('widens the gutter for two-digit line numbers', () => {
    const source = `${'\n'.repeat(11)}dens 10`;
    expect(errorText(source)).toBe(
      'model.net:12:1: error: unknown layer "dens" (did you mean "dense"?)\n  12 │ dens 10\n     ╵ ~~~~',
    );
  });

  it('limits residual nesting instead of overflowing the stack', () => {
    const source = `${'residual { '.repeat(17)}conv 1 1${' }'.repeat(17)}\ndense 10`;
    expect(errorText(source).split('\n')[0]).toBe('model.net:1:177: error: residual blocks nest deeper than 16 levels');
  });
});
