// supervised-sessions/express-session: an express-session Store on the
// supervised store, for apps that keep express-session's middleware and
// switch only the store — the migration path (docs/migrating-from-express-session.md).
import type { EventEmitter } from 'node:events';
import type { SessionData } from '../store/json-value.ts';
import type { MailboxSessionStore, SessionStore } from '../store/session-store.ts';
import { loadPeer } from './peer.ts';

// express-session is CommonJS: required synchronously (no top-level await, so
// a CommonJS app can require() this module too).
// Typed as express-session's Store is (its inherited helpers included), so an
// instance is accepted where @types/express-session expects a Store.
// (`any` where @types/express-session names its own request and session types.)
interface ExpressSessionStoreBase extends EventEmitter {
  regenerate(req: any, callback: (error?: any) => any): void;
  load(sid: string, callback: (error: any, session?: any) => any): void;
  createSession(req: any, session: any): any;
}
const { Store } = loadPeer<{ Store: new () => ExpressSessionStoreBase }>('express-session', 'supervised-sessions/express-session');

// express-session's callbacks and session objects, typed loosely: its own
// types (@types/express-session) name them, and an instance of this class must
// be assignable to its Store.
type Callback<T = void> = (error: any, value?: T) => void;
type ExpressSessionData = Record<string, any>;

/** What the drop-in store needs of app.store (its own mailbox client has it). */
type KeyedStore = Pick<MailboxSessionStore, 'getKey' | 'upsertKey' | 'touchKey' | 'deleteKey' | 'clearAll' | 'allData' | 'count'>;

/**
 * `app.use(session({ store: new SessionAppStore(app.store), secret, ... }))`.
 *
 * express-session chooses the ids (its own generator) and saves whole
 * objects; this store keys rows by the SHA-256 of those ids, like ours.
 * Each session expires when its cookie does (`cookie.expires`, as
 * express-session passes it to `set` and `touch`: a lifetime of the
 * session's own), or by the app's `maxAge` for a browser-session cookie;
 * `maxLifetime` caps both. `touch` writes only when the expiry moved by more
 * than `touchAfter`. Errors go to the callbacks, never thrown. What it cannot
 * give — patches of changed keys, a commit before the response, a logout
 * never undone — only the native front doors give (see the migration guide).
 */
export class SessionAppStore extends Store {
  readonly #store: KeyedStore;

  constructor(store: SessionStore) {
    super();
    const keyed = store as unknown as Partial<KeyedStore>;
    if (!store || typeof keyed.getKey !== 'function' || typeof keyed.upsertKey !== 'function') {
      throw new TypeError("new SessionAppStore(store): store must be the app's store (app.store)");
    }
    this.#store = keyed as KeyedStore;
  }

  get(sid: string, callback: Callback<any>): void {
    settle(this.#store.getKey(sid), callback);
  }

  set(sid: string, session: ExpressSessionData, callback?: Callback): void {
    settle(
      Promise.resolve().then(() => this.#store.upsertKey(sid, plain(session), remainingOf(session))),
      callback,
    );
  }

  destroy(sid: string, callback?: Callback): void {
    settle(this.#store.deleteKey(sid), callback);
  }

  /**
   * The session's expiry becomes its cookie's, and the stored cookie with it;
   * written only when the expiry moved by more than touchAfter (no write per
   * request; `touchAfter: 0` writes every touch, as MemoryStore does).
   */
  touch(sid: string, session: ExpressSessionData, callback?: Callback): void {
    settle(
      Promise.resolve().then(() =>
        this.#store.touchKey(sid, remainingOf(session), plain({ cookie: session?.cookie ?? null }).cookie ?? null),
      ),
      callback,
    );
  }

  length(callback: Callback<number>): void {
    settle(this.#store.count(), callback);
  }

  clear(callback?: Callback): void {
    settle(this.#store.clearAll(), callback);
  }

  /** Every live session, as an array (the ids are not stored, only their digests). */
  all(callback: Callback<any>): void {
    settle(this.#store.allData(), callback);
  }
}

/** express-session's Session carries a Cookie instance and its request (non-enumerable): keep the JSON of it. */
function plain(session: ExpressSessionData): SessionData {
  return JSON.parse(JSON.stringify(session)) as SessionData;
}

/**
 * Milliseconds until the session's cookie expires, as express-session keeps
 * it (`cookie.expires`, a Date or its JSON; else `cookie.maxAge`, the time
 * left); null for a browser-session cookie, which gets the app's maxAge.
 */
function remainingOf(session: ExpressSessionData): number | null {
  const cookie = (session as { cookie?: { expires?: unknown; maxAge?: unknown } } | null)?.cookie;
  if (typeof cookie !== 'object' || cookie === null) return null;
  if (cookie.expires !== undefined && cookie.expires !== null && cookie.expires !== false) {
    const at = new Date(cookie.expires as string | number | Date).getTime();
    if (Number.isFinite(at)) return at - Date.now();
  }
  return typeof cookie.maxAge === 'number' && Number.isFinite(cookie.maxAge) ? cookie.maxAge : null;
}

function settle<T>(promise: Promise<T>, callback: Callback<T> | undefined): void {
  // Outside the promise chain: a callback that throws is its own error, not a rejection of ours.
  promise.then(
    (value) => {
      if (callback) process.nextTick(callback, null, value);
    },
    (error: unknown) => {
      if (callback) process.nextTick(callback, error instanceof Error ? error : new Error(String(error)));
    },
  );
}
