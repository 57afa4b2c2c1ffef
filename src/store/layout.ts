// The session table's layout, the same on every engine: its columns, the
// layouts of earlier versions that setup upgrades in place, and the checks
// every engine's schema code shares. Each engine gives the columns its own
// types (src/engines/<name>/schema.ts).
import { TableExistsError, TableNotExistsError } from '../errors.ts';
import { TABLE_NAME } from '../config.ts';

// Every time column holds integer epoch milliseconds. Rows are keyed by the
// SHA-256 digest of the session id: a copy of the file holds no usable id.
// `owner` (a user id, or NULL) has its own index: "sessions of this user" is
// an index range, never a scan of the data. `renewed_to` is NULL for a
// session; a renewed id's row keeps the digest of the id it moved to
// (store/renewed.ts), its data emptied and its owner cleared. `max_age` is a
// session's lifetime of its own in ms ("remember me"), NULL for the app's
// maxAge (store/expiry.ts).
export const COLUMNS = ['sid_hash', 'data', 'created_at', 'touched_at', 'owner', 'renewed_to', 'max_age'] as const;
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

/** The error for a table of that name with other columns: never touched. */
export function otherShape(table: string): TableExistsError {
  return new TableExistsError(
    `a table named "${table}" exists with other columns than a session table (${COLUMNS.join(', ')}); ` +
      `choose another table name or drop that table`,
  );
}

/**
 * For a start with `autoSetup: false` and the CLI commands that need the
 * table: the error for a table that is not ours as it stands (missing, an
 * earlier layout, another table), or null. `where` names the database as it
 * may be printed.
 */
export function unusable(shape: TableShape, table: string, where: string): Error | null {
  if (shape === 'missing') {
    return new TableNotExistsError(
      `the session table "${table}" does not exist in ${where}; run \`supervised-sessions setup\` or start with autoSetup: true`,
    );
  }
  if (shape === 'old') {
    return new TableNotExistsError(
      `the session table "${table}" in ${where} has the layout of an earlier version; run \`supervised-sessions setup\` to upgrade it in place (every session is kept), or start with autoSetup: true`,
    );
  }
  return shape === 'other' ? otherShape(table) : null;
}
