// supervised-sessions/koa: the Session, its commit rules and guarantees, as
// Koa middleware (Koa 3 and 2). The session loads before `await next()` and
// commits after it, before Koa writes the response.
import { STATUS_CODES } from 'node:http';
import type { Context, Middleware, Next } from 'koa';
import type { SessionStore } from '../store/session-store.ts';
import { DeferredCommit } from './commit-core.ts';
import { asError, withStatus } from './failures.ts';
import { FrontDoor, NODE_REQUEST, type Loaded, type RequestReader } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import { requirePeer } from './peer.ts';
import type { Session } from './session.ts';

requirePeer('koa', 'supervised-sessions/koa');

declare module 'koa' {
  interface DefaultContext {
    /** The request's session (supervised-sessions/koa). */
    session: Session;
  }
}

/** The options of createHandler; onError and touch are told Koa's `ctx`. */
export type KoaSessionsOptions = HandlerOptions<Context>;

/** A Koa context is read through its node request. */
const KOA_REQUEST: RequestReader<Context> = {
  cookie: (ctx) => NODE_REQUEST.cookie(ctx.req),
  encrypted: (ctx) => NODE_REQUEST.encrypted(ctx.req),
  forwardedProto: (ctx) => NODE_REQUEST.forwardedProto(ctx.req),
};

const kCommit = Symbol('supervised-sessions.commit');
type WithCommit = Context & { [kCommit]?: DeferredCommit<Context> };

/** The status Koa's ctx.onerror answers a thrown value with: its `status` (or `statusCode`) when Node knows it, else 500. */
function thrownStatus(error: unknown): number {
  const { status, statusCode } = (typeof error === 'object' && error !== null ? error : {}) as { status?: unknown; statusCode?: unknown };
  const code = status || statusCode;
  return typeof code === 'number' && STATUS_CODES[code] !== undefined ? code : 500;
}

/**
 * What is thrown on, carrying the session cookie in `headers` (which
 * ctx.onerror sets after clearing every other header): a new object whose
 * prototype is the handler's error — never the handler's own, which an app
 * may throw for many requests. A value that is no object becomes the Error
 * Koa would have made of it.
 */
function carrying(thrown: unknown, cookie: string): unknown {
  const base =
    typeof thrown === 'object' && thrown !== null
      ? thrown
      : Object.assign(new Error(`non-error thrown: ${String(thrown)}`), { status: 500, expose: false });
  const own = (base as { headers?: unknown }).headers;
  const headers: Record<string, unknown> = {};
  if (typeof own === 'object' && own !== null) {
    for (const [name, value] of Object.entries(own)) if (name.toLowerCase() !== 'set-cookie') headers[name] = value;
  }
  const theirs =
    typeof own === 'object' && own !== null ? Object.entries(own).find(([name]) => name.toLowerCase() === 'set-cookie')?.[1] : undefined;
  headers['set-cookie'] = [...(theirs === undefined ? [] : Array.isArray(theirs) ? theirs.map(String) : [String(theirs)]), cookie];
  return Object.create(base as object, { headers: { value: headers, enumerable: true, writable: true, configurable: true } });
}

/** The response becomes an error one: its status set (an error handler that sets none must not send a 2xx), no cookie, the body dropped. */
function failed(ctx: Context, status: number): void {
  ctx.remove('set-cookie');
  discardBody(ctx);
  ctx.status = status;
}

/** A body Koa would pipe: dropped unread when the response becomes an error one. */
function discardBody(ctx: Context): void {
  const body = ctx.body as { destroy?: () => void; pipe?: unknown } | null | undefined;
  if (body && typeof body.pipe === 'function' && typeof body.destroy === 'function') body.destroy();
}

/**
 * Sessions for Koa: `app.use(sessions(app.store, options))`, then
 * `ctx.session` in every middleware after it. The options are
 * createHandler's. The commit runs after `await next()`, before Koa writes the
 * response, with the same rules as every front door. A store failure while
 * loading or committing is thrown with `status` 503 (store) or 500, through
 * Koa's error handling (an upstream try/catch, or `ctx.onerror` and
 * `app.on('error')`). An error the rest of the chain throws is Koa's to
 * answer: with its 4xx status the session commits as on any 4xx response;
 * with a 5xx (or none) its data changes are not stored, while a drop() or
 * renew() still applies, its cookie carried in the `headers` of what is
 * thrown on (an object whose prototype is the handler's error).
 */
export function sessions(store: SessionStore, options?: KoaSessionsOptions): Middleware {
  const door = new FrontDoor<Context>(store, options, 'sessions(store)', KOA_REQUEST, 'sessions');

  /** The decided cookie, set on the response (it goes out unless an error handler clears the headers). */
  function setCookie(ctx: Context, commit: DeferredCommit<Context>): string[] | null {
    // node's own getter: Koa 2's ctx.response.get() answers '' for a header not set.
    const next = commit.core.cookieHeader(ctx.res.getHeader('set-cookie'));
    if (next !== null) ctx.set('set-cookie', next);
    return next;
  }

  return async function sessionMiddleware(ctx: Context, next: Next): Promise<void> {
    // Mounted twice (a router and the app): the first one's session stands.
    if ((ctx as WithCommit)[kCommit] !== undefined) return next();
    let loaded: Loaded;
    try {
      loaded = await door.load(ctx);
    } catch (error) {
      const err = withStatus(error);
      door.onError(err, ctx);
      ctx.status = err.status;
      throw err;
    }
    const commit = new DeferredCommit(door.context(ctx), ctx, loaded, door.owesResend(loaded));
    (ctx as WithCommit)[kCommit] = commit;
    ctx.session = commit.session;
    try {
      await next();
    } catch (thrown) {
      const status = thrownStatus(thrown);
      if (status >= 500) door.onError(asError(thrown), ctx);
      // A 5xx stores no data changes; a drop() or renew() applies, with its cookie.
      if (status >= 500 && !commit.session.idChangePending) {
        commit.fail();
        throw thrown;
      }
      try {
        await commit.finish(() => status);
      } catch (error) {
        const err = withStatus(error);
        door.onError(err, ctx);
        failed(ctx, err.status);
        throw err;
      }
      const cookies = setCookie(ctx, commit);
      // ctx.onerror clears every header, then sets the error's own: the cookie travels there too.
      throw cookies === null ? thrown : carrying(thrown, cookies[cookies.length - 1]);
    }
    // The response was written by hand (ctx.respond = false, ctx.res.end()): the changes cannot be stored before it.
    if (ctx.respond === false || ctx.res.headersSent) {
      if (commit.session.pending) {
        commit.phase = 'done';
        door.onError(
          new Error('the response was written outside Koa (ctx.respond = false or ctx.res): the session changes were not stored'),
          ctx,
        );
      }
      return;
    }
    try {
      await commit.finish(() => ctx.status);
    } catch (error) {
      const err = withStatus(error);
      door.onError(err, ctx);
      // The handler's response is dropped: nothing stands for a write that was not stored.
      failed(ctx, err.status);
      throw err;
    }
    setCookie(ctx, commit);
  };
}

export type { HandlerOptions, Session };
