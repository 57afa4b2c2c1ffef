import { OutgoingMessage, type ServerResponse, validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders } from 'node:http';
import { isUint8Array } from 'node:util/types';

/** The commit's side of a held response. */
export interface HoldPolicy {
  /** True while a response call must wait for the store (changes pending, or a store call in flight). */
  mustHold(): boolean;
  /** A call was held: start the commit, or let the running one know there is more. */
  held(): void;
  /** Called once, right before the first call that really sends the headers: the last moment to set the cookie. */
  beforeHeaders(): void;
  /** Node refused, when replayed, a call it had accepted when it was made: the response is cut short. */
  replayFailed(error: Error): void;
}

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
type HeaderMethod = 'setHeader' | 'appendHeader' | 'removeHeader';
type Fn = (...args: unknown[]) => unknown;

// The prototype's getters tell what really went out, whatever the handler's
// view of a held response says.
const headersSentOf = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'headersSent')!.get!;
const endedOf = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'writableEnded')!.get!;

/**
 * The HeldResponse of a response, in a slot of its own. A registered symbol:
 * two copies of the library in one process (two versions, or src and dist)
 * share the slot and the views below.
 */
const kHeld = Symbol.for('supervised-sessions.held');
type HeldTarget = ServerResponse & { [kHeld]?: HeldResponse };

// One set of functions serves every held response (they find it through
// kHeld): no closures per request. A held response gains these as plain data
// properties, and the two views below as accessors of its own.
function heldWriteHead(this: HeldTarget, ...args: unknown[]) {
  return this[kHeld]!.callWriteHead(args);
}
function heldWrite(this: HeldTarget, ...args: unknown[]) {
  return this[kHeld]!.callWrite(args);
}
function heldEnd(this: HeldTarget, ...args: unknown[]) {
  return this[kHeld]!.callEnd(args);
}
function heldFlushHeaders(this: HeldTarget) {
  this[kHeld]!.callFlushHeaders();
}
function heldSetHeader(this: HeldTarget, ...args: unknown[]) {
  return this[kHeld]!.callHeader('setHeader', args);
}
function heldAppendHeader(this: HeldTarget, ...args: unknown[]) {
  return this[kHeld]!.callHeader('appendHeader', args);
}
function heldRemoveHeader(this: HeldTarget, ...args: unknown[]) {
  return this[kHeld]!.callHeader('removeHeader', args);
}

// What the handler (or a framework) reads back of a held response agrees with
// what it did: `headersSent` once it called writeHead, `writableEnded` once it
// called end(), even while those are held. Defined on the held response
// itself, with one pair of getters for every response (no closure per
// request): a response the library never held, in this copy of the package
// or another, reads Node's own values, and nothing process-wide changes
// (docs/architecture.md, "The held response"). The getters use only the slot
// and two getters every copy's HeldResponse has.
const HEADERS_SENT_VIEW: PropertyDescriptor = {
  configurable: true,
  enumerable: false,
  get(this: HeldTarget) {
    return this[kHeld]?.headersOut || (headersSentOf.call(this) as boolean);
  },
};
const ENDED_VIEW: PropertyDescriptor = {
  configurable: true,
  enumerable: false,
  get(this: HeldTarget) {
    return this[kHeld]?.handlerEnded || (endedOf.call(this) as boolean);
  },
};

/** Node's own error shapes, so a handler sees exactly what it would see without sessions. */
function nodeError<T extends Error>(error: T, code: string): T {
  Object.defineProperty(error, 'code', { value: code, enumerable: false, writable: true, configurable: true });
  return error;
}
const headersSentError = (action: string) =>
  nodeError(new Error(`Cannot ${action} headers after they are sent to the client`), 'ERR_HTTP_HEADERS_SENT');
const writeAfterEnd = () => nodeError(new Error('write after end'), 'ERR_STREAM_WRITE_AFTER_END');

