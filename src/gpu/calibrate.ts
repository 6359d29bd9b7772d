// Refitting a device profile's per-family factors from measured dispatch times (bench/profile.ts
// --json on a GPU): for each kernel family, the one factor of FAMILY_FACTOR that minimises
// Σ (ln predicted − ln measured)² over that family's dispatches, the kernels alone (timestamps do
// not see the dispatch gap). Every other number of the profile stays as it is. A family with no
// measured dispatch keeps its factor.
import { familyOf, predictDispatch, type Described, type Family } from './cost.ts';
import { withValues, type DeviceProfile, type ProfileKey } from './profile.ts';

/** The factor a family's measurements refit. */
export const FAMILY_FACTOR: Record<Family, ProfileKey> = {
  gemm: 'families.gemm.efficiency',
  gemmIndexed: 'families.gemmIndexed.cyclesPerAccess',
  stream: 'families.stream.efficiency',
  chain: 'families.chain.efficiency',
};

export interface Sample {
  d: Described;
  /** Measured GPU time of the kernel, µs. */
  us: number;
}

export interface FamilyFit {
  family: Family;
  key: ProfileKey;
  samples: number;
  before: number;
  after: number;
  /** Median |log10(predicted / measured)| before and after. */
  errorBefore: number;
  errorAfter: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1] ?? 0; // the lower middle; 0 for none
};

function errors(samples: readonly Sample[], p: DeviceProfile): number[] {
  return samples.map((s) => Math.log(predictDispatch(s.d, p).kernelUs / s.us));
}

/**
 * The value of `key` minimising the squared log errors: golden-section search over ln value, ×/÷ 10⁴.
 * A faint pull towards the old value picks, where the errors do not depend on the factor (dispatches
 * another bound decides), the point nearest to it rather than an arbitrary one.
 */
export function fitFactor(samples: readonly Sample[], p: DeviceProfile, key: ProfileKey): number {
  const start = Math.log(p.v[key]);
  const at = (lnValue: number): DeviceProfile =>
    withValues(p, { [key]: { value: Math.exp(lnValue), source: 'fitting' } });
  const cost = (lnValue: number): number =>
    errors(samples, at(lnValue)).reduce((a, e) => a + e * e, 1e-6 * (lnValue - start) ** 2);
  const g = (Math.sqrt(5) - 1) / 2;
  let [lo, hi] = [start - 9.2, start + 9.2];
  for (let i = 0; i < 80; i++) {
    const a = hi - g * (hi - lo);
    const b = lo + g * (hi - lo);
    if (cost(a) <= cost(b)) hi = b;
    else lo = a;
  }
  return Number(Math.exp((lo + hi) / 2).toPrecision(3));
}

/**
 * The profile refit from these measurements; `source` says where they came from (file, date, GPU,
 * commit), and goes into each refit number's source with the fit's error before and after.
 */
export function refit(
  p: DeviceProfile,
  samples: readonly Sample[],
  source: string,
): { profile: DeviceProfile; fits: FamilyFit[] } {
  let profile = p;
  const fits: FamilyFit[] = [];
  for (const family of Object.keys(FAMILY_FACTOR) as Family[]) {
    // A pair (pair.ts) is priced from its halves by a rule of its own: the factors are fitted on kernels alone.
    const mine = samples.filter((s) => s.d.work.shape.kind !== 'pair' && familyOf(s.d.work) === family);
    if (mine.length === 0) continue;
    const key = FAMILY_FACTOR[family];
    const before = profile.v[key];
    const errorBefore = median(errors(mine, profile).map((e) => Math.abs(e / Math.LN10)));
    const after = fitFactor(mine, profile, key);
    const fitted = withValues(profile, { [key]: { value: after, source: 'fitting' } });
    const errorAfter = median(errors(mine, fitted).map((e) => Math.abs(e / Math.LN10)));
    const note =
      `refit from ${source}: least squares of ln(predicted/measured) over ${mine.length} ${family} dispatches ` +
      `(median |log10 error| ${errorBefore.toFixed(2)} → ${errorAfter.toFixed(2)}; was ${before})`;
    profile = withValues(profile, { [key]: { value: after, source: note } });
    fits.push({ family, key, samples: mine.length, before, after, errorBefore, errorAfter });
  }
  return { profile, fits };
}
