// The public admin calls — setupStore, clearStore, dropStore: the mix
// session.setup/clear/drop tasks — on either engine.
import { existsSync } from 'node:fs';
import { resolveLocation, type StoreLocation } from './config.ts';
import { openDatabase } from './store/connection.ts';
import { clearTable, dropTable, setupTable } from './store/schema.ts';
import { isPostgresUrl } from './store/postgres/url.ts';

// The PostgreSQL side (and `pg` with it) is loaded only for a PostgreSQL URL:
// an app on SQLite never loads it.
const postgres = async () => {
  const [{ withClient }, pgSchema] = await Promise.all([import('./store/postgres/admin.ts'), import('./store/postgres/schema.ts')]);
  return { withClient, pgSchema };
};

// The `mix session.setup|clear|drop` tasks. They run on the caller's thread,
// on a short-lived connection of their own.

function withDatabase<T>(location: StoreLocation, work: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase({ database: location.database });
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** Creates the session table and its indexes; idempotent on a table of the right shape. */
export async function setupStore(options?: { database?: string; table?: string }): Promise<void> {
  const location = resolveLocation(options);
  if (isPostgresUrl(location.database)) {
    const { withClient, pgSchema } = await postgres();
    await withClient(location.database, (client) => pgSchema.setupTable(client, location.table));
    return;
  }
  withDatabase(location, (db) => setupTable(db, location.table));
}

/** Deletes every session; a missing table or database file is nothing to do. */
export async function clearStore(options?: { database?: string; table?: string }): Promise<void> {
  const location = resolveLocation(options);
  if (isPostgresUrl(location.database)) {
    const { withClient, pgSchema } = await postgres();
    await withClient(location.database, (client) => pgSchema.clearTable(client, location.table));
    return;
  }
  if (location.database !== ':memory:' && !existsSync(location.database)) return;
  withDatabase(location, (db) => clearTable(db, location.table));
}

/** Drops the session table; a missing table or database file is nothing to do. */
export async function dropStore(options?: { database?: string; table?: string }): Promise<void> {
  const location = resolveLocation(options);
  if (isPostgresUrl(location.database)) {
    const { withClient, pgSchema } = await postgres();
    await withClient(location.database, (client) => pgSchema.dropTable(client, location.table));
    return;
  }
  if (location.database !== ':memory:' && !existsSync(location.database)) return;
  withDatabase(location, (db) => dropTable(db, location.table));
}
