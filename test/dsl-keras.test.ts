// Keras spellings in a .net file: each gets "did you mean" with the fmgpu spelling, at its own
// file:line:col, the marker under the whole Keras text; and the suggestion, put in its place, parses.
import { describe, expect, it } from 'vitest';
import { type DslError, formatError, parseNet, tryParseNet } from '../dsl/index.ts';

const HEAD = 'conv 8 3\n';
const TAIL = '\ndense 10 softmax';

/** The error of `source`, or a failure naming the source that parsed. */
function errorOf(source: string): DslError {
  const r = tryParseNet(source);
  if (r.ok) throw new Error(`parsed without an error: ${source}`);
  return r.error;
}

/** The source with the error's span replaced by its suggestion. */
function applied(source: string, e: DslError): string {
  return source.slice(0, e.offset) + e.suggestion + source.slice(e.offset + e.length);
}

// [the line as a Keras user writes it, the suggestion]; each line sits between HEAD and TAIL.
const LINES: [string, string][] = [
  ['conv 32 3x3 padding=same relu', 'same'],
  ["conv 32 3x3 padding='valid'", 'valid'],
  ['conv 32 3x3 same activation=relu', 'relu'],
  ["conv 32 3x3 activation='leaky_relu'", 'leaky'],
  ['conv 32 3x3 LeakyReLU', 'leaky'],
  ['conv 32 3x3 leakyrelu alpha=0.1', 'leaky(0.1)'],
  ['conv 32 kernel_size=3', '3'],
  ['conv 32 kernel_size=(3, 5)', '3x5'],
  ['conv filters=32 3', '32'],
  ['conv 32 3 strides=(2, 2)', 'stride=2'],
  ['conv 32 3 use_bias=False', 'bias=false'],
  ['leakyrelu alpha=0.1', 'leaky(0.1)'],
  ['leaky alpha=0.1', 'leaky(0.1)'],
  ['LeakyReLU(negative_slope=0.2)', 'leaky(0.2)'],
  ['LeakyReLU()', 'leaky'],
  ['ReLU()', 'relu'],
  ["Activation('relu')", 'relu'],
  ['Conv2D 32 3x3 same relu', 'conv'],
  ["Conv2D(32, (3, 3), activation='relu', padding='same')", 'conv 32 3x3 same relu'],
  ['Conv2D(filters=64, kernel_size=3, strides=2, use_bias=False)', 'conv 64 3 stride=2 bias=false'],
  ["Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1))", 'conv 32 3x3 relu'],
  ['MaxPooling2D((2, 2))', 'pool 2'],
  ['MaxPooling2D()', 'pool 2'],
  ['MaxPooling2D 2', 'pool'],
  ['MaxPool2D(pool_size=3, strides=2, padding="same")', 'pool 3 stride=2 same'],
  ['AveragePooling2D(2)', 'avgpool 2'],
  ['GlobalAveragePooling2D()', 'globalavgpool'],
  ['Flatten()', 'flatten'],
  ['BatchNormalization()', 'batchnorm'],
  ['BatchNormalization(momentum=0.9, epsilon=1e-5)', 'batchnorm momentum=0.9 eps=1e-5'],
  ['batchnorm epsilon=0.01', 'eps=0.01'],
  ['Dropout(0.2)', 'dropout 0.2'],
  ['dropout rate=0.2', '0.2'],
  ["Dense(128, activation='relu')", 'dense 128 relu'],
  ['Dense 128 relu', 'dense'],
  ['dense units=128', '128'],
  ['pool pool_size=2', '2'],
];

// [train line, suggestion]: after `dense 10 softmax`.
const TRAIN: [string, string][] = [
  ['train batch_size=64', 'batch=64'],
  ['train epochs=3 learning_rate=1e-3', 'lr=1e-3'],
  ['train validation_split=0.1', 'validation=0.1'],
  ['train patience=3', 'early_stop=3'],
  ["train optimizer='adam'", 'adam'],
  ['train optimizer=Adam', 'adam'],
];

