import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';
import { isSessionId } from '../store/ids.ts';
import type { SessionData } from '../store/json-value.ts';
import type { LoadedSession, SessionStore } from '../store/session-store.ts';
import { respond } from './held-response.ts';
import { resolveHandlerOptions, type HandlerOptions } from './options.ts';
import { asError, RequestCommit, statusFor, type CommitContext } from './request-commit.ts';
import { Session } from './session.ts';
import { sign, unsign } from './signing.ts';

export type SessionHandler = (req: IncomingMessage, res: ServerResponse, session: Session) => unknown;

// Cookie values are taken as they are: our ids and signatures are base64url,
// and a percent-encoded variant of an issued value is not the issued value.
const RAW = { decode: (value: string) => value };

// Bounded caches, dropped whole when full: only values that passed
// verification (or that we signed) enter, so an attacker cannot fill them.
const CACHE_ENTRIES = 10_000;

/**
 * Wraps a node:http handler with sessions: reads the session cookie, loads
 * the session through the store, hands the handler a Session, and commits
 * it before the response completes (see RequestCommit for the rules).
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
  // Every Set-Cookie of an id is `<key>=<value><attributes>`: the attributes
  // are serialised once, and a value is only signed when it was never seen.
  const prefix = `${key}=`;
  const suffix = stringifySetCookie({ name: key, value: 'v', ...attributes, ...maxAge }).slice(prefix.length + 1);
  const signedValues = new Map<string, string>();
  const valueOf = (id: string): string => {
    if (secrets.length === 0) return id;
    let value = signedValues.get(id);
    if (value === undefined) {
      value = sign(id, secrets[0]);
      if (signedValues.size >= CACHE_ENTRIES) signedValues.clear();
      signedValues.set(id, value);
    }
    return value;
  };
  // The app's onError is told of every failure; one that throws itself must
  // not take the process down, nor leave a response unanswered.
  const onError = (error: Error, req: IncomingMessage): void => {
    try {
      resolved.onError(error, req);
    } catch (thrown) {
      process.stderr.write(`supervised-sessions: onError threw while reporting "${error.message}": ${asError(thrown).message}\n`);
    }
  };
  const ctx: CommitContext = {
    store,
    onError,
    setCookie: (id) => prefix + valueOf(id) + suffix,
    expiredCookie: stringifySetCookie({ name: key, value: '', ...attributes, maxAge: 0, expires: new Date(0) }),
  };
  // With cookie.maxAge and sliding timestamps, every response of a live
  // session re-sends the cookie, so the browser's expiry slides with ours.
  const resend = cookie.maxAge !== undefined && (store as { timestamp?: string }).timestamp !== 'fixed';

  function run(req: IncomingMessage, res: ServerResponse, id: string | null, data: SessionData | null, hadCookie: boolean, owner: string | null = null): void {
    const preset = id !== null && resend ? ctx.setCookie(id) : null;
    if (preset !== null) res.appendHeader('Set-Cookie', preset);
    // A write after end() makes Node emit 'error' on the response, which kills
    // a process nobody listens on: it is the handler's mistake, reported.
    res.on('error', onResponseError);
    const commit = new RequestCommit(ctx, req, res, hadCookie, preset);
    const session = new Session(id, data, commit, owner);
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

  // The store's own client loads the owner with the data; another SessionStore gives the data only.
  const loader = (store as { load?: (sid: string) => Promise<LoadedSession | null> }).load;
  const load = loader ? (sid: string) => loader.call(store, sid)
    : async (sid: string): Promise<LoadedSession | null> => {
      const data = await store.get(sid);
      return data === null ? null : { data, owner: null };
    };

  // Signed cookies already verified: a returning client costs a Map lookup
  // instead of an HMAC per secret.
  const verified = new Map<string, string>();
  const verify = (raw: string): string | null => {
    if (secrets.length === 0) return raw;
    const known = verified.get(raw);
    if (known !== undefined) return known;
    const sid = unsign(raw, secrets);
    if (sid === null || !isSessionId(sid)) return null;
    if (verified.size >= CACHE_ENTRIES) verified.clear();
    verified.set(raw, sid);
    return sid;
  };

  function onResponseError(this: ServerResponse, error: Error): void {
    onError(error, this.req);
  }

  return function sessionHandler(req: IncomingMessage, res: ServerResponse): void {
    const header = req.headers.cookie;
    const raw = header ? parseCookie(header, RAW)[key] : undefined;
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
    load(sid).then(
      (loaded) => run(req, res, loaded ? sid : null, loaded?.data ?? null, true, loaded?.owner ?? null),
      (error: unknown) => {
        if (!res.headersSent) respond(res, statusFor(error));
        onError(asError(error), req);
      },
    ).catch((error: unknown) => {
      // Nothing should get here (run catches the handler's errors): the request must still end.
      if (!res.headersSent) respond(res, 500);
      else res.destroy(asError(error));
    });
  };
}
