// Command-line flags: a small typed table per command, parsed strictly. Unknown flags, missing
// values and out-of-range numbers are usage errors (exit 2) that name the flag.
import { UsageError } from '../errors.ts';
import { suggest } from '../../dsl/errors.ts';

/** Flags as Keras and PyTorch scripts name them: fmgpu's name. */
const FLAG_ALIASES: Readonly<Record<string, string>> = {
  'learning-rate': 'lr',
  learning_rate: 'lr',
  'validation-split': 'validation',
  validation_split: 'validation',
  patience: 'early-stop',
};

export { UsageError };

export type FlagType = 'int' | 'number' | 'string' | 'bool';

export interface FlagSpec {
  type: FlagType;
  /** Inclusive bounds for numbers; `above` is an exclusive lower bound. */
  min?: number;
  max?: number;
  above?: number;
  help: string;
  /** The value's name in help text (default from the type). */
  meta?: string;
}

export type Flags = Record<string, string | number | boolean | undefined>;

export interface Parsed {
  flags: Flags;
  positional: string[];
}

export function parseArgs(args: readonly string[], specs: Readonly<Record<string, FlagSpec>>): Parsed {
  const flags: Flags = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      for (const rest of args.slice(i + 1)) positional.push(rest); // not push(...): argv may be long
      break;
    }
    if (!a.startsWith('--')) {
      if (a.startsWith('-') && a.length > 1 && a !== '-') throw new UsageError(`unknown option ${a}`);
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const negated = name.startsWith('no-') && specs[name.slice(3)]?.type === 'bool';
    const key = negated ? name.slice(3) : name;
    const spec = specs[key];
    if (!spec) {
      const keys = Object.keys(specs);
      const alias = FLAG_ALIASES[name];
      const near =
        (alias && keys.includes(alias) ? alias : undefined) ??
        keys.find((k) => k.startsWith(name) || name.startsWith(k)) ??
        suggest(name, keys);
      throw new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    if (spec.type === 'bool') {
      // A switch: --tta, --no-tta or --tta=false; never the next argument (a file name after it stays one), but
      // the words true and false there are the old spelling of a value: said so (./true names a file).
      const given = eq > 0 ? a.slice(eq + 1) : undefined;
      const next = args[i + 1];
      if (given === undefined && (next === 'true' || next === 'false'))
        throw new UsageError(
          `--${name} is a switch: --${key}, --no-${key} or --${key}=${next}, not "--${name} ${next}"`,
        );
      if (given === undefined) flags[key] = !negated;
      else if (negated) throw new UsageError(`--${name} takes no value, not "${given}"`);
      else if (given !== 'true' && given !== 'false')
        throw new UsageError(`--${key} takes true or false, not "${given}"`);
      else flags[key] = given === 'true';
      continue;
    }
    let text: string;
    if (eq > 0) text = a.slice(eq + 1);
    else {
      if (i + 1 >= args.length) throw new UsageError(`--${key} needs a value`);
      text = args[++i]!;
    }
    flags[key] = value(key, text, spec);
  }
  return { flags, positional };
}

/** Numbers as written in decimal, as the .net language writes them: no hex, no spaces, no Infinity. */
const WHOLE = /^-?\d+$/;
const DECIMAL = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function value(key: string, text: string, spec: FlagSpec): string | number {
  if (spec.type === 'string') {
    if (text === '') throw new UsageError(`--${key} needs a value`);
    return text;
  }
  const whole = spec.type === 'int';
  const n = Number(text);
  if (!(whole ? WHOLE : DECIMAL).test(text) || !Number.isFinite(n))
    throw new UsageError(`--${key} must be ${whole ? 'a whole number' : 'a number'}, not "${text}"`);
  if (spec.min !== undefined && n < spec.min)
    throw new UsageError(`--${key} must be at least ${spec.min}, not ${text}`);
  if (spec.max !== undefined && n > spec.max) throw new UsageError(`--${key} must be at most ${spec.max}, not ${text}`);
  if (spec.above !== undefined && !(n > spec.above))
    throw new UsageError(`--${key} must be greater than ${spec.above}, not ${text}`);
  return n;
}

/** A value's name in help text, by type, where the flag gives none. */
const META: Record<Exclude<FlagType, 'bool'>, string> = { string: 'VALUE', int: 'N', number: 'X' };

/** The flags part of a command's help text. */
export function flagHelp(specs: Readonly<Record<string, FlagSpec>>): string {
  const rows = Object.entries(specs).map(
    ([k, s]) => [`--${k}${s.type === 'bool' ? '' : ` ${s.meta ?? META[s.type]}`}`, s.help] as const,
  );
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([f, h]) => `  ${f.padEnd(w)}  ${h}`).join('\n');
}
