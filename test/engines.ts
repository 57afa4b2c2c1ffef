// One contract suite, several engines (undici's model: one suite, several
// implementations). test/run.ts runs the contract suites once per engine;
// SUPERVISED_SESSIONS_TEST_ENGINE=postgres selects PostgreSQL, on the server
// run.ts started (SUPERVISED_SESSIONS_TEST_PG_URL) or, run alone, on one this
// process starts itself and stops at exit; =redis selects Redis the same way
// (SUPERVISED_SESSIONS_TEST_REDIS_URL).
import { test } from 'uvu';
import { join } from 'node:path';
import pg from 'pg';
import { createClient, createCluster } from 'redis';
import { startPostgres, type PostgresServer } from './postgres-server.ts';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from './redis-server.ts';

export type Engine = 'sqlite' | 'postgres' | 'redis';
const chosen = process.env.SUPERVISED_SESSIONS_TEST_ENGINE;
export const ENGINE: Engine = chosen === 'postgres' || chosen === 'redis' ? chosen : 'sqlite';
export const onPostgres = ENGINE === 'postgres';
export const onRedis = ENGINE === 'redis';
/** Times come from the database server's clock (the app's test clock cannot move them): tests sleep instead. */
export const serverClock = ENGINE !== 'sqlite';

let ownRedis: RedisServer | RedisCluster | null = null;
let redisUrl: Promise<string> | null = null;
/** The Redis runs on a Redis Cluster (run.ts sets it with the cluster's URL; run alone, this process starts one). */
export const onRedisCluster = onRedis && process.env.SUPERVISED_SESSIONS_TEST_REDIS_CLUSTER === '1';

/** The URL of the Redis test server or cluster (starting one for this process when run.ts did not). */
export function redisTestUrl(): Promise<string> {
  redisUrl ??= (async () => {
    const shared = process.env.SUPERVISED_SESSIONS_TEST_REDIS_URL;
    if (shared) return shared;
    ownRedis = onRedisCluster ? await startRedisCluster() : await startRedis();
    return ownRedis.url;
  })();
  return redisUrl;
}

type Send = (...args: string[]) => Promise<unknown>;

/**
 * Runs Redis commands on a client of the test's own (closed after): `send`
 * (on a cluster, to the node of the command's first key) and `scan` (every
 * key matching a pattern, on every primary).
 */
