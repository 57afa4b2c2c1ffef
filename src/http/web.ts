// supervised-sessions/web: the Session, its commit rules and guarantees, for
// any Web-standard fetch handler on Node — `(request: Request, session) =>
// Response` (Next.js route handlers in the Node runtime, plain fetch
// handlers). The commit runs after the handler returns its Response and
// before that Response is handed back; the Set-Cookie is appended to it.
import { CommitCore, type ResponseSide } from './commit-core.ts';
import { asError, statusFor } from './failures.ts';
import { FrontDoor, WEB_REQUEST, type Loaded } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import type { ChangeKind, Session, SessionHost } from './session.ts';
import type { SessionStore } from '../store/session-store.ts';

export type WebHandler = (request: Request, session: Session) => Response | Promise<Response>;
export type WebSessionsOptions = HandlerOptions<Request>;

const STATUS_TEXT: Record<number, string> = { 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A bare error response: no header of the handler's, no cookie. */
function bare(status: number): Response {
  return new Response(`${status} ${STATUS_TEXT[status]}\n`, {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });
}

type Phase = 'open' | 'committing' | 'done' | 'failed';

/**
 * One request's commit for a fetch handler: the commit core (commit-core.ts).
 * Nothing goes out before the handler has returned its Response and the
 * rounds are done, so no header is ever "out" while a change can still be
 * made; once the Response is handed back, the session is committed.
 */
class WebCommit implements SessionHost, ResponseSide {
  readonly core: CommitCore<Request>;
  phase: Phase = 'open';

  constructor(door: FrontDoor<Request>, request: Request, loaded: Loaded) {
    this.core = new CommitCore(door.context(request), request, loaded, door.owesResend(loaded), this);
  }

  ended(): boolean {
    return this.phase === 'done';
  }

  headersOut(): boolean {
    return false;
  }

  headersSent(): boolean {
    return false;
  }

  change(kind: ChangeKind, _session: Session): void {
    this.core.admit(kind, this);
  }

  /** The rounds for a response of `status`; then the cookie to append, or null. */
  async finish(status: number, current: string[]): Promise<string | null> {
    this.phase = 'committing';
    await this.core.rounds(() => status);
    this.phase = 'done';
    const next = this.core.cookieHeader(current);
    return next === null ? null : next[next.length - 1];
  }
}

/**
 * What a handler may return: a Response (Node's own, or one of another Fetch
 * implementation such as the undici package's) with a real status. A network
 * error (Response.error(), status 0) is not an answer.
 */
function isAnswer(value: unknown): value is Response {
  if (value instanceof Response) return value.status >= 200;
  if (typeof value !== 'object' || value === null) return false;
  const { status, headers } = value as { status?: unknown; headers?: { getSetCookie?: unknown } };
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
    const commit = new WebCommit(door, request, loaded);
    const core = commit.core;
    let response: Response;
    try {
      const result: unknown = await handler(request, core.session);
      if (!isAnswer(result)) throw new TypeError('withSessions: the handler must return a Response with a status from 200 to 599');
      response = result;
    } catch (error) {
      door.onError(asError(error), request);
      // As createHandler does: a bare 500, and nothing stored — unless the
      // handler dropped or renewed its session, which applies (a logout or
      // the fixation defence never depends on the page), with its cookie.
      if (!core.session.idChangePending) {
        commit.phase = 'failed';
        core.failed = true;
        return bare(500);
      }
      return answer(commit, bare(500), request);
    }
    return answer(commit, response, request);
  };

  /** The rounds for `response`'s status (a 5xx stores no data changes), then the Response handed back. */
  async function answer(commit: WebCommit, response: Response, request: Request): Promise<Response> {
    try {
      const cookie = await commit.finish(response.status, response.headers.getSetCookie());
      return withCookie(response, cookie);
    } catch (error) {
      commit.phase = 'failed';
      commit.core.failed = true;
      door.onError(asError(error), request);
      // The handler's response is dropped unread: nothing stands for a write that was not stored.
      void response.body?.cancel().catch(() => {});
      return bare(statusFor(error));
    }
  }
}

export type { HandlerOptions, Session };
