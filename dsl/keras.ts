// Keras spellings in a .net file, and the fmgpu spelling each one means: the parser's "did you
// mean" where it meets a word it does not know. A hint replaces a span of the source (a whole
// `padding='same'` or `Conv2D(32, (3, 3), activation='relu')`) with the text fmgpu reads there.
// The list the hints understand is in docs/language.md ("Coming from Keras").
import { suggest, type Span } from './errors.ts';
import { describe, type Token } from './lexer.ts';

export interface Hint {
  span: Span;
  suggestion: string;
}
/** Where the parser met token `t` in `source`: the Keras spelling there, if it is one. */
export type HintAt = (source: string, t: Token) => Hint | undefined;

/** Keras layer classes (and their lower-case, snake-case neighbours), lower-cased: the fmgpu statement. */
const LAYERS: Readonly<Record<string, string>> = {
  conv2d: 'conv',
  convolution2d: 'conv',
  maxpooling2d: 'pool',
  maxpool2d: 'pool',
  maxpool: 'pool',
  maxpooling: 'pool',
  averagepooling2d: 'avgpool',
  avgpool2d: 'avgpool',
  averagepooling: 'avgpool',
  globalaveragepooling2d: 'globalavgpool',
  globalavgpool2d: 'globalavgpool',
  dense: 'dense',
  dropout: 'dropout',
  flatten: 'flatten',
  batchnormalization: 'batchnorm',
  batch_normalization: 'batchnorm',
  batch_norm: 'batchnorm',
  input: 'input',
  inputlayer: 'input',
  activation: 'activation',
  relu: 'relu',
  softmax: 'softmax',
  leakyrelu: 'leaky',
  leaky_relu: 'leaky',
};

/** Keras activation names, lower-cased: fmgpu's. */
const ACTIVATIONS: Readonly<Record<string, string>> = {
  relu: 'relu',
  leaky: 'leaky',
  leaky_relu: 'leaky',
  leakyrelu: 'leaky',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  gelu: 'gelu',
  linear: 'linear',
  none: 'linear',
  softmax: 'softmax',
};

/** `model.fit` / `compile` arguments a train line takes under another name. */
const TRAIN: Readonly<Record<string, string>> = {
  batch_size: 'batch',
  learning_rate: 'lr',
  validation_split: 'validation',
  patience: 'early_stop',
  early_stopping: 'early_stop',
};

/**
 * Words of a Keras or PyTorch script that have no fmgpu statement or train key, lower-cased: what a .net file
 * writes instead (the parser adds it to its "unknown layer" / "unknown train option").
 */
export const ELSEWHERE: Readonly<Record<string, string>> = {
  compile: 'training settings go on a train line: train optimizer=adam lr=0.001 epochs=10',
  fit: 'training settings go on a train line: train epochs=10 batch=32 validation=0.1',
  sequential: 'a .net file lists the layers, one a line or separated by ;',
  model: 'a .net file lists the layers, one a line or separated by ;',
  rescaling: 'pixels come scaled to 0–1 (pixel / 255): nothing to write',
  normalization: 'pixels come scaled to 0–1 (pixel / 255), colour data normalised per channel: nothing to write',
  reshape: "the input's shape is the input HxWxC line, and a dense layer flattens what it reads",
  nn: "PyTorch's nn.Conv2d(1, 32, 3) is conv 32 3x3 (the input channels come from the layer before)",
  torch: "PyTorch's nn.Conv2d(1, 32, 3) is conv 32 3x3 (the input channels come from the layer before)",
  loss: 'the loss is always softmax cross-entropy (label_smoothing= smooths it)',
  metrics: 'loss and accuracy are always reported (eval adds the confusion matrix and per-class scores)',
};

/** `unknown layer "compile"` and the like, with what fmgpu writes instead where the word is a Keras one. */
export const elsewhere = (message: string, word: string): string => {
  const instead = ELSEWHERE[word.toLowerCase()];
  return instead ? `${message}: ${instead}` : message;
};

/** Keyword arguments of Keras layers that fmgpu writes as the statement's leading numbers. */
const POSITIONAL = new Set(['filters', 'kernel_size', 'units', 'rate', 'pool_size']);

const VALUE = /^[ \t]*=[ \t]*('[^'\n]*'|"[^"\n]*"|\([^()\n]*\)|[^\s;#,()=]+)/;

