// The admin calls' and the command line's work on SQLite, on the caller's
// thread and a short-lived connection of its own (never the store's actor's).
import { existsSync, statSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import type { AdminSettings, EngineAdmin, Location } from '../engine.ts';
import { SessionError } from '../../errors.ts';
import { expiresAt, isLive, liveThresholds } from '../../store/expiry.ts';
import { digestFromHandle, handleFromDigest } from '../../store/ids.ts';
import { openDatabase } from './connection.ts';
import { ownerStatements } from './engine.ts';
import { liveArgs } from './live.ts';
import { clearTable, dropTable, requireTable, setupTable, tableShape } from './schema.ts';
import { countSessions, sweepDead } from './sweep.ts';

const missingFile = (database: string) => database !== ':memory:' && !existsSync(database);

function withDatabase<T>(database: string, work: (db: DatabaseSync) => T): T {
  const db = openDatabase({ database });
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** For the commands that need the table: a missing file is an error, not a file created empty. */
function withTable<T>(at: Location, work: (db: DatabaseSync) => T): T {
  if (missingFile(at.database)) throw new SessionError(`no database file ${at.database}`);
  return withDatabase(at.database, (db) => {
    requireTable(db, at.table, at.database);
    return work(db);
  });
}

function fileBytes(database: string): number {
  let bytes = 0;
  for (const file of [database, `${database}-wal`]) if (existsSync(file)) bytes += statSync(file).size;
  return bytes;
}

/** The owner's session (or all of them) deleted through the owner index; how many of them were live. */
function revoke(db: DatabaseSync, at: AdminSettings, owner: string, handle: string | undefined): number {
  const live = liveThresholds(at.policy, Date.now());
  const sql = ownerStatements(at.table, at.policy);
  let deleted: Array<{ created_at: number; touched_at: number; max_age: number | null }> = [];
  if (handle === undefined) {
    deleted = db.prepare(sql.revokeAll).all(owner, null) as typeof deleted;
  } else {
    // A handle of the wrong shape names no session: 0, as for another owner's.
    const digest = digestFromHandle(handle);
    if (digest !== null) deleted = db.prepare(sql.revoke).all(digest, owner) as typeof deleted;
  }
  return deleted.filter((row) => isLive(row, live)).length;
}

export const sqliteAdmin: EngineAdmin = {
  setup: async (at) => withDatabase(at.database, (db) => setupTable(db, at.table)),
  async clear(at, count) {
    if (missingFile(at.database)) return 'no-database';
    return withDatabase(at.database, (db) => {
      const shape = count !== null ? tableShape(db, at.table) : null;
      const before = count !== null && (shape === 'ok' || shape === 'old') ? countSessions(db, at.table, count) : null;
      if (!clearTable(db, at.table)) return 'no-table';
      return { deleted: before && before.live + before.dead };
    });
  },
  async drop(at) {
    if (missingFile(at.database)) return 'no-database';
    return withDatabase(at.database, (db) => (dropTable(db, at.table) ? 'dropped' : 'no-table'));
  },
  stats: async (at) => withTable(at, (db) => ({ ...countSessions(db, at.table, at.policy), bytes: fileBytes(at.database) })),
  sessions: async (at, owner) =>
    withTable(at, (db) => {
      const live = liveThresholds(at.policy, Date.now());
      const rows = db.prepare(ownerStatements(at.table, at.policy).list).all(owner, ...liveArgs(live)) as Array<{
        sid_hash: Uint8Array;
        created_at: number;
        touched_at: number;
        max_age: number | null;
      }>;
      return rows.map((row) => ({
        handle: handleFromDigest(row.sid_hash),
        createdAt: row.created_at,
        touchedAt: row.touched_at,
        expiresAt: expiresAt(at.policy, row),
      }));
    }),
  revoke: async (at, owner, handle) => withTable(at, (db) => revoke(db, at, owner, handle)),
  // The same batched delete the cleaner runs.
  sweep: async (at) => withTable(at, (db) => ({ deleted: sweepDead(db, at.table, at.policy), skipped: false })),
};
