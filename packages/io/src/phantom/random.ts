/**
 * The seeded random numbers of the phantom generator. Written here rather than taken from a library
 * because byte-identical phantoms for a seed must survive dependency upgrades: these few lines pin the
 * algorithm (SplitMix32 seeding an sfc32 generator), and a test pins their first outputs.
 */
import { ArgumentError } from '../errors.js';

/** A deterministic stream of random numbers. */
export interface RandomSource {
  /** The next unsigned 32-bit integer. */
  nextUint32(): number;
  /** Fills `target[0..count)` with the next `count` unsigned 32-bit integers (the same as `count` calls of nextUint32). */
  fill(target: Uint32Array, count?: number): void;
  /** The next number uniform in [0, 1). */
  next(): number;
  /** The next number uniform in [low, high). */
  uniform(low: number, high: number): number;
  /** The next standard normal number (mean 0, standard deviation 1). */
  normal(): number;
}

/** One step of SplitMix32: a strong 32-bit mixer, used to seed and to derive seeds. */
function mixUint32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/**
 * Checks that a seed is a non-negative safe integer.
 * @throws {ArgumentError} otherwise.
 */
export function checkSeed(functionName: string, seed: number, argument = 'seed'): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ArgumentError(functionName, argument, `must be a non-negative integer, got ${String(seed)}`);
  }
}

/**
 * A seeded generator (sfc32 seeded through SplitMix32); the same seed always gives the same stream.
 * @param seed a non-negative safe integer.
 * @throws {ArgumentError} for a negative, fractional or unsafe seed.
 */
export function createRandom(seed: number): RandomSource {
  checkSeed('createRandom', seed);
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  let a = mixUint32(low);
  let b = mixUint32(a ^ high);
  let c = mixUint32(b + 0x6a09e667);
  let d = 1;
  const nextUint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // sfc32 needs a few rounds before its state is well mixed.
  for (let i = 0; i < 15; i++) nextUint32();
  let spareNormal: number | undefined;
  const next = (): number => nextUint32() / 4294967296;
  return {
    nextUint32,
    fill: (target, count = target.length) => {
      for (let n = 0; n < count; n++) {
        const t = (((a + b) | 0) + d) | 0;
        d = (d + 1) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = (c << 21) | (c >>> 11);
        c = (c + t) | 0;
        target[n] = t;
      }
    },
    next,
    uniform: (lowBound, highBound) => lowBound + (highBound - lowBound) * next(),
    normal: () => {
      if (spareNormal !== undefined) {
        const value = spareNormal;
        spareNormal = undefined;
        return value;
      }
      // Box-Muller; 1 - next() is in (0, 1], so the logarithm is finite.
      const radius = Math.sqrt(-2 * Math.log(1 - next()));
      const angle = 2 * Math.PI * next();
      spareNormal = radius * Math.sin(angle);
      return radius * Math.cos(angle);
    },
  };
}

/**
 * The seed of case `index` of a dataset generated from `seed`: a hash of both, so neighbouring cases
 * and neighbouring dataset seeds give unrelated phantoms. Result: an unsigned 32-bit integer.
 * @throws {ArgumentError} for a negative or non-integer seed or index.
 */
export function deriveCaseSeed(seed: number, index: number): number {
  checkSeed('deriveCaseSeed', seed);
  checkSeed('deriveCaseSeed', index, 'index');
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  return mixUint32(mixUint32(mixUint32(low) ^ high) ^ mixUint32((index >>> 0) + 0x3c6ef372));
}
