// Device profiles for the cost model (bench/devices/NAME.json, every number with its source), found
// from wherever fmgpu runs: the source tree, the built dist/, or an installed package.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.ts';
import { parseProfile, type DeviceProfile } from '../gpu/profile.ts';

/** The nearest bench/devices above this module (src/node/ or dist/), else under the working directory. */
function devicesDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bench', 'devices'))) return join(dir, 'bench', 'devices');
    if (dirname(dir) === dir) return resolve('bench', 'devices');
  }
}

/** The profile names there: h100, igpu, … */
export function profileNames(): string[] {
  const dir = devicesDir();
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5))
    : [];
}

/** A device profile by name (bench/devices/NAME.json) or by path (FILE.json). */
export function loadProfile(name: string): { profile: DeviceProfile; path: string } {
  const path = name.endsWith('.json') ? resolve(name) : join(devicesDir(), `${name}.json`);
  if (!existsSync(path)) throw new UsageError(`no device profile ${name} (profiles: ${profileNames().join(', ')})`);
  return { profile: parseProfile(JSON.parse(readFileSync(path, 'utf8')), path), path };
}
