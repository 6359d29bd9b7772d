// What a weights file records of the data its network was trained on (src/model/trained-with.ts): written by
// `fmgpu train` and the page, read back by the page; an entry that is not what fmgpu writes is refused.
import { describe, expect, it } from 'vitest';
import { CLASSES_KEY, NORMALIZE_KEY, trainedWith, trainedWithMetadata } from '../src/model/trained-with.ts';
import { DataError } from '../src/errors.ts';

describe('the classes and normalisation a weights file records', () => {
  it('round-trips; what was not given is not written', () => {
    const t = { classes: ['ant', 'bee'], normalize: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.25] } };
    expect(trainedWith(trainedWithMetadata(t), 'w')).toEqual(t);
    expect(trainedWithMetadata({})).toEqual({});
    expect(trainedWith({ 'fmgpu.source': 'dense 10 softmax\n' }, 'w')).toEqual({});
    expect(trainedWith(trainedWithMetadata({ normalize: { mean: 0.5, std: 0.25 } }), 'w')).toEqual({
      normalize: { mean: 0.5, std: 0.25 },
    });
  });

  const bad: [string, Record<string, string>, string][] = [
    [
      'classes not JSON',
      { [CLASSES_KEY]: 'ant,bee' },
      'w.safetensors: metadata "fmgpu.classes" is not a list of class names',
    ],
    [
      'classes of numbers',
      { [CLASSES_KEY]: '[1,2]' },
      'w.safetensors: metadata "fmgpu.classes" is not a list of class names',
    ],
    ['no classes', { [CLASSES_KEY]: '[]' }, 'w.safetensors: metadata "fmgpu.classes" is not a list of class names'],
    [
      'a std of 0',
      { [NORMALIZE_KEY]: '{"mean":[0.5],"std":[0]}' },
      'w.safetensors: metadata "fmgpu.normalize" is not a mean and a std > 0 per channel',
    ],
    [
      'no mean',
      { [NORMALIZE_KEY]: '{"std":[0.2]}' },
      'w.safetensors: metadata "fmgpu.normalize" is not a mean and a std > 0 per channel',
    ],
  ];
  it.each(bad)('refused: %s', (_, metadata, message) => {
    expect(() => trainedWith(metadata, 'w.safetensors')).toThrow(DataError);
    expect(() => trainedWith(metadata, 'w.safetensors')).toThrow(message);
  });
});
