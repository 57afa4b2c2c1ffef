import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { SessionTooLargeError, StoreUnavailableError } from '../../errors.ts';
import type { Outcome, Request } from '../../runtime/mailbox-server.ts';
import {
  expiresAt,
  idleExpiry,
  isLive,
  liveThresholds,
  touchAfterFor,
  type ExpiryPolicy,
  type LiveThresholds,
} from '../../store/expiry.ts';
import { digest, handleFromDigest } from '../../store/ids.ts';
import { inTransaction } from './connection.ts';
import { Clock } from '../../runtime/clock.ts';
import { liveArgs, liveSqlite } from './live.ts';
import { quoted } from './schema.ts';
import { sweepBatch } from './sweep.ts';
import { ACTOR, type WriteGate } from './write-gate.ts';
import { ARRIVAL_GRACE_MS, RENEWED, type Renewed } from '../../store/renewed.ts';
import { WRITES, type Op, type RenewWithChanges, type Reply, type StoreCall } from '../../store/protocol.ts';

export interface EngineOptions {
  table: string;
  policy: ExpiryPolicy;
  maxSessionBytes: number;
  /** Shared with the cleaner of this process, to hand the write lock over without SQLite's sleeps. */
  gate?: WriteGate;
  /** maxSessionsPerOwner: null for no cap. */
  maxPerOwner?: number | null;
  /** The app's clock (runtime/clock.ts); real time when absent. */
  clock?: Clock;
}

interface Row {
  data: string;
  created_at: number;
  touched_at: number;
  owner: string | null;
  /** Not null: the id was renewed (store/renewed.ts); the row is a tombstone. */
  renewed_to: Uint8Array | null;
  /** The session's own lifetime in ms; null: the app's maxAge. */
  max_age: number | null;
}

/**
 * renew's wire arguments: [sid, next, set JSON, unset keys, replacing JSON,
 * owner?, maxAge?] (undefined: unchanged).
 */
type RenewArgs = RenewWithChanges;

// (touchKey, express-session's touch, is a read that may owe a write, as a get's touch is: not in WRITES.)

/**
 * The owner statements, each served by the owner index (owner, touched_at)
 * (test/owners.test.ts checks their query plans).
 */
export function ownerStatements(table: string, policy: ExpiryPolicy): { list: string; revoke: string; revokeAll: string; cap: string } {
  const t = quoted(table);
  const live = liveThresholds(policy, 0);
  return {
    // Newest first, straight from the index order.
    list: `SELECT sid_hash, data, created_at, touched_at, max_age FROM ${t} WHERE owner = ? AND ${liveSqlite(live)} ORDER BY touched_at DESC`,
    // The session the handle names, under whatever id it was renewed to
    // since (the tombstones' chain, store/renewed.ts), if it is the owner's.
    revoke: `WITH RECURSIVE chain(h, n) AS (
        SELECT sid_hash, renewed_to FROM ${t} WHERE sid_hash = ?
        UNION SELECT s.sid_hash, s.renewed_to FROM ${t} AS s JOIN chain ON s.sid_hash = chain.n)
      DELETE FROM ${t} WHERE sid_hash IN (SELECT h FROM chain WHERE n IS NULL) AND owner = ? RETURNING created_at, touched_at, max_age`,
    revokeAll: `DELETE FROM ${t} WHERE owner = ? AND sid_hash IS NOT ? RETURNING created_at, touched_at, max_age`,
    // maxSessionsPerOwner: keep the session just given the owner and the
    // (cap - 1) most recently used others; the rest of the owner's rows go.
    // Parameters in order, plain `?` (Node 22's node:sqlite binds no numbered
    // ones): owner, digest, owner, digest, liveArgs, the number kept.
    cap: `DELETE FROM ${t} WHERE owner = ? AND sid_hash != ? AND sid_hash NOT IN (
      SELECT sid_hash FROM ${t} WHERE owner = ? AND sid_hash != ? AND ${liveSqlite(live)}
      ORDER BY touched_at DESC LIMIT ?)`,
  };
}

