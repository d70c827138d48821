/**
 * Splitting cases into training, validation and testing sets, by case (never by slice), exactly as the
 * seed's later converter does with numpy: `np.random.seed(seed)`, one `np.random.random()` draw per case
 * in dataset order (< train fraction → training), then one more draw for each remaining case in order
 * (≥ the testing share of the remainder → validation, else testing). Same seed and case order, same split.
 */
import { mersenne } from 'pure-rand/generator/mersenne';
import { ArgumentError } from '../errors.js';

/** The three sets a slice store holds, in the order the store lists them. */
export type SplitName = 'train' | 'validation' | 'testing';

/** Every split, in store order. */
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'testing'];

/** Fractions of cases expected in each split; they sum to 1. */
export interface SplitFractions {
  train: number;
  validation: number;
  testing: number;
}

/** The seed's split: 85% training, the rest halved into validation and testing. */
export const DEFAULT_SPLIT_FRACTIONS: Readonly<SplitFractions> = { train: 0.85, validation: 0.075, testing: 0.075 };

/** The seed's random seed. */
export const DEFAULT_SPLIT_SEED = 816;

/** Options of {@link assignSplits}. */
export interface AssignSplitsOptions {
  /** Seed of the Mersenne Twister, 0 ≤ seed < 2^32 (default 816). */
  seed?: number;
  /** A training fraction (the rest halved) or all three fractions (default 0.85). */
  fractions?: number | Readonly<SplitFractions>;
}

/**
 * Uniform doubles in [0, 1) identical to numpy's legacy `np.random.seed(seed); np.random.random(n)`:
 * MT19937 seeded by init_genrand, each double built from two 32-bit outputs as (a >>> 5) · 2^26 + (b >>> 6)
 * over 2^53 (numpy's random_sample).
 * @throws {ArgumentError} when the seed is not an integer in [0, 2^32).
 */
export function createNumpyUniform(seed: number): () => number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ArgumentError('createNumpyUniform', 'seed', `must be an integer in [0, 4294967295], got ${seed}`);
  }
  // pure-rand seeds with a signed 32-bit integer; the bit pattern is what init_genrand uses.
  const generator = mersenne(seed | 0);
  return () => {
    const high = generator.next() >>> 5;
    const low = generator.next() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  };
}

/**
 * Resolves a training fraction or three fractions to complete, validated fractions.
 * @throws {ArgumentError} for a fraction outside [0, 1] or fractions that do not sum to 1.
 */
export function resolveSplitFractions(fractions: number | Readonly<SplitFractions> = DEFAULT_SPLIT_FRACTIONS.train): SplitFractions {
  const resolved =
    typeof fractions === 'number'
      ? { train: fractions, validation: (1 - fractions) / 2, testing: (1 - fractions) / 2 }
      : { train: fractions.train, validation: fractions.validation, testing: fractions.testing };
  for (const name of ['train', 'validation', 'testing'] as const) {
    const value = resolved[name];
    if (!Number.isFinite(value) || value < 0 || value > 1) {
      throw new ArgumentError('resolveSplitFractions', 'fractions', `${name} must be in [0, 1], got ${value}`);
    }
  }
  const sum = resolved.train + resolved.validation + resolved.testing;
  if (Math.abs(sum - 1) > 1e-6) {
    throw new ArgumentError('resolveSplitFractions', 'fractions', `must sum to 1, got ${sum}`);
  }
  return resolved;
}

/**
 * The split of each of `caseCount` cases, in dataset order (see the module comment for the exact draws).
 * With the default 50/50 remainder this reproduces the seed: validation when the second draw ≥ 0.5.
 * @throws {ArgumentError} for a negative count, a bad seed or bad fractions.
 * @example assignSplits(484, { seed: 816 }) // ['train', 'train', 'validation', …]
 */
export function assignSplits(caseCount: number, options: AssignSplitsOptions = {}): SplitName[] {
  if (!Number.isInteger(caseCount) || caseCount < 0) {
    throw new ArgumentError('assignSplits', 'caseCount', `must be a non-negative integer, got ${caseCount}`);
  }
  const fractions = resolveSplitFractions(options.fractions);
  const uniform = createNumpyUniform(options.seed ?? DEFAULT_SPLIT_SEED);
  const firstDraws = Array.from({ length: caseCount }, () => uniform());
  const splits: SplitName[] = firstDraws.map((draw) => (draw < fractions.train ? 'train' : 'validation'));
  const remainder = fractions.validation + fractions.testing;
  const testingShare = remainder > 0 ? fractions.testing / remainder : 0;
  // The second pass draws only for the cases left over, in order, after all first draws (as the seed does).
  splits.forEach((split, index) => {
    if (split === 'train') return;
    splits[index] = uniform() >= testingShare ? 'validation' : 'testing';
  });
  // Explicit fractions for all three parts promise each non-zero part a case; a single seed-style fraction keeps
  // the seed's draws exactly.
  if (typeof options.fractions === 'object') ensureEveryPart(splits, fractions);
  return splits;
}

/**
 * With explicit fractions, per-case draws can still leave a part with a non-zero fraction empty (two validation cases expected, none drawn), and
 * training then has nothing to choose its model on. Where there are at least as many cases as non-zero parts, an
 * empty part takes the last case, in dataset order, of the largest part. Draws that fill every part are kept as
 * they are, so the seed's splits do not change.
 */
function ensureEveryPart(splits: SplitName[], fractions: SplitFractions): void {
  const wanted = (['train', 'validation', 'testing'] as const).filter((name) => fractions[name] > 0);
  if (splits.length < wanted.length) return;
  for (const name of wanted) {
    if (splits.includes(name)) continue;
    const counts = wanted.map((part) => ({ part, count: splits.filter((split) => split === part).length }));
    const donor = counts.reduce((best, entry) => (entry.count > best.count ? entry : best)).part;
    splits[splits.lastIndexOf(donor)] = name;
  }
}

/** Case ids placed in a split by name rather than by draw (see {@link assignNamedSplits}). */
export interface NamedSplits {
  validation?: readonly string[];
  testing?: readonly string[];
}

/**
 * The split of each case when validation and test cases are named: those go where they are named, every other
 * case trains. For held-out cases chosen on purpose (cases another model never saw, a fixed benchmark set).
 * @throws {ArgumentError} for an id that is not among `caseIds`, or one named twice.
 * @example assignNamedSplits(['a', 'b', 'c'], { testing: ['c'] }) // ['train', 'train', 'testing']
 */
export function assignNamedSplits(caseIds: readonly string[], named: NamedSplits): SplitName[] {
  const wanted = new Map<string, SplitName>();
  for (const split of ['validation', 'testing'] as const) {
    for (const id of named[split] ?? []) {
      if (wanted.has(id)) throw new ArgumentError('assignNamedSplits', 'named', `names case ${id} twice`);
      wanted.set(id, split);
    }
  }
  const known = new Set(caseIds);
  const unknown = [...wanted.keys()].filter((id) => !known.has(id));
  if (unknown.length > 0) throw new ArgumentError('assignNamedSplits', 'named', `names case(s) the dataset does not have: ${unknown.join(', ')}`);
  return caseIds.map((id) => wanted.get(id) ?? 'train');
}
