// The engine's SQL, built once per store from the table name and the expiry
// policy. The liveness rule is the one of expiry.ts, evaluated on the
// server's clock: `now()` is the transaction's start, so every statement of a
// batch judges liveness at the same instant.
import { quoted } from '../../store/layout.ts';
import { baseColumn, type ExpiryPolicy } from '../../store/expiry.ts';
import { ARRIVAL_GRACE_MS } from '../../store/renewed.ts';

/** The server's now, in epoch ms (the unit of every time column). */
export const NOW = `(extract(epoch from now()) * 1000)::bigint`;

const int = (value: number): string => {
  const n = Math.trunc(value);
  if (!Number.isSafeInteger(n)) throw new TypeError(`not a safe integer: ${value}`);
  return String(n);
};

/**
 * A renew's try for the owner lock of the session it moves failed: another
 * transaction holds it (a revokeAll, or a login under the owner cap). The
 * renew's statement raises this (as an invalid integer, 22P02), so its whole
 * batch rolls back and runs again (connection.ts, isRetryable).
 */
export const OWNER_BUSY = 'supervised-sessions: owner busy';

/**
 * The advisory lock key of one owner of one table (64 bits): every
 * operation that changes which sessions an owner has (revoke, revokeAll, a
 * session given the owner, the cap, a renew of one of its sessions) holds it
 * until its transaction ends, so owner operations are exact across app
 * servers at READ COMMITTED. `owner` is an SQL expression.
 */
export function ownerKey(table: string, owner: string): string {
  return `hashtextextended('supervised-sessions:owner:' || current_schema() || '.${quoted(table).slice(1, -1)}:' || ${owner}, 0)`;
}

/**
 * True when `owner` (a column) is NULL, is `except`, or its lock is taken
 * now; otherwise raises OWNER_BUSY. Used after a row lock, where waiting for
 * the owner's lock could deadlock with a revokeAll waiting for that row. A
 * CASE, not an OR: its branches run in order, so the cast raises only when
 * the try failed; the cast's text depends on the column so that it is never
 * folded into a constant at plan time, and carries no user id.
 */
function ownerLockTried(table: string, owner: string, except = 'NULL', before = 'false'): string {
  // `before`: conditions that refuse the write anyway (a tombstone, too
  // large), judged first so that they never wait for an owner's lock.
  return `CASE WHEN ${before} THEN false WHEN ${owner} IS NULL OR ${owner} IS NOT DISTINCT FROM ${except} THEN true
    WHEN pg_try_advisory_xact_lock(${ownerKey(table, owner)}) THEN true
    ELSE CAST('${OWNER_BUSY}' || left(${owner}, 0) AS int) = 0 END`;
}

/**
 * The liveness rule as SQL over `prefix`'s columns (see expiry.ts
 * liveThresholds): a session's age counts from its base column, against its
 * own lifetime (`max_age`) or the app's maxAge; maxLifetime caps every
 * session. Time alone, so a renewed id's tombstone (store/renewed.ts) is live
 * by it too.
 */
export function liveSql(policy: ExpiryPolicy, prefix = ''): string {
  const base = baseColumn(policy.timestamp);
  const parts = [`${prefix}${base} + coalesce(${prefix}max_age, ${int(policy.maxAgeMs)}) >= ${NOW}`];
  if (policy.maxLifetimeMs !== null) parts.push(`${prefix}created_at >= ${NOW} - ${int(policy.maxLifetimeMs)}`);
  return `(${parts.join(' AND ')})`;
}

/**
 * What makes a row dead, one condition per index (schema.ts): the sweep
 * deletes along each index in turn (an index range scan in expiry order)
 * instead of an OR that would bitmap-scan the whole backlog for every batch.
 * A session on the app's maxAge dies by its base column; one with a
 * lifetime of its own by base + max_age (a partial expression index); any
 * session by created_at under maxLifetime.
 */
export function deadConditions(policy: ExpiryPolicy): Array<{ order: string; sql: string }> {
  const base = baseColumn(policy.timestamp);
  const conditions = [
    { order: base, sql: `max_age IS NULL AND ${base} < ${NOW} - ${int(policy.maxAgeMs)}` },
    { order: `(${base} + max_age)`, sql: `max_age IS NOT NULL AND ${base} + max_age < ${NOW}` },
  ];
  if (policy.maxLifetimeMs !== null) conditions.push({ order: 'created_at', sql: `created_at < ${NOW} - ${int(policy.maxLifetimeMs)}` });
  return conditions;
}

