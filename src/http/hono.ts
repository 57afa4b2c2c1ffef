// supervised-sessions/hono: the Session, its commit rules and guarantees, as
// Hono middleware (Hono 4 on Node, @hono/node-server). The session loads
// before `await next()` and commits after it, before the Response is
// returned; its cookie is appended to that Response.
import type { Context, MiddlewareHandler } from 'hono';
import type { HTTPException } from 'hono/http-exception';
import type { SessionStore } from '../store/session-store.ts';
import { DeferredCommit } from './commit-core.ts';
import { asError, statusFor } from './failures.ts';
import { FrontDoor, WEB_REQUEST, type Loaded, type RequestReader } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import { requirePeer } from './peer.ts';
import type { Session } from './session.ts';
import { bare, isAnswer } from './web.ts';

requirePeer('hono', 'supervised-sessions/hono');

/** The Hono environment the middleware provides: `c.var.session` / `c.get('session')`. */
export type SessionEnv = { Variables: { session: Session } };

/** The options of createHandler; onError and touch are told Hono's context `c`. */
export type HonoSessionsOptions = HandlerOptions<Context>;

/** A Hono context is read through its Web Request. */
const HONO_REQUEST: RequestReader<Context> = {
  cookie: (c) => WEB_REQUEST.cookie(c.req.raw),
  encrypted: (c) => WEB_REQUEST.encrypted(c.req.raw),
  forwardedProto: (c) => WEB_REQUEST.forwardedProto(c.req.raw),
};

// Hono's HTTPException, imported when the middleware is made: a static import
// would fail before requirePeer could say what to install, and require()
// would give the CommonJS class, which an app's `instanceof HTTPException`
// (the ES module's) does not recognise.
let httpException: Promise<typeof import('hono/http-exception')> | null = null;

/** The contexts a sessions() middleware already serves (mounted on an app and a sub-app: the first one's session stands). */
const served = new WeakSet<object>();

/** The context's Response replaced (unset first, or Hono would copy the old one's headers onto it). */
function replace(c: Context, response: Response): void {
  c.res = undefined as unknown as Response;
  c.res = response;
}

/** A store failure, for Hono's error handling (app.onError; by default its own response, 503 or 500). */
async function failure(error: unknown): Promise<HTTPException> {
  // Started by sessions(), which made the middleware that calls this.
  const { HTTPException } = await (httpException as Promise<typeof import('hono/http-exception')>);
  const status = statusFor(error) as 500 | 503;
  // The message goes to the client: the store's own stays in `cause` (and onError).
  return new HTTPException(status, { message: status === 503 ? 'Service Unavailable' : 'Internal Server Error', cause: error });
}

/**
 * Sessions for Hono: `app.use(sessions(app.store, options))`, then
 * `c.var.session` (or `c.get('session')`) in every handler after it; type
 * the app as `new Hono<SessionEnv>()`, or chain after `.use(sessions(…))`.
 * The options are createHandler's. The commit runs after `await next()`,
 * before the Response goes back, with the same rules as every front door. A
 * store failure while loading or committing is thrown as an HTTPException
 * 503 (store) or 500, through Hono's error handling (`app.onError`). A
 * handler's error answered by app.onError with a 4xx commits as any 4xx
 * response; with a 5xx its data changes are not stored, while a drop() or
 * renew() still applies, with its cookie.
 */
export function sessions(store: SessionStore, options?: HonoSessionsOptions): MiddlewareHandler<SessionEnv> {
  const door = new FrontDoor<Context>(store, options, 'sessions(store)', HONO_REQUEST, 'sessions');
  if (httpException === null) {
    httpException = import('hono/http-exception');
    // Marked handled: a failure to load surfaces where it is awaited, never as an unhandled rejection.
    httpException.catch(() => {});
  }

  /**
   * A 500 of our own (the handler threw something Hono rethrows, or answered
   * no Response): no data changes stored; a drop() or renew() applies, with
   * its cookie.
   */
  async function errorAnswer(c: Context, commit: DeferredCommit<Context>): Promise<void> {
    if (!commit.session.idChangePending) {
      commit.fail();
      replace(c, bare(500));
      return;
    }
    try {
      await commit.finish(() => 500);
    } catch (error) {
      door.onError(asError(error), c);
      replace(c, bare(statusFor(error)));
      return;
    }
    const response = bare(500);
    const cookies = commit.core.cookieHeader([]);
    if (cookies !== null) response.headers.append('set-cookie', cookies[cookies.length - 1]);
    replace(c, response);
  }

  return async function sessionMiddleware(c, next) {
    if (served.has(c)) {
      await next();
      return;
    }
    let loaded: Loaded;
    try {
      loaded = await door.load(c);
    } catch (error) {
      door.onError(asError(error), c);
      // The context's status too: an app.onError that sets none must not answer 200.
      c.status(statusFor(error) as 500 | 503);
      throw await failure(error);
    }
    const commit = new DeferredCommit(door.context(c), c as Context, loaded, door.owesResend(loaded));
    served.add(c);
    c.set('session', commit.session);
    try {
      await next();
    } catch (thrown) {
      // Hono answers a thrown Error with app.onError before this; anything
      // else it rethrows, to a bare 500 of its server's: ours, with the cookie
      // of a drop() or renew().
      door.onError(asError(thrown), c);
      await errorAnswer(c, commit);
      return;
    }
    if (!isAnswer(c.res)) {
      // Response.error() (status 0), or a body already read: not an answer.
      door.onError(new TypeError('sessions: the handler must answer a Response with a status from 200 to 599 and a body not yet read'), c);
      await errorAnswer(c, commit);
      return;
    }
    const status = c.res.status;
    if (c.error !== undefined && status >= 500) {
      door.onError(asError(c.error), c);
      if (!commit.session.idChangePending) {
        commit.fail();
        return;
      }
    }
    try {
      await commit.finish(() => status);
    } catch (error) {
      door.onError(asError(error), c);
      // The handler's response is dropped unread: nothing stands for a write that was not stored.
      void c.res.body?.cancel().catch(() => {});
      // An empty one, whose headers Hono's error answer starts from: none of
      // the handler's (its cookies) is carried onto the error; and the
      // context's status, for an app.onError that sets none.
      replace(c, new Response(null));
      c.status(statusFor(error) as 500 | 503);
      throw await failure(error);
    }
    const cookies = commit.core.cookieHeader(c.res.headers.getSetCookie());
    if (cookies !== null) {
      // Always on a copy: the handler's Response may have immutable headers
      // (Response.redirect(), a fetch() result) or be shared by many requests,
      // and an older Hono 4 appends to it in place.
      const handed = c.res;
      const headers = new Headers(handed.headers);
      headers.append('set-cookie', cookies[cookies.length - 1]);
      replace(c, new Response(handed.body, { status: handed.status, statusText: handed.statusText, headers }));
    }
  };
}

export type { HandlerOptions, Session };
