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

/** The handler's Response with the session cookie appended (copied when its headers are immutable: Response.redirect(), a fetch()'s). */
function withCookie(response: Response, cookie: string | null): Response {
  if (cookie === null) return response;
  try {
    response.headers.append('set-cookie', cookie);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    headers.append('set-cookie', cookie);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

/**
 * Wraps a fetch handler with sessions: `withSessions(app.store, (request,
 * session) => Response, options?)` gives `(request) => Promise<Response>`.
 * The options are createHandler's (onError is told the Request). A handler
 * that throws, rejects or returns no Response gets a 500 — its data changes
 * not stored, a drop() or renew() it made applied, with that cookie; a store
 * failure while loading or committing gets a bare 503 (or 500) without one.
 */
export function withSessions(
  store: SessionStore,
  handler: WebHandler,
  options?: WebSessionsOptions,
): (request: Request) => Promise<Response> {
  const door = new FrontDoor<Request>(store, options, 'withSessions(store, handler)', WEB_REQUEST);
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
    let response: Response | null = null;
    let failure: Error | null = null;
    try {
      const result: unknown = await handler(request, commit.core.session);
      if (!(result instanceof Response)) throw new TypeError('withSessions: the handler must return a Response');
      response = result;
    } catch (error) {
      failure = asError(error);
    }
    // A handler that failed answers 500: its data changes are not stored
    // (an error page), its drop() or renew() still applies.
    const status = response === null ? 500 : response.status;
    let cookie: string | null;
    try {
      cookie = await commit.finish(status, response?.headers.getSetCookie() ?? []);
    } catch (error) {
      commit.phase = 'failed';
      commit.core.failed = true;
      if (failure !== null) door.onError(failure, request);
      door.onError(asError(error), request);
      // The handler's response is dropped unread: nothing stands for a write that was not stored.
      void response?.body?.cancel().catch(() => {});
      return bare(statusFor(error));
    }
    if (failure !== null) {
      door.onError(failure, request);
      return withCookie(bare(500), cookie);
    }
    return withCookie(response!, cookie);
  };
}

export type { HandlerOptions, Session };