/**
 * Deletes at most $1 dead rows: the victims are locked with SKIP LOCKED (a
 * row a request is writing, or another sweeper holds, is left for later) and
 * joined on the primary key, never on ctid (research note §4).
 */
export function sweepStatements(table: string, policy: ExpiryPolicy): string[] {
  const t = quoted(table);
  const live = liveSql(policy);
  return deadConditions(policy).map(
    ({ order, sql }) => `DELETE FROM ${t} WHERE sid_hash = ANY(ARRAY(
      SELECT sid_hash FROM ${t} WHERE ${sql} ORDER BY ${order} LIMIT $1 FOR UPDATE SKIP LOCKED))
    AND NOT ${live}`,
  );
}

/**
 * A read owes a touch when the sliding timestamp is older than touchAfter,
 * or a twentieth of the session's own lifetime when that is shorter
 * (expiry.ts, touchAfterFor).
 */
function touchDue(policy: ExpiryPolicy, prefix = ''): string {
  const after = int(policy.touchAfterMs);
  return `${prefix}touched_at < ${NOW} - LEAST(${after}, coalesce(${prefix}max_age / 20, ${after}))`;
}

export interface Statements {
  get: string;
  getTouch: string | null;
  alive: string;
  /** Takes the owner lock ($1 the owner), waiting for it. */
  lockOwner: string;
  /** Takes the locks of every owner in $1 (text[]), in one global order, waiting for each. */
  lockOwners: string;
  create: string;
  put: string;
  /** A put that also sets the owner ($3, $4) and/or the session's own lifetime ($5, $6). */
  putWith: string;
  patch: string;
  /** A patch that also sets the owner ($4, $5) and/or the session's own lifetime ($6, $7). */
  patchWith: string;
  renew: string;
  cap: string;
  delete: string;
  count: string;
  sessionsOf: string;
  revoke: string;
  revokeAll: string;
  revokeOthers: string;
  upsert: string;
  touchKey: string;
  clear: string;
  all: string;
}

