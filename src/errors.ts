// Every error the library raises on purpose extends SessionError and carries
// a stable `code` (documented in docs/errors.md), in the style of undici's
// errors: callers branch on `code` or `instanceof`, never on the message.

export class SessionError extends Error {
  code: string = 'ERR_SESSION';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SessionError';
  }
}

/** A config value (or key) that is not accepted; raised before any worker starts. */
export class ConfigError extends SessionError {
  override code = 'ERR_SESSION_CONFIG';
  /** The offending key, dotted for nested ones (`restart.intensity`). */
  key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/** A table of that name exists with columns other than the session table's. */
export class TableExistsError extends SessionError {
  override code = 'ERR_SESSION_TABLE_EXISTS';
  constructor(message: string) {
    super(message);
    this.name = 'TableExistsError';
  }
}

/** The session table is missing and `autoSetup` is false (or a CLI command needs it). */
export class TableNotExistsError extends SessionError {
  override code = 'ERR_SESSION_TABLE_NOT_EXISTS';
  constructor(message: string) {
    super(message);
    this.name = 'TableNotExistsError';
  }
}

/** The store could not answer: timeout, supervisor gave up, storage failure, poison request. */
export class StoreUnavailableError extends SessionError {
  override code = 'ERR_SESSION_STORE_UNAVAILABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A serialized session larger than `maxSessionBytes`; nothing was stored. */
export class SessionTooLargeError extends SessionError {
  override code = 'ERR_SESSION_TOO_LARGE';
  constructor(message: string) {
    super(message);
    this.name = 'SessionTooLargeError';
  }
}

/** A call made after `stop()` began. */
export class AppStoppedError extends SessionError {
  override code = 'ERR_SESSION_APP_STOPPED';
  constructor(message = 'the session app is stopped') {
    super(message);
    this.name = 'AppStoppedError';
  }
}

/**
 * A session changed after the handler ended its response (`res.end()`): there
 * is no commit point left, so the change could never be stored.
 */
export class SessionCommittedError extends SessionError {
  override code = 'ERR_SESSION_COMMITTED';
  constructor(message: string) {
    super(message);
    this.name = 'SessionCommittedError';
  }
}

/**
 * A change that needs a new cookie (`renew()`, or the first data of a new
 * session) made once the response headers are out or the commit has begun:
 * the new id could not reach the client.
 */
export class SessionHeadersSentError extends SessionError {
  override code = 'ERR_SESSION_HEADERS_SENT';
  constructor(message: string) {
    super(message);
    this.name = 'SessionHeadersSentError';
  }
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
  switch (wire.code) {
    case 'ERR_INVALID_ARG_TYPE': return new TypeError(wire.message);
    case 'ERR_SESSION_CONFIG': return new ConfigError(wire.key ?? '', wire.message);
    case 'ERR_SESSION_TABLE_EXISTS': return new TableExistsError(wire.message);
    case 'ERR_SESSION_TABLE_NOT_EXISTS': return new TableNotExistsError(wire.message);
    case 'ERR_SESSION_TOO_LARGE': return new SessionTooLargeError(wire.message);
    case 'ERR_SESSION_APP_STOPPED': return new AppStoppedError(wire.message);
    case 'ERR_SESSION': return new SessionError(wire.message);
    // Storage faults (SQLITE_FULL, SQLITE_READONLY, SQLITE_BUSY...) and anything
    // else the owner could not do mean the store is not available for that call.
    default: return new StoreUnavailableError(wire.message);
  }
}