/**
 * The store's storage engine on node:sqlite: the narrow interface the store
 * owner drives (`runBatch`), so another engine can sit behind the same actor.
 * Every operation is idempotent under replay: ids come from the caller.
 */
export class SqliteEngine {
  readonly #db: DatabaseSync;
  readonly #table: string;
  readonly #policy: ExpiryPolicy;
  readonly #maxBytes: number;
  readonly #gate: WriteGate | null;
  readonly #maxPerOwner: number | null;
  /** Touches owed by a read-only batch, applied after it in a short write transaction. */
  #touches: Buffer[] = [];
  /** When the batch whose touches are owed read its sessions: the touches are stamped with it. */
  #readAt = 0;
  /** express-session touches owed the same way: [touched_at, max_age, cookie JSON, digest]. */
  #keyTouches: Array<[number, number | null, string | null, Buffer]> = [];
  readonly #select: StatementSync;
  readonly #touch: StatementSync;
  readonly #insert: StatementSync;
  readonly #create: StatementSync;
  readonly #update: StatementSync;
  readonly #updateData: StatementSync;
  readonly #setMaxAge: StatementSync;
  readonly #touchKey: StatementSync;
  readonly #delete: StatementSync;
  readonly #retire: StatementSync;
  readonly #count: StatementSync;
  readonly #begin: StatementSync;
  readonly #beginRead: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  readonly #savepoint: StatementSync;
  readonly #release: StatementSync;
  readonly #rollbackTo: StatementSync;
  readonly #setOwner: StatementSync;
  readonly #listOwner: StatementSync;
  readonly #revoke: StatementSync;
  readonly #revokeAll: StatementSync;
  readonly #cap: StatementSync;
  readonly #clear: StatementSync;
  readonly #all: StatementSync;

  readonly #clock: Clock;

