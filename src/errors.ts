// Every error the library raises on purpose extends SessionError and carries
// a stable `code` (documented in docs/errors.md), in the style of undici's
// errors: callers branch on `code` or `instanceof`, never on the message.
//
// Errors are data: each class declares its code, the HTTP status a front door
// answers for it and what a caller does about it, and registers itself; the
// status lookup (http/failures.ts) and `fromWire` read the registry. An
// instance carries a `Symbol.for` brand per class it belongs to, so that
// `instanceof` holds across two copies of this package in one process (an
// app and a library that each depend on it), as undici's errors do.

/** A registered class: its code, status and remedy (statics), made with a message. */
type ErrorClass = { readonly code: string; readonly status: number; readonly remedy: string; readonly name: string } & (new (
  message: string,
) => SessionError);

const REGISTRY = new Map<string, ErrorClass>();
/** Each registered class's name, as a literal: a minifying bundler may rename the classes themselves. */
const NAMES = new Map<unknown, string>();
const brand = (code: string): symbol => Symbol.for(`supervised-sessions.error.${code}`);

function register<T extends ErrorClass>(kind: T, name: string): T {
  REGISTRY.set(kind.code, kind);
  NAMES.set(kind, name);
  return kind;
}

export class SessionError extends Error {
  /** The stable code of this class (also each instance's `code`). */
  static readonly code: string = 'ERR_SESSION';
  /** The status a front door answers for this error when a handler lets it through. */
  static readonly status: number = 500;
  /** What a caller does about it (docs/errors.md). */
  static readonly remedy: string = 'read the message';

  code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    const kind = new.target as ErrorClass;
    this.code = kind.code;
    // One brand per class on the way up: a ConfigError is a SessionError too.
    // (A user's subclass without a code of its own carries its parent's code,
    // brand and name.)
    let name: string | undefined;
    for (let k: unknown = kind; typeof k === 'function' && k !== Error; k = Object.getPrototypeOf(k)) {
      if (Object.hasOwn(k, 'code')) Object.defineProperty(this, brand((k as ErrorClass).code), { value: true });
      name ??= NAMES.get(k);
    }
    this.name = name ?? kind.name;
  }

  /** `instanceof` by brand: true for an error of this class made by any copy of the package. */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of instanceof (a subclass too), not SessionError
    const kind = this as unknown as ErrorClass;
    // A user's subclass without a code of its own: the ordinary prototype
    // check (a brand would say every error of its parent's class is one).
    if (!Object.hasOwn(kind, 'code')) return Function.prototype[Symbol.hasInstance].call(kind, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand(kind.code)] === true;
  }
}
register(SessionError, 'SessionError');

/** A config value (or key) that is not accepted; raised before any worker starts. */
export class ConfigError extends SessionError {
  static override readonly code = 'ERR_SESSION_CONFIG';
  static override readonly remedy = 'fix the named key; the message says what is expected';
  /** The offending key, dotted for nested ones (`restart.intensity`). */
  key: string;
  constructor(key: string, message: string) {
    super(message);
    this.key = key;
  }
}
register(ConfigError as unknown as ErrorClass, 'ConfigError');

/** A table of that name exists with columns other than the session table's. */
export class TableExistsError extends SessionError {
  static override readonly code = 'ERR_SESSION_TABLE_EXISTS';
  static override readonly remedy = 'choose another table, or drop that table yourself';
}
register(TableExistsError, 'TableExistsError');

/** The session table is missing and `autoSetup` is false (or a CLI command needs it). */
export class TableNotExistsError extends SessionError {
  static override readonly code = 'ERR_SESSION_TABLE_NOT_EXISTS';
  static override readonly remedy = 'run `supervised-sessions setup` (or setupStore()), or start with autoSetup: true';
}
register(TableNotExistsError, 'TableNotExistsError');

/** The store could not answer: timeout, supervisor gave up, storage failure, poison request. */
export class StoreUnavailableError extends SessionError {
  static override readonly code = 'ERR_SESSION_STORE_UNAVAILABLE';
  static override readonly status = 503;
  static override readonly remedy = "retry later; watch the app's 'restart' and 'error' events; check the database";
}
register(StoreUnavailableError, 'StoreUnavailableError');

/** A serialized session larger than `maxSessionBytes`; nothing was stored. */
export class SessionTooLargeError extends SessionError {
  static override readonly code = 'ERR_SESSION_TOO_LARGE';
  static override readonly remedy = 'store less in the session, or raise maxSessionBytes';
}
register(SessionTooLargeError, 'SessionTooLargeError');

/** A call made after `stop()` began. */
export class AppStoppedError extends SessionError {
  static override readonly code = 'ERR_SESSION_APP_STOPPED';
  static override readonly status = 503;
  static override readonly remedy = 'do not use an app after stopping it';
  constructor(message = 'the session app is stopped', options?: ErrorOptions) {
    super(message, options);
  }
}
register(AppStoppedError, 'AppStoppedError');

/**
 * A session changed after the handler ended its response (`res.end()`): there
 * is no commit point left, so the change could never be stored.
 */
export class SessionCommittedError extends SessionError {
  static override readonly code = 'ERR_SESSION_COMMITTED';
  static override readonly remedy = 'make every change before res.end()';
}
register(SessionCommittedError, 'SessionCommittedError');

/**
 * A change that needs a new cookie (`renew()`, or the first data of a new
 * session) made once the response headers are out or the commit has begun:
 * the new id could not reach the client.
 */
export class SessionHeadersSentError extends SessionError {
  static override readonly code = 'ERR_SESSION_HEADERS_SENT';
  static override readonly remedy = 'call renew() (and create the session) before writing the response';
}
register(SessionHeadersSentError, 'SessionHeadersSentError');

/** The registered class of a code (any copy's error reads the same codes), or null. */
export function errorClassOf(code: unknown): ErrorClass | null {
  return typeof code === 'string' ? (REGISTRY.get(code) ?? null) : null;
}

/**
 * Errors cross a MessagePort as plain data: structured clone keeps neither the
 * class, nor `name`, nor `code` of an Error, so we send `{ code, message }`
 * and rebuild the class on arrival.
 */
export interface WireError {
  code: string;
  message: string;
  /** ConfigError's key. */
  key?: string;
}

export function toWire(error: unknown): WireError {
  if (error instanceof TypeError) return { code: 'ERR_INVALID_ARG_TYPE', message: error.message };
  if (error instanceof ConfigError) return { code: error.code, message: error.message, key: error.key };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'ERR_SESSION', message: error.message };
  }
  return { code: 'ERR_SESSION', message: String(error) };
}

export function fromWire(wire: WireError): Error {
  if (wire.code === 'ERR_INVALID_ARG_TYPE') return new TypeError(wire.message);
  if (wire.code === ConfigError.code) return new ConfigError(wire.key ?? '', wire.message);
  // Storage faults (SQLITE_FULL, SQLITE_READONLY, SQLITE_BUSY...) and anything
  // else the store's actor could not do mean the store is not available for that call.
  const kind = errorClassOf(wire.code) ?? StoreUnavailableError;
  return new kind(wire.message);
}
