/** Parsers of command-line values shared by the commands: each throws a UsageError naming the flag. */
import { UsageError } from './errors.js';

/**
 * A decimal integer in [minimum, maximum].
 * @throws {UsageError} otherwise.
 */
export function parseInteger(flag: string, text: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    throw new UsageError(`${flag} must be an integer in [${minimum}, ${maximum}], got '${text}'`);
  }
  return value;
}

/**
 * A finite number greater than 0 (e.g. a learning rate, `1e-4`).
 * @throws {UsageError} otherwise.
 */
export function parsePositiveNumber(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a number greater than 0, got '${text}'`);
  return value;
}

/**
 * A number in [0, 1].
 * @throws {UsageError} otherwise.
 */
export function parseFraction(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) throw new UsageError(`${flag} must be a number in [0, 1], got '${text}'`);
  return value;
}

/**
 * One of `choices` (compared without case with `ignoreCase`, returning the choice as listed).
 * @throws {UsageError} otherwise, listing the choices.
 */
export function parseChoice<T extends string>(flag: string, text: string, choices: readonly T[], options: { ignoreCase?: boolean } = {}): T {
  const found = choices.find((choice) => (options.ignoreCase === true ? choice.toLowerCase() === text.toLowerCase() : choice === text));
  if (found === undefined) throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got '${text}'`);
  return found;
}

/**
 * Comma-separated weights, each a finite number >= 0, not all 0 (e.g. `1,2,1`).
 * @throws {UsageError} otherwise.
 */
export function parseWeights(flag: string, text: string): number[] {
  const parts = text.split(',').map((part) => part.trim());
  const values = parts.map(Number);
  if (parts.some((part) => part === '') || !values.every((value) => Number.isFinite(value) && value >= 0) || !values.some((value) => value > 0)) {
    throw new UsageError(`${flag} must be comma-separated numbers >= 0, not all 0 (e.g. 1,2,1), got '${text}'`);
  }
  return values;
}
