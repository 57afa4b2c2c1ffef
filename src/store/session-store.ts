import type { MailboxClient } from '../runtime/mailbox-client.ts';
import { SessionTooLargeError } from '../errors.ts';
import type { Timestamp } from '../config.ts';
import { assertOwner, digestFromHandle, isSessionId, newSessionId, newSessionIdLike } from './ids.ts';
import { assertKeyList, assertSessionData, type JsonValue, type SessionData } from './json-value.ts';
import { RENEWED, type Renewed } from './renewed.ts';
import type { Args, Op, Reply } from './protocol.ts';
import { MAX_OWN_LIFETIME_MS } from './expiry.ts';
import { traced } from '../diagnostics.ts';
import { isPlainObject, show } from '../validation.ts';

export interface SessionPatch {
  set?: Record<string, JsonValue>;
  unset?: string[];
  /** A string gives the session that owner, `null` takes it away; absent: unchanged. */
  owner?: string | null;
  /** Seconds: a lifetime of the session's own, in place of the app's `maxAge`; `null`: back to the app's; absent: unchanged. */
  maxAge?: number | null;
}

/** `put`'s options: the new session's (or the live one's) owner and own lifetime. */
export interface PutOptions {
  owner?: string | null;
  /** Seconds: a lifetime of the session's own ("remember me"); `null`: the app's `maxAge`. */
  maxAge?: number | null;
}

/** One of an owner's live sessions (times in epoch ms). */
export interface SessionInfo {
  /** An opaque, stable name for the session; never usable as a cookie. */
  handle: string;
  createdAt: number;
  touchedAt: number;
  expiresAt: number;
  data: SessionData;
}

/** The mailbox client of the store actor: the analogue of Plug.Session.Store. */
export interface SessionStore {
  get(sid: string): Promise<SessionData | null>;
  put(sid: string | null, data: SessionData, options?: PutOptions): Promise<string | null>;
  patch(sid: string, changes: SessionPatch): Promise<boolean>;
  renew(sid: string, changes?: SessionPatch & { replace?: SessionData }): Promise<string | null>;
  delete(sid: string): Promise<void>;
  count(): Promise<number>;
  sessionsOf(owner: string): Promise<SessionInfo[]>;
  revoke(owner: string, handle: string): Promise<boolean>;
  revokeAll(owner: string, options?: { except?: RevokeExcept }): Promise<number>;
}

/** @internal A live session as createHandler loads it: its data and its owner. */
export interface LoadedSession {
  data: SessionData;
  owner: string | null;
  /** This read renewed the sliding timestamp (at most once per touchAfter): the cookie's expiry moves. */
  touched: boolean;
  /** The session's own lifetime in seconds; null: the app's maxAge. */
  maxAge: number | null;
}

/**
 * @internal What the request-commit core asks of a store: the public calls,
 * with replies that tell an id another request renewed (RENEWED) apart from
 * one that is gone (store/renewed.ts). MailboxSessionStore answers them;
 * another SessionStore is adapted (http/front-door.ts) and never says RENEWED.
 */
export interface CommitStore {
  /** `still`: a read that neither renews the sliding timestamp nor reports it renewed (the touch option). */
  load(sid: string, still?: boolean): Promise<LoadedSession | Renewed | null>;
  /** Whether the session is still live (a read, no touch). */
  alive(sid: string): Promise<boolean | Renewed>;
  put(sid: string | null, data: SessionData, options?: PutOptions): Promise<string | Renewed | null>;
  patch(sid: string, changes: SessionPatch): Promise<boolean | Renewed>;
  renew(sid: string, changes?: SessionPatch & { replace?: SessionData }): Promise<string | Renewed | null>;
  delete(sid: string): Promise<Renewed | null>;
  /**
   * revokeOtherSessions: every session of `owner` ends but `keep`, only while
   * `keep` is a live session of that owner (one transaction); null when not.
   */
  revokeOthers(owner: string, keep: string): Promise<number | null>;
}

const settled = <T>(value: T | Renewed): T | null => (value === RENEWED ? null : value);

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 256)
    throw new TypeError('a session key must be a non-empty string of at most 256 characters');
}

