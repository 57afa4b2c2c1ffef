import type { DatabaseSync } from 'node:sqlite';
import { TableExistsError, TableNotExistsError } from '../errors.ts';
import { TABLE_NAME } from '../config.ts';

// Every time column holds integer epoch milliseconds. Rows are keyed by the
// SHA-256 digest of the session id: a copy of the file holds no usable id.
const COLUMNS = ['sid_hash', 'data', 'created_at', 'touched_at'] as const;

/** The table name, checked again here: nothing unchecked is ever interpolated into SQL. */
export function quoted(table: string): string {
  if (!TABLE_NAME.test(table)) throw new TypeError(`invalid table name ${JSON.stringify(table)}`);
  return `"${table}"`;
}

export type TableShape = 'missing' | 'ok' | 'other';

export function tableShape(db: DatabaseSync, table: string): TableShape {
  const exists = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(table);
  if (!exists) return 'missing';
  const columns = db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table).map((row) => String(row.name));
  const same = columns.length === COLUMNS.length && COLUMNS.every((column) => columns.includes(column));
  return same ? 'ok' : 'other';
}

function otherShape(table: string): TableExistsError {
  return new TableExistsError(
    `a table named "${table}" exists with other columns than a session table (${COLUMNS.join(', ')}); ` +
    `choose another table name or drop that table`);
}

/** Creates the table and its indexes when missing; returns whether it created them. */
export function setupTable(db: DatabaseSync, table: string): boolean {
  const shape = tableShape(db, table);
  if (shape === 'other') throw otherShape(table);
  // Two indexes serve the sweep's range deletes: one per threshold of the
  // liveness rule (SQLite's multi-index OR plan uses both).
  const name = quoted(table);
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${name} (
      sid_hash BLOB NOT NULL PRIMARY KEY,
      data TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      touched_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS "${table}_touched_at" ON ${name} (touched_at);
    CREATE INDEX IF NOT EXISTS "${table}_created_at" ON ${name} (created_at);
  `);
  return shape === 'missing';
}

/** For a start with `autoSetup: false`, and for the CLI commands that need the table. */
export function requireTable(db: DatabaseSync, table: string, database: string): void {
  const shape = tableShape(db, table);
  if (shape === 'missing') {
    throw new TableNotExistsError(`the session table "${table}" does not exist in ${database}; run \`supervised-sessions setup\` or start with autoSetup: true`);
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
