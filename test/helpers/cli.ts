// The built CLI as the tests run it: `node bin/fmgpu.js ARGS` from the repository root, no colour,
// XDG_RUNTIME_DIR set (Dawn wants one), five minutes at most; stderr trimmed.
import { spawnSync } from 'node:child_process';

export const CLI_ENV = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };

export type CliResult = { code: number | null; out: string; err: string };

export function fmgpu(...args: string[]): CliResult {
  const r = spawnSync('node', ['bin/fmgpu.js', ...args], { encoding: 'utf8', env: CLI_ENV, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr.trim() };
}
