// A device profile: the numbers the cost model (cost.ts) prices a dispatch with, each with its
// source (a measurement: date, commit, command, GPU; or a datasheet). Stored as JSON in
// bench/devices/NAME.json: { name, device, values: { "<key>": { value, source } } }, every key of
// PROFILE_KEYS present and no other. A profile changes only by a refit from GPU measurements
// (calibrate.ts, `bench/cost.ts --measured`) or a datasheet fix, never by hand to move a prediction.

/** Every number a profile holds, with what it means. */
export const PROFILE_KEYS = {
  units: 'streaming multiprocessors / compute units',
  clockGHz: 'shader clock under load, GHz',
  simdWidth: 'threads that issue together (a warp)',
  threadsPerUnit: 'resident threads per unit',
  workgroupsPerUnit: 'resident workgroups per unit',
  sharedBytesPerUnit: 'workgroup memory per unit, bytes',
  fmaLanesPerUnit: 'fp32 FMA lanes per unit (FMA rate = units × lanes × clock)',
  sharedWavefrontsPerClock: 'warp-wide workgroup-memory (or local-memory) accesses per clock per unit',
  memoryGBs: 'memory bandwidth, GB/s',
  dispatchUs: 'time per dispatch inside one compute pass, µs',
  submitUs: 'time per separate submit, µs',
  memoryCycles: 'a dependent global load, load to use, cycles',
  barrierCycles: 'a workgroup barrier, cycles',
  'families.gemm.efficiency': 'fraction of the FMA / workgroup-memory issue rate a register-tiled GEMM reaches',
  'families.gemmIndexed.cyclesPerAccess': 'cycles per access of accumulators that left registers, one warp',
  'families.stream.efficiency': 'fraction of the memory bandwidth an elementwise kernel reaches',
  'families.chain.efficiency': 'fraction of the latency-bound speed a serial loop reaches',
  maxBufferSize: 'limit: largest buffer, bytes',
  maxStorageBufferBindingSize: 'limit: largest storage binding, bytes',
  maxComputeWorkgroupsPerDimension: 'limit: workgroups per dispatch dimension',
  maxStorageBuffersPerShaderStage: 'limit: storage buffers one kernel binds',
  maxComputeWorkgroupStorageSize: 'limit: workgroup memory one kernel declares, bytes',
} as const;

export type ProfileKey = keyof typeof PROFILE_KEYS;

export interface Sourced {
  value: number;
  source: string;
}

/** The JSON form, sources kept (what refits rewrite). */
export interface ProfileJson {
  name: string;
  device: string;
  values: Record<ProfileKey, Sourced>;
}

/** The numbers by key, and the JSON they came from. */
export interface DeviceProfile {
  name: string;
  device: string;
  v: Readonly<Record<ProfileKey, number>>;
  json: ProfileJson;
}

export class ProfileError extends Error {
  override name = 'ProfileError';
}

/** A profile from its parsed JSON: every key present with a finite positive value and a source, no other key. */
export function parseProfile(raw: unknown, where: string): DeviceProfile {
  const o = raw as Partial<ProfileJson> | null;
  if (!o || typeof o.name !== 'string' || typeof o.device !== 'string' || typeof o.values !== 'object')
    throw new ProfileError(
      `${where}: expected { name, device, values } but found ${JSON.stringify(raw)?.slice(0, 80)}`,
    );
  const values = o.values as Record<string, Partial<Sourced>>;
  const unknown = Object.keys(values).filter((k) => !(k in PROFILE_KEYS));
  if (unknown.length > 0) throw new ProfileError(`${where}: unknown ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const v = {} as Record<ProfileKey, number>;
  for (const key of Object.keys(PROFILE_KEYS) as ProfileKey[]) {
    const e = values[key];
    if (!e) throw new ProfileError(`${where}: no "${key}" (${PROFILE_KEYS[key]})`);
    if (typeof e.value !== 'number' || !Number.isFinite(e.value) || e.value <= 0)
      throw new ProfileError(`${where}: "${key}" must be a positive number but is ${JSON.stringify(e.value)}`);
    if (typeof e.source !== 'string' || e.source.trim() === '')
      throw new ProfileError(`${where}: "${key}" = ${e.value} has no source (a measurement or a datasheet)`);
    v[key] = e.value;
  }
  return { name: o.name, device: o.device, v, json: o as ProfileJson };
}

/** What a stand-in device of this profile is told (src/gpu/dry.ts DryLimits): its units and its limits. */
export function profileLimits(p: DeviceProfile) {
  const { units, maxBufferSize, maxStorageBufferBindingSize, maxComputeWorkgroupsPerDimension } = p.v;
  const { maxStorageBuffersPerShaderStage, maxComputeWorkgroupStorageSize } = p.v;
  return {
    ...{ units, maxBufferSize, maxStorageBufferBindingSize, maxComputeWorkgroupStorageSize },
    ...{ maxComputeWorkgroupsPerDimension, maxStorageBuffersPerShaderStage },
  };
}

/** The profile with some values replaced, each with its new source. */
export function withValues(p: DeviceProfile, changes: Partial<Record<ProfileKey, Sourced>>): DeviceProfile {
  const json: ProfileJson = { ...p.json, values: { ...p.json.values, ...changes } };
  return parseProfile(json, p.name);
}
