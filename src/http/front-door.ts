// The request side of every front door: the options, the cookie (read,
// verified, written), the session's load, and the error report. A front door
// reads its requests through a RequestReader — the Cookie header, whether the
// request is secure — so node's IncomingMessage and a Web Request are served
// alike (docs/architecture.md, "How to add a front door").
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parseCookie, stringifySetCookie } from 'cookie';
import { isSessionId } from '../store/ids.ts';
import type { CommitStore, LoadedSession, SessionStore } from '../store/session-store.ts';
import { RENEWED, type Renewed } from '../store/renewed.ts';
import { resolveHandlerOptions, type HandlerOptions, type ResolvedHandlerOptions } from './options.ts';
import type { CommitContext, Loaded } from './commit-core.ts';
import { asError } from './failures.ts';
import { sign, unsign } from './signing.ts';

export type { Loaded };

// Cookie values are taken as they are: our ids and signatures are base64url,
// and a percent-encoded variant of an issued value is not the issued value.
const RAW = { decode: (value: string) => value };

// Bounded caches, dropped whole when full: only values that passed
// verification (or that we signed) enter, so an attacker cannot fill them.
const CACHE_ENTRIES = 10_000;

const NOTHING: Loaded = Object.freeze({ id: null, data: null, owner: null, hadCookie: false, touched: false, stale: false, maxAge: null });
const REFUSED: Loaded = Object.freeze({ id: null, data: null, owner: null, hadCookie: true, touched: false, stale: false, maxAge: null });
const STALE: Loaded = Object.freeze({ id: null, data: null, owner: null, hadCookie: true, touched: false, stale: true, maxAge: null });

/**
 * A SessionStore that is not the app's own client, as the commit core uses
 * it: the same calls, without the RENEWED replies (and without the owner at
 * load, nor the sliding re-send's touch).
 */
function commitStoreOf(store: SessionStore): CommitStore {
  const own = (store as { commit?: CommitStore }).commit;
  if (own) return own;
  return {
    load: async (sid) => {
      const data = await store.get(sid);
      return data === null ? null : { data, owner: null, touched: false, maxAge: null };
    },
    alive: async (sid) => (await store.get(sid)) !== null,
    put: (sid, data, options) => store.put(sid, data, options),
    patch: (sid, changes) => store.patch(sid, changes),
    renew: (sid, changes) => store.renew(sid, changes),
    delete: async (sid) => {
      await store.delete(sid);
      return null;
    },
    // Another store has no guarded revoke: a read of `keep` first (two calls, not one transaction).
    revokeOthers: async (owner, keep) => ((await store.get(keep)) === null ? null : store.revokeAll(owner, { except: keep })),
  };
}

/** What a front door needs of a request, read without allocating. */
export interface RequestReader<Req> {
  /** The Cookie header, as sent. */
  cookie(req: Req): string | undefined;
  /** The request came over TLS itself (a TLS socket; an https: URL). */
  encrypted(req: Req): boolean;
  /** The first X-Forwarded-Proto value, lower-cased (believed only with trustProxy). */
  forwardedProto(req: Req): string | undefined;
}

const firstProto = (header: string | string[] | null | undefined): string | undefined =>
  (Array.isArray(header) ? header[0] : (header ?? undefined))?.split(',')[0].trim().toLowerCase();

/** node's IncomingMessage: createHandler, Express, Fastify (request.raw). */
export const NODE_REQUEST: RequestReader<IncomingMessage> = {
  cookie: (req) => req.headers.cookie,
  encrypted: (req) => (req.socket as TLSSocket | undefined)?.encrypted === true,
  forwardedProto: (req) => firstProto(req.headers['x-forwarded-proto']),
};

/** A Web `Request` (fetch handlers): its URL says https when the server was reached over TLS. */
export const WEB_REQUEST: RequestReader<Request> = {
  cookie: (request) => request.headers.get('cookie') ?? undefined,
  encrypted: (request) => request.url.startsWith('https:'),
  forwardedProto: (request) => firstProto(request.headers.get('x-forwarded-proto')),
};

