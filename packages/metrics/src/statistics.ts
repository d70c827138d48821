/**
 * NaN-aware descriptive statistics for reductions and summaries: NaNs are counted and left out.
 */

/** Mean, median and standard deviation of the non-NaN values, with counts. */
export interface MetricStatistics {
  /** Mean of the non-NaN values (NaN when there is none). */
  mean: number;
  /** Median of the non-NaN values (mean of the two middle ones for an even count; NaN when there is none). */
  median: number;
  /** Population standard deviation (numpy's default, ddof = 0) of the non-NaN values (NaN when there is none). */
  std: number;
  /** How many values were not NaN. */
  count: number;
  /** How many values were NaN (left out of mean, median and std). */
  nanCount: number;
}

/**
 * Mean, median and population standard deviation of `values`, NaNs counted and excluded.
 * @example describeValues([1, 2, NaN, 4]) // { mean: 7/3, median: 2, std: 1.247…, count: 3, nanCount: 1 }
 */
export function describeValues(values: readonly number[]): MetricStatistics {
  const kept = values.filter((value) => !Number.isNaN(value));
  const count = kept.length;
  const nanCount = values.length - count;
  if (count === 0) return { mean: Number.NaN, median: Number.NaN, std: Number.NaN, count, nanCount };
  let sum = 0;
  for (const value of kept) sum += value;
  const mean = sum / count;
  let squares = 0;
  for (const value of kept) squares += (value - mean) * (value - mean);
  return { mean, median: medianOf(kept), std: Math.sqrt(squares / count), count, nanCount };
}

/** Mean of the non-NaN values (NaN when there is none). */
export function nanMean(values: readonly number[]): number {
  let sum = 0;
  let count = 0;
  for (const value of values) {
    if (Number.isNaN(value)) continue;
    sum += value;
    count++;
  }
  return count === 0 ? Number.NaN : sum / count;
}

/** Median of the non-NaN values (NaN when there is none). */
export function nanMedian(values: readonly number[]): number {
  const kept = values.filter((value) => !Number.isNaN(value));
  return kept.length === 0 ? Number.NaN : medianOf(kept);
}

function medianOf(values: number[]): number {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
