import type { DatabaseSync } from 'node:sqlite';
import { TableExistsError, TableNotExistsError } from '../errors.ts';
import { TABLE_NAME } from '../config.ts';
import { inTransaction } from './connection.ts';

// Every time column holds integer epoch milliseconds. Rows are keyed by the
// SHA-256 digest of the session id: a copy of the file holds no usable id.
// `owner` (a user id, or NULL) has its own index: "sessions of this user" is
// an index range, never a scan of the data. `renewed_to` is NULL for a
// session; a renewed id's row keeps the digest of the id it moved to
// (store/renewed.ts), its data emptied and its owner cleared. `max_age` is a
// session's lifetime of its own in ms ("remember me"), NULL for the app's
// maxAge (store/expiry.ts).
const COLUMNS = ['sid_hash', 'data', 'created_at', 'touched_at', 'owner', 'renewed_to', 'max_age'] as const;
/**
 * The layouts of earlier versions, upgraded in place by setup: 0.1.0
 * (without owner), the owners' layout (without renewed_to), and the renewed
 * ids' layout (without max_age).
 */
export const EARLIER_LAYOUTS: ReadonlyArray<readonly string[]> = [
  ['sid_hash', 'data', 'created_at', 'touched_at'],
  ['sid_hash', 'data', 'created_at', 'touched_at', 'owner'],
  ['sid_hash', 'data', 'created_at', 'touched_at', 'owner', 'renewed_to'],
];

export type AddedColumn = 'owner' | 'renewed_to' | 'max_age';

/** The columns an earlier layout lacks, in the order they are added. */
export function missingColumns(columns: readonly string[]): AddedColumn[] {
  return (['owner', 'renewed_to', 'max_age'] as const).filter((column) => !columns.includes(column));
}

/** An added column's type on each engine. */
export const COLUMN_TYPES: Record<AddedColumn, { sqlite: string; postgres: string }> = {
  owner: { sqlite: 'TEXT', postgres: 'text' },
  renewed_to: { sqlite: 'BLOB', postgres: 'bytea' },
  max_age: { sqlite: 'INTEGER', postgres: 'bigint' },
};

/** The table name, checked again here: nothing unchecked is ever interpolated into SQL. */
export function quoted(table: string): string {
  if (!TABLE_NAME.test(table)) throw new TypeError(`invalid table name ${JSON.stringify(table)}`);
  return `"${table}"`;
}

/** 'old': an earlier version's layout (EARLIER_LAYOUTS): upgraded by setup. */
export type TableShape = 'missing' | 'ok' | 'old' | 'other';

const sameColumns = (columns: string[], expected: readonly string[]) =>
  columns.length === expected.length && expected.every((column) => columns.includes(column));

/** A table's columns as a shape: ours, an earlier version's, or another table's. */
export function shapeOf(columns: string[]): TableShape {
  if (columns.length === 0) return 'missing';
  if (sameColumns(columns, COLUMNS)) return 'ok';
  return EARLIER_LAYOUTS.some((layout) => sameColumns(columns, layout)) ? 'old' : 'other';
}

function columnsOf(db: DatabaseSync, table: string): string[] {
  return db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table).map((row) => String(row.name));
}

export function tableShape(db: DatabaseSync, table: string): TableShape {
  return shapeOf(columnsOf(db, table));
}

export function otherShape(table: string): TableExistsError {
  return new TableExistsError(
    `a table named "${table}" exists with other columns than a session table (${COLUMNS.join(', ')}); ` +
    `choose another table name or drop that table`);
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
      for (const column of missingColumns(columnsOf(db, table))) db.exec(`ALTER TABLE ${name} ADD COLUMN ${column} ${COLUMN_TYPES[column].sqlite}`);
      // Earlier versions indexed every row's touched_at; it now indexes only
      // the sessions on the app's maxAge (created again below).
      db.exec(`DROP INDEX IF EXISTS "${table}_touched_at"`);
    }
    // The sweep's range deletes (SQLite's multi-index OR plan uses them all,
    // store/sweep.ts): the sessions on the app's maxAge by touched_at
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
  const shape = tableShape(db, table);
  if (shape === 'missing') {
    throw new TableNotExistsError(`the session table "${table}" does not exist in ${database}; run \`supervised-sessions setup\` or start with autoSetup: true`);
  }
  if (shape === 'old') {
    throw new TableNotExistsError(`the session table "${table}" in ${database} has the layout of an earlier version; run \`supervised-sessions setup\` to upgrade it in place (every session is kept), or start with autoSetup: true`);
  }
  if (shape === 'other') throw otherShape(table);
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