function checkChunk(chunk: unknown, encoding: unknown): number {
  if (chunk === null) throw nodeError(new TypeError('May not write null values to stream'), 'ERR_STREAM_NULL_VALUES');
  if (typeof chunk === 'string') {
    if (typeof encoding === 'string' && !Buffer.isEncoding(encoding))
      throw nodeError(new TypeError(`Unknown encoding: ${encoding}`), 'ERR_UNKNOWN_ENCODING');
    return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  }
  if (isUint8Array(chunk)) return chunk.byteLength;
  throw nodeError(
    new TypeError(`The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ${describe(chunk)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object' && value !== null) return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `type ${typeof value} (${String(value).slice(0, 25)})`;
}

// What Node's writeHead refuses in a status message (checkInvalidHeaderChar).
const INVALID_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Validates a `writeHead` call as Node would, before anything is applied:
 * status, reason, and every header name and value. Returns the headers as
 * `[name, value]` pairs and whether they replace (object) or may repeat (array).
 */
function checkWriteHead(args: unknown[]): {
  status: number;
  reason: string | undefined;
  headers: Array<[string, unknown]>;
  array: boolean;
} {
  const [statusCode, reasonOrHeaders, maybeHeaders] = args;
  const status = (statusCode as number) | 0;
  if (status < 100 || status > 999)
    throw nodeError(new RangeError(`Invalid status code: ${String(statusCode)}`), 'ERR_HTTP_INVALID_STATUS_CODE');
  let reason: string | undefined;
  let given = maybeHeaders;
  if (typeof reasonOrHeaders === 'string') {
    reason = reasonOrHeaders;
    if (INVALID_HEADER_CHAR.test(reason)) throw nodeError(new TypeError('Invalid character in statusMessage'), 'ERR_INVALID_CHAR');
  } else {
    given ??= reasonOrHeaders;
  }
  const headers: Array<[string, unknown]> = [];
  if (Array.isArray(given) && given.length > 0 && Array.isArray(given[0])) {
    // [[name, value], ...]: what Node takes when no header was set before.
    for (const entry of given as unknown[][]) if (entry[0]) headers.push([String(entry[0]), entry[1]]);
  } else if (Array.isArray(given)) {
    if (given.length % 2 !== 0)
      throw nodeError(
        new TypeError(`The argument 'headers' is invalid. Received an array of length ${given.length}`),
        'ERR_INVALID_ARG_VALUE',
      );
    for (let i = 0; i < given.length; i += 2) if (given[i]) headers.push([String(given[i]), given[i + 1]]);
  } else if (given !== null && typeof given === 'object') {
    for (const name of Object.keys(given)) if (name) headers.push([name, (given as OutgoingHttpHeaders)[name]]);
  }
  for (const [name, value] of headers) {
    validateHeaderName(name);
    validateHeaderValue(name, value as string);
  }
  return { status, reason, headers, array: Array.isArray(given) };
}

const destroyedError = (method: string) =>
  nodeError(new Error(`Cannot call ${method} after a stream was destroyed`), 'ERR_STREAM_DESTROYED');

/** The callback of a write/end call, wherever Node takes it. */
function callbackOf(method: Method, args: unknown[]): ((error?: Error | null) => void) | undefined {
  if (method !== 'write' && method !== 'end') return undefined;
  const found = args.find((arg) => typeof arg === 'function');
  return found as ((error?: Error | null) => void) | undefined;
}

/** What Node checks when a write or end sends the headers implicitly. */
function checkImplicitHead(res: ServerResponse): void {
  const status = res.statusCode | 0;
  if (status < 100 || status > 999)
    throw nodeError(new RangeError(`Invalid status code: ${String(res.statusCode)}`), 'ERR_HTTP_INVALID_STATUS_CODE');
  if (typeof res.statusMessage === 'string' && INVALID_HEADER_CHAR.test(res.statusMessage))
    throw nodeError(new TypeError('Invalid character in statusMessage'), 'ERR_INVALID_CHAR');
}

/**
 * A response whose calls may be held while the session is being stored.
 *
 * A held call is checked when it is made, exactly as Node would check it, so
 * a handler's mistake (a bad status, an invalid header, a second writeHead, a
 * wrong chunk type) throws synchronously in the handler, where it happened;
 * nothing held can throw later, in a promise nobody awaits. `writeHead` is
 * applied at once to the response's own state (status, headers through
 * setHeader/appendHeader, never by changing the caller's object) and only the
 * sending is held; held writes keep Node's backpressure contract.
 */
export class HeldResponse {
  readonly res: ServerResponse;
  readonly #policy: HoldPolicy;
  readonly #originals = {} as Record<Method | HeaderMethod, Fn>;
  #queue: Array<[Method, unknown[]]> = [];
  /** The handler's view: writeHead/write/end/flushHeaders were called. */
  #headersOut = false;
  #ended = false;
  #cookieSet = false;
  #closed = false;
  #heldBytes = 0;
  #owesDrain = false;
  /** Our own calls into Node are running (Node's writeHead calls setHeader itself). */
  #sending = false;
  /** After reset(): nothing is held any more. */
  #passthrough = false;
  /** Status code and message as they were when the handler's first sending call was held. */
  #statusLine: [number, string] | null = null;

  constructor(res: ServerResponse, policy: HoldPolicy) {
    this.res = res;
    this.#policy = policy;
    const target = res as unknown as Record<string, Fn>;
    // The methods as they are now (a middleware may have wrapped them already).
    const originals = this.#originals;
    originals.writeHead = target.writeHead;
    originals.write = target.write;
    originals.end = target.end;
    originals.flushHeaders = target.flushHeaders;
    originals.setHeader = target.setHeader;
    originals.appendHeader = target.appendHeader;
    originals.removeHeader = target.removeHeader;
    this.#headersOut = this.headersSent;
    this.#ended = this.ended;
    (res as HeldTarget)[kHeld] = this;
    Object.defineProperty(res, 'headersSent', HEADERS_SENT_VIEW);
    Object.defineProperty(res, 'writableEnded', ENDED_VIEW);
    target.writeHead = heldWriteHead;
    target.write = heldWrite;
    target.end = heldEnd;
    target.flushHeaders = heldFlushHeaders;
    target.setHeader = heldSetHeader;
    target.appendHeader = heldAppendHeader;
    target.removeHeader = heldRemoveHeader;
  }

  /** @internal setHeader/appendHeader/removeHeader of the handler. */
  callHeader(method: HeaderMethod, args: unknown[]): unknown {
    // Node refuses header changes once writeHead ran; a held writeHead counts.
    if (this.#headersOut && !this.#sending && !this.headersSent) throw headersSentError(method === 'removeHeader' ? 'remove' : 'set');
    return this.#originals[method].apply(this.res, args);
  }

  /** @internal */
  callWriteHead(args: unknown[]): ServerResponse {
    return this.#writeHead(args);
  }

  /** @internal */
  callWrite(args: unknown[]): boolean {
    return this.#write(args);
  }

  /** @internal */
  callEnd(args: unknown[]): ServerResponse {
    return this.#end(args);
  }

  /** @internal */
  callFlushHeaders(): void {
    this.#flushHeaders();
  }

  /** The headers really went out. */
  get headersSent(): boolean {
    return headersSentOf.call(this.res) as boolean;
  }

  /** `end()` really ran. */
  get ended(): boolean {
    return endedOf.call(this.res) as boolean;
  }

  /** The handler called writeHead, write, end or flushHeaders (held or not). */
  get headersOut(): boolean {
    return this.#headersOut;
  }

  /** The handler called end() (held or not). */
  get handlerEnded(): boolean {
    return this.#ended;
  }

  /** The library's own header access, which the handler's guard does not apply to. */
  setHeader(name: string, value: string | string[]): void {
    this.#originals.setHeader.call(this.res, name, value);
  }

  appendHeader(name: string, value: string): void {
    this.#originals.appendHeader.call(this.res, name, value);
  }

  removeHeader(name: string): void {
    this.#originals.removeHeader.call(this.res, name);
  }

  #writeHead(args: unknown[]): ServerResponse {
    if (!this.#holding()) return this.#pass('writeHead', args) as ServerResponse;
    if (this.#headersOut) throw headersSentError('write');
    const { status, reason, headers, array } = checkWriteHead(args);
    // Node checks the status message it will send, the handler's earlier one included.
    if (reason === undefined && typeof this.res.statusMessage === 'string' && INVALID_HEADER_CHAR.test(this.res.statusMessage)) {
      throw nodeError(new TypeError('Invalid character in statusMessage'), 'ERR_INVALID_CHAR');
    }
    // As Node does when headers were already set: the given ones replace them,
    // an array's repeated names are appended.
    for (const [name] of headers) this.removeHeader(name);
    for (const [name, value] of headers) {
      if (array) this.appendHeader(name, value as string);
      else this.setHeader(name, value as string | string[]);
    }
    this.res.statusCode = status;
    if (reason !== undefined) this.res.statusMessage = reason;
    this.#hold('writeHead', []);
    return this.res;
  }

  #flushHeaders(): void {
    if (!this.#holding()) {
      this.#pass('flushHeaders', []);
      return;
    }
    this.#hold('flushHeaders', []);
  }

  #write(args: unknown[]): boolean {
    const [chunk, encoding, callback] = args;
    const bytes = checkChunk(chunk, typeof encoding === 'function' ? undefined : encoding);
    if (this.#ended) return this.#afterEnd(typeof encoding === 'function' ? encoding : callback);
    if (!this.#holding()) return this.#pass('write', args) as boolean;
    this.#hold('write', args);
    this.#heldBytes += bytes;
    if (this.#heldBytes < this.res.writableHighWaterMark) return true;
    this.#owesDrain = true;
    return false;
  }

  #end(args: unknown[]): ServerResponse {
    let [chunk, encoding, callback] = args;
    if (typeof chunk === 'function') {
      callback = chunk;
      chunk = undefined;
      encoding = undefined;
    } else if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (chunk) checkChunk(chunk, encoding);
    if (this.#ended) {
      if (chunk) this.#afterEnd(callback);
      else if (typeof callback === 'function') this.res.once('finish', callback as () => void);
      return this.res;
    }
    if (!this.#holding()) return this.#pass('end', args) as ServerResponse;
    // Ended only once Node would have accepted it (an invalid status throws first).
    this.#hold('end', args);
    this.#ended = true;
    return this.res;
  }

  /**
   * A write after end(): Node reports it asynchronously (callback, then an
   * 'error' event that kills a process nobody listens on). Here the callback
   * hears of it, and the event is emitted only when someone listens.
   */
  #afterEnd(callback: unknown): false {
    const error = writeAfterEnd();
    process.nextTick(() => {
      if (typeof callback === 'function') callback(error);
      if (this.res.listenerCount('error') > 0) this.res.emit('error', error);
    });
    return false;
  }

  #holding(): boolean {
    return !this.#closed && !this.#passthrough && (this.#queue.length > 0 || this.#policy.mustHold());
  }

  #hold(method: Method, args: unknown[]): void {
    if (!this.#headersOut) {
      if (method !== 'writeHead') checkImplicitHead(this.res);
      // The status line is fixed now, as Node fixes it when the headers are
      // written: a later `res.statusCode = …` does not change what goes out.
      this.#statusLine = [this.res.statusCode, this.res.statusMessage];
    }
    this.#headersOut = true;
    this.#queue.push([method, args]);
    this.#policy.held();
  }

  #pass(method: Method, args: unknown[]): unknown {
    if (this.#closed) {
      // The response was answered or cut short: the call does nothing, and its callback hears so.
      const callback = callbackOf(method, args);
      if (callback) process.nextTick(callback, destroyedError(method));
      return method === 'write' ? false : this.res;
    }
    if (!this.#cookieSet && !this.headersSent) {
      this.#cookieSet = true;
      this.#policy.beforeHeaders();
    }
    this.#sending = true;
    let result: unknown;
    try {
      result = this.#originals[method].apply(this.res, args);
    } finally {
      this.#sending = false;
    }
    // Only once Node accepted the call: one that throws leaves the response as it was.
    if (method === 'end') this.#ended = true;
    this.#headersOut = true;
    return result;
  }

  /** Sends what was held, in order; called when the store has acknowledged every change made so far. */
  flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    this.#heldBytes = 0;
    let wrote = true;
    if (this.#statusLine !== null && !this.headersSent) {
      [this.res.statusCode, this.res.statusMessage] = this.#statusLine;
      this.#statusLine = null;
    }
    for (const [method, args] of queue) {
      try {
        const result = this.#pass(method, method === 'writeHead' ? [this.res.statusCode] : args);
        if (method === 'write') wrote = result as boolean;
      } catch (error) {
        // Checked when held, so Node should not refuse it now; if it does,
        // the response cannot be completed as the handler meant.
        this.#closed = true;
        this.#policy.replayFailed(error instanceof Error ? error : new Error(String(error)));
        return;
      }
    }
    if (this.#owesDrain && wrote) {
      // A held write returned false: the handler waits for 'drain'. When the
      // real writes did not fill the socket, Node will not emit it: we do.
      this.#owesDrain = false;
      process.nextTick(() => this.res.emit('drain'));
    } else if (!wrote) {
      this.#owesDrain = false;
    }
  }

  /**
   * The commit failed and a front door answers it (Express: the app's error
   * middleware): what was held is dropped, the headers and status the handler
   * set are cleared, and from now on every call goes straight to Node.
   */
  reset(status: number): void {
    this.#closed = false;
    for (const [method, args] of this.#queue) {
      const callback = callbackOf(method, args);
      if (callback) process.nextTick(callback, destroyedError(method));
    }
    this.#queue = [];
    this.#heldBytes = 0;
    this.#statusLine = null;
    this.#passthrough = true;
    // The error response carries no session cookie.
    this.#cookieSet = true;
    this.#headersOut = false;
    this.#ended = false;
    const remove = this.#originals.removeHeader;
    for (const name of this.res.getHeaderNames()) remove.call(this.res, name);
    // The error's status, so an error page that sets none is still not a success.
    this.res.statusCode = status;
    this.res.statusMessage = '';
  }

  /**
   * The handler failed before sending anything, with a drop() or renew()
   * pending: a bare `status` response in place of whatever it had set, held
   * like the handler's own, so it goes out once the commit is done and
   * carries the cookie the commit decided.
   */
  answer(status: number): void {
    const remove = this.#originals.removeHeader;
    for (const name of this.res.getHeaderNames()) remove.call(this.res, name);
    const body = `${status} ${STATUS_TEXT[status]}\n`;
    this.res.statusMessage = STATUS_TEXT[status];
    this.#writeHead([
      status,
      { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' },
    ]);
    this.#end([body]);
  }

  /**
   * The commit failed: a bare 500/503 while nothing went out, or the
   * connection cut short once the headers did (never complete a response as
   * if the write had been stored). Every later call of the handler is a no-op.
   */
  fail(status: number, error: Error): void {
    this.#closed = true;
    for (const [method, args] of this.#queue) {
      const callback = callbackOf(method, args);
      if (callback) process.nextTick(callback, destroyedError(method));
    }
    this.#queue = [];
    if (this.ended) return;
    if (this.headersSent) {
      this.res.destroy(error);
      return;
    }
    this.#sending = true;
    try {
      respond(this.res, status, this.#originals);
    } finally {
      this.#sending = false;
    }
  }
}

const STATUS_TEXT: Record<number, string> = { 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A bare error response; every header the handler set is dropped (the cookie included). */
export function respond(res: ServerResponse, status: number, originals?: Partial<Record<Method | HeaderMethod, Fn>>): void {
  const removeHeader = originals?.removeHeader ?? res.removeHeader;
  for (const name of res.getHeaderNames()) removeHeader.call(res, name);
  const body = `${status} ${STATUS_TEXT[status]}\n`;
  const writeHead = originals?.writeHead ?? res.writeHead;
  const end = originals?.end ?? res.end;
  res.statusMessage = STATUS_TEXT[status];
  writeHead.call(res, status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  end.call(res, body);
}
