// One contract suite, two engines (undici's model: one suite, several
// implementations). test/run.ts runs the contract suites once per engine;
// SUPERVISED_SESSIONS_TEST_ENGINE=postgres selects PostgreSQL, on the server
// run.ts started (SUPERVISED_SESSIONS_TEST_PG_URL) or, run alone, on one this
// process starts itself and stops at exit.
import { test } from 'uvu';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type PostgresServer } from './postgres-server.ts';

export type Engine = 'sqlite' | 'postgres';
export const ENGINE: Engine = process.env.SUPERVISED_SESSIONS_TEST_ENGINE === 'postgres' ? 'postgres' : 'sqlite';
export const onPostgres = ENGINE === 'postgres';

let own: PostgresServer | null = null;
let adminUrl: Promise<string> | null = null;
let processDb: Promise<string> | null = null;

/** The superuser URL of the test server (starting one for this process when run.ts did not). */
export function postgresAdminUrl(): Promise<string> {
  adminUrl ??= (async () => {
    const shared = process.env.SUPERVISED_SESSIONS_TEST_PG_URL;
    if (shared) return shared;
    own = await startPostgres();
    return own.url;
  })();
  return adminUrl;
}

/** This process's server, when it started one (drills stop and restart it). */
export function ownServer(): PostgresServer | null {
  return own;
}

export async function adminQuery(sql: string, values: unknown[] = [], url?: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url ?? (await postgresAdminUrl()) });
  client.on('error', () => {});
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** A database of this test process's own on the test server (suites run side by side in isolation). */
export function postgresDatabase(): Promise<string> {
  processDb ??= (async () => {
    const admin = await postgresAdminUrl();
    const name = `test_${process.pid}_${Date.now().toString(36)}`;
    await adminQuery(`CREATE DATABASE ${name}`);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    return url.toString();
  })();
  return processDb;
}

let counter = 0;

/**
 * Where a test keeps its sessions: a file in `dir` on SQLite; on PostgreSQL,
 * a table of its own (fresh name) in this process's database.
 */
export async function storeLocation(dir: string, name = 'sessions'): Promise<{ database: string; table?: string }> {
  if (!onPostgres) return { database: join(dir, `${name}.db`) };
  return {
    database: await postgresDatabase(),
    table: `t${++counter}_${name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 20)}_${Math.random().toString(36).slice(2, 8)}`,
  };
}

/** A test that only means something on SQLite (a file on disk, SQLite's own plans or locks); its PostgreSQL counterpart is written beside it. */
export function sqliteOnly(name: string, body: () => unknown): void {
  if (!onPostgres) test(name, body as () => void);
}

/** A test of the PostgreSQL engine alone. */
export function postgresOnly(name: string, body: () => unknown): void {
  if (onPostgres) test(name, body as () => void);
}
