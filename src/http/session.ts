import { assertOwner, handleOf } from '../store/ids.ts';
import { COOKIE_CAP_SECONDS } from '../validation.ts';
import { assertJsonValue, type JsonValue, type SessionData } from '../store/json-value.ts';

/** What a change is, for the commit to decide whether it may still be made. */
/** `lifetime`: setMaxAge, a data change whose cookie must still reach the client. */
/** `revoke`: revokeOtherSessions, which needs no cookie. */
export type ChangeKind = 'data' | 'lifetime' | 'renew' | 'drop' | 'revoke';

/** @internal The request's commit, told before every change; it throws when the change can no longer be stored. */
export interface SessionHost {
  change(kind: ChangeKind, session: Session): void;
}

/** @internal Changes not yet handed to the store, taken in one piece by the commit. */
export interface PendingWork {
  drop: boolean;
  renew: boolean;
  /** `clear()` was called: the whole data is stored (`put`), not a patch. */
  cleared: boolean;
  set: SessionData;
  unset: string[];
  /** The whole data as of this moment, for a `put` (a new session, or after `clear()`); null for a patch. */
  data: SessionData | null;
  /** setOwner() was called: the owner to store (null: none); undefined: unchanged. */
  owner?: string | null;
  /** setMaxAge() was called: the session's own lifetime in seconds (null: the app's maxAge); undefined: unchanged. */
  maxAge?: number | null;
  /** revokeOtherSessions() was called: every other session of the owner ends once this one is stored. */
  revokeOthers: boolean;
}

/**
 * The handler's view of its session. It records which keys changed, so that
 * the commit of an existing session is a patch of just those keys: two
 * parallel requests of one client that change different keys both keep them.
 *
 * Values are checked at `set` (plain JSON only). A nested object changed in
 * place after `get` is not seen as a change: `set` it again.
 */
export class Session {
  #id: string | null;
  readonly #isNew: boolean;
  // A Map, not an object: keys such as "__proto__" stay plain data.
  #data: Map<string, JsonValue>;
  // Pending since the last take(): changes made while a commit is in flight
  // collect here and are stored by the commit's next round.
  #changed = new Set<string>();
  #cleared = false;
  #renew = false;
  #drop = false;
  /** drop() was taken by the commit: every later change is ignored (the session is gone). */
  #dropped = false;
  #host: SessionHost | null;
  #owner: string | null;
  #ownerChanged = false;
  /** The owner the store holds for this session, as far as the commit knows. */
  #storedOwner: string | null;
  #revokeOthers = false;
  #maxAge: number | null;
  #maxAgeChanged = false;
  /** The lifetime the store holds for this session, as far as the commit knows (its cookie's Max-Age). */
  #storedMaxAge: number | null;
  #handle: string | null = null;

  /** @internal created by createHandler; `host` is told of every change before it is made. */
  constructor(
    id: string | null,
    data: SessionData | null,
    host: SessionHost | null = null,
    owner: string | null = null,
    maxAge: number | null = null,
  ) {
    this.#host = host;
    this.#owner = owner;
    this.#storedOwner = owner;
    this.#maxAge = maxAge;
    this.#storedMaxAge = maxAge;
    this.#id = id;
    this.#isNew = id === null;
    this.#data = new Map(data ? Object.entries(data) : []);
  }

  /** The session id, or null until a new session is saved. */
  get id(): string | null {
    return this.#id;
  }

  /** True when no live session came with the request. */
  get isNew(): boolean {
    return this.#isNew;
  }

  /** The user this session belongs to (its owner), or null. */
  get owner(): string | null {
    return this.#owner;
  }

  /**
   * Gives the session an owner (a user id), or takes it away with null;
   * committed like a change. At login, call it together with renew().
   */
  setOwner(owner: string | null): void {
    if (owner !== null) assertOwner(owner, 'session.setOwner(owner)');
    this.#host?.change('data', this);
    this.#owner = owner;
    this.#ownerChanged = true;
  }

  /**
   * "Log out other devices": once this session is stored (after its renew(),
   * so under its new id; a new session once it has one), every other session
   * of its owner ends, in the same commit, before the response completes.
   * With drop(): every session of the owner ends ("log out everywhere").
   * Works whatever the state of the session — a fresh device at its first
   * login, or a known one. The owner is the one the store holds for this
   * session once the changes made before it are stored (so at a login call
   * setOwner() before it, or before the response starts streaming); a session
   * without one has no other sessions to end. The store checks, in the same
   * transaction, that this session is still a live session of that owner:
   * one revoked or renewed elsewhere meanwhile ends nothing. Like drop() and
   * renew(), it applies even when the response is an error page or the
   * handler throws — unless that page discards a setOwner() of the request.
   */
  revokeOtherSessions(): void {
    this.#host?.change('revoke', this);
    this.#revokeOthers = true;
  }

  /** This session's own lifetime in seconds ("remember me"), or null for the app's maxAge. */
  get maxAge(): number | null {
    return this.#maxAge;
  }

