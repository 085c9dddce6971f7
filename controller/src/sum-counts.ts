// Fleet totals: the same counters added up over the hosts that answered.

/** Each of `keys` summed over `list` (0 for an empty list). */
export function sumCounts<K extends string>(
  list: readonly Record<K, number>[],
  keys: readonly K[],
): Record<K, number> {
  const total = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  for (const item of list) for (const k of keys) total[k] += item[k];
  return total;
}
