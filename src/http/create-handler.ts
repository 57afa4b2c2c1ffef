import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';
import { AppStoppedError, StoreUnavailableError } from '../errors.ts';
import { isSessionId } from '../store/ids.ts';
import type { SessionStore } from '../store/session-store.ts';
import { resolveHandlerOptions, type HandlerOptions, type ResolvedHandlerOptions } from './options.ts';
import { Session } from './session.ts';
import { sign, unsign } from './signing.ts';

export type SessionHandler = (req: IncomingMessage, res: ServerResponse, session: Session) => unknown;

type Phase = 'open' | 'holding' | 'flushed' | 'failed';
type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';

interface Shared {
  store: SessionStore;
  options: ResolvedHandlerOptions;
  /** Re-send the cookie on every response of a live session (cookie.maxAge with 'relative'). */
  resend: boolean;
  setCookie(id: string): string;
  expiredCookie: string;
}

/** 503 when the store cannot answer or the app is stopped; 500 for the rest. */
function statusFor(error: unknown): number {
  return error instanceof StoreUnavailableError || error instanceof AppStoppedError ? 503 : 500;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * One request's session commit. Nothing is wrapped until the session first
 * changes: a handler that only reads its session pays for no wrapping at all.
 * From the first change on, `writeHead`/`write`/`end`/`flushHeaders` are
 * wrapped; the first of them starts the commit and every call is held, in
 * order, until the store has acknowledged it, so the Set-Cookie goes out with
 * the headers and no 2xx is sent for a write that was not stored.
 */
class RequestCommit {
  readonly #shared: Shared;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #hadCookie: boolean;
  /** A Set-Cookie added before the handler ran (the sliding re-send), replaced if the commit decides otherwise. */
  readonly #preset: string | null;
  session!: Session;
  #phase: Phase = 'open';
  #queue: Array<[Method, unknown[]]> = [];
  #originals: Partial<Record<Method, (...args: unknown[]) => unknown>> = {};
  #ended = false;
  /** The session was dropped or expired while the request ran: never recreate it. */
  #gone = false;

  constructor(shared: Shared, req: IncomingMessage, res: ServerResponse, hadCookie: boolean, preset: string | null) {
    this.#shared = shared;
    this.#req = req;
    this.#res = res;
    this.#hadCookie = hadCookie;
    this.#preset = preset;
  }

  /** Called by the session at its first change. */
  wrap = (): void => {
    const res = this.#res;
    // Changed after the response ended: there is no commit point left.
    if (this.#ended || res.writableEnded) return;
    // Headers already out (a stream began before the change): commit at end.
    if (res.headersSent) this.#phase = 'flushed';
    for (const method of ['writeHead', 'write', 'end', 'flushHeaders'] as const) {
      const original = res[method] as (...args: unknown[]) => unknown;
      this.#originals[method] = original;
      (res as unknown as Record<Method, (...args: unknown[]) => unknown>)[method] = (...args: unknown[]) => this.#call(method, args);
    }
  };

  #original(method: Method, args: unknown[]): unknown {
    return this.#originals[method]!.apply(this.#res, args);
  }

  #call(method: Method, args: unknown[]): unknown {
    if (method === 'end') this.#ended = true;
    switch (this.#phase) {
      case 'flushed':
        if (method === 'end' && this.session.state.modified && !this.#gone) {
          // Changed after the headers went out: stored before the final chunk.
          this.#phase = 'holding';
          this.#queue.push([method, args]);
          void this.#commitLate();
          return this.#res;
        }
        return this.#original(method, args);
      case 'failed':
        return method === 'write' ? false : this.#res;
      case 'holding':
        this.#queue.push([method, args]);
        return method === 'write' ? true : this.#res;
      case 'open':
        this.#phase = 'holding';
        this.#queue.push([method, args]);
        void this.#commit();
        return method === 'write' ? true : this.#res;
    }
  }

  async #commit(): Promise<void> {
    let cookie: string | null;
    try {
      cookie = await this.#store();
    } catch (error) {
      this.#fail(error);
      return;
    }
    // The handler failed meanwhile and its 500 went out: nothing left to send.
    if (this.#phase === 'failed') return;
    const res = this.#res;
    if (this.#preset !== null && cookie !== this.#preset) this.#removePreset();
    if (cookie !== null && cookie !== this.#preset) res.appendHeader('Set-Cookie', cookie);
    this.#flush(cookie !== null && cookie !== this.#preset ? cookie : null);
  }

  async #commitLate(): Promise<void> {
    const session = this.session;
    try {
      if (session.id === null) {
        throw new Error('a new session was changed after the response headers were sent: it cannot get its cookie, so it was not stored');
      }
      if (session.state.cleared) {
        if ((await this.#shared.store.put(session.id, session.toJSON())) === null) this.#gone = true;
      } else if (!(await this.#shared.store.patch(session.id, session.patch()))) {
        this.#gone = true;
      }
      session.committed(session.id);
    } catch (error) {
      this.#fail(error);
      return;
    }
    if (this.#phase === 'failed') return;
    this.#flush(null);
  }

  /** Stores the session as the commit rules say; resolves with the Set-Cookie to send, if any. */
  async #store(): Promise<string | null> {
    const { store, setCookie, expiredCookie, resend } = this.#shared;
    const session = this.session;
    const state = session.state;
    const id = session.id;
    if (state.dropped) {
      if (id !== null) await store.delete(id);
      this.#gone = true;
      return this.#hadCookie ? expiredCookie : null;
    }
    if (id === null) {
      if (state.empty) return null;
      const created = await store.put(null, session.toJSON());
      session.committed(created);
      return setCookie(created!);
    }
    let current = id;
    if (state.renew) {
      const next = await store.renew(id);
      if (next === null) return this.#lost();
      current = next;
    }
    if (state.cleared) {
      if ((await store.put(current, session.toJSON())) === null) return this.#lost();
    } else if (state.modified) {
      if (!(await store.patch(current, session.patch()))) return this.#lost();
    }
    session.committed(current);
    return state.renew || resend ? setCookie(current) : null;
  }

  /** Dropped or expired while the request ran: expire the cookie, keep the handler's status. */
  #lost(): string {
    this.#gone = true;
    return this.#shared.expiredCookie;
  }

  #removePreset(): void {
    const res = this.#res;
    const current = res.getHeader('set-cookie');
    if (Array.isArray(current)) {
      const rest = current.filter((value) => value !== this.#preset);
      if (rest.length) res.setHeader('Set-Cookie', rest);
      else res.removeHeader('Set-Cookie');
    } else if (current === this.#preset) {
      res.removeHeader('Set-Cookie');
    }
  }

  #flush(cookie: string | null): void {
    this.#phase = 'flushed';
    const queue = this.#queue;
    this.#queue = [];
    for (const [method, args] of queue) {
      if (method === 'writeHead' && cookie !== null) mergeCookie(args, cookie);
      this.#original(method, args);
    }
  }

  #fail(error: unknown): void {
    if (this.#phase === 'failed') return;
    const err = asError(error);
    this.#shared.options.onError(err, this.#req);
    const res = this.#res;
    this.#phase = 'failed';
    this.#queue = [];
    if (res.headersSent) {
      // Too late for a status: cut the response short rather than complete
      // it as if the write had been stored.
      res.destroy(err);
      return;
    }
    respond(res, statusFor(error), this.#originals);
  }

  /** A handler that threw or rejected: no commit; a 500 if nothing was sent yet. */
  handlerFailed(error: unknown): void {
    const err = asError(error);
    this.#shared.options.onError(err, this.#req);
    if (this.#ended || this.#res.writableEnded) return;
    const res = this.#res;
    this.#phase = 'failed';
    this.#queue = [];
    if (res.headersSent) res.destroy(err);
    else respond(res, 500, this.#originals);
  }
}

/** A writeHead(status, headers) that would replace our Set-Cookie gets it merged in instead. */
function mergeCookie(args: unknown[], cookie: string): void {
  const index = typeof args[1] === 'string' ? 2 : 1;
  const headers = args[index];
  if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return;
  const object = headers as OutgoingHttpHeaders;
  const key = Object.keys(object).find((name) => name.toLowerCase() === 'set-cookie');
  if (!key) return;
  const value = object[key];
  object[key] = Array.isArray(value) ? [...value, cookie] : [String(value), cookie];
}

const STATUS_TEXT: Record<number, string> = { 500: 'Internal Server Error', 503: 'Service Unavailable' };

function respond(res: ServerResponse, status: number, originals: Partial<Record<Method, (...args: unknown[]) => unknown>>): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const body = `${status} ${STATUS_TEXT[status]}\n`;
  const headers = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' };
  const writeHead = originals.writeHead ?? res.writeHead;
  const end = originals.end ?? res.end;
  writeHead.call(res, status, headers);
  end.call(res, body);
}

/**
 * Wraps a node:http handler with sessions: reads the session cookie, loads
 * the session through the store, hands the handler a Session, and commits
 * it before the response completes.
 */
export function createHandler(store: SessionStore, handler: SessionHandler, options?: HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (!store || typeof store.get !== 'function' || typeof store.patch !== 'function') throw new TypeError('createHandler(store, handler): store must be a SessionStore (app.store)');
  if (typeof handler !== 'function') throw new TypeError('createHandler(store, handler): handler must be a function');
  const resolved = resolveHandlerOptions(options);
  const { key, secrets, cookie } = resolved;
  const attributes = {
    path: cookie.path, httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, secure: cookie.secure,
    ...(cookie.domain !== undefined ? { domain: cookie.domain } : {}),
  };
  const maxAge = cookie.maxAge === undefined ? {} : { maxAge: Math.floor(cookie.maxAge) };
  const shared: Shared = {
    store,
    options: resolved,
    resend: cookie.maxAge !== undefined && (store as { timestamp?: string }).timestamp !== 'fixed',
    setCookie: (id) => stringifySetCookie({ name: key, value: secrets.length ? sign(id, secrets[0]) : id, ...attributes, ...maxAge }),
    expiredCookie: stringifySetCookie({ name: key, value: '', ...attributes, maxAge: 0, expires: new Date(0) }),
  };

  function run(req: IncomingMessage, res: ServerResponse, id: string | null, data: Record<string, never> | null, hadCookie: boolean): void {
    const preset = id !== null && shared.resend ? shared.setCookie(id) : null;
    if (preset !== null) res.appendHeader('Set-Cookie', preset);
    const commit = new RequestCommit(shared, req, res, hadCookie, preset);
    const session = new Session(id, data, commit.wrap);
    commit.session = session;
    let result: unknown;
    try {
      result = handler(req, res, session);
    } catch (error) {
      commit.handlerFailed(error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(undefined, (error: unknown) => commit.handlerFailed(error));
    }
  }

  // Signed cookies already verified: a returning client costs a Map lookup
  // instead of an HMAC per secret. Only values that passed verification are
  // kept (an attacker cannot fill it), and it is dropped whole when full.
  const verified = new Map<string, string>();
  const VERIFIED_CACHE = 10_000;
  const verify = (raw: string): string | null => {
    if (secrets.length === 0) return raw;
    const known = verified.get(raw);
    if (known !== undefined) return known;
    const sid = unsign(raw, secrets);
    if (sid !== null && isSessionId(sid)) {
      if (verified.size >= VERIFIED_CACHE) verified.clear();
      verified.set(raw, sid);
    }
    return sid;
  };

  return function sessionHandler(req: IncomingMessage, res: ServerResponse): void {
    const header = req.headers.cookie;
    const raw = header ? parseCookie(header)[key] : undefined;
    if (raw === undefined) {
      run(req, res, null, null, false);
      return;
    }
    // A malformed, badly signed, unknown or dead cookie is ignored: the
    // request gets a fresh session and the client's id is never adopted.
    const sid = verify(raw);
    if (sid === null || !isSessionId(sid)) {
      run(req, res, null, null, true);
      return;
    }
    store.get(sid).then(
      (data) => run(req, res, data ? sid : null, data as Record<string, never> | null, true),
      (error: unknown) => {
        resolved.onError(asError(error), req);
        respond(res, statusFor(error), {});
      },
    );
  };
}
