// The helpers' and the command line's work on PostgreSQL, on a short-lived
// connection of their own (never the store owner's).
import { expiresAt, type ExpiryPolicy } from '../expiry.ts';
import { handleFromDigest } from '../ids.ts';
import { quoted } from '../schema.ts';
import { closeClient, connect, unavailableError, type Client } from './connection.ts';
import { liveSql, statements } from './statements.ts';

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
export async function tableStats(client: Client, table: string, policy: ExpiryPolicy): Promise<{ live: number; dead: number; bytes: number }> {
  const t = quoted(table);
  const { rows } = await client.query<{ live: number; dead: number; bytes: number }>(
    `SELECT count(*) FILTER (WHERE ${liveSql(policy)} AND renewed_to IS NULL) AS live, count(*) FILTER (WHERE NOT ${liveSql(policy)}) AS dead, pg_total_relation_size($1::regclass) AS bytes FROM ${t}`, [t]);
  const { live, dead, bytes } = rows[0];
  return { live: Number(live), dead: Number(dead), bytes: Number(bytes) };
}

export async function ownerSessions(client: Client, table: string, policy: ExpiryPolicy, maxBytes: number, owner: string): Promise<Array<{ handle: string; createdAt: number; touchedAt: number; expiresAt: number }>> {
  const { rows } = await client.query<{ sid_hash: Buffer; created_at: number; touched_at: number; max_age: number | null }>(statements(table, policy, maxBytes).sessionsOf, [owner]);
  return rows.map((row) => ({ handle: handleFromDigest(row.sid_hash), createdAt: row.created_at, touchedAt: row.touched_at, expiresAt: expiresAt(policy, row) }));
}

export async function revokeOwner(client: Client, table: string, policy: ExpiryPolicy, maxBytes: number, owner: string, digest: Buffer | null | undefined): Promise<number> {
  const sql = statements(table, policy, maxBytes);
  // undefined: every session of the owner; null: a handle that names none.
  if (digest === null) return 0;
  // Under the owner's lock, as the store does (statements.ts, ownerKey): a
  // renew on an app server at that moment is seen under its new id.
  await client.query('BEGIN');
  try {
    await client.query(sql.lockOwner, [owner]);
    const { rows } = digest === undefined
      ? await client.query<{ live: boolean }>(sql.revokeAll, [owner, null])
      : await client.query<{ live: boolean }>(sql.revoke, [digest, owner]);
    await client.query('COMMIT');
    return rows.filter((row) => row.live).length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