/** A lifetime of a session's own, seconds to the ms stored; a TypeError naming the call otherwise. */
function lifetimeMs(maxAge: unknown, where: string): number | null {
  if (maxAge === null) return null;
  const ms = typeof maxAge === 'number' ? Math.round(maxAge * 1000) : NaN;
  // At least a second: a cookie's Max-Age counts whole seconds, and 0 would delete it.
  if (!(ms >= 1000 && ms <= MAX_OWN_LIFETIME_MS)) {
    const shown =
      typeof maxAge === 'number'
        ? String(maxAge)
        : maxAge === undefined
          ? 'undefined'
          : typeof maxAge === 'string'
            ? JSON.stringify(maxAge)
            : typeof maxAge;
    throw new TypeError(
      `${where}: maxAge must be a number of seconds from 1 to ${MAX_OWN_LIFETIME_MS / 1000} (ten years), or null for the app's maxAge; got ${shown}`,
    );
  }
  return ms;
}

/** An options object's keys, checked: a typo (`maxage`) is a TypeError naming it, never an option silently ignored. */
function refuseUnknown(object: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) throw new TypeError(`${where}: unknown key ${JSON.stringify(key)}; known: ${known.join(', ')}`);
  }
}

/** An express-session cookie's time left as the whole ms that cross to the engine, within the longest lifetime. */
const remainingMs = (remaining: number | null): number | null =>
  remaining === null ? null : Math.min(Math.round(remaining), MAX_OWN_LIFETIME_MS);

/**
 * What `revokeAll` keeps: a session id, a Session (anything with its `id`;
 * one not yet saved, `id` null, keeps nothing, and is stored afterwards), or
 * null / absent for none.
 */
export type RevokeExcept = string | { readonly id: string | null } | null | undefined;

/** The id `except` names, or null; a TypeError naming `options.except` for anything else. */
function exceptId(except: unknown): string | null {
  if (except === undefined || except === null || typeof except === 'string') return except ?? null;
  if (typeof except === 'object' && 'id' in except && (typeof except.id === 'string' || except.id === null)) return except.id;
  throw new TypeError(
    `store.revokeAll(owner, options): options.except must be a session id, a Session or null, got ${Array.isArray(except) ? 'an array' : typeof except === 'object' ? 'an object without a session id' : typeof except}`,
  );
}

function requireString(sid: unknown, method: string): asserts sid is string {
  if (typeof sid !== 'string') throw new TypeError(`store.${method}(sid): sid must be a string, got ${sid === null ? 'null' : typeof sid}`);
}

/**
 * Validates on the caller's side (a TypeError before anything is sent),
 * generates the ids here (so every call can be replayed after a crash), and
 * serializes data to JSON once: a string crosses the port cheaper than an
 * object graph, and the owner stores it as it is.
 */
export class MailboxSessionStore implements SessionStore {
  readonly #mailbox: MailboxClient;
  readonly #maxBytes: number;
  /** A renewed id's digest starts with the old one's first byte (its group: a Redis Cluster's slot, engines/redis). */
  readonly #sameGroup: boolean;

  /** The store's timestamp rule: createHandler re-sends a sliding cookie only for 'relative'. */
  readonly timestamp: Timestamp;

  /** Told the live count each count() returns (the app's live_sessions figure). */
  readonly #onCount: ((live: number) => void) | null;
  /** Told of a call refused on this side before anything was sent (a session too large): the metrics count it. */
  readonly #onRefused: ((op: string, error: Error) => void) | null;

  /** @internal the replies that tell "renewed" from "gone", for the request-commit core */
  readonly commit: CommitStore;

