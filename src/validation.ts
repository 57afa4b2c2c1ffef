// One validation module for startSessionApp's config and the front doors'
// options: the same wording for a bad value ("expected …, got …"), the same
// refusal of an unknown key with a did-you-mean hint, one ConfigError naming
// the key. Nothing is started before these checks pass.
import { ConfigError } from './errors.ts';

/** A value as an error message shows it: strings quoted, objects by their kind (never a function's source). */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return value.toString();
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Closest known key by edit distance, to suggest on a typo (`maxage` → `maxAge`). */
export function suggest(key: string, known: readonly string[]): string {
  let best = '';
  let bestDistance = Infinity;
  for (const candidate of known) {
    const a = key.toLowerCase();
    const b = candidate.toLowerCase();
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
      }
    }
    if (row[b.length] < bestDistance) {
      bestDistance = row[b.length];
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

export interface Checker {
  /** Throws the ConfigError for `key`: what was expected, and what was given. */
  fail(key: string, value: unknown, expected: string): never;
  /** Throws for the first key of `object` that is not `known` (prefixed for nested objects: `cookie.`). */
  refuseUnknown(object: object, known: readonly string[], prefix: string): void;
}

/**
 * The checks for one kind of input, named in its messages: `invalid config
 * "maxAge": …`, `unknown createHandler option "cookie.maxage" (did you mean
 * "cookie.maxAge"?); known: …`.
 */
export function checker(names: { invalid: string; unknown: string; known: string }): Checker {
  return {
    fail(key, value, expected) {
      throw new ConfigError(key, `invalid ${names.invalid} "${key}": expected ${expected}, got ${show(value)}`);
    },
    refuseUnknown(object, known, prefix) {
      for (const key of Object.keys(object)) {
        if (known.includes(key)) continue;
        const name = prefix + key;
        throw new ConfigError(
          name,
          `unknown ${names.unknown} "${name}"${suggest(key, known)}; ${names.known}: ${known.map((k) => prefix + k).join(', ')}`,
        );
      }
    },
  };
}
