import type { DatabaseSync } from 'node:sqlite';
import { inTransaction } from './connection.ts';
import { liveThresholds, type ExpiryPolicy, type LiveThresholds } from './expiry.ts';
import { quoted } from './schema.ts';

const statements = new WeakMap<DatabaseSync, Map<string, { del: ReturnType<DatabaseSync['prepare']>; begin: ReturnType<DatabaseSync['prepare']>; commit: ReturnType<DatabaseSync['prepare']>; rollback: ReturnType<DatabaseSync['prepare']> }>>();

function prepared(db: DatabaseSync, table: string) {
  let byTable = statements.get(db);
  if (!byTable) statements.set(db, byTable = new Map());
  let found = byTable.get(table);
  if (!found) {
    const t = quoted(table);
    // Dead rows by the one liveness rule (expiry.ts), found through the two
    // time indexes, deleted in bounded batches by rowid.
    found = {
      del: db.prepare(`DELETE FROM ${t} WHERE rowid IN (
        SELECT rowid FROM ${t} WHERE touched_at < ? OR created_at < ? LIMIT ?)`),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
    byTable.set(table, found);
  }
  return found;
}

/**
 * Deletes at most `limit` dead rows in one transaction (its own, unless the
 * caller already holds one): a batch is deleted whole or not at all, and a
 * thread killed inside it leaves SQLite to roll it back.
 */
export function sweepBatch(db: DatabaseSync, table: string, live: LiveThresholds, limit: number, options: { transaction?: boolean } = {}): number {
  const { del, begin, commit, rollback } = prepared(db, table);
  if (options.transaction === false) return Number(del.run(live.touchedSince, live.createdSince, limit).changes);
  begin.run();
  try {
    const deleted = Number(del.run(live.touchedSince, live.createdSince, limit).changes);
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
  return Number((db.prepare(`SELECT count(*) AS n FROM ${quoted(table)} WHERE touched_at >= ? AND created_at >= ? AND renewed_to IS NULL`)
    .get(live.touchedSince, live.createdSince) as { n: number }).n);
}

/** Live and dead counts for the CLI's `stats`: dead rows are the ones the next sweep deletes. */
export function countSessions(db: DatabaseSync, table: string, policy: ExpiryPolicy): { live: number; dead: number } {
  const live = liveThresholds(policy, Date.now());
  const dead = Number((db.prepare(`SELECT count(*) AS n FROM ${quoted(table)} WHERE touched_at < ? OR created_at < ?`)
    .get(live.touchedSince, live.createdSince) as { n: number }).n);
  return { live: countLive(db, table, live), dead };
}
