import { constants } from 'node:os';
import { ConfigError } from './errors.ts';
import { APP_CONFIG_HINTS, checker, COOKIE_CAP_SECONDS, isPlainObject, tooLongForACookie, show, type Checker } from './validation.ts';
import { DATABASE_FORMS, engineFor } from './engines/index.ts';

export type Timestamp = 'relative' | 'fixed';
export type Durability = 'normal' | 'full';

export interface SessionAppConfig {
  database?: string;
  table?: string;
  maxAge?: number;
  timestamp?: Timestamp;
  cleanerInterval?: number;
  sweepSignal?: NodeJS.Signals | false;
  autoSetup?: boolean;
  restart?: { intensity?: number; period?: number };
  shutdownTimeout?: number;
  requestTimeout?: number;
  durability?: Durability;
  maxSessionBytes?: number;
  touchAfter?: number;
  maxLifetime?: number;
  maxPendingCalls?: number;
  maxSessionsPerOwner?: number;
}

export interface ResolvedConfig {
  database: string;
  table: string;
  maxAge: number;
  timestamp: Timestamp;
  cleanerInterval: number;
  sweepSignal: NodeJS.Signals | false;
  autoSetup: boolean;
  restart: { intensity: number; period: number };
  shutdownTimeout: number;
  requestTimeout: number;
  durability: Durability;
  maxSessionBytes: number;
  touchAfter: number;
  maxLifetime: number | null;
  maxPendingCalls: number;
  maxSessionsPerOwner: number | null;
}

export const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const check = checker({ invalid: 'config', unknown: 'config key', known: 'known keys', hints: APP_CONFIG_HINTS });
const fail: Checker['fail'] = check.fail;
const refuseUnknown: Checker['refuseUnknown'] = check.refuseUnknown;

function seconds(key: string, value: unknown, { zero = false } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0)) {
    fail(key, value, zero ? 'a finite number of seconds >= 0' : 'a positive finite number of seconds');
  }
  return value;
}

/**
 * A session lifetime in seconds, at most 400 days: a larger value is most
 * likely milliseconds carried over from express-session (86400000 for a day
 * would be 1,000 days here), and no cookie outlives 400 days anyway.
 */
function lifetime(key: string, value: unknown): number {
  const result = seconds(key, value);
  if (result > COOKIE_CAP_SECONDS) tooLongForACookie(key, 'config', result);
  return result;
}

function milliseconds(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(key, value, 'a positive finite number of milliseconds');
  return value;
}

function oneOf<T extends string>(key: string, value: unknown, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) fail(key, value, options.map((o) => `'${o}'`).join(' or '));
  return value as T;
}

/**
 * `database: process.env.DATABASE_URL` with the variable unset (or set to
 * ''): refused, never a quiet local sessions.db — a fleet misconfigured so
 * would run with each server on a file of its own.
 */
function refuseUnsetDatabase(input: unknown): void {
  if (!isPlainObject(input) || !Object.hasOwn(input, 'database')) return;
  const value = input.database;
  if (value !== undefined && value !== '') return;
  throw new ConfigError(
    'database',
    `invalid config "database": it is ${value === '' ? 'an empty string' : 'undefined'} (an environment variable not set?); set DATABASE_URL (or the variable you read), or leave the key out for sessions.db`,
  );
}

function databasePath(key: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0'))
    fail(key, typeof value === 'string' ? engineFor(value).redact(value) : value, DATABASE_FORMS);
  const engine = engineFor(value);
  const problem = engine.problem(value);
  // The value is shown with its password masked: config errors get logged.
  if (problem) throw new ConfigError(key, `invalid config "${key}": ${JSON.stringify(engine.redact(value))} ${problem}`);
  return value;
}

function tableName(key: string, value: unknown): string {
  if (typeof value !== 'string' || !TABLE_NAME.test(value)) fail(key, value, `a table name matching ${TABLE_NAME}`);
  return value;
}

const APP_KEYS = [
  'database',
  'table',
  'maxAge',
  'timestamp',
  'cleanerInterval',
  'sweepSignal',
  'autoSetup',
  'restart',
  'shutdownTimeout',
  'requestTimeout',
  'durability',
  'maxSessionBytes',
  'touchAfter',
  'maxLifetime',
  'maxPendingCalls',
  'maxSessionsPerOwner',
] as const;

/** Keys whose value is `undefined` count as absent (the default applies). */
function defined(object: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) if (value !== undefined) result[key] = value;
  return result;
}

function rootObject(input: unknown, what: string): Record<string, unknown> {
  if (input === undefined) return {};
  if (!isPlainObject(input)) throw new ConfigError('', `invalid ${what}: expected a plain object, got ${show(input)}`);
  return defined(input);
}

