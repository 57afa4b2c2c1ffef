// supervised-sessions/web: the Session, its commit rules and guarantees, for
// any Web-standard fetch handler on Node — `(request: Request, session) =>
// Response` (Next.js route handlers in the Node runtime, plain fetch
// handlers). The commit runs after the handler returns its Response and
// before that Response is handed back; the Set-Cookie is appended to it.
import { DeferredCommit } from './commit-core.ts';
import { asError, statusFor } from './failures.ts';
import { FrontDoor, WEB_REQUEST, type Loaded } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import type { Session } from './session.ts';
import type { SessionStore } from '../store/session-store.ts';

export type WebHandler = (request: Request, session: Session) => Response | Promise<Response>;
export type WebSessionsOptions = HandlerOptions<Request>;

const STATUS_TEXT: Record<number, string> = { 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A bare error response: no header of the handler's, no cookie. */
export function bare(status: number): Response {
  return new Response(`${status} ${STATUS_TEXT[status]}\n`, {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });
}

/**
 * What a handler may return: a Response (Node's own, or one of another Fetch
 * implementation such as the undici package's) with a real status. A network
 * error (Response.error(), status 0) is not an answer.
 */
export function isAnswer(value: unknown): value is Response {
  if (typeof value !== 'object' || value === null) return false;
  const { status, headers, bodyUsed, body } = value as {
    status?: unknown;
    headers?: { getSetCookie?: unknown };
    bodyUsed?: unknown;
    body?: { locked?: unknown } | null;
  };
  // A body already read (a Response with a body handed to two requests)
  // cannot be sent again: refused before anything is stored.
  if (bodyUsed === true || body?.locked === true) return false;
  return typeof status === 'number' && status >= 200 && status <= 599 && typeof headers?.getSetCookie === 'function';
}

/**
 * The Response handed back: always a new one with the session cookie
 * appended — the handler's own is never changed, as a handler may return one
 * Response to many requests (a module-level 204), whose cookie must not be
 * anyone else's; its headers may be immutable (Response.redirect()).
 */
function withCookie(response: Response, cookie: string | null): Response {
  if (cookie === null) return response;
  const headers = new Headers(response.headers);
  headers.append('set-cookie', cookie);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/**
 * Wraps a fetch handler with sessions: `withSessions(app.store, (request,
 * session) => Response, options?)` gives `(request) => Promise<Response>`.
 * The options are createHandler's (onError is told the Request). A handler
 * that throws, rejects or returns no Response gets a 500: its data changes
 * are not stored; a drop() or renew() it made still applies, with its cookie.
 * A store failure while loading or committing gets a bare 503 (or 500),
 * without one.
 */
export function withSessions(
  store: SessionStore,
  handler: WebHandler,
  options?: WebSessionsOptions,
): (request: Request) => Promise<Response> {
  const door = new FrontDoor<Request>(store, options, 'withSessions(store, handler)', WEB_REQUEST, 'withSessions');
  if (typeof handler !== 'function') throw new TypeError('withSessions(store, handler): handler must be a function');

  return async function sessionHandler(request: Request): Promise<Response> {
    let loaded: Loaded;
    try {
      loaded = await door.load(request);
    } catch (error) {
      door.onError(asError(error), request);
      return bare(statusFor(error));
    }
    const commit = new DeferredCommit(door.context(request), request, loaded, door.owesResend(loaded));
    const core = commit.core;
    let response: Response;
    try {
      const result: unknown = await handler(request, core.session);
      if (!isAnswer(result))
        throw new TypeError('withSessions: the handler must return a Response with a status from 200 to 599 and a body not yet read');
      response = result;
    } catch (error) {
      door.onError(asError(error), request);
      // As createHandler does: a bare 500, and nothing stored — unless the
      // handler dropped or renewed its session or logged out its other
      // devices, which applies (a logout or the fixation defence never
      // depends on the page), with its cookie.
      if (!core.session.idChangePending) {
        commit.fail();
        return bare(500);
      }
      return answer(commit, bare(500), request);
    }
    return answer(commit, response, request);
  };

  /** The rounds for `response`'s status (a 5xx stores no data changes), then the Response handed back. */
  async function answer(commit: DeferredCommit<Request>, response: Response, request: Request): Promise<Response> {
    try {
      await commit.finish(() => response.status);
      const next = commit.core.cookieHeader(response.headers.getSetCookie());
      return withCookie(response, next === null ? null : next[next.length - 1]);
    } catch (error) {
      door.onError(asError(error), request);
      // The handler's response is dropped unread: nothing stands for a write that was not stored.
      void response.body?.cancel().catch(() => {});
      return bare(statusFor(error));
    }
  }
}

export type { HandlerOptions, Session };