export function statements(table: string, policy: ExpiryPolicy, maxSessionBytes: number): Statements {
  const t = quoted(table);
  const L = liveSql(policy);
  const Lt = liveSql(policy, 't.');
  // A live session: live by time, and not a renewed id's tombstone.
  const S = `${L} AND renewed_to IS NULL`;
  // Writes lock the row by time alone (`cur`, FOR UPDATE) and only then judge
  // it: at READ COMMITTED a write that waited for a concurrent renew sees the
  // row as that renew left it (a tombstone: RENEWED), where a condition on
  // renewed_to in its WHERE would skip the row and a separate EXISTS would
  // read the statement's older snapshot (gone).
  // What an arriving request's read finds: a session, or a tombstone renewed within ARRIVAL_GRACE_MS (renewed.ts).
  const R = `${L} AND (renewed_to IS NULL OR touched_at >= ${NOW} - ${int(ARRIVAL_GRACE_MS)})`;
  const fits = (expr: string) => `octet_length((${expr})::text) <= ${int(maxSessionBytes)}`;
  const relative = policy.timestamp === 'relative';
  const touched = relative ? NOW : 'touched_at';
  // `with`: the call also sets the owner ($o: whether, $o+1: which) and/or
  // the session's own lifetime ($m: whether, $m+1: ms or NULL). An owner
  // change also tries the session's current owner's lock (the new owner's is
  // the batch's, engine.ts).
  const extras = (o: number, m: number, before: string) => ({
    set: `, owner = CASE WHEN $${o}::boolean THEN $${o + 1}::text ELSE t.owner END, max_age = CASE WHEN $${m}::boolean THEN $${m + 1}::bigint ELSE t.max_age END`,
    lock: ` AND CASE WHEN NOT $${o}::boolean THEN true ELSE ${ownerLockTried(table, 'cur.owner', `$${o + 1}::text`, before)} END`,
  });
  // A patch renews the timestamp only when a read would (touchAfter passed),
  // or when it sets the session's lifetime (the cookie then goes out with the
  // new expiry): no indexed column changes on most writes (HOT updates), and
  // the stored expiry moves only when the cookie is re-sent with it.
  const patchTouched = (lifetimeSet: string) => `CASE WHEN ${lifetimeSet} OR ${touchDue(policy, 't.')} THEN ${NOW} ELSE t.touched_at END`;
  const patch = (withExtras: boolean) => {
    const x = extras(4, 6, `cur.renewed_to IS NOT NULL OR NOT ${fits('cur.data')}`);
    return `WITH cur AS (
      SELECT sid_hash, renewed_to, owner, (data - $3::text[]) || $2::jsonb AS data FROM ${t} WHERE sid_hash = $1 AND ${L} FOR UPDATE),
    up AS (
      UPDATE ${t} AS t SET data = cur.data, touched_at = ${patchTouched(withExtras ? '$6::boolean' : 'false')}${withExtras ? x.set : ''}
      FROM cur WHERE t.sid_hash = cur.sid_hash AND cur.renewed_to IS NULL AND ${fits('cur.data')}${withExtras ? x.lock : ''} RETURNING 1)
    SELECT (SELECT count(*) FROM cur WHERE renewed_to IS NULL)::int AS found, (SELECT count(*) FROM up)::int AS stored,
      EXISTS (SELECT 1 FROM cur WHERE renewed_to IS NOT NULL) AS renewed`;
  };
  const put = (withExtras: boolean) => {
    const x = extras(3, 5, 'cur.renewed_to IS NOT NULL');
    return `WITH cur AS (SELECT sid_hash, renewed_to, owner FROM ${t} WHERE sid_hash = $1 AND ${L} FOR UPDATE),
    up AS (
      UPDATE ${t} AS t SET data = $2::jsonb, touched_at = ${NOW}${withExtras ? x.set : ''}
      FROM cur WHERE t.sid_hash = cur.sid_hash AND cur.renewed_to IS NULL${withExtras ? x.lock : ''} RETURNING 1)
    SELECT (SELECT count(*) FROM up)::int AS stored, EXISTS (SELECT 1 FROM cur WHERE renewed_to IS NOT NULL) AS renewed`;
  };
  // express-session's expiry, `$n` ms from now, as a lifetime of the session's own:
  // counted from now ('relative', the write renews the timestamp) or from its creation ('fixed').
  const ownLifetime = (n: number, prefix = '') => `$${n}::bigint + ${relative ? '0' : `(${NOW} - ${prefix}created_at)`}`;
  const expiry = (base: string, maxAge: string) => `${base} + coalesce(${maxAge}, ${int(policy.maxAgeMs)})`;
  return {
    // `renewed`: the row is a renewed id's tombstone (no data, no owner).
    get: `SELECT data::text AS data, owner, max_age, renewed_to IS NOT NULL AS renewed, false AS touched FROM ${t} WHERE sid_hash = $1 AND ${R}`,
    // A read renews the sliding timestamp only when it is older than
    // touchAfter: no write per read (the UPDATE in the WITH runs whether or
    // not the outer query reads it). `touched`: this read renewed it.
    getTouch:
      policy.timestamp === 'relative'
        ? `WITH touch AS (
        UPDATE ${t} SET touched_at = ${NOW}
        WHERE sid_hash = $1 AND ${S} AND ${touchDue(policy)} RETURNING 1)
      SELECT data::text AS data, owner, max_age, renewed_to IS NOT NULL AS renewed, EXISTS (SELECT 1 FROM touch) AS touched FROM ${t} WHERE sid_hash = $1 AND ${R}`
        : null,
    // A plain read, no row lock: a read batch never waits for a writer nor
    // takes part in a deadlock (a renew in flight is seen once committed).
    alive: `SELECT renewed_to IS NOT NULL AS renewed FROM ${t} WHERE sid_hash = $1 AND ${L}`,
    lockOwner: `SELECT pg_advisory_xact_lock(${ownerKey(table, '$1::text')})`,
    // Sorted by key, so two batches never take two owners' locks in opposite orders.
    lockOwners: `SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT ${ownerKey(table, 'o')} AS k FROM unnest($1::text[]) AS o ORDER BY 1) AS keys ORDER BY k`,
    // A replayed create (its reply lost with the connection) finds its own row.
    create: `INSERT INTO ${t} (sid_hash, data, created_at, touched_at, owner, max_age) VALUES ($1, $2::jsonb, ${NOW}, ${NOW}, $3::text, $4::bigint)
      ON CONFLICT (sid_hash) DO UPDATE SET data = excluded.data, owner = excluded.owner, max_age = excluded.max_age`,
    put: put(false),
    putWith: put(true),
    patch: patch(false),
    patchWith: patch(true),
    // Moves a live row to a new key in one statement; with changes, the new
    // row gets them (a login is one operation). The old row becomes a
    // tombstone (store/renewed.ts). Nothing moves when the result would be
    // too large: the old id stays as it was. The session's current owner's
    // lock is tried (never waited for: this statement holds the row, and a
    // revokeAll holding the lock may be waiting for it): taken, a revokeAll
    // that follows sees the new id; not taken, the batch rolls back and runs
    // again (OWNER_BUSY). `replayed`: the new id was already live before this
    // statement (a replay after a lost reply). The session's own lifetime
    // moves with it ($8: unless the login sets another, $9).
    renew: `WITH cur AS (
        SELECT sid_hash, renewed_to, (coalesce($5::jsonb, data) - $4::text[]) || $3::jsonb AS data, created_at, ${touched} AS touched_at,
          CASE WHEN $6::boolean THEN $7::text ELSE owner END AS new_owner, owner,
          CASE WHEN $8::boolean THEN $9::bigint ELSE max_age END AS max_age
        FROM ${t} WHERE sid_hash = $1 AND ${L} FOR UPDATE),
      ok AS (SELECT * FROM cur WHERE cur.renewed_to IS NULL AND ${fits('cur.data')}
        AND ${ownerLockTried(table, 'cur.owner', 'CASE WHEN $6::boolean THEN $7::text END', `cur.renewed_to IS NOT NULL OR NOT ${fits('cur.data')}`)}),
      gone AS (UPDATE ${t} AS t SET data = '{}', owner = NULL, renewed_to = $2, touched_at = ${NOW}
        FROM ok WHERE t.sid_hash = ok.sid_hash RETURNING 1),
      moved AS (INSERT INTO ${t} (sid_hash, data, created_at, touched_at, owner, max_age)
        SELECT $2, data, created_at, touched_at, new_owner, max_age FROM ok ON CONFLICT (sid_hash) DO NOTHING RETURNING 1)
      SELECT (SELECT count(*) FROM cur WHERE renewed_to IS NULL)::int AS found, (SELECT count(*) FROM moved)::int AS moved,
        EXISTS (SELECT 1 FROM ${t} WHERE sid_hash = $2 AND ${S}) AS replayed, EXISTS (SELECT 1 FROM cur WHERE renewed_to IS NOT NULL) AS renewed`,
    // maxSessionsPerOwner: once $2 belongs to $1, keep it and the ($3)
    // most recently used other live sessions of $1; the rest go.
    cap: `DELETE FROM ${t} WHERE owner = $1 AND sid_hash <> $2
      AND EXISTS (SELECT 1 FROM ${t} WHERE sid_hash = $2 AND owner = $1)
      AND sid_hash NOT IN (SELECT sid_hash FROM ${t} WHERE owner = $1 AND sid_hash <> $2 AND ${L} ORDER BY touched_at DESC LIMIT $3)`,
    // A tombstone is not deleted by its old id: it keeps telling late requests "renewed".
    delete: `WITH cur AS (SELECT sid_hash, renewed_to IS NOT NULL AND ${L} AS renewed FROM ${t} WHERE sid_hash = $1 FOR UPDATE),
      gone AS (DELETE FROM ${t} AS t USING cur WHERE t.sid_hash = cur.sid_hash AND NOT cur.renewed RETURNING 1)
      SELECT EXISTS (SELECT 1 FROM cur WHERE renewed) AS renewed`,
    count: `SELECT count(*) AS n FROM ${t} WHERE ${S}`,
    sessionsOf: `SELECT sid_hash, data::text AS data, created_at, touched_at, max_age FROM ${t} WHERE owner = $1 AND ${L} ORDER BY touched_at DESC`,
    // The session the handle names, under whatever id it was renewed to since
    // (the tombstones' chain), if it is the owner's.
    revoke: `WITH RECURSIVE chain(h, n) AS (
        SELECT sid_hash, renewed_to FROM ${t} WHERE sid_hash = $1
        UNION SELECT s.sid_hash, s.renewed_to FROM ${t} AS s JOIN chain ON s.sid_hash = chain.n)
      DELETE FROM ${t} AS t WHERE sid_hash IN (SELECT h FROM chain WHERE n IS NULL) AND owner = $2 RETURNING ${Lt} AS live`,
    revokeAll: `DELETE FROM ${t} AS t WHERE owner = $1 AND sid_hash IS DISTINCT FROM $2 RETURNING ${Lt} AS live`,
    // revokeOtherSessions: the same, only while $2 is a live session of $1
    // (under the owner's lock, so no revoke of $2 lands in between); the
    // guard's row comes back too, to tell "not live" (no row) from "none".
    revokeOthers: `WITH keep AS (SELECT 1 FROM ${t} WHERE sid_hash = $2 AND owner = $1 AND renewed_to IS NULL AND ${L}),
      gone AS (DELETE FROM ${t} AS t WHERE owner = $1 AND sid_hash <> $2 AND EXISTS (SELECT 1 FROM keep) RETURNING ${Lt} AS live)
      SELECT EXISTS (SELECT 1 FROM keep) AS kept, (SELECT count(*) FROM gone WHERE live)::int AS n`,
    // express-session's set: replace a live row, or insert under a key no
    // row holds; a dead row under that key is never revived (false). $3:
    // the cookie's expiry, in ms from now (NULL: the app's maxAge).
    upsert: `WITH up AS (UPDATE ${t} SET data = $2::jsonb, touched_at = ${NOW}, max_age = ${ownLifetime(3)} WHERE sid_hash = $1 AND ${S} RETURNING 1),
      ins AS (INSERT INTO ${t} (sid_hash, data, created_at, touched_at, owner, max_age)
        SELECT $1, $2::jsonb, ${NOW}, ${NOW}, NULL, $3::bigint WHERE NOT EXISTS (SELECT 1 FROM up)
        ON CONFLICT (sid_hash) DO NOTHING RETURNING 1)
      SELECT EXISTS (SELECT 1 FROM up) OR EXISTS (SELECT 1 FROM ins) AS ok`,
    // express-session's touch: the session's expiry becomes its cookie's ($2
    // ms from now; $3 the cookie, kept in the data), written only when it moved by more than the touch
    // throttle (no write per request); found: the session is live.
    touchKey: `WITH cur AS (SELECT sid_hash, created_at, touched_at, max_age, ${ownLifetime(2)} AS next FROM ${t} WHERE sid_hash = $1 AND ${S}),
      up AS (UPDATE ${t} AS t SET touched_at = ${relative ? NOW : 't.touched_at'}, max_age = cur.next,
          data = CASE WHEN $3::jsonb IS NULL THEN t.data ELSE jsonb_set(t.data, '{cookie}', $3::jsonb) END FROM cur
        WHERE t.sid_hash = cur.sid_hash AND t.renewed_to IS NULL
          AND abs((${expiry(relative ? NOW : 'cur.created_at', 'cur.next')}) - (${expiry(`cur.${baseColumn(policy.timestamp)}`, 'cur.max_age')}))
            >= LEAST(${int(policy.touchAfterMs)}, coalesce(cur.next / 20, ${int(policy.touchAfterMs)})) RETURNING 1)
      SELECT EXISTS (SELECT 1 FROM cur) AS found`,
    clear: `DELETE FROM ${t}`,
    all: `SELECT data::text AS data FROM ${t} WHERE ${S}`,
  };
}