  constructor(db: DatabaseSync, options: EngineOptions) {
    this.#db = db;
    this.#table = options.table;
    this.#policy = options.policy;
    this.#maxBytes = options.maxSessionBytes;
    this.#gate = options.gate ?? null;
    this.#maxPerOwner = options.maxPerOwner ?? null;
    this.#clock = options.clock ?? new Clock();
    const t = quoted(options.table);
    // The liveness rule (expiry.ts) in SQL: two parameters, liveArgs().
    const L = liveSqlite(liveThresholds(options.policy, 0));
    // Statements are prepared once, for the life of the connection.
    this.#select = db.prepare(`SELECT data, created_at, touched_at, owner, renewed_to, max_age FROM ${t} WHERE sid_hash = ?`);
    // Never a tombstone's: its touched_at is the time of its renew (renewed.ts).
    this.#touch = db.prepare(`UPDATE ${t} SET touched_at = ? WHERE sid_hash = ? AND renewed_to IS NULL`);
    this.#insert = db.prepare(`INSERT INTO ${t} (sid_hash, data, created_at, touched_at, owner, max_age) VALUES (?, ?, ?, ?, ?, ?)`);
    // A replayed create (its reply lost in a crash) finds its own row: same id, same data.
    this.#create = db.prepare(`INSERT INTO ${t} (sid_hash, data, created_at, touched_at, owner, max_age) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (sid_hash) DO UPDATE SET data = excluded.data, owner = excluded.owner, max_age = excluded.max_age`);
    this.#setOwner = db.prepare(`UPDATE ${t} SET owner = ? WHERE sid_hash = ?`);
    const owners = ownerStatements(options.table, options.policy);
    this.#listOwner = db.prepare(owners.list);
    this.#revoke = db.prepare(owners.revoke);
    this.#revokeAll = db.prepare(owners.revokeAll);
    this.#cap = db.prepare(owners.cap);
    this.#clear = db.prepare(`DELETE FROM ${t}`);
    this.#all = db.prepare(`SELECT data FROM ${t} WHERE ${L} AND renewed_to IS NULL`);
    this.#update = db.prepare(`UPDATE ${t} SET data = ?, touched_at = ? WHERE sid_hash = ? AND ${L} AND renewed_to IS NULL`);
    this.#updateData = db.prepare(`UPDATE ${t} SET data = ?, touched_at = ? WHERE sid_hash = ?`);
    this.#setMaxAge = db.prepare(`UPDATE ${t} SET max_age = ? WHERE sid_hash = ?`);
    // express-session's touch: the expiry its cookie now has, and the cookie in the data.
    this.#touchKey = db.prepare(`UPDATE ${t} SET touched_at = ?, max_age = ?,
      data = CASE WHEN ? IS NULL THEN data ELSE json_set(data, '$.cookie', json(?)) END WHERE sid_hash = ? AND renewed_to IS NULL`);
    // A tombstone is not deleted by its old id: it keeps telling late requests "renewed".
    this.#delete = db.prepare(`DELETE FROM ${t} WHERE sid_hash = ? AND renewed_to IS NULL`);
    // The old id of a renew becomes a tombstone: no data, no owner, the new
    // id's digest, and the time of the renew as touched_at ('relative': it is
    // remembered as long as the old session would have lived from then;
    // 'fixed' ages from creation alone).
    this.#retire = db.prepare(`UPDATE ${t} SET data = '{}', owner = NULL, renewed_to = ?, touched_at = ? WHERE sid_hash = ?`);
    this.#count = db.prepare(`SELECT count(*) AS n FROM ${t} WHERE ${L} AND renewed_to IS NULL`);
    // IMMEDIATE takes the write lock up front: a deferred transaction that
    // upgrades after another process wrote fails with SQLITE_BUSY_SNAPSHOT,
    // which busy_timeout cannot wait out.
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#beginRead = db.prepare('BEGIN');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#savepoint = db.prepare('SAVEPOINT renew');
    this.#release = db.prepare('RELEASE renew');
    this.#rollbackTo = db.prepare('ROLLBACK TO renew');
  }

  /**
   * Group commit: the requests of one mailbox batch run in one transaction
   * and their replies go out after COMMIT, so 64 concurrent writes cost one
   * commit, not 64. A request that fails (bad data, too large) fails alone.
   */
  runBatch(requests: Request[]): Outcome[] {
    const now = this.#clock.now();
    this.#readAt = now;
    const live = liveThresholds(this.#policy, now);
    // A batch of reads takes no write lock: WAL readers never wait for the
    // cleaner or another process. The touches it owes follow it.
    const wantsWrite = requests.some(({ op }) => WRITES.has(op as Op));
    let canWrite = wantsWrite;
    let open = false;
    let writeError: unknown = null;
    let gated = false;
    if (wantsWrite) {
      gated = this.#gate?.acquireForActor() ?? false;
      try {
        this.#begin.run();
        open = true;
      } catch (error) {
        // No write lock (read-only file, a lock held past busy_timeout):
        // the reads of this batch can still be served, without touches.
        canWrite = false;
        writeError = error;
      }
    }
    if (!canWrite) {
      this.#beginRead.run();
      open = true;
    }

    const outcomes: Outcome[] = new Array(requests.length);
    const written: number[] = [];
    try {
      for (let i = 0; i < requests.length; i++) {
        // The mailbox carries the store protocol's calls (store/protocol.ts).
        const call = requests[i] as StoreCall;
        const op = call.op;
        if (!canWrite && WRITES.has(op)) {
          outcomes[i] = { ok: false, error: unavailable(writeError) };
          continue;
        }
        try {
          outcomes[i] = { ok: true, value: this.#run(call, now, live, canWrite, !wantsWrite) };
          if (WRITES.has(op)) written.push(i);
        } catch (error) {
          outcomes[i] = { ok: false, error };
          if (!inTransaction(this.#db)) {
            // SQLite rolled the whole transaction back (SQLITE_FULL, IOERR...):
            // the writes this batch made before are gone too.
            writeError = error;
            canWrite = false;
            open = false;
            for (const index of written) outcomes[index] = { ok: false, error: unavailable(error) };
            written.length = 0;
          }
        }
      }
      if (open) {
        try {
          this.#commit.run();
        } catch (error) {
          try {
            this.#rollback.run();
          } catch {
            /* already rolled back */
          }
          for (const index of written) outcomes[index] = { ok: false, error: unavailable(error) };
        }
      }
    } finally {
      if (gated) this.#gate!.release(ACTOR);
    }
    return outcomes;
  }

  /** After the replies of a batch went out: the touches its reads owe. */
  afterReplies(): void {
    // Stamped with the read's time, not the time this runs: the reply said
    // the session was renewed as of the read (and a clock moved on between
    // the reply and this write must not stretch it).
    if (this.#touches.length > 0 || this.#keyTouches.length > 0) this.#applyTouches(this.#readAt);
  }

  /**
   * The touches owed by a read-only batch. Best effort: a touch that cannot
   * be written now (lock, read-only file) only lets that session expire as
   * if it had not been read, which the reply already allowed for.
   */
  #applyTouches(now: number): void {
    const touches = this.#touches;
    const keyTouches = this.#keyTouches;
    this.#touches = [];
    this.#keyTouches = [];
    const gated = this.#gate?.acquireForActor() ?? false;
    try {
      this.#begin.run();
      for (const hash of touches) this.#touch.run(now, hash);
      // Only a session still live and not renewed meanwhile (the batch's replies went out first).
      for (const [touched, maxAge, cookie, hash] of keyTouches) this.#touchKey.run(touched, maxAge, cookie, cookie, hash);
      this.#commit.run();
    } catch {
      if (inTransaction(this.#db)) this.#rollback.run();
    } finally {
      if (gated) this.#gate!.release(ACTOR);
    }
  }

  #run(call: StoreCall, now: number, live: LiveThresholds, canWrite: boolean, touchLater: boolean): Reply<Op> {
    switch (call.op) {
      case 'get': {
        const row = this.#get(call.args[0], now, live, canWrite, touchLater);
        return row === null || row === RENEWED ? null : row.data;
      }
      // [data, owner, whether this read renewed the sliding timestamp, own lifetime in ms], or RENEWED.
      case 'load': {
        const still = call.args[1] === true;
        const row = this.#get(call.args[0], now, live, canWrite && !still, touchLater && !still);
        return row === null || row === RENEWED ? row : [row.data, row.owner, !still && this.#touchDue(row, now), row.max_age];
      }
      case 'alive': {
        const row = this.#find(digest(call.args[0]), live);
        return row === null ? false : row === RENEWED ? RENEWED : true;
      }
      case 'create':
        return this.#createSession(call.args[0], call.args[1], call.args[2], call.args[3] ?? null, now, live);
      case 'put':
        return this.#put(call.args[0], call.args[1], call.args[2], call.args[3], now, live);
      case 'patch':
        return this.#patch(call.args[0], call.args[1], call.args[2], call.args[3], call.args[4], now, live);
      case 'sessionsOf':
        return this.#sessionsOf(call.args[0], live);
      // The express-session drop-in store: keys it chose, upserted whole.
      case 'upsert':
        return this.#upsert(call.args[0], call.args[1], call.args[2], now, live);
      case 'touchKey':
        return this.#touchKeyed(call.args[0], call.args[1], call.args[2] ?? null, now, live, canWrite, touchLater);
      case 'clear':
        this.#clear.run();
        return null;
      case 'all':
        return (this.#all.all(...liveArgs(live)) as Array<{ data: string }>).map((row) => row.data);
      case 'revoke':
        return this.#revokeOne(call.args[0], call.args[1], live);
      case 'revokeAll': {
        const [owner, except, guarded = false] = call.args;
        // revokeOtherSessions: only for a session still live and still the owner's (one transaction).
        if (guarded && (except === null || this.#live(digest(except), live)?.owner !== owner)) return null;
        return this.#revokeAllOf(owner, except, live);
      }
      case 'renew':
        return this.#renew(call.args[0], call.args[1], call.args.length > 2 ? (call.args as RenewArgs) : null, now, live);
      case 'delete': {
        const hash = digest(call.args[0]);
        if (Number(this.#delete.run(hash).changes) === 1) return null;
        return this.#find(hash, live) === RENEWED ? RENEWED : null;
      }
      case 'count':
        return Number((this.#count.get(...liveArgs(live)) as { n: number }).n);
      case 'sweep':
        return sweepBatch(this.#db, this.#table, live, call.args[0], { transaction: false });
      default:
        throw new TypeError(`unknown store operation "${(call as { op: unknown }).op}"`);
    }
  }

  #checkSize(json: string): void {
    // The cheap bound first: a UTF-8 string is at most 3 bytes per UTF-16 unit.
    if (json.length * 3 <= this.#maxBytes) return;
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.#maxBytes) {
      throw new SessionTooLargeError(
        `the session is ${bytes} bytes serialized, over maxSessionBytes (${this.#maxBytes}); nothing was stored`,
      );
    }
  }

