// One contract suite, several engines (undici's model: one suite, several
// implementations). test/run.ts runs the contract suites once per engine;
// SUPERVISED_SESSIONS_TEST_ENGINE=postgres selects PostgreSQL, on the server
// run.ts started (SUPERVISED_SESSIONS_TEST_PG_URL) or, run alone, on one this
// process starts itself and stops at exit; =redis selects Redis the same way
// (SUPERVISED_SESSIONS_TEST_REDIS_URL).
import { test } from 'uvu';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { startPostgres, type PostgresServer } from './postgres-server.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

export type Engine = 'sqlite' | 'postgres' | 'redis';
const chosen = process.env.SUPERVISED_SESSIONS_TEST_ENGINE;
export const ENGINE: Engine = chosen === 'postgres' || chosen === 'redis' ? chosen : 'sqlite';
export const onPostgres = ENGINE === 'postgres';
export const onRedis = ENGINE === 'redis';
/** Times come from the database server's clock (the app's test clock cannot move them): tests sleep instead. */
export const serverClock = ENGINE !== 'sqlite';

let ownRedis: RedisServer | null = null;
let redisUrl: Promise<string> | null = null;

/** The URL of the Redis test server (starting one for this process when run.ts did not). */
export function redisTestUrl(): Promise<string> {
  redisUrl ??= (async () => {
    const shared = process.env.SUPERVISED_SESSIONS_TEST_REDIS_URL;
    if (shared) return shared;
    ownRedis = await startRedis();
    return ownRedis.url;
  })();
  return redisUrl;
}

/** Runs Redis commands on a client of the test's own (closed after). */
export async function redisCommands<T>(work: (send: (...args: string[]) => Promise<unknown>) => Promise<T>, url?: string): Promise<T> {
  const client = createClient({ url: url ?? (await redisTestUrl()), RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work((...args) => client.sendCommand(args));
  } finally {
    client.destroy();
  }
}

/** Every key of a store on Redis with everything it holds, as text (names, fields, values). */
export function redisDump(table: string, url?: string): Promise<string[]> {
  return redisCommands(async (send) => {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = (await send('SCAN', cursor, 'MATCH', `${table}:*`, 'COUNT', '1000')) as [string, string[]];
      cursor = next;
      for (const key of found) {
        const type = (await send('TYPE', key)) as string;
        const content =
          type === 'hash' ? await send('HGETALL', key) : type === 'zset' ? await send('ZRANGE', key, '0', '-1') : await send('GET', key);
        out.push(key, ...(Array.isArray(content) ? content.map(String) : [String(content)]));
      }
    } while (cursor !== '0');
    return out;
  }, url);
}

// Moves a session's stored times ms into the past, as the other engines'
// tests do with an UPDATE: its expiry too (a key whose expiry is then past is
// gone, as Redis would have expired it), and its score in an owner's index.
const AGE = `
local ms = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'hash' and redis.call('HEXISTS', key, 'c') == 1 then
    redis.call('HINCRBY', key, 'c', -ms)
    redis.call('HINCRBY', key, 't', -ms)
    local owner = redis.call('HGET', key, 'o')
    local member = string.match(key, ':s:(.*)$')
    if owner then
      local ok = string.sub(key, 1, #key - #member - 2) .. 'o:' .. owner
      if redis.call('ZSCORE', ok, member) then redis.call('ZINCRBY', ok, -ms, member) end
    end
    local left = redis.call('PTTL', key)
    if left > 0 then
      if left - ms > 0 then redis.call('PEXPIRE', key, left - ms) else redis.call('DEL', key) end
    end
  end
end
return 0`;

/** Ages the sessions of a store on Redis (every one, or those with these SHA-256 digests). */
export function redisAge(table: string, ms: number, digests?: Buffer[], url?: string): Promise<void> {
  return redisCommands(async (send) => {
    let keys: string[];
    if (digests) keys = digests.map((d) => `${table}:s:${d.toString('base64url')}`);
    else {
      keys = [];
      let cursor = '0';
      do {
        const [next, found] = (await send('SCAN', cursor, 'MATCH', `${table}:s:*`, 'COUNT', '1000')) as [string, string[]];
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
    }
    if (keys.length > 0) await send('EVAL', AGE, String(keys.length), ...keys, String(ms));
  }, url);
}

/** Moves the renew time of a Redis store's tombstones ms into the past (their expiry stays). */
export function redisAgeTombstones(table: string, ms: number, url?: string): Promise<void> {
  return redisCommands(async (send) => {
    let cursor = '0';
    do {
      const [next, found] = (await send('SCAN', cursor, 'MATCH', `${table}:s:*`, 'COUNT', '1000')) as [string, string[]];
      cursor = next;
      for (const key of found) if (Number(await send('HEXISTS', key, 'r')) === 1) await send('HINCRBY', key, 't', String(-ms));
    } while (cursor !== '0');
  }, url);
}

/**
 * Holds back every write to the Redis server (CLIENT PAUSE WRITE, scripts
 * included) until the returned release is called: the outside lock of the
 * race tests, as SELECT … FOR UPDATE is on PostgreSQL.
 */
export async function redisPauseWrites(url?: string): Promise<() => Promise<void>> {
  const client = createClient({ url: url ?? (await redisTestUrl()), RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  // At most 5 s: a test that fails before releasing it does not stall the suites after it.
  await client.sendCommand(['CLIENT', 'PAUSE', '5000', 'WRITE']);
  return async () => {
    try {
      await client.sendCommand(['CLIENT', 'UNPAUSE']);
    } finally {
      client.destroy();
    }
  };
}

/** How many session keys a store on Redis holds (live, dead not yet expired, tombstones). */
export function redisSessionKeys(table: string, url?: string): Promise<number> {
  return redisDump(table, url).then((dump) => dump.filter((entry) => entry.startsWith(`${table}:s:`)).length);
}

/** This process's Redis server, when it started one. */
export function ownRedisServer(): RedisServer | null {
  return ownRedis;
}

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
  if (ENGINE === 'sqlite') return { database: join(dir, `${name}.db`) };
  return {
    database: onRedis ? await redisTestUrl() : await postgresDatabase(),
    table: `t${++counter}_${name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 20)}_${Math.random().toString(36).slice(2, 8)}`,
  };
}

/** A test that only means something on SQLite (a file on disk, SQLite's own plans or locks); its PostgreSQL counterpart is written beside it. */
export function sqliteOnly(name: string, body: () => unknown): void {
  if (ENGINE === 'sqlite') test(name, body as () => void);
}

/** A test of a SQL table (its layout, its upgrades, its plans): SQLite and PostgreSQL; Redis has no table. */
export function sqlOnly(name: string, body: () => unknown): void {
  if (!onRedis) test(name, body as () => void);
}

/** A test of the Redis engine alone. */
export function redisOnly(name: string, body: () => unknown): void {
  if (onRedis) test(name, body as () => void);
}

/** A test of the PostgreSQL engine alone. */
export function postgresOnly(name: string, body: () => unknown): void {
  if (onPostgres) test(name, body as () => void);
}