/** Validates the whole config of `startSessionApp` and fills in the defaults; throws ConfigError. */
export function resolveConfig(input: unknown): ResolvedConfig {
  refuseUnsetDatabase(input);
  const raw = rootObject(input, 'config');
  refuseUnknown(raw, APP_KEYS, '');

  const maxAge = raw.maxAge === undefined ? 86400 : lifetime('maxAge', raw.maxAge);

  let restart = { intensity: 3, period: 5 };
  if (raw.restart !== undefined) {
    if (!isPlainObject(raw.restart)) fail('restart', raw.restart, 'an object { intensity, period }');
    const nested = defined(raw.restart);
    refuseUnknown(nested, ['intensity', 'period'], 'restart.');
    if (nested.intensity !== undefined) {
      const value = nested.intensity;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail('restart.intensity', value, 'an integer >= 0');
      restart = { ...restart, intensity: value };
    }
    if (nested.period !== undefined) restart = { ...restart, period: seconds('restart.period', nested.period) };
  }

  let sweepSignal: NodeJS.Signals | false = 'SIGUSR2';
  if (raw.sweepSignal !== undefined) {
    const value = raw.sweepSignal;
    if (value !== false) {
      if (typeof value !== 'string' || !(value in constants.signals))
        fail('sweepSignal', value, "a signal name Node knows (such as 'SIGUSR2') or false");
      if (value === 'SIGKILL' || value === 'SIGSTOP') fail('sweepSignal', value, 'a signal that can be caught (not SIGKILL or SIGSTOP)');
      sweepSignal = value as NodeJS.Signals;
    } else {
      sweepSignal = false;
    }
  }

  let maxSessionBytes = 65536;
  if (raw.maxSessionBytes !== undefined) {
    const value = raw.maxSessionBytes;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
      fail('maxSessionBytes', value, 'a positive integer number of bytes');
    maxSessionBytes = value;
  }

  if (raw.autoSetup !== undefined && typeof raw.autoSetup !== 'boolean') fail('autoSetup', raw.autoSetup, 'true or false');

  let maxPendingCalls = 10000;
  if (raw.maxPendingCalls !== undefined) {
    const value = raw.maxPendingCalls;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) fail('maxPendingCalls', value, 'a positive integer');
    maxPendingCalls = value;
  }

  let maxSessionsPerOwner: number | null = null;
  if (raw.maxSessionsPerOwner !== undefined) {
    const value = raw.maxSessionsPerOwner;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) fail('maxSessionsPerOwner', value, 'a positive integer');
    maxSessionsPerOwner = value;
  }

  const touchAfter = raw.touchAfter === undefined ? Math.min(60, maxAge / 20) : seconds('touchAfter', raw.touchAfter, { zero: true });
  // A touch throttled for as long as a session lives would never slide it.
  if (touchAfter >= maxAge) fail('touchAfter', touchAfter, `a number of seconds below maxAge (${maxAge})`);

  const database = raw.database === undefined ? 'sessions.db' : databasePath('database', raw.database);
  const durability = raw.durability === undefined ? 'normal' : oneOf('durability', raw.durability, ['normal', 'full'] as const);
  // Not every engine has a durability of its own (PostgreSQL's is the server's synchronous_commit).
  const refusal = engineFor(database).durabilityRefusal;
  if (raw.durability !== undefined && durability !== 'normal' && refusal !== null) {
    throw new ConfigError('durability', `invalid config "durability": ${JSON.stringify(durability)} ${refusal}`);
  }

  return {
    database,
    table: raw.table === undefined ? 'session' : tableName('table', raw.table),
    maxAge,
    timestamp: raw.timestamp === undefined ? 'relative' : oneOf('timestamp', raw.timestamp, ['relative', 'fixed'] as const),
    cleanerInterval: raw.cleanerInterval === undefined ? 60 : seconds('cleanerInterval', raw.cleanerInterval),
    sweepSignal,
    autoSetup: raw.autoSetup === undefined ? true : (raw.autoSetup as boolean),
    restart,
    shutdownTimeout: raw.shutdownTimeout === undefined ? 5000 : milliseconds('shutdownTimeout', raw.shutdownTimeout),
    requestTimeout: raw.requestTimeout === undefined ? 5000 : milliseconds('requestTimeout', raw.requestTimeout),
    durability,
    maxSessionBytes,
    touchAfter,
    maxLifetime: raw.maxLifetime === undefined ? null : lifetime('maxLifetime', raw.maxLifetime),
    maxPendingCalls,
    maxSessionsPerOwner,
  };
}

export interface StoreLocation {
  database: string;
  table: string;
}

/** The helpers' config: only `database` and `table`, same defaults and validation. */
export function resolveLocation(input: unknown): StoreLocation {
  refuseUnsetDatabase(input);
  const raw = rootObject(input, 'options');
  refuseUnknown(raw, ['database', 'table'], '');
  return {
    database: raw.database === undefined ? 'sessions.db' : databasePath('database', raw.database),
    table: raw.table === undefined ? 'session' : tableName('table', raw.table),
  };
}
