// Session data is plain JSON: null, booleans, finite numbers, strings, and
// arrays and plain objects of them, at any depth. Anything else would not
// survive a round trip through the database unchanged, so it is refused.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type SessionData = Record<string, JsonValue>;

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'bigint') return 'a BigInt';
  if (typeof value === 'number') return String(value);
  const name = (value as object)?.constructor?.name;
  return name ? `a ${name}` : 'an object with a custom prototype';
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
      // A lone UTF-16 surrogate (JSON.parse of "\\ud800" gives one) is not
      // Unicode: SQLite would store it and PostgreSQL's jsonb refuse it.
      if (value.isWellFormed()) return;
      throw new TypeError(`session value "${path}" is not well-formed Unicode: it holds a lone UTF-16 surrogate`);
    case 'boolean':
      return;
    case 'number':
      if (Number.isFinite(value)) return;
      break;
    case 'object': {
      if (value === null) return;
      if (seen.has(value)) throw new TypeError(`session value "${path}" is not JSON: it contains a cycle`);
      if (Array.isArray(value)) {
        seen.add(value);
        for (let i = 0; i < value.length; i++) check(value[i], `${path}[${i}]`, seen);
        seen.delete(value);
        return;
      }
      if (isPlainObject(value)) {
        seen.add(value);
        if (Object.getOwnPropertySymbols(value).length > 0) throw new TypeError(`session value "${path}" is not JSON: it has symbol keys`);
        for (const key of Object.keys(value)) {
          checkKey(key, `${path}.${key}`);
          check((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
        }
        seen.delete(value);
        return;
      }
      break;
    }
  }
  throw new TypeError(
    `session value "${path}" is not JSON: got ${describe(value)} (only null, booleans, finite numbers, strings, arrays and plain objects are stored)`,
  );
}

function checkKey(key: string, path: string): void {
  if (!key.isWellFormed()) throw new TypeError(`session key "${path}" is not well-formed Unicode: it holds a lone UTF-16 surrogate`);
}

/** Throws a TypeError naming the key when `value` is not plain JSON (or a key is not well-formed Unicode). */
export function assertJsonValue(value: unknown, key: string): asserts value is JsonValue {
  checkKey(key, key);
  check(value, key, new Set());
}

/** Throws a TypeError unless `data` is a plain object of JSON values. */
export function assertSessionData(data: unknown, what = 'session data'): asserts data is SessionData {
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !isPlainObject(data)) {
    throw new TypeError(
      `${what} must be a plain object, got ${data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data === 'object' ? describe(data) : typeof data}`,
    );
  }
  const seen = new Set<object>([data]);
  for (const key of Object.keys(data)) {
    checkKey(key, key);
    check((data as Record<string, unknown>)[key], key, seen);
  }
}

/** Keys to remove (a patch's `unset`, `session.delete`): strings, well-formed. */
export function assertKeyList(keys: unknown, what: string): asserts keys is string[] {
  if (!Array.isArray(keys) || keys.some((key) => typeof key !== 'string')) throw new TypeError(`${what} must be an array of key names`);
  for (const key of keys) checkKey(key, key);
}
