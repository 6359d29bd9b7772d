// Command-line flags: a small typed table per command, parsed strictly. Unknown flags, missing
// values and out-of-range numbers are usage errors (exit 2) that name the flag.
import { UsageError } from '../errors.ts';

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
  const cursor = args.values(); // a flag's value is the next argument: cursor.next()
  for (const a of cursor) {
    if (a === '--') {
      for (const rest of cursor) positional.push(rest); // not push(...): argv may be long
      break;
    }
    if (!a.startsWith('--') || a === '--') {
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
      const near = Object.keys(specs).find((k) => k.startsWith(name) || name.startsWith(k));
      throw new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    if (spec.type === 'bool') {
      if (eq > 0) {
        const v = a.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new UsageError(`--${key} takes true or false, not "${v}"`);
        flags[key] = v === 'true';
      } else flags[key] = !negated;
      continue;
    }
    let text: string;
    if (eq > 0) text = a.slice(eq + 1);
    else {
      const next = cursor.next();
      if (next.done) throw new UsageError(`--${key} needs a value`);
      text = next.value;
    }
    flags[key] = value(key, text, spec);
  }
  return { flags, positional };
}

function value(key: string, text: string, spec: FlagSpec): string | number {
  if (spec.type === 'string') {
    if (text === '') throw new UsageError(`--${key} needs a value`);
    return text;
  }
  const n = Number(text);
  const what = spec.type === 'int' ? 'a whole number' : 'a number';
  if (text.trim() === '' || !Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n)))
    throw new UsageError(`--${key} must be ${what}, not "${text}"`);
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
