// The session table on PostgreSQL: the same seven columns as on SQLite (so
// the liveness rule and the owner statements read alike), in PostgreSQL's
// types. Times are epoch milliseconds of the *server's* clock, so app servers
// whose clocks disagree agree on which sessions are dead.
import { createHash } from 'node:crypto';
import { missingColumns, otherShape, quoted, shapeOf, unusable, type AddedColumn, type TableShape } from '../../store/layout.ts';
import type { Client } from './connection.ts';
import { ConfigError, TableExistsError, TableNotExistsError } from '../../errors.ts';
import { redactUrl } from './url.ts';

export type { TableShape };

/** An added column's type on PostgreSQL. */
const COLUMN_TYPES: Record<AddedColumn, string> = { owner: 'text', renewed_to: 'bytea', max_age: 'bigint' };

/**
 * Advisory lock keys, per schema and table: two apps on different tables
 * never wait for each other. hashtextextended gives a 64-bit key.
 */
export const lockKey = (purpose: 'schema' | 'sweep') =>
  `hashtextextended('supervised-sessions:${purpose}:' || current_schema() || '.' || $1::text, 0)`;

async function columnsOf(client: Client, table: string): Promise<string[]> {
  const { rows } = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
    [table],
  );
  return rows.map((row) => row.column_name);
}

/** The same shapes as on SQLite (store/layout.ts): ours, an earlier version's, another table's. */
export async function tableShape(client: Client, table: string): Promise<TableShape> {
  return shapeOf(await columnsOf(client, table));
}

/**
 * Creates the table and its indexes, or adds the columns an earlier
 * version's table lacks, under a transaction-scoped advisory lock: `CREATE TABLE IF
 * NOT EXISTS` alone races on PostgreSQL (two sessions both pass the check and
 * one fails on pg_type's unique index, 23505), so ten processes starting at
 * once queue on the lock and each looks again once it holds it.
 */
export async function setupTable(client: Client, table: string): Promise<'missing' | 'old' | 'ok'> {
  const seen = await tableShape(client, table);
  if (seen === 'ok') {
    await ensureMarks(client, table);
    return 'ok';
  }
  if (seen === 'other') throw otherShape(table);
  const t = quoted(table);
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${lockKey('schema')})`, [table]);
    const shape = await tableShape(client, table);
    if (shape === 'other') throw otherShape(table);
    if (shape === 'old') {
      // Adding a column without a default rewrites nothing: instant on any
      // size. The indexes added below each read the table once, under this
      // transaction's locks: writes to the table wait for them (docs/owners.md).
      for (const column of missingColumns(await columnsOf(client, table)))
        await client.query(`ALTER TABLE ${t} ADD COLUMN ${column} ${COLUMN_TYPES[column]}`);
      // Earlier versions indexed every row's touched_at; it now indexes only
      // the sessions on the app's maxAge (created again below).
      await client.query(`DROP INDEX IF EXISTS "${indexName(table, 'touched_at')}"`);
    }
    if (shape === 'missing') {
      // fillfactor: a fifth of each page left free, so that a write that
      // changes no indexed column (a patch inside touchAfter: statements.ts)
      // is a HOT update, its new version on the same page and no index entry.
      await client.query(`CREATE TABLE ${t} (
        sid_hash bytea PRIMARY KEY,
        data jsonb NOT NULL,
        created_at bigint NOT NULL,
        touched_at bigint NOT NULL,
        owner text,
        renewed_to bytea,
        max_age bigint
      ) WITH (fillfactor = 80)`);
    }
    if (shape !== 'ok') {
      // One index per way a session dies, for the sweep (statements.ts,
      // deadConditions): the sessions on the app's maxAge by touched_at
      // ('relative') or created_at ('fixed'), every session by created_at
      // (maxLifetime), and the sessions
      // with a lifetime of their own by their expiry under each timestamp
      // rule — partial, so each row is in the index its expiry is read from.
      // The owner index is partial too: sessions without an owner cost it nothing.
      await client.query(`CREATE INDEX IF NOT EXISTS "${indexName(table, 'touched_at')}" ON ${t} (touched_at) WHERE max_age IS NULL`);
      await client.query(`CREATE INDEX IF NOT EXISTS "${indexName(table, 'created_at')}" ON ${t} (created_at)`);
      await client.query(`CREATE INDEX IF NOT EXISTS "${indexName(table, 'app_created')}" ON ${t} (created_at) WHERE max_age IS NULL`);
      await client.query(
        `CREATE INDEX IF NOT EXISTS "${indexName(table, 'own_touched')}" ON ${t} ((touched_at + max_age)) WHERE max_age IS NOT NULL`,
      );
      await client.query(
        `CREATE INDEX IF NOT EXISTS "${indexName(table, 'own_created')}" ON ${t} ((created_at + max_age)) WHERE max_age IS NOT NULL`,
      );
      // The planner reads no statistics from a partial index's expression:
      // without these it guesses a third of the rows match, and may read the
      // whole partial index and sort it for every sweep batch instead of the
      // range of dead ones (expressions in statistics: PostgreSQL 14).
      const { rows } = await client.query<{ ok: boolean }>(`SELECT current_setting('server_version_num')::int >= 140000 AS ok`);
      if (rows[0].ok) {
        for (const base of ['touched', 'created']) {
          await client.query(
            `CREATE STATISTICS IF NOT EXISTS "${indexName(table, `own_${base}_stats`)}" ON ((${base}_at + max_age)) FROM ${t}`,
          );
        }
      }
      await client.query(`CREATE INDEX IF NOT EXISTS "${indexName(table, 'owner')}" ON ${t} (owner, touched_at) WHERE owner IS NOT NULL`);
    }
    await createMarks(client, table);
    await client.query('COMMIT');
    return shape as 'missing' | 'old' | 'ok';
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * The batch marks: each write batch of the store inserts its random id here in
 * its own transaction (engine.ts), so whether a batch whose COMMIT reply was
 * lost committed is read from the data itself, which a failover carries to
 * the new primary or not with the batch — unlike a transaction id, which a
 * promoted standby that never saw the batch can hand out again. `at` (epoch
 * ms, server clock) lets the sweep forget marks no replay can ask about.
 */
export const marksTable = (table: string) => indexName(table, 'batches');

/** How long past its batch's requestTimeout a mark is kept (clock differences between a primary and its successor). */
export const MARKS_KEPT_MS = 5 * 60_000;

/**
 * The marks table as it stands: 'ok' (exactly our two columns), 'missing',
 * or 'other' (another table took the name: never written to, never dropped).
 */
async function marksShape(client: Client, table: string): Promise<'ok' | 'missing' | 'other'> {
  // From the catalog, not information_schema (which hides the columns of a
  // table the role holds no privilege on: that would read as missing). Found
  // as the statements find it (search_path); a view is not ours.
  const { rows } = await client.query<{ kind: string; columns: string }>(
    `SELECT c.relkind::text AS kind, coalesce(string_agg(a.attname::text, ',' ORDER BY a.attname), '') AS columns
    FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.oid = to_regclass($1) GROUP BY c.relkind`,
    [quoted(marksTable(table))],
  );
  if (rows.length === 0) return 'missing';
  return rows[0].kind === 'r' && rows[0].columns === 'at,id' ? 'ok' : 'other';
}

function otherMarks(table: string): TableExistsError {
  return new TableExistsError(
    `a table named "${marksTable(table)}" exists with other columns than the batch marks of the session table "${table}" (id, at); choose another table name or drop that table`,
  );
}

async function createMarks(client: Client, table: string): Promise<void> {
  const shape = await marksShape(client, table);
  if (shape === 'other') throw otherMarks(table);
  if (shape === 'missing')
    await client.query(
      `CREATE TABLE ${quoted(marksTable(table))} (id uuid NOT NULL, at bigint NOT NULL, CONSTRAINT "${indexName(table, 'batches_mark')}" PRIMARY KEY (id))`,
    );
}

/** Creates the marks table when missing (a table set up by an earlier version), under the schema lock. */
export async function ensureMarks(client: Client, table: string): Promise<void> {
  const shape = await marksShape(client, table);
  if (shape === 'other') throw otherMarks(table);
  if (shape === 'ok') return;
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${lockKey('schema')})`, [table]);
    await createMarks(client, table);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * `<table>_<suffix>`, or — past PostgreSQL's 63-byte identifiers, where
 * truncation would give two indexes one name and IF NOT EXISTS would skip the
 * second silently — a shortened table name with a hash of the whole.
 */