/**
 * What every front door shares — createHandler, the Express middleware, the
 * Fastify plugin: the options, the cookie (read, verified, written), the
 * session's load, and the error report. The commit core (commit-core.ts) does
 * the rest.
 */
export class FrontDoor<Req = IncomingMessage> {
  readonly store: SessionStore;
  readonly options: ResolvedHandlerOptions<Req>;
  readonly #reader: RequestReader<Req>;
  /** Sliding timestamps: a persistent cookie is re-sent when the request's load renewed the stored timestamp. */
  readonly #sliding: boolean;
  readonly #persistent: boolean;
  readonly #plain: CommitContext<Req>;
  readonly #secure: CommitContext<Req>;
  readonly #auto: boolean;
  readonly #trustProxy: boolean;
  readonly #load: (sid: string, still?: boolean) => Promise<LoadedSession | Renewed | null>;
  readonly #touch: ((req: Req) => boolean) | null;
  readonly #verified = new Map<string, string>();

  constructor(
    store: SessionStore,
    input: HandlerOptions<Req> | undefined,
    where: string,
    reader: RequestReader<Req> = NODE_REQUEST as unknown as RequestReader<Req>,
    name?: string,
  ) {
    if (!store || typeof store.get !== 'function' || typeof store.patch !== 'function')
      throw new TypeError(`${where}: store must be a SessionStore (app.store)`);
    this.store = store;
    this.#reader = reader;
    const options = resolveHandlerOptions(input, name);
    this.options = options;
    const { key, secrets, cookie } = options;
    this.#auto = cookie.secure === 'auto';
    this.#trustProxy = options.trustProxy;
    this.#sliding = (store as { timestamp?: string }).timestamp !== 'fixed';
    this.#persistent = cookie.maxAge !== undefined;
    const signed = new Map<string, string>();
    const cookieValueOf = (id: string): string => {
      if (secrets.length === 0) return id;
      let value = signed.get(id);
      if (value === undefined) {
        value = sign(id, secrets[0]);
        if (signed.size >= CACHE_ENTRIES) signed.clear();
        signed.set(id, value);
      }
      return value;
    };
    const onError = this.onError;
    const commitStore = commitStoreOf(store);
    // Every Set-Cookie of an id is `<key>=<value><attributes>`: the attributes
    // are serialised once (twice with secure: 'auto'), and a value is signed
    // only when it was never seen.
    const context = (secure: boolean): CommitContext<Req> => {
      const attributes = {
        path: cookie.path,
        httpOnly: cookie.httpOnly,
        sameSite: cookie.sameSite,
        secure,
        ...(cookie.domain !== undefined ? { domain: cookie.domain } : {}),
        // Partitioned without Secure is dropped by browsers: with secure 'auto', only the HTTPS cookie carries it.
        ...(cookie.partitioned && secure ? { partitioned: true } : {}),
        ...(cookie.priority !== undefined ? { priority: cookie.priority } : {}),
      };
      const prefix = `${key}=`;
      const suffixOf = (maxAge: number | undefined) =>
        stringifySetCookie({
          name: key,
          value: 'v',
          ...attributes,
          ...(maxAge === undefined ? {} : { maxAge: Math.max(1, Math.floor(maxAge)) }),
        }).slice(prefix.length + 1);
      const suffix = suffixOf(cookie.maxAge);
      // A session's own lifetime is its cookie's Max-Age: a few distinct values, each serialised once.
      const own = new Map<number, string>();
      const ownSuffix = (maxAge: number) => {
        let found = own.get(maxAge);
        if (found === undefined) {
          if (own.size >= 64) own.clear();
          found = suffixOf(maxAge);
          own.set(maxAge, found);
        }
        return found;
      };
      return {
        store: commitStore,
        onError,
        setCookie: (id, maxAge) => prefix + cookieValueOf(id) + (maxAge === null || maxAge === undefined ? suffix : ownSuffix(maxAge)),
        expiredCookie: stringifySetCookie({ name: key, value: '', ...attributes, maxAge: 0, expires: new Date(0) }),
        slides: (maxAge) => this.#slides(maxAge),
      };
    };
    this.#plain = context(cookie.secure === true);
    this.#secure = cookie.secure === 'auto' ? context(true) : this.#plain;
    // The store's own client loads the owner with the data; another SessionStore gives the data only.
    this.#load = commitStore.load;
    this.#touch = options.touch;
  }