export interface WaveStatements {
  get: string;
  touch: string;
  create: string;
  put: string;
  patch: string;
  delete: string;
}

/**
 * The set-based statements of a wave (engine.ts): one per kind of call, over
 * arrays of digests (and data), each session at most once per statement.
 */
export function waveStatements(table: string, policy: ExpiryPolicy, maxSessionBytes: number): WaveStatements {
  const t = quoted(table);
  const L = liveSql(policy);
  const S = `${L} AND renewed_to IS NULL`;
  // As in statements(): the rows are locked by time alone, in digest order,
  // then judged as they are once locked — a session is written, a tombstone
  // (a concurrent renew that committed while this waited included) is
  // returned with `stored` NULL: RENEWED, not gone.
  const cur = `cur AS (SELECT sid_hash, renewed_to FROM ${t} WHERE sid_hash = ANY($1::bytea[]) AND ${L} ORDER BY sid_hash FOR UPDATE)`;
  const renewed = `SELECT sid_hash, NULL::boolean AS stored FROM cur WHERE renewed_to IS NOT NULL`;
  const patched = `((t.data - ARRAY(SELECT jsonb_array_elements_text(p.u))) || p.s)`;
  const fits = `octet_length(${patched}::text) <= ${int(maxSessionBytes)}`;
  const relative = policy.timestamp === 'relative';
  const stale = touchDue(policy);
  return {
    // `stale`: the read owes a touch (touchAfter passed); the engine applies
    // the touches a batch owes after its replies went out (touch, below).
    get: `SELECT sid_hash, data::text AS data, owner, max_age, ${relative ? stale : 'false'} AND renewed_to IS NULL AS stale, renewed_to IS NOT NULL AS renewed
      FROM ${t} WHERE sid_hash = ANY($1::bytea[]) AND ${L} AND (renewed_to IS NULL OR touched_at >= ${NOW} - ${int(ARRIVAL_GRACE_MS)})`,
    // SKIP LOCKED: a touch never waits. A row locked now is being written by
    // another transaction, whose patch moves the timestamp only if it is due
    // by its own clock reading: a touch so skipped may leave the stored
    // expiry up to touchAfter short of the cookie this read re-sends (the
    // allowance a read already has: a session may die up to touchAfter early).
    touch: `UPDATE ${t} SET touched_at = ${NOW} WHERE sid_hash IN (
        SELECT sid_hash FROM ${t} WHERE sid_hash = ANY($1::bytea[]) AND ${S} AND ${stale} FOR UPDATE SKIP LOCKED)`,
    create: `INSERT INTO ${t} (sid_hash, data, created_at, touched_at, owner)
      SELECT h, d, ${NOW}, ${NOW}, NULL FROM (SELECT * FROM unnest($1::bytea[], $2::jsonb[]) AS p(h, d) ORDER BY h) AS p
      ON CONFLICT (sid_hash) DO UPDATE SET data = excluded.data, owner = excluded.owner`,
    // Rows with `stored` were put; rows with `stored` NULL are tombstones.
    put: `WITH ${cur}, up AS (UPDATE ${t} AS t SET data = p.d, touched_at = ${NOW} FROM (SELECT * FROM unnest($1::bytea[], $2::jsonb[]) AS p(h, d) ORDER BY h) AS p, cur
      WHERE t.sid_hash = p.h AND cur.sid_hash = p.h AND cur.renewed_to IS NULL RETURNING t.sid_hash)
      SELECT sid_hash, true AS stored FROM up UNION ALL ${renewed}`,
    // One UPDATE: a row found live is updated, with the patched data when it
    // fits and left as it was when it does not; RETURNING says which. A
    // session not returned is gone. $4: for a merged patch, every prefix
    // (engine.ts, PatchStep.row); should one not fit, the statement divides
    // by zero on purpose (22012), the transaction rolls back, and the engine
    // runs the batch again unmerged, so that merging never changes a result.
    patch: `WITH ${cur}, up AS (UPDATE ${t} AS t SET
        data = CASE WHEN ${fits} THEN ${patched} ELSE t.data END,
        touched_at = CASE WHEN ${fits} AND ${touchDue(policy, 't.')} THEN ${NOW} ELSE t.touched_at END
      FROM (SELECT * FROM unnest($1::bytea[], $2::jsonb[], $3::jsonb[], $4::jsonb[]) AS p(h, s, u, c) ORDER BY h) AS p, cur
      WHERE t.sid_hash = p.h AND cur.sid_hash = p.h AND cur.renewed_to IS NULL
        AND (p.c IS NULL OR 1 / (SELECT CASE WHEN bool_and(octet_length(((t.data - ARRAY(SELECT jsonb_array_elements_text(e->1))) || (e->0))::text) <= ${int(maxSessionBytes)}) THEN 1 ELSE 0 END
          FROM jsonb_array_elements(p.c) AS e) = 1)
      RETURNING t.sid_hash, ${fits} AS stored)
      SELECT sid_hash, stored FROM up UNION ALL ${renewed}`,
    // Tombstones stay (they keep telling late requests "renewed"); the rows returned are those.
    delete: `WITH dead AS (SELECT sid_hash, renewed_to IS NOT NULL AND ${L} AS renewed FROM ${t} WHERE sid_hash = ANY($1::bytea[]) ORDER BY sid_hash FOR UPDATE),
      gone AS (DELETE FROM ${t} AS t USING dead WHERE t.sid_hash = dead.sid_hash AND NOT dead.renewed RETURNING 1)
      SELECT sid_hash, NULL::boolean AS stored FROM dead WHERE renewed`,
  };
}
