// The admin calls' and the command line's work on PostgreSQL, on a short-lived
// connection of their own (never the store actor's).
import { expiresAt, type ExpiryPolicy } from '../../store/expiry.ts';
import { digestFromHandle, handleFromDigest } from '../../store/ids.ts';
import { quoted } from '../../store/layout.ts';
import { closeClient, connect, unavailableError, type Client } from './connection.ts';
import { liveSql, statements } from './statements.ts';
import * as schema from './schema.ts';
import { closePostgres, sweepPostgres } from './sweeper.ts';
import type { EngineAdmin } from '../engine.ts';

export async function withClient<T>(database: string, work: (client: Client) => Promise<T>, timeoutMs = 10_000): Promise<T> {
  let client: Client;
  try {
    client = await connect({ database, timeoutMs, applicationName: 'supervised-sessions cli' });
  } catch (error) {
    throw unavailableError(error, database, 'cannot connect to the PostgreSQL server');
  }
  try {
    return await work(client);
  } finally {
    await closeClient(client);
  }
}

/** Live and dead rows by the server's clock, and the table's size on the server (indexes and TOAST included). */
export async function tableStats(
  client: Client,
  table: string,
  policy: ExpiryPolicy,
): Promise<{ live: number; dead: number; bytes: number }> {
  const t = quoted(table);
  const { rows } = await client.query<{ live: number; dead: number; bytes: number }>(
    `SELECT count(*) FILTER (WHERE ${liveSql(policy)} AND renewed_to IS NULL) AS live, count(*) FILTER (WHERE NOT ${liveSql(policy)}) AS dead, pg_total_relation_size($1::regclass) AS bytes FROM ${t}`,
    [t],
  );
  const { live, dead, bytes } = rows[0];
  return { live: Number(live), dead: Number(dead), bytes: Number(bytes) };
}

export async function ownerSessions(
  client: Client,
  table: string,
  policy: ExpiryPolicy,
  maxBytes: number,
  owner: string,
): Promise<Array<{ handle: string; createdAt: number; touchedAt: number; expiresAt: number }>> {
  const { rows } = await client.query<{ sid_hash: Buffer; created_at: number; touched_at: number; max_age: number | null }>(
    statements(table, policy, maxBytes).sessionsOf,
    [owner],
  );
  return rows.map((row) => ({
    handle: handleFromDigest(row.sid_hash),
    createdAt: row.created_at,
    touchedAt: row.touched_at,
    expiresAt: expiresAt(policy, row),
  }));
}

export async function revokeOwner(
  client: Client,
  table: string,
  policy: ExpiryPolicy,
  maxBytes: number,
  owner: string,
  digest: Buffer | null | undefined,
): Promise<number> {
  const sql = statements(table, policy, maxBytes);
  // undefined: every session of the owner; null: a handle that names none.
  if (digest === null) return 0;
  // Under the owner's lock, as the store does (statements.ts, ownerKey): a
  // renew on an app server at that moment is seen under its new id.
  await client.query('BEGIN');
  try {
    await client.query(sql.lockOwner, [owner]);
    const { rows } =
      digest === undefined
        ? await client.query<{ live: boolean }>(sql.revokeAll, [owner, null])
        : await client.query<{ live: boolean }>(sql.revoke, [digest, owner]);
    await client.query('COMMIT');
    return rows.filter((row) => row.live).length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** The engine's administration (engines/engine.ts), each call on a connection of its own. */
export const postgresAdmin: EngineAdmin = {
  setup: (at) => withClient(at.database, (client) => schema.setupTable(client, at.table)),
  async clear(at, count) {
    return withClient(at.database, async (client) => {
      const shape = count !== null ? await schema.tableShape(client, at.table) : null;
      const before = count !== null && (shape === 'ok' || shape === 'old') ? await tableStats(client, at.table, count) : null;
      if (!(await schema.clearTable(client, at.table))) return 'no-table';
      return { deleted: before && before.live + before.dead };
    });
  },
  drop: (at) => withClient(at.database, async (client) => ((await schema.dropTable(client, at.table)) ? 'dropped' : 'no-table')),
  stats: (at) =>
    withClient(at.database, async (client) => {
      await schema.requireTable(client, at.table, at.database);
      return tableStats(client, at.table, at.policy);
    }),
  sessions: (at, owner) =>
    withClient(at.database, async (client) => {
      await schema.requireTable(client, at.table, at.database);
      return ownerSessions(client, at.table, at.policy, at.maxSessionBytes, owner);
    }),
  revoke: (at, owner, handle) =>
    withClient(at.database, async (client) => {
      await schema.requireTable(client, at.table, at.database);
      const digest = handle === undefined ? undefined : digestFromHandle(handle);
      return revokeOwner(client, at.table, at.policy, at.maxSessionBytes, owner, digest);
    }),
  async sweep(at) {
    await withClient(at.database, (client) => schema.requireTable(client, at.table, at.database));
    // The cleaner's sweep, under the same lock: one sweeper at a time across the fleet.
    try {
      const { deleted, skipped } = await sweepPostgres({
        database: at.database,
        table: at.table,
        policy: at.policy,
        timeoutMs: 10_000,
        abort: new Int32Array(new SharedArrayBuffer(4)),
      });
      return { deleted, skipped };
    } finally {
      await closePostgres();
    }
  },
};