  /** The app's onError; one that throws must not take the process down, nor leave a response unanswered. */
  onError = (error: Error, req: Req): void => {
    try {
      this.options.onError(error, req);
    } catch (thrown) {
      process.stderr.write(`supervised-sessions: onError threw while reporting "${error.message}": ${asError(thrown).message}\n`);
    }
  };

  /**
   * Whether the sliding cookie is owed for a loaded session: with 'relative'
   * timestamps, when its load renewed the stored timestamp and its cookie is
   * persistent (cookie.maxAge, or a lifetime of the session's own).
   */
  owesResend(loaded: Loaded): boolean {
    return loaded.id !== null && loaded.touched && this.#slides(loaded.maxAge);
  }

  /** Whether the cookie slides: 'relative' timestamps and a persistent cookie (cookie.maxAge, or the session's own lifetime). */
  #slides(maxAge: number | null): boolean {
    return this.#sliding && (this.#persistent || maxAge !== null);
  }

  /**
   * The cookie lines for this request. With `cookie.secure: 'auto'` the cookie
   * is Secure exactly when the request came over HTTPS: a TLS socket, or
   * `X-Forwarded-Proto: https` from a proxy we were told to trust.
   */
  context(req: Req): CommitContext<Req> {
    if (!this.#auto) return this.#plain;
    if (this.#reader.encrypted(req)) return this.#secure;
    if (this.#trustProxy && this.#reader.forwardedProto(req) === 'https') return this.#secure;
    return this.#plain;
  }

  /**
   * The request's session. Synchronous when there is nothing to load (no
   * cookie, or one that is malformed or badly signed: ignored, the client's
   * id is never adopted); a promise when the store is asked.
   */
  load(req: Req): Loaded | Promise<Loaded> {
    const header = this.#reader.cookie(req);
    const raw = header ? parseCookie(header, RAW)[this.options.key] : undefined;
    if (raw === undefined) return NOTHING;
    const sid = this.#verify(raw);
    if (sid === null) return REFUSED;
    return this.#load(sid, this.#touch !== null && !this.#touches(req)).then((loaded) =>
      loaded === null
        ? REFUSED
        : loaded === RENEWED
          ? STALE
          : {
              id: sid,
              data: loaded.data,
              owner: loaded.owner,
              hadCookie: true,
              touched: loaded.touched,
              stale: false,
              maxAge: loaded.maxAge,
            },
    );
  }

  /**
   * The touch option's answer: `false` keeps the read still. One that
   * throws or answers no boolean is reported, and the request is served as
   * any other (it renews).
   */
  #touches(req: Req): boolean {
    let answer: unknown;
    try {
      answer = this.#touch!(req);
    } catch (error) {
      this.onError(new Error(`the touch option threw: ${asError(error).message}`, { cause: error }), req);
      return true;
    }
    if (typeof answer === 'boolean') return answer;
    // A promise (an async touch) is not an answer: the load cannot wait for it.
    this.onError(new TypeError(`the touch option must return true or false, synchronously; got ${typeof answer}`), req);
    return true;
  }

  /** A cookie value to a session id: a Map lookup for a returning client instead of an HMAC per secret. */
  #verify(raw: string): string | null {
    const secrets = this.options.secrets;
    if (secrets.length === 0) return isSessionId(raw) ? raw : null;
    const verified = this.#verified;
    const known = verified.get(raw);
    if (known !== undefined) return known;
    const sid = unsign(raw, secrets);
    if (sid === null || !isSessionId(sid)) return null;
    if (verified.size >= CACHE_ENTRIES) verified.clear();
    verified.set(raw, sid);
    return sid;
  }
}