export async function redisCommands<T>(
  work: (send: Send, scan: (pattern: string) => Promise<string[]>, nodes: () => Promise<Send[]>) => Promise<T>,
  url?: string,
): Promise<T> {
  const target = url ?? (await redisTestUrl());
  if (target.startsWith('redis+cluster://')) {
    const cluster = createCluster({
      RESP: 2,
      rootNodes: target
        .slice('redis+cluster://'.length)
        .split(',')
        .map((hostPort) => ({ url: `redis://${hostPort}` })),
    });
    cluster.on('error', () => {});
    await cluster.connect();
    const nodes = async (): Promise<Send[]> =>
      Promise.all(
        cluster.masters.map(async (node) => {
          const client = await cluster.nodeClient(node);
          return (...args: string[]) => client.sendCommand(args);
        }),
      );
    try {
      return await work(
        // The node of the command's first key (EVAL's comes after the script and the key count, MEMORY USAGE's after USAGE).
        (...args) => cluster.sendCommand(/^EVAL/i.test(args[0]) ? args[3] : /^MEMORY$/i.test(args[0]) ? args[2] : args[1], false, args),
        async (pattern) => (await Promise.all((await nodes()).map((send) => scanWith(send, pattern)))).flat(),
        nodes,
      );
    } finally {
      cluster.destroy();
    }
  }
  const client = createClient({ url: target, RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  const send: Send = (...args) => client.sendCommand(args);
  try {
    return await work(
      send,
      (pattern) => scanWith(send, pattern),
      async () => [send],
    );
  } finally {
    client.destroy();
  }
}

async function scanWith(send: Send, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = (await send('SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')) as [string, string[]];
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return [...new Set(keys)];
}

/** Every key of a store on Redis with everything it holds, as text (names, fields, values). */
export function redisDump(table: string, url?: string): Promise<string[]> {
  return redisCommands(async (send, scan) => {
    const out: string[] = [];
    for (const key of await scan(`${table}:*`)) {
      const type = (await send('TYPE', key)) as string;
      const content =
        type === 'hash' ? await send('HGETALL', key) : type === 'zset' ? await send('ZRANGE', key, '0', '-1') : await send('GET', key);
      out.push(key, ...(Array.isArray(content) ? content.map(String) : [String(content)]));
    }
    return out;
  }, url);
}

// Moves a session's stored times ms into the past, as the other engines'
// tests do with an UPDATE: its expiry too (a key whose expiry is then past is
// gone, as Redis would have expired it), and its score in an owner's index
// (on a cluster, the index of the session's group: '{g}' after s:).
const AGE = `
local ms = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'hash' and redis.call('HEXISTS', key, 'c') == 1 then
    redis.call('HINCRBY', key, 'c', -ms)
    redis.call('HINCRBY', key, 't', -ms)
    local owner = redis.call('HGET', key, 'o')
    local head, group, member = string.match(key, '^(.*):s:({[^}]*})(.*)$')
    if not head then
      head, member = string.match(key, '^(.*):s:(.*)$')
      group = ''
    end
    if owner then
      local ok = head .. ':o:' .. group .. owner
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
  return redisCommands(async (send, scan) => {
    let keys = await scan(`${table}:s:*`);
    if (digests) {
      const wanted = new Set(digests.map((d) => d.toString('base64url')));
      keys = keys.filter((key) => wanted.has(key.replace(/^.*:s:(\{[^}]*\})?/, '')));
    }
    // One key per call: on a cluster, the keys of one script must share a slot.
    for (const key of keys) await send('EVAL', AGE, '1', key, String(ms));
  }, url);
}

/** Moves the renew time of a Redis store's tombstones ms into the past (their expiry stays). */
export function redisAgeTombstones(table: string, ms: number, url?: string): Promise<void> {
  return redisCommands(async (send, scan) => {
    for (const key of await scan(`${table}:s:*`)) {
      if (Number(await send('HEXISTS', key, 'r')) === 1) await send('HINCRBY', key, 't', String(-ms));
    }
  }, url);
}

/**
 * Holds back every write to the Redis server (CLIENT PAUSE WRITE, scripts
 * included; on a cluster, on every primary) until the returned release is
 * called: the outside lock of the race tests, as SELECT … FOR UPDATE is on
 * PostgreSQL.
 */
export async function redisPauseWrites(url?: string): Promise<() => Promise<void>> {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let paused: () => void = () => {};
  const pausedNow = new Promise<void>((resolve) => {
    paused = resolve;
  });
  const done = redisCommands(async (_send, _scan, nodes) => {
    const all = await nodes();
    // At most 5 s: a test that fails before releasing it does not stall the suites after it.
    for (const send of all) await send('CLIENT', 'PAUSE', '5000', 'WRITE');
    paused();
    await released;
    for (const send of all) await send('CLIENT', 'UNPAUSE');
  }, url);
  await Promise.race([pausedNow, done]);
  return async () => {
    release();
    await done;
  };
}

/** How many session keys a store on Redis holds (live, dead not yet expired, tombstones). */
export function redisSessionKeys(table: string, url?: string): Promise<number> {
  return redisCommands(async (_send, scan) => (await scan(`${table}:s:*`)).length, url);
}

/** This process's Redis server, when it started one (not a cluster). */
export function ownRedisServer(): RedisServer | null {
  return ownRedis !== null && 'port' in ownRedis ? ownRedis : null;
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
    // Through PgBouncer (run.ts): the store's URL goes to the pooler, which passes every database on.
    const bouncer = process.env.SUPERVISED_SESSIONS_TEST_PGBOUNCER;
    if (bouncer) return `postgres://postgres@127.0.0.1:${bouncer}/${name}?pgbouncer=true`;
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
