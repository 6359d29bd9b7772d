// Small things every command shares.
import { existsSync, readFileSync, statSync } from 'node:fs';
import pkg from '../../package.json' with { type: 'json' };
import { UsageError } from './args.ts';

export const VERSION: string = pkg.version;

/** Sources read so far, by file name: language errors quote them. */
export const sources = new Map<string, string>();

/** A .net file's text, or a usage error that names it. */
export function readSource(file: string): string {
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (statSync(file).isDirectory()) throw new UsageError(`${file} is a directory, not a .net file`);
  const text = readFileSync(file, 'utf8');
  sources.set(file, text);
  return text;
}