  /** The live session under `hash`; RENEWED for a live tombstone; null when unknown or dead. */
  #find(hash: Buffer, live: LiveThresholds): Row | Renewed | null {
    const row = this.#select.get(hash) as Row | undefined;
    if (!row || !isLive(row, live)) return null;
    return row.renewed_to === null ? row : RENEWED;
  }

  #live(hash: Buffer, live: LiveThresholds): Row | null {
    const row = this.#find(hash, live);
    return row === RENEWED ? null : row;
  }

  /** Throttled touch: a read renews the sliding timestamp only when it is older than touchAfter (expiry.ts, touchAfterFor). */
  #touchDue(row: Row, now: number): boolean {
    return this.#policy.timestamp === 'relative' && now - row.touched_at > touchAfterFor(this.#policy, row.max_age);
  }

  /** A patch's touch: as a read's, under either timestamp rule (with 'fixed' the time of the last write, throttled). */
  #writeTouchDue(row: Row, now: number): boolean {
    return now - row.touched_at > touchAfterFor(this.#policy, row.max_age);
  }

  /** A read of an arriving request's id: a tombstone is RENEWED only within ARRIVAL_GRACE_MS of its renew (renewed.ts). */
  #get(sid: string, now: number, live: LiveThresholds, canWrite: boolean, touchLater: boolean): Row | Renewed | null {
    const hash = digest(sid);
    const row = this.#select.get(hash) as Row | undefined;
    if (!row || !isLive(row, live)) return null;
    if (row.renewed_to !== null) return now - row.touched_at < ARRIVAL_GRACE_MS ? RENEWED : null;
    // A read is not a write (the session may expire up to touchAfter early).
    if (this.#touchDue(row, now)) {
      if (canWrite) this.#touch.run(now, hash);
      else if (touchLater) this.#touches.push(hash);
    }
    return row;
  }

  #createSession(sid: string, json: string, owner: string | null, maxAge: number | null, now: number, live: LiveThresholds): string {
    this.#checkSize(json);
    const hash = digest(sid);
    this.#create.run(hash, json, now, now, owner, maxAge);
    if (owner !== null) this.#applyCap(owner, hash, live);
    return sid;
  }

  /** `owner`, `maxAge`: undefined leaves them as they are. */
  #put(
    sid: string,
    json: string,
    owner: string | null | undefined,
    maxAge: number | null | undefined,
    now: number,
    live: LiveThresholds,
  ): string | Renewed | null {
    this.#checkSize(json);
    const hash = digest(sid);
    // Unknown or dead: nothing stored, a deleted session is never brought back.
    const { changes } = this.#update.run(json, now, hash, ...liveArgs(live));
    if (Number(changes) !== 1) return this.#find(hash, live) === RENEWED ? RENEWED : null;
    if (maxAge !== undefined) this.#setMaxAge.run(maxAge, hash);
    if (owner !== undefined) this.#giveOwner(hash, owner, live);
    return sid;
  }

  /** Sets (or clears) a session's owner, and applies the cap in the same transaction. */
  #giveOwner(hash: Buffer, owner: string | null, live: LiveThresholds): void {
    this.#setOwner.run(owner, hash);
    if (owner !== null) this.#applyCap(owner, hash, live);
  }

  /** The stored JSON with `set` merged in and `unset` removed, size-checked. */
  #merged(json: string, set: string | null, unset: string[] | null): string {
    const data = JSON.parse(json) as Record<string, unknown>;
    if (set) {
      const changes = JSON.parse(set) as Record<string, unknown>;
      // defineProperty, not assignment: a key named "__proto__" is stored as
      // data and never reaches the prototype chain.
      for (const key of Object.keys(changes)) {
        Object.defineProperty(data, key, { value: changes[key], enumerable: true, writable: true, configurable: true });
      }
    }
    if (unset) for (const key of unset) delete data[key];
    const merged = JSON.stringify(data);
    this.#checkSize(merged);
    return merged;
  }

  /**
   * express-session's `set`: create or replace under the key it chose. A
   * dead row under that key is replaced whole (a new creation time), never
   * revived with its old one.
   */
  #upsert(key: string, json: string, remaining: number | null, now: number, live: LiveThresholds): boolean {
    this.#checkSize(json);
    const hash = digest(key);
    const row = this.#live(hash, live);
    if (row !== null) {
      this.#updateData.run(json, now, hash);
      this.#setMaxAge.run(this.#ownLifetime(remaining, row.created_at, now), hash);
      return true;
    }
    // A dead row under that key is never revived (a late save of an expired
    // session, resave: true): nothing is stored, as with put.
    if (this.#select.get(hash) !== undefined) return false;
    this.#insert.run(hash, json, now, now, null, remaining);
    return true;
  }

  /**
   * A session's own lifetime for an expiry `remaining` ms from now (the
   * express-session cookie's): its age counts from now ('relative', the
   * write renews the timestamp) or from its creation ('fixed').
   */
  #ownLifetime(remaining: number | null, createdAt: number, now: number): number | null {
    if (remaining === null) return null;
    return this.#policy.timestamp === 'relative' ? remaining : remaining + (now - createdAt);
  }

  /**
   * express-session's touch: the session's expiry becomes its cookie's (and
   * the stored cookie the one given), written only when it moved by more
   * than the touch throttle (no write per request); false when the session
   * is gone.
   */
  #touchKeyed(
    key: string,
    remaining: number | null,
    cookie: string | null,
    now: number,
    live: LiveThresholds,
    canWrite: boolean,
    touchLater: boolean,
  ): boolean {
    const hash = digest(key);
    const row = this.#live(hash, live);
    if (row === null) return false;
    const maxAge = this.#ownLifetime(remaining, row.created_at, now);
    const touched = this.#policy.timestamp === 'relative' ? now : row.touched_at;
    const moved = idleExpiry(this.#policy, { ...row, touched_at: touched, max_age: maxAge }) - idleExpiry(this.#policy, row);
    if (Math.abs(moved) < touchAfterFor(this.#policy, maxAge)) return true;
    // A read that owes a write, as a get's touch: inline in a write batch, after the replies of a read batch.
    if (canWrite) this.#touchKey.run(touched, maxAge, cookie, cookie, hash);
    else if (touchLater) this.#keyTouches.push([touched, maxAge, cookie, hash]);
    return true;
  }

  /** maxSessionsPerOwner, in the transaction that gave `owner` the session `hash`. */
  #applyCap(owner: string, hash: Buffer, live: LiveThresholds): void {
    if (this.#maxPerOwner === null) return;
    this.#cap.run(owner, hash, owner, hash, ...liveArgs(live), this.#maxPerOwner - 1);
  }

  #sessionsOf(owner: string, live: LiveThresholds): Array<[string, number, number, number, string]> {
    const rows = this.#listOwner.all(owner, ...liveArgs(live)) as Array<{
      sid_hash: Uint8Array;
      data: string;
      created_at: number;
      touched_at: number;
      max_age: number | null;
    }>;
    return rows.map((row) => [handleFromDigest(row.sid_hash), row.created_at, row.touched_at, expiresAt(this.#policy, row), row.data]);
  }

  /** True when a live session of `owner` was deleted; a session of another owner is left alone. */
  #revokeOne(owner: string, hash: Uint8Array, live: LiveThresholds): boolean {
    const rows = this.#revoke.all(hash, owner) as Array<{ created_at: number; touched_at: number; max_age: number | null }>;
    return rows.some((row) => isLive(row, live));
  }

  /** Deletes every session of `owner` but `except`; resolves with how many live ones went. */
  #revokeAllOf(owner: string, except: string | null, live: LiveThresholds): number {
    const rows = this.#revokeAll.all(owner, except === null ? null : digest(except)) as Array<{
      created_at: number;
      touched_at: number;
      max_age: number | null;
    }>;
    return rows.filter((row) => isLive(row, live)).length;
  }

  /** `owner`, `maxAge`: undefined leaves them as they are. */
  #patch(
    sid: string,
    set: string | null,
    unset: string[] | null,
    owner: string | null | undefined,
    maxAge: number | null | undefined,
    now: number,
    live: LiveThresholds,
  ): boolean | Renewed {
    const hash = digest(sid);
    const row = this.#find(hash, live);
    if (row === RENEWED) return RENEWED;
    if (row === null) return false;
    const json = set === null && unset === null ? row.data : this.#merged(row.data, set, unset);
    // The timestamp moves only when a read would move it (touchAfter passed)
    // or with a new lifetime: the stored expiry then moves only when the
    // sliding cookie is re-sent with it.
    this.#updateData.run(json, maxAge !== undefined || this.#writeTouchDue(row, now) ? now : row.touched_at, hash);
    if (maxAge !== undefined) this.#setMaxAge.run(maxAge, hash);
    if (owner !== undefined) this.#giveOwner(hash, owner, live);
    return true;
  }

  /**
   * Moves a live session to `next`; with `changes`, the same transaction also
   * applies a patch (or replaces the data) and sets the owner: a login
   * (renew + setOwner + data) is one operation, so the new id never belongs,
   * even for a moment, to the owner of the old one.
   */
  #renew(sid: string, next: string, changes: RenewArgs | null, now: number, live: LiveThresholds): string | Renewed | null {
    const hash = digest(sid);
    const row = this.#find(hash, live);
    if (row === null || row === RENEWED) {
      // A replay after a committed renew finds the new id live: same answer.
      if (this.#live(digest(next), live)) return next;
      return row;
    }
    const touched = this.#policy.timestamp === 'relative' ? now : row.touched_at;
    let data = row.data;
    let owner = row.owner;
    // The session's own lifetime moves with it, unless this login sets another.
    let maxAge = row.max_age;
    if (changes !== null) {
      const [, , set, unset, replace] = changes;
      if (replace !== null) {
        this.#checkSize(replace);
        data = replace;
      }
      if (set !== null || unset !== null) data = this.#merged(data, set, unset);
      if (changes[5] !== undefined) owner = changes[5];
      if (changes[6] !== undefined) maxAge = changes[6];
    }
    const nextHash = digest(next);
    this.#savepoint.run();
    try {
      this.#insert.run(nextHash, data, row.created_at, touched, owner, maxAge);
      this.#retire.run(nextHash, now, hash);
      if (owner !== null && owner !== row.owner) this.#applyCap(owner, nextHash, live);
      this.#release.run();
    } catch (error) {
      if (inTransaction(this.#db)) {
        this.#rollbackTo.run();
        this.#release.run();
      }
      throw error;
    }
    return next;
  }
}

function unavailable(error: unknown): StoreUnavailableError {
  const reason = error instanceof Error ? error.message : 'the transaction was rolled back';
  return new StoreUnavailableError(`the store could not write: ${reason}`);
}