describe('Keras spellings', () => {
  it.each(LINES)('%s → %s', (line, suggestion) => {
    const source = HEAD + line + TAIL;
    const e = errorOf(source);
    expect(e.suggestion).toBe(suggestion);
    expect(e.line).toBe(2);
    // The suggestion replaces the Keras text it points at, and then the file parses.
    expect(() => parseNet(applied(source, e))).not.toThrow();
  });

  it.each(TRAIN)('%s → %s', (line, suggestion) => {
    const source = `dense 10 softmax\n${line}`;
    const e = errorOf(source);
    expect(e.suggestion).toBe(suggestion);
    expect(() => parseNet(applied(source, e))).not.toThrow();
  });

  const TRAIN_LINE = 'training settings go on a train line: train optimizer=adam lr=0.001 epochs=10';
  const CONV = "PyTorch's nn.Conv2d(1, 32, 3) is conv 32 3x3 (the input channels come from the layer before)";
  const ELSEWHERE: [string, string][] = [
    ['compile optimizer=adam', `unknown layer "compile": ${TRAIN_LINE}`],
    ['Rescaling(1./255)', 'unknown layer "Rescaling": pixels come scaled to 0–1 (pixel / 255): nothing to write'],
    ['nn.Conv2d(1, 32, 3)', `unknown layer "nn": ${CONV}`],
    [
      'dense 10 softmax\ntrain loss=xent',
      'unknown train option "loss": the loss is always softmax cross-entropy (label_smoothing= smooths it)',
    ],
    [
      'dense 10 softmax\ntrain metrics=accuracy',
      'unknown train option "metrics": loss and accuracy are always reported (eval adds the confusion matrix and ' +
        'per-class scores)',
    ],
  ];
  it.each(ELSEWHERE)('a Keras word fmgpu has no statement for says what to write instead: %s', (source, message) => {
    expect(errorOf(source).message).toBe(message);
  });

  it("the issue's spellings, exactly as printed: file:line:col, the message, the marker under the Keras text", () => {
    const text = (s: string): string => formatError(errorOf(s));
    expect(text('conv 32 3x3 padding=same relu\ndense 10 softmax')).toBe(
      'model.net:1:13: error: unknown conv option "padding" (did you mean "same"?)\n' +
        '  1 │ conv 32 3x3 padding=same relu\n' +
        '    ╵             ~~~~~~~~~~~~',
    );
    expect(text('dense 10 softmax\ntrain epochs=5 batch_size=64')).toBe(
      'model.net:2:16: error: unknown train option "batch_size" (did you mean "batch=64"?)\n' +
        '  2 │ train epochs=5 batch_size=64\n' +
        '    ╵                ~~~~~~~~~~~~~',
    );
    expect(text('conv 8 3\nleakyrelu alpha=0.1\ndense 10 softmax')).toBe(
      'model.net:2:1: error: unknown layer "leakyrelu" (did you mean "leaky(0.1)"?)\n' +
        '  2 │ leakyrelu alpha=0.1\n' +
        '    ╵ ~~~~~~~~~~~~~~~~~~~',
    );
    expect(text('conv 8 3 leaky alpha=0.1\ndense 10 softmax')).toBe(
      'model.net:1:10: error: leaky takes its slope in parentheses (did you mean "leaky(0.1)"?)\n' +
        '  1 │ conv 8 3 leaky alpha=0.1\n' +
        '    ╵          ~~~~~~~~~~~~~~~',
    );
    expect(text('conv 32 kernel_size=3\ndense 10 softmax')).toBe(
      'model.net:1:9: error: expected a conv kernel like 3 or 3x3 but found "kernel_size" (did you mean "3"?)\n' +
        '  1 │ conv 32 kernel_size=3\n' +
        '    ╵         ~~~~~~~~~~~~~',
    );
    expect(text('conv filters=32 3\ndense 10 softmax')).toBe(
      'model.net:1:6: error: expected a whole number from 1 to 65536 for the number of filters but found ' +
        '"filters" (did you mean "32"?)\n' +
        '  1 │ conv filters=32 3\n' +
        '    ╵      ~~~~~~~~~~',
    );
    expect(text('Conv2D 32 3x3 relu\ndense 10 softmax')).toBe(
      'model.net:1:1: error: unknown layer "Conv2D" (did you mean "conv"?)\n  1 │ Conv2D 32 3x3 relu\n    ╵ ~~~~~~',
    );
    expect(text('conv 8 3\nMaxPooling2D(2)\ndense 10 softmax')).toBe(
      'model.net:2:1: error: unknown layer "MaxPooling2D" (did you mean "pool 2"?)\n' +
        '  2 │ MaxPooling2D(2)\n' +
        '    ╵ ~~~~~~~~~~~~~~~',
    );
    expect(text('conv 8 3\nDense(10, activation="softmax")')).toBe(
      'model.net:2:1: error: unknown layer "Dense" (did you mean "dense 10 softmax"?)\n' +
        '  2 │ Dense(10, activation="softmax")\n' +
        '    ╵ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~',
    );
    expect(text('conv 8 3\nDropout(0.2)\ndense 10 softmax')).toBe(
      'model.net:2:1: error: unknown layer "Dropout" (did you mean "dropout 0.2"?)\n' +
        '  2 │ Dropout(0.2)\n' +
        '    ╵ ~~~~~~~~~~~~',
    );
  });

  it('a call with an argument fmgpu has no spelling for suggests the statement word alone', () => {
    const e = errorOf("Conv2D(32, 3, kernel_initializer='he_normal')\ndense 10 softmax");
    expect([e.suggestion, e.column, e.length]).toEqual(['conv', 1, 6]);
    expect(errorOf("conv 8 3 activation='selu'\ndense 10 softmax").suggestion).toBeUndefined();
    expect(errorOf('conv 8 3 padding=causal\ndense 10 softmax').suggestion).toBeUndefined();
    expect(errorOf('Conv2D(32, 3, input_shape=(32, 32, 3))\ndense 10 softmax').suggestion).toBe('conv');
  });

  it('misspellings that are not Keras keep their nearest-word suggestion', () => {
    expect(errorOf('dense 10 softmax\ntrain epoch=3').suggestion).toBe('epochs');
    expect(errorOf('conv 8 3 strides\ndense 10 softmax').suggestion).toBe('stride');
    expect(errorOf('dense 10 softmax\naugment patience=3').suggestion).toBeUndefined();
  });
});