  /**
   * Gives this session a lifetime of its own, in seconds, in place of the
   * app's maxAge ("remember me" for 30 days, or 5 minutes for a sensitive
   * step); null goes back to the app's. Committed like a change; the cookie
   * then carries it as Max-Age (a persistent cookie, even when cookie.maxAge
   * is unset). maxLifetime, when set, still caps the session.
   */
  setMaxAge(seconds: number | null): void {
    if (seconds !== null && (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 1 || seconds > COOKIE_CAP_SECONDS)) {
      const shown = typeof seconds === 'number' ? String(seconds) : typeof seconds === 'string' ? JSON.stringify(seconds) : String(seconds);
      const hint = typeof seconds === 'number' && seconds > COOKIE_CAP_SECONDS ? ' (milliseconds? it counts seconds)' : '';
      throw new TypeError(
        `session.setMaxAge(seconds): expected a number of seconds from 1 to ${COOKIE_CAP_SECONDS} (400 days, browsers' cap on a cookie) or null, got ${shown}${hint}`,
      );
    }
    this.#host?.change('lifetime', this);
    this.#maxAge = seconds;
    this.#maxAgeChanged = true;
  }

  /**
   * This session's handle (as in store.sessionsOf), to mark "this device" in
   * a list; null until it is saved, and while a renew() or drop() is pending
   * (the id it would name is about to change or go).
   */
  get handle(): string | null {
    if (this.#id === null || this.#renew || this.dropped) return null;
    this.#handle ??= handleOf(this.#id);
    return this.#handle;
  }

  // biome-ignore lint/suspicious/noExplicitAny: the public type of a stored value, as express-session's req.session gives it (the store checks it is JSON)
  get(key: string): any {
    return this.#data.get(key);
  }

  has(key: string): boolean {
    return this.#data.has(key);
  }

  set(key: string, value: JsonValue): this {
    if (typeof key !== 'string') throw new TypeError(`session.set(key, value): key must be a string, got ${typeof key}`);
    assertJsonValue(value, key);
    this.#host?.change('data', this);
    this.#data.set(key, value);
    this.#changed.add(key);
    return this;
  }

  delete(key: string): boolean {
    if (!this.#data.has(key)) return false;
    this.#host?.change('data', this);
    this.#data.delete(key);
    this.#changed.add(key);
    return true;
  }

  /** Removes every key; the commit stores `{}` (plus what is set afterwards). */
  clear(): void {
    this.#host?.change('data', this);
    this.#data.clear();
    this.#changed.clear();
    this.#cleared = true;
  }

  /** A new id at commit, data kept, old id deleted: the defence against session fixation. */
  renew(): void {
    this.#host?.change('renew', this);
    this.#renew = true;
  }

  /** Deleted from the store at commit, and the cookie expired. */
  drop(): void {
    this.#host?.change('drop', this);
    this.#drop = true;
  }

  toJSON(): SessionData {
    return Object.fromEntries(this.#data) as SessionData;
  }

  /** @internal True when the store has not yet been given every change. */
  get pending(): boolean {
    if (this.#dropped) return false;
    return (
      this.#drop ||
      this.#renew ||
      this.#cleared ||
      this.#ownerChanged ||
      this.#maxAgeChanged ||
      this.#revokeOthers ||
      this.#changed.size > 0
    );
  }

  /** @internal A drop(), renew() or revokeOtherSessions() is pending: it applies whatever the response's status. */
  get idChangePending(): boolean {
    return !this.#dropped && (this.#drop || this.#renew || this.#revokeOthers);
  }

  /** @internal True when a change was ever asked for (dropped sessions included). */
  get dropped(): boolean {
    return this.#drop || this.#dropped;
  }

  /** @internal Hands the pending changes to the commit and starts a new pending set. */
  take(): PendingWork | null {
    if (!this.pending) return null;
    const set: SessionData = {};
    const unset: string[] = [];
    for (const key of this.#changed) {
      // defineProperty: a key named "__proto__" stays data.
      if (this.#data.has(key))
        Object.defineProperty(set, key, { value: this.#data.get(key), enumerable: true, writable: true, configurable: true });
      else unset.push(key);
    }
    // The whole data only where a put needs it: a patch sends the changed keys alone.
    const data = this.#cleared || this.#id === null ? this.toJSON() : null;
    const work: PendingWork = {
      drop: this.#drop,
      renew: this.#renew,
      cleared: this.#cleared,
      set,
      unset,
      data,
      revokeOthers: this.#revokeOthers,
    };
    if (this.#ownerChanged) work.owner = this.#owner;
    if (this.#maxAgeChanged) work.maxAge = this.#maxAge;
    this.#ownerChanged = false;
    this.#maxAgeChanged = false;
    this.#changed = new Set();
    this.#cleared = false;
    this.#renew = false;
    this.#revokeOthers = false;
    if (this.#drop) this.#dropped = true;
    return work;
  }

  /** @internal The lifetime the store holds (an error page's commit stores none of setMaxAge's). */
  get storedMaxAge(): number | null {
    return this.#storedMaxAge;
  }

  /** @internal The commit stored this lifetime (undefined: it did not change). */
  maxAgeStored(maxAge: number | null | undefined): void {
    if (maxAge !== undefined) this.#storedMaxAge = maxAge;
  }

  /** @internal The owner the store holds (an error page's commit stores no setOwner). */
  get storedOwner(): string | null {
    return this.#storedOwner;
  }

  /** @internal The commit stored this owner (undefined: it did not change). */
  ownerStored(owner: string | null | undefined): void {
    if (owner !== undefined) this.#storedOwner = owner;
  }

  /** @internal The id the session is now stored under (null once dropped or gone). */
  committed(id: string | null): void {
    if (id !== this.#id) this.#handle = null;
    this.#id = id;
  }
}