export function indexName(table: string, suffix: string): string {
  const name = `${table}_${suffix}`;
  if (name.length <= 63) return name;
  const tag = createHash('sha256').update(table).digest('hex').slice(0, 8);
  return `${table.slice(0, 63 - suffix.length - tag.length - 2)}_${tag}_${suffix}`;
}

export async function requireTable(client: Client, table: string, database: string): Promise<void> {
  const problem = unusable(await tableShape(client, table), table, redactUrl(database));
  if (problem) throw problem;
  const marks = await marksShape(client, table);
  if (marks === 'other') throw otherMarks(table);
  if (marks === 'missing')
    throw new TableNotExistsError(
      `the batch marks table "${marksTable(table)}" of the session table "${table}" does not exist in ${redactUrl(database)} (a table set up by an earlier version); run \`supervised-sessions setup\` or start with autoSetup: true`,
    );
  await requireMarksGrants(client, table, database);
}

/** The role may read, insert and delete batch marks: said at start, never at the first write. */
export async function requireMarksGrants(client: Client, table: string, database: string): Promise<void> {
  // Each privilege on its own: given several, has_table_privilege answers whether any is held.
  const { rows } = await client.query<{ ok: boolean }>(
    `SELECT has_table_privilege($1, 'SELECT') AND has_table_privilege($1, 'INSERT') AND has_table_privilege($1, 'DELETE') AS ok`,
    [quoted(marksTable(table))],
  );
  if (!rows[0].ok)
    throw new ConfigError(
      'database',
      `invalid config "database": the role in ${redactUrl(database)} needs SELECT, INSERT and DELETE on "${marksTable(table)}" (the batch marks of "${table}"); grant them`,
    );
}

async function onSessionTable(client: Client, table: string, sql: string): Promise<boolean> {
  const shape = await tableShape(client, table);
  if (shape === 'missing') return false;
  if (shape === 'other') throw otherShape(table);
  await client.query(sql);
  return true;
}

export function clearTable(client: Client, table: string): Promise<boolean> {
  return onSessionTable(client, table, `DELETE FROM ${quoted(table)}`);
}

export async function dropTable(client: Client, table: string): Promise<boolean> {
  // The marks table only when it is ours (another table may have its name).
  const marks = (await marksShape(client, table)) === 'ok' ? `; DROP TABLE ${quoted(marksTable(table))}` : '';
  return onSessionTable(client, table, `DROP TABLE ${quoted(table)}${marks}`);
}
