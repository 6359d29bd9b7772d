// Where a value's absence is a bug in this program, not a case to handle: an Error that names what
// is missing, instead of a `!` that lets undefined flow on into a kernel or a NaN.

/** `map.get(key)`, or an Error naming `what` when the map has no such key. */
export function must<K, V>(map: ReadonlyMap<K, V>, key: K, what: string): V {
  const v = map.get(key);
  if (v === undefined) throw new Error(`internal error: no ${what}`);
  return v;
}

/** `list[i]`, or an Error naming `what` when the list is shorter (or holds null there). */
export function mustAt<T>(list: readonly (T | null)[], i: number, what: string): T {
  const v = list[i];
  if (v === undefined || v === null) throw new Error(`internal error: no ${what} (item ${i} of ${list.length})`);
  return v;
}
