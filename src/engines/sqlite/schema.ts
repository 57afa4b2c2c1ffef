import type { DatabaseSync } from 'node:sqlite';
import { missingColumns, otherShape, quoted, shapeOf, unusable, type AddedColumn, type TableShape } from '../../store/layout.ts';
import { inTransaction } from './connection.ts';

export { otherShape, quoted, type TableShape };

/** An added column's type on SQLite. */
const COLUMN_TYPES: Record<AddedColumn, string> = { owner: 'TEXT', renewed_to: 'BLOB', max_age: 'INTEGER' };

function columnsOf(db: DatabaseSync, table: string): string[] {
  return db
    .prepare(`SELECT name FROM pragma_table_info(?)`)
    .all(table)
    .map((row) => String(row.name));
}

export function tableShape(db: DatabaseSync, table: string): TableShape {
  return shapeOf(columnsOf(db, table));
}

/**
 * Creates the table and its indexes when missing, and upgrades an earlier
 * version's table in place (the missing columns and the owner index added,
 * every row kept); returns
 * what it found: 'missing' (created), 'old' (upgraded) or 'ok' (nothing to do). It runs under SQLite's write lock (BEGIN
 * IMMEDIATE, waiting out busy_timeout), and looks at the table again once it
 * holds it: two processes starting at once cannot both create or both alter.
 */
export function setupTable(db: DatabaseSync, table: string): 'missing' | 'old' | 'ok' {
  // Nothing to do, and no write lock taken, on a table already right.
  const seen = tableShape(db, table);
  if (seen === 'ok') return 'ok';
  if (seen === 'other') throw otherShape(table);
  const name = quoted(table);
  db.exec('BEGIN IMMEDIATE');
  try {
    const shape = tableShape(db, table);
    if (shape === 'other') throw otherShape(table);
    if (shape === 'old') {
      for (const column of missingColumns(columnsOf(db, table)))
        db.exec(`ALTER TABLE ${name} ADD COLUMN ${column} ${COLUMN_TYPES[column]}`);
      // Earlier versions indexed every row's touched_at; it now indexes only
      // the sessions on the app's maxAge (created again below).
      db.exec(`DROP INDEX IF EXISTS "${table}_touched_at"`);
    }
    // The sweep's range deletes (SQLite's multi-index OR plan uses them all,
    // sweep.ts): the sessions on the app's maxAge by touched_at
    // ('relative') or created_at ('fixed'), every session by created_at
    // (maxLifetime), and the sessions with a lifetime of their own by their
    // expiry under each timestamp rule — partial, so each row is in the index
    // its own expiry is read from, and a batch never steps over a live
    // "remember me" session. The owner index is partial too: sessions
    // without an owner cost it nothing.
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${name} (
        sid_hash BLOB NOT NULL PRIMARY KEY,
        data TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        touched_at INTEGER NOT NULL,
        owner TEXT,
        renewed_to BLOB,
        max_age INTEGER
      );
      CREATE INDEX IF NOT EXISTS "${table}_touched_at" ON ${name} (touched_at) WHERE max_age IS NULL;
      CREATE INDEX IF NOT EXISTS "${table}_created_at" ON ${name} (created_at);
      CREATE INDEX IF NOT EXISTS "${table}_app_created" ON ${name} (created_at) WHERE max_age IS NULL;
      CREATE INDEX IF NOT EXISTS "${table}_own_touched" ON ${name} (touched_at + max_age) WHERE max_age IS NOT NULL;
      CREATE INDEX IF NOT EXISTS "${table}_own_created" ON ${name} (created_at + max_age) WHERE max_age IS NOT NULL;
      CREATE INDEX IF NOT EXISTS "${table}_owner" ON ${name} (owner, touched_at) WHERE owner IS NOT NULL;
    `);
    db.exec('COMMIT');
    return shape as 'missing' | 'old' | 'ok';
  } catch (error) {
    if (inTransaction(db)) db.exec('ROLLBACK');
    throw error;
  }
}

/** For a start with `autoSetup: false`, and for the CLI commands that need the table. */
export function requireTable(db: DatabaseSync, table: string, database: string): void {
  const problem = unusable(tableShape(db, table), table, database);
  if (problem) throw problem;
}

/**
 * Runs `sql` on the session table when it exists; a missing table is nothing
 * to do (false), a table of another shape is refused and left untouched.
 */
function onSessionTable(db: DatabaseSync, table: string, sql: (name: string) => string): boolean {
  const shape = tableShape(db, table);
  if (shape === 'missing') return false;
  if (shape === 'other') throw otherShape(table);
  db.exec(sql(quoted(table)));
  return true;
}

export function clearTable(db: DatabaseSync, table: string): boolean {
  return onSessionTable(db, table, (name) => `DELETE FROM ${name}`);
}

export function dropTable(db: DatabaseSync, table: string): boolean {
  return onSessionTable(db, table, (name) => `DROP TABLE ${name}`);
}