/** A Keras value as fmgpu writes it: unquoted, `(3, 3)` as 3x3, True as true; null if it is no value. */
function plain(raw: string): string | null {
  const r = raw.trim();
  if (/^(['"]).*\1$/.test(r)) return r.slice(1, -1);
  if (r.startsWith('(')) {
    const parts = r
      .slice(1, -1)
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    return parts.length > 0 && parts.every((p) => /^\d+$/.test(p)) ? parts.join('x') : null;
  }
  if (r === 'True' || r === 'False') return r.toLowerCase();
  return r === '' ? null : r;
}

/** `= value` right after `end`: the value as fmgpu writes it, and where it ends. */
function assigned(source: string, end: number): { value: string; end: number } | null {
  const m = VALUE.exec(source.slice(end));
  const value = m?.[1] === undefined ? null : plain(m[1]);
  return m && value !== null ? { value, end: end + m[0].length } : null;
}

/** `2x2` as `2`: a stride or pool window the same both ways, as fmgpu files write it. */
const square = (v: string): string => v.replace(/^(\d+)x\1$/, '$1');

const spanTo = (t: Token, end: number): Span => ({ offset: t.offset, length: end - t.offset });

/** A train line's `batch_size=64`: `batch=64` (in a train statement only, not an augment one). */
export function settingHint(source: string, t: Token): Hint | undefined {
  const key = TRAIN[t.text.toLowerCase()];
  const start = Math.max(source.lastIndexOf('\n', t.offset), source.lastIndexOf(';', t.offset)) + 1;
  if (!key || !/^\s*train\b/.test(source.slice(start))) return undefined;
  const a = assigned(source, t.offset + t.length);
  return a
    ? { span: spanTo(t, a.end), suggestion: `${key}=${a.value}` }
    : { span: spanTo(t, t.offset + t.length), suggestion: key };
}

/**
 * A word a layer does not take, as the parser reports it: [span, message, suggestion]. A Keras
 * spelling is suggested in fmgpu's only where the layer takes that (`known`): an activation
 * (`relu`, `LeakyReLU`, `activation='relu'`) where it takes none is a layer of its own, and says so.
 */
export function unknownOption(
  source: string,
  t: Token,
  layer: string,
  known: readonly string[],
): [Span, string, string | undefined] {
  const message = `unknown ${layer} option ${describe(t)}`;
  const act = activationHint(source, t);
  if (act && !known.includes('relu'))
    return [act.span, `${message} (${layer} takes no activation: write ${act.suggestion} on the next line)`, undefined];
  const hint = act ?? optionHint(source, t);
  // `same` for a pool, not for a dense layer: the key the suggestion sets must be the layer's.
  if (hint && known.includes(hint.suggestion.split(/[=(]/)[0]!)) return [hint.span, message, hint.suggestion];
  return [spanTo(t, t.offset + t.length), message, suggest(t.text, known)];
}

/** An activation where a layer option stands: `relu`, `LeakyReLU alpha=0.1`, `activation='relu'`, `alpha=0.1`. */
function activationHint(source: string, t: Token): Hint | undefined {
  const key = t.text.toLowerCase();
  const act = ACTIVATIONS[key];
  const end = t.offset + t.length;
  if (act === 'leaky') return slopeHint(source, t) ?? { span: spanTo(t, end), suggestion: act };
  if (act) return { span: spanTo(t, end), suggestion: act };
  const a = assigned(source, end);
  if (!a) return undefined;
  if (key === 'alpha' || key === 'negative_slope') return { span: spanTo(t, a.end), suggestion: `leaky(${a.value})` };
  const named = key === 'activation' ? ACTIVATIONS[a.value.toLowerCase()] : undefined;
  return named ? { span: spanTo(t, a.end), suggestion: named } : undefined;
}

/** A layer's `padding=same`, `use_bias=False`, `strides=2`, `epsilon=1e-3`. */
function optionHint(source: string, t: Token): Hint | undefined {
  const a = assigned(source, t.offset + t.length);
  if (!a) return undefined;
  const to = (suggestion: string | undefined): Hint | undefined =>
    suggestion === undefined ? undefined : { span: spanTo(t, a.end), suggestion };
  switch (t.text.toLowerCase()) {
    case 'padding':
      return to(a.value === 'same' || a.value === 'valid' ? a.value : undefined);
    case 'use_bias':
      return to(`bias=${a.value}`);
    case 'strides':
      return to(`stride=${square(a.value)}`);
    case 'epsilon':
      return to(`eps=${a.value}`);
    default:
      return undefined;
  }
}

/** `filters=32` or `kernel_size=(3, 3)` where fmgpu expects the number itself: `32`, `3x3`. */
export function positionalHint(source: string, t: Token): Hint | undefined {
  if (t.kind !== 'word' || !POSITIONAL.has(t.text.toLowerCase())) return undefined;
  const a = assigned(source, t.offset + t.length);
  return a ? { span: spanTo(t, a.end), suggestion: a.value } : undefined;
}

/** `'relu'` or `"adam"`: the word without its quotes (an activation as fmgpu spells it). */
export function quoteHint(source: string, t: Token): Hint | undefined {
  if (t.text !== "'" && t.text !== '"') return undefined;
  const close = source.indexOf(t.text, t.offset + 1);
  const inner = close < 0 ? '' : source.slice(t.offset + 1, close);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner)) return undefined;
  return { span: spanTo(t, close + 1), suggestion: ACTIVATIONS[inner.toLowerCase()] ?? inner };
}

/** `leaky alpha=0.1`: `leaky(0.1)` (the span from `leaky` on). */
export function slopeHint(source: string, leaky: Token): Hint | undefined {
  const m = /^[ \t]+(alpha|negative_slope)\b/.exec(source.slice(leaky.offset + leaky.length));
  const a = m && assigned(source, leaky.offset + leaky.length + m[0].length);
  return a ? { span: spanTo(leaky, a.end), suggestion: `leaky(${a.value})` } : undefined;
}

/**
 * A Keras layer where a statement starts: `Conv2D` → `conv`; a whole call, `Dropout(0.2)` →
 * `dropout 0.2`, `Conv2D(32, (3, 3), activation='relu', padding='same')` → `conv 32 3x3 relu same`,
 * when every argument has an fmgpu spelling (else the statement word alone); `LeakyReLU alpha=0.1` →
 * `leaky(0.1)`.
 */
export function statementHint(source: string, t: Token): Hint | undefined {
  const word = LAYERS[t.text.toLowerCase()];
  if (!word) return undefined;
  const end = t.offset + t.length;
  const call = /^\(([^()\n]*(?:\([^()\n]*\)[^()\n]*)*)\)/.exec(source.slice(end));
  const translated = call?.[1] === undefined ? null : translate(word, args(call[1]));
  if (call && translated) return { span: spanTo(t, end + call[0].length), suggestion: translated };
  if (word === 'leaky') return slopeHint(source, t) ?? { span: spanTo(t, end), suggestion: 'leaky' };
  return word === 'activation' || word === t.text ? undefined : { span: spanTo(t, end), suggestion: word };
}

type Arg = { key: string | null; value: string | null };

/** A call's arguments, split at top-level commas: `32, (3, 3), padding='same'`. */
function args(text: string): Arg[] {
  const out: Arg[] = [];
  for (const raw of text.match(/(?:[^,(]|\([^()]*\))+/g) ?? []) {
    const m = /^\s*([A-Za-z_]\w*)\s*=(.*)$/s.exec(raw);
    out.push(m ? { key: m[1]!, value: plain(m[2]!) } : { key: null, value: plain(raw) });
  }
  return out.filter((a) => a.key !== null || a.value !== null);
}

/** The positional parameters of each Keras layer, in order, and the statement they make. */
const SIGNATURES: Readonly<Record<string, readonly string[]>> = {
  conv: ['filters', 'kernel_size'],
  pool: ['pool_size'],
  avgpool: ['pool_size'],
  dense: ['units'],
  dropout: ['rate'],
  leaky: ['alpha'],
  activation: ['activation'],
  input: ['shape'],
};

/** One Keras call as an fmgpu statement, or null when an argument has no fmgpu spelling. */
function translate(word: string, list: Arg[]): string | null {
  const names = SIGNATURES[word] ?? [];
  const given = new Map<string, string>();
  for (const [i, a] of list.entries()) {
    const key = a.key ?? names[i];
    if (key === undefined || a.value === null || (a.key === null && i >= names.length)) return null;
    given.set(key === 'negative_slope' ? 'alpha' : key, a.value);
  }
  given.delete('name');
  if (given.get('input_shape') === '28x28x1') given.delete('input_shape');
  const take = (key: string): string | undefined => {
    const v = given.get(key);
    given.delete(key);
    return v;
  };
  const words = statement(word, take);
  return words === null || given.size > 0 ? null : words.join(' ');
}

/** The statement's words, taking the arguments it understands; null where one has no fmgpu value. */
function statement(word: string, take: (key: string) => string | undefined): string[] | null {
  const act = (v: string | undefined): string | null | undefined =>
    v === undefined ? undefined : (ACTIVATIONS[v.toLowerCase()] ?? null);
  const options = (): (string | null | undefined)[] => {
    const padding = take('padding');
    const strides = take('strides');
    return [
      strides === undefined || strides === 'None' ? undefined : `stride=${square(strides)}`,
      padding === undefined || padding === 'same' || padding === 'valid' ? padding : null,
      act(take('activation')),
      prefixed('bias', take('use_bias')),
    ];
  };
  let parts: (string | null | undefined)[];
  switch (word) {
    case 'conv':
      parts = ['conv', take('filters') ?? null, take('kernel_size') ?? null, ...options()];
      break;
    case 'pool':
    case 'avgpool':
      parts = [word, square(take('pool_size') ?? '2'), ...options()];
      break;
    case 'dense':
      parts = ['dense', take('units') ?? null, ...options()];
      break;
    case 'dropout':
      parts = ['dropout', take('rate') ?? null];
      break;
    case 'batchnorm':
      parts = ['batchnorm', prefixed('momentum', take('momentum')), prefixed('eps', take('epsilon'))];
      break;
    case 'leaky': {
      const alpha = take('alpha');
      parts = [alpha === undefined ? 'leaky' : `leaky(${alpha})`];
      break;
    }
    case 'activation':
      parts = [act(take('activation')) ?? null];
      break;
    case 'input':
      parts = ['input', take('shape') ?? null];
      break;
    default:
      parts = [word];
  }
  return parts.includes(null) ? null : parts.filter((p): p is string => p !== undefined);
}

const prefixed = (key: string, v: string | undefined): string | undefined =>
  v === undefined ? undefined : `${key}=${v}`;
