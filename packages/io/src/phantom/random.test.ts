import { describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError } from '../errors.js';
import { createRandom, deriveCaseSeed } from './random.js';

const python = referencePython(['json']);

// An independent transcription of SplitMix32 seeding + sfc32, with Python's unbounded integers masked to 32 bits.
const REFERENCE_GENERATOR = `
import json, sys
M = 0xffffffff
def mix(value):
    z = (value + 0x9e3779b9) & M
    z = ((z ^ (z >> 16)) * 0x21f0aaad) & M
    z = ((z ^ (z >> 15)) * 0x735a2d97) & M
    return z ^ (z >> 15)
def stream(seed, count):
    low, high = seed & M, (seed >> 32) & M
    a = mix(low); b = mix(a ^ high); c = mix((b + 0x6a09e667) & M); d = 1
    out = []
    for n in range(15 + count):
        t = (a + b + d) & M
        d = (d + 1) & M
        a = b ^ (b >> 9)
        b = (c + (c << 3)) & M
        c = ((c << 21) | (c >> 11)) & M
        c = (c + t) & M
        if n >= 15: out.append(t)
    return out
def derive(seed, index):
    low, high = seed & M, (seed >> 32) & M
    return mix(mix(mix(low) ^ high) ^ mix((index + 0x3c6ef372) & M))
seeds = json.loads(sys.argv[1])
print(json.dumps({
  'streams': [stream(s, 6) for s in seeds],
  'derived': [[derive(s, i) for i in range(4)] for s in seeds],
}))
`;

const SEEDS = [0, 1, 42, 4294967295, 4294967296 * 3 + 7];

describe('createRandom', () => {
  it.skipIf(python === undefined)('matches an independent implementation of the generator (Debian python)', () => {
    const reference = runPythonJson<{ streams: number[][]; derived: number[][] }>(python!, REFERENCE_GENERATOR, [JSON.stringify(SEEDS)]);
    SEEDS.forEach((seed, n) => {
      const random = createRandom(seed);
      expect(Array.from({ length: 6 }, () => random.nextUint32())).toEqual(reference.streams[n]);
      expect([0, 1, 2, 3].map((index) => deriveCaseSeed(seed, index))).toEqual(reference.derived[n]);
    });
  });

  it('gives the same stream for the same seed and another for another seed', () => {
    const draw = (seed: number): number[] => {
      const random = createRandom(seed);
      return Array.from({ length: 8 }, () => random.nextUint32());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('fills an array with the same numbers as successive nextUint32 calls', () => {
    const one = createRandom(99);
    const batch = createRandom(99);
    const filled = new Uint32Array(10);
    batch.fill(filled, 7);
    expect(Array.from(filled)).toEqual([...Array.from({ length: 7 }, () => one.nextUint32()), 0, 0, 0]);
    expect(batch.nextUint32()).toBe(one.nextUint32());
  });

  it('draws uniforms in range and standard normals with mean 0 and variance 1', () => {
    const random = createRandom(3);
    const count = 20000;
    let sum = 0;
    let sumSquares = 0;
    let lowest = Infinity;
    let highest = -Infinity;
    for (let n = 0; n < count; n++) {
      const value = random.uniform(-2, 5);
      lowest = Math.min(lowest, value);
      highest = Math.max(highest, value);
      const normal = random.normal();
      sum += normal;
      sumSquares += normal * normal;
    }
    expect(lowest).toBeGreaterThanOrEqual(-2);
    expect(lowest).toBeLessThan(-1.99);
    expect(highest).toBeLessThan(5);
    expect(highest).toBeGreaterThan(4.99);
    // Standard errors: mean 1/sqrt(n) = 0.007, variance sqrt(2/n) = 0.01; allow about 5 of them.
    expect(Math.abs(sum / count)).toBeLessThan(0.035);
    expect(Math.abs(sumSquares / count - 1)).toBeLessThan(0.05);
  });

  it.each([[-1], [1.5], [Number.NaN], [2 ** 53]])('rejects seed %s', (seed) => {
    expect(() => createRandom(seed)).toThrow(ArgumentError);
    expect(() => deriveCaseSeed(seed, 0)).toThrow(ArgumentError);
  });

  it('derives distinct case seeds', () => {
    const seeds = new Set(Array.from({ length: 1000 }, (_, index) => deriveCaseSeed(5, index)));
    expect(seeds.size).toBe(1000);
  });
});