  constructor(
    mailbox: MailboxClient,
    maxSessionBytes: number,
    timestamp: Timestamp,
    onCount?: (live: number) => void,
    onRefused?: (op: string, error: Error) => void,
    renewedIds: 'fresh' | 'same-group' = 'fresh',
  ) {
    this.#mailbox = mailbox;
    this.#sameGroup = renewedIds === 'same-group';
    this.#onCount = onCount ?? null;
    this.#onRefused = onRefused ?? null;
    this.commit = {
      load: (sid, still) => this.#load(sid, still === true),
      alive: (sid) => (isSessionId(sid) ? this.#call('alive', [sid]) : Promise.resolve(false)),
      put: (sid, data, options) => this.#put(sid, data, options),
      patch: (sid, changes) => this.#patch(sid, changes),
      renew: (sid, changes) => this.#renew(sid, changes),
      delete: (sid) => this.#delete(sid),
      revokeOthers: (owner, keep) =>
        isSessionId(keep) ? (this.#call('revokeAll', [owner, keep, true]) as Promise<number | null>) : Promise.resolve(null),
    };
    this.#maxBytes = maxSessionBytes;
    this.timestamp = timestamp;
  }

  async get(sid: string): Promise<SessionData | null> {
    requireString(sid, 'get');
    // Not one of our ids: unknown, no store call needed.
    if (!isSessionId(sid)) return null;
    const json = await this.#call('get', [sid]);
    return json === null ? null : (JSON.parse(json) as SessionData);
  }

  /** get, with the owner and whether the read renewed the timestamp: what a front door hands its Session. */
  async #load(sid: string, still: boolean): Promise<LoadedSession | Renewed | null> {
    if (!isSessionId(sid)) return null;
    const row = await this.#call('load', still ? [sid, true] : [sid]);
    return row === null || row === RENEWED
      ? row
      : { data: JSON.parse(row[0]) as SessionData, owner: row[1], touched: row[2], maxAge: row[3] === null ? null : row[3] / 1000 };
  }

  /**
   * `options.owner`: a string gives the session that owner; `null` (on a
   * live id) takes it away, in the same transaction. `options.maxAge`:
   * seconds, the session's own lifetime; `null`: the app's maxAge.
   */
  async put(sid: string | null, data: SessionData, options?: PutOptions): Promise<string | null> {
    return settled(await this.#put(sid, data, options));
  }

  async #put(sid: string | null, data: SessionData, options?: PutOptions): Promise<string | Renewed | null> {
    if (sid !== null) requireString(sid, 'put');
    assertSessionData(data);
    if (options !== undefined && (typeof options !== 'object' || options === null))
      throw new TypeError('store.put(sid, data, options): options must be { owner?, maxAge? }');
    if (options !== undefined) refuseUnknown(options, ['owner', 'maxAge'], 'store.put(sid, data, options)');
    const owner = options?.owner;
    if (owner !== undefined && owner !== null) assertOwner(owner, 'store.put(sid, data, { owner })');
    const maxAge = options?.maxAge === undefined ? undefined : lifetimeMs(options.maxAge, 'store.put(sid, data, { maxAge })');
    const json = this.#serialize(data, sid === null ? 'create' : 'put');
    if (sid === null) return this.#call('create', [newSessionId(), json, owner ?? null, maxAge ?? null]);
    if (!isSessionId(sid)) return null;
    // Owner and lifetime cross only when they change (undefined: unchanged).
    const args: Args<'put'> = maxAge !== undefined ? [sid, json, owner, maxAge] : owner !== undefined ? [sid, json, owner] : [sid, json];
    return this.#call('put', args);
  }

  async patch(sid: string, changes: SessionPatch): Promise<boolean> {
    return (await this.#patch(sid, changes)) === true;
  }

  async #patch(sid: string, changes: SessionPatch): Promise<boolean | Renewed> {
    requireString(sid, 'patch');
    const { setJson, unset, owner, maxAge } = this.#checkPatch(changes, 'patch');
    if (!isSessionId(sid)) return false;
    // The owner and the lifetime cross only when they change (undefined: unchanged).
    const args: Args<'patch'> =
      maxAge !== undefined
        ? [sid, setJson, unset, owner, maxAge]
        : owner !== undefined
          ? [sid, setJson, unset, owner]
          : [sid, setJson, unset];
    return this.#call('patch', args);
  }

  async sessionsOf(owner: string): Promise<SessionInfo[]> {
    assertOwner(owner, 'store.sessionsOf(owner)');
    const rows = await this.#call('sessionsOf', [owner]);
    return rows.map(([handle, createdAt, touchedAt, expiresAt, json]) => ({
      handle,
      createdAt,
      touchedAt,
      expiresAt,
      data: JSON.parse(json) as SessionData,
    }));
  }

  async revoke(owner: string, handle: string): Promise<boolean> {
    assertOwner(owner, 'store.revoke(owner, handle)');
    // A handle of the wrong shape names nothing: not found, and nothing said about why.
    const digest = digestFromHandle(handle);
    if (digest === null) return false;
    return this.#call('revoke', [owner, digest]);
  }

  async revokeAll(owner: string, options?: { except?: RevokeExcept }): Promise<number> {
    assertOwner(owner, 'store.revokeAll(owner, options)');
    // A plain object only: a Session passed where { except: session } was meant would otherwise revoke everything.
    if (options !== undefined && !isPlainObject(options))
      throw new TypeError(
        `store.revokeAll(owner, options): options must be { except? }, got ${typeof options === 'object' && options !== null && 'id' in options ? 'a Session (did you mean { except: session }?)' : typeof options === 'string' ? 'a string (did you mean { except: id }?)' : show(options)}`,
      );
    if (options !== undefined) refuseUnknown(options, ['except'], 'store.revokeAll(owner, options)');
    const kept = exceptId(options?.except);
    return (await this.#call('revokeAll', [owner, kept !== null && isSessionId(kept) ? kept : null])) as number;
  }

  /**
   * Moves a live session to a new id. `changes` (an extension createHandler
   * uses) are applied in the same transaction: a patch, or `replace` for the
   * whole data, and the owner — so a login is one operation.
   */
  async renew(sid: string, changes?: SessionPatch & { replace?: SessionData }): Promise<string | null> {
    return settled(await this.#renew(sid, changes));
  }

  /** The id a renew moves a session to: fresh (on a Redis Cluster, drawn until its digest's group is the old id's). */
  #nextId(sid: string): string {
    return this.#sameGroup ? newSessionIdLike(sid) : newSessionId();
  }

  async #renew(sid: string, changes?: SessionPatch & { replace?: SessionData }): Promise<string | Renewed | null> {
    requireString(sid, 'renew');
    if (changes === undefined) {
      if (!isSessionId(sid)) return null;
      return this.#call('renew', [sid, this.#nextId(sid)]);
    }
    const { setJson, unset, owner, maxAge } = this.#checkPatch(changes, 'renew');
    let replaceJson: string | null = null;
    if (changes.replace !== undefined) {
      assertSessionData(changes.replace, 'renew.replace');
      replaceJson = this.#serialize(changes.replace, 'renew');
    }
    if (!isSessionId(sid)) return null;
    const next = this.#nextId(sid);
    const args: Args<'renew'> =
      maxAge !== undefined
        ? [sid, next, setJson, unset, replaceJson, owner, maxAge]
        : owner !== undefined
          ? [sid, next, setJson, unset, replaceJson, owner]
          : [sid, next, setJson, unset, replaceJson];
    return this.#call('renew', args);
  }

  /** Validates a patch on the caller's side (a TypeError before anything is sent) and serializes it once. */
  #checkPatch(
    changes: SessionPatch,
    method: string,
  ): { setJson: string | null; unset: string[] | null; owner: string | null | undefined; maxAge: number | null | undefined } {
    if (typeof changes !== 'object' || changes === null)
      throw new TypeError(`store.${method}(sid, changes): changes must be { set?, unset?, owner?, maxAge? }`);
    refuseUnknown(
      changes,
      method === 'renew' ? ['set', 'unset', 'owner', 'maxAge', 'replace'] : ['set', 'unset', 'owner', 'maxAge'],
      `store.${method}(sid, changes)`,
    );
    const { set, unset, owner } = changes;
    if (owner !== undefined && owner !== null) assertOwner(owner, `store.${method}(sid, { owner })`);
    const maxAge = changes.maxAge === undefined ? undefined : lifetimeMs(changes.maxAge, `store.${method}(sid, { maxAge })`);
    let setJson: string | null = null;
    if (set !== undefined) {
      // Checks every value, at any depth, naming the key.
      assertSessionData(set, `${method}.set`);
      setJson = JSON.stringify(set);
    }
    if (unset !== undefined) assertKeyList(unset, `store.${method}(sid, changes): unset`);
    return { setJson, unset: unset?.length ? unset : null, owner, maxAge };
  }

