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

/** Browsers keep a cookie at most 400 days (RFC 6265bis): no lifetime longer than that can reach its cookie. */
export const COOKIE_CAP_SECONDS = 400 * 86400;

/**
 * The ConfigError for a lifetime beyond what a cookie can carry: most likely
 * milliseconds carried over from express-session (86400000, a day there, is
 * 1,000 days in seconds).
 */
export function tooLongForACookie(key: string, what: string, value: number): never {
  const days = Math.round((value / 86400) * 10) / 10;
  throw new ConfigError(
    key,
    `invalid ${what} "${key}": ${value} seconds is ${days} days, more than the 400 days (${COOKIE_CAP_SECONDS} s) a browser keeps a cookie — milliseconds? ${key} counts seconds (a day is 86400)`,
  );
}

/**
 * Options of express-session (and of its cookie) that mean something else
 * here, or nothing: each refused with what to do instead.
 */
export const EXPRESS_SESSION_HINTS: Readonly<Record<string, string>> = {
  name: 'express-session\'s cookie name is "key" here',
  proxy: 'express-session\'s "proxy" is "trustProxy" here',
  resave: 'not needed: a session is stored only when it changed, as a patch of the changed keys',
  saveUninitialized: 'not needed: a new session is stored (and gets its cookie) once something is set in it',
  rolling: "not needed: with cookie.maxAge and timestamp 'relative' (the default) the cookie slides with the session",
  store: 'the store is the first argument (app.store), or the "store" option of the Fastify plugin',
  genid: 'ids are always 256-bit random and cannot be chosen',
  unset: "session.drop() deletes the session (express-session's unset: 'destroy')",
  cookieName: '@fastify/session\'s "cookieName" is "key" here',
  idGenerator: 'ids are always 256-bit random and cannot be chosen',
  'cookie.expires': 'a fixed date would be the same for every session; use cookie.maxAge, in seconds',
  'cookie.signed': 'cookies are signed when "secret" is given',
  'cookie.originalMaxAge': 'use cookie.maxAge, in seconds',
};

/** Options of connect-pg-simple, connect-redis and express-session that people pass to startSessionApp. */
export const APP_CONFIG_HINTS: Readonly<Record<string, string>> = {
  secret: '"secret" is an option of createHandler and of the front doors, not of the app',
  cookie: '"cookie" is an option of createHandler and of the front doors, not of the app',
  ttl: 'the session lifetime is "maxAge", in seconds',
  tableName: 'the table is "table"',
  conString: 'a PostgreSQL URL goes in "database"',
  conObject: 'a PostgreSQL URL goes in "database"',
  pool: 'the store keeps its own connection: give its URL as "database"',
  client: 'the store keeps its own connection: give its URL as "database"',
  pruneSessionInterval: 'the cleaner runs every "cleanerInterval" seconds',
  createTableIfMissing: '"autoSetup" (true by default) creates the table',
};

/**
 * The checks for one kind of input, named in its messages: `invalid config
 * "maxAge": …`, `unknown createHandler option "cookie.maxage" (did you mean
 * "cookie.maxAge"?); known: …`.
 */
export function checker(names: { invalid: string; unknown: string; known: string; hints?: Readonly<Record<string, string>> }): Checker {
  return {
    fail(key, value, expected) {
      throw new ConfigError(key, `invalid ${names.invalid} "${key}": expected ${expected}, got ${show(value)}`);
    },
    refuseUnknown(object, known, prefix) {
      for (const key of Object.keys(object)) {
        if (known.includes(key)) continue;
        const name = prefix + key;
        // A key carried over from express-session or another store says what to use here.
        const hint = names.hints && Object.hasOwn(names.hints, name) ? `: ${names.hints[name]}` : suggest(key, known);
        throw new ConfigError(
          name,
          `unknown ${names.unknown} "${name}"${hint}; ${names.known}: ${known.map((k) => prefix + k).join(', ')}`,
        );
      }
    },
  };
}
