import type { DatabaseSync } from 'node:sqlite';
import { inTransaction } from './connection.ts';
import { liveArgs, liveSqlite } from './live.ts';
import { liveThresholds, type ExpiryPolicy, type LiveThresholds } from '../../store/expiry.ts';
import { quoted } from './schema.ts';

type Prepared = ReturnType<DatabaseSync['prepare']>;
const statements = new WeakMap<DatabaseSync, Map<string, { del: Prepared; begin: Prepared; commit: Prepared; rollback: Prepared }>>();

/**
 * What makes a row dead, one OR term per index (schema.ts), so that SQLite's
 * multi-index OR plan reads each index as a range: a session on the app's
 * maxAge by its base column, a session with a lifetime of its own by its
 * expiry (the partial expression indexes), and every session by created_at
 * (maxLifetime). Parameters (plain `?`: Node 22's node:sqlite binds no
 * numbered ones): the app's threshold (now - maxAge), now, createdSince
 * (deadArgs). test/lifetime.test.ts checks the plan.
 */
export function deadSqlite(base: LiveThresholds['base']): string {
  return `(max_age IS NULL AND ${base} < ?) OR (max_age IS NOT NULL AND ${base} + max_age < ?) OR created_at < ?`;
}

export const deadArgs = (live: LiveThresholds): [number, number, number] => [live.now - live.maxAgeMs, live.now, live.createdSince];

function prepared(db: DatabaseSync, table: string, base: LiveThresholds['base']) {
  let byTable = statements.get(db);
  if (!byTable) {
    byTable = new Map();
    statements.set(db, byTable);
  }
  const key = `${base}:${table}`;
  let found = byTable.get(key);
  if (!found) {
    const t = quoted(table);
    // Dead rows by the one liveness rule (expiry.ts), found through the time
    // indexes, deleted in bounded batches by rowid.
    found = {
      del: db.prepare(`DELETE FROM ${t} WHERE rowid IN (
        SELECT rowid FROM ${t} WHERE ${deadSqlite(base)} LIMIT ?)`),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
    byTable.set(key, found);
  }
  return found;
}

/**
 * Deletes at most `limit` dead rows in one transaction (its own, unless the
 * caller already holds one): a batch is deleted whole or not at all, and a
 * thread killed inside it leaves SQLite to roll it back.
 */
export function sweepBatch(
  db: DatabaseSync,
  table: string,
  live: LiveThresholds,
  limit: number,
  options: { transaction?: boolean } = {},
): number {
  const { del, begin, commit, rollback } = prepared(db, table, live.base);
  if (options.transaction === false) return Number(del.run(...deadArgs(live), limit).changes);
  begin.run();
  try {
    const deleted = Number(del.run(...deadArgs(live), limit).changes);
    commit.run();
    return deleted;
  } catch (error) {
    if (inTransaction(db)) rollback.run();
    throw error;
  }
}

/**
 * Sweeps every session dead at the sweep's start, batch by batch, on the
 * caller's thread (the CLI's `sweep`; the cleaner drives sweepBatch itself,
 * with its pauses and the write gate).
 */
export function sweepDead(db: DatabaseSync, table: string, policy: ExpiryPolicy, batchSize = 500): number {
  // One `now` for the whole sweep: what dies during it waits for the next one.
  const live = liveThresholds(policy, Date.now());
  let deleted = 0;
  for (;;) {
    const n = sweepBatch(db, table, live, batchSize);
    deleted += n;
    if (n < batchSize) return deleted;
  }
}

/** Live sessions by the thresholds given: the cleaner's figure after a sweep (renewed ids' tombstones are not sessions). */
export function countLive(db: DatabaseSync, table: string, live: LiveThresholds): number {
  return Number(
    (
      db.prepare(`SELECT count(*) AS n FROM ${quoted(table)} WHERE ${liveSqlite(live)} AND renewed_to IS NULL`).get(...liveArgs(live)) as {
        n: number;
      }
    ).n,
  );
}

/** Live and dead counts for the CLI's `stats`: dead rows are the ones the next sweep deletes. */
export function countSessions(db: DatabaseSync, table: string, policy: ExpiryPolicy): { live: number; dead: number } {
  const live = liveThresholds(policy, Date.now());
  const dead = Number(
    (db.prepare(`SELECT count(*) AS n FROM ${quoted(table)} WHERE ${deadSqlite(live.base)}`).get(...deadArgs(live)) as { n: number }).n,
  );
  return { live: countLive(db, table, live), dead };
}