  async delete(sid: string): Promise<void> {
    await this.#delete(sid);
  }

  async #delete(sid: string): Promise<Renewed | null> {
    requireString(sid, 'delete');
    if (!isSessionId(sid)) return null;
    return this.#call('delete', [sid]);
  }

  async count(): Promise<number> {
    const live = await this.#call('count', []);
    this.#onCount?.(live);
    return live;
  }

  // ── The express-session drop-in store: keys chosen by express-session (any
  // string up to 256 characters; hashed like our ids), whole objects. ──────

  /** @internal */
  async getKey(key: string): Promise<SessionData | null> {
    checkKey(key);
    const json = await this.#call('get', [key]);
    return json === null ? null : (JSON.parse(json) as SessionData);
  }

  /**
   * @internal Create or replace (express-session's `set`). `remaining`: the
   * cookie's expiry in ms from now (null: the app's maxAge); one already
   * past deletes the session, as the stores users migrate from do.
   */
  async upsertKey(key: string, data: SessionData, remaining: number | null = null): Promise<void> {
    checkKey(key);
    assertSessionData(data);
    if (remaining !== null && remaining <= 0) {
      await this.#call('delete', [key]);
      return;
    }
    const json = this.#serialize(data, 'upsert');
    await this.#call('upsert', [key, json, remainingMs(remaining)]);
  }

  /**
   * @internal express-session's `touch`: the session's expiry becomes its
   * cookie's (`remaining` ms from now), and the stored `cookie` the one given
   * (JSON of at most 1 KiB; omitted when larger).
   */
  async touchKey(key: string, remaining: number | null, cookie: JsonValue = null): Promise<void> {
    checkKey(key);
    if (remaining !== null && remaining <= 0) return;
    let cookieJson: string | null = null;
    if (cookie !== null && typeof cookie === 'object' && !Array.isArray(cookie)) {
      assertSessionData(cookie as SessionData, 'touch.cookie');
      cookieJson = JSON.stringify(cookie);
      // A cookie is a few attributes: anything larger, or with a U+0000
      // (which PostgreSQL's jsonb refuses), is not worth a failed touch.
      if (cookieJson.length > 1024 || cookieJson.includes('\\u0000')) cookieJson = null;
    }
    await this.#call('touchKey', [key, remainingMs(remaining), cookieJson]);
  }

  /** @internal */
  async deleteKey(key: string): Promise<void> {
    checkKey(key);
    await this.#call('delete', [key]);
  }

  /** @internal Every session deleted. */
  async clearAll(): Promise<void> {
    await this.#call('clear', []);
  }

  /** @internal Every live session's data. */
  async allData(): Promise<SessionData[]> {
    const rows = await this.#call('all', []);
    return rows.map((json) => JSON.parse(json) as SessionData);
  }

  /** @internal Deletes at most `limit` dead sessions in the store actor (for ':memory:' stores). */
  sweepBatch(limit: number): Promise<number> {
    return this.#call('sweep', [limit]);
  }

  /** One call to the store actor, traced on the supervised-sessions:store channel (src/diagnostics.ts). */
  #call<K extends Op>(op: K, args: Args<K>): Promise<Reply<K>> {
    return traced(op, () => this.#mailbox.call(op, args) as Promise<Reply<K>>);
  }

  /** The data as JSON; refused here already (and counted as a call of `op`) when it is certainly too large; the owner checks again. */
  #serialize(data: SessionData, op: string): string {
    const json = JSON.stringify(data);
    if (json.length > this.#maxBytes && Buffer.byteLength(json, 'utf8') > this.#maxBytes) {
      const error = new SessionTooLargeError(
        `the session is ${Buffer.byteLength(json, 'utf8')} bytes serialized, over maxSessionBytes (${this.#maxBytes}); nothing was stored`,
      );
      if (this.#onRefused) {
        try {
          this.#onRefused(op, error);
        } catch {
          /* a hook never changes the call's outcome */
        }
      }
      throw error;
    }
    return json;
  }
}
