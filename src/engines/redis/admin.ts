// The admin calls' and the command line's work on Redis, on a short-lived
// client of their own (never the store actor's).
import { createHash } from 'node:crypto';
import { digestFromHandle } from '../../store/ids.ts';
import type { AdminSettings, EngineAdmin } from '../engine.ts';
import { closeClient, connect, unavailableError, type Conn } from './connection.ts';
import { evalBySlot, eachPage, evalScript } from './engine.ts';
import { clearStore, dropStore, requireStore, setupStore, storeExists } from './schema.ts';
import { keys, storeScript } from './script.ts';
import { isClusterUrl } from './url.ts';
import { closeRedis, sweepRedis } from './sweeper.ts';

async function withClient<T>(database: string, work: (client: Conn) => Promise<T>, timeoutMs = 10_000): Promise<T> {
  let client: Conn;
  try {
    client = await connect({ database, timeoutMs, name: 'supervised-sessions-cli' });
  } catch (error) {
    throw unavailableError(error, database, 'cannot connect to the Redis server');
  }
  try {
    return await work(client);
  } catch (error) {
    if ((error as { code?: unknown }).code?.toString().startsWith('ERR_SESSION')) throw error;
    throw unavailableError(error, database, 'the Redis server failed the command');
  } finally {
    await closeClient(client);
  }
}

function scriptFor(at: AdminSettings): { sha: string; script: string } {
  const script = storeScript(at.table, at.policy, { maxBytes: at.maxSessionBytes, cluster: isClusterUrl(at.database) });
  return { script, sha: createHash('sha1').update(script).digest('hex') };
}

/** The owner's index keys: one on a server; on a cluster, one per group its list names. */
async function ownerKeys(client: Conn, table: string, owner: string): Promise<string[]> {
  const k = keys(table);
  if (!client.cluster) return [k.owner(owner)];
  const groups = (await client.send(k.groups(owner), ['ZRANGE', k.groups(owner), '0', '-1'])) as string[];
  return groups.map((group) => k.owner(owner, group));
}

/** MEMORY USAGE of at most this many keys, scaled up to the whole store. */
const SAMPLED = 200;

export const redisAdmin: EngineAdmin = {
  setup: (at) => withClient(at.database, (client) => setupStore(client, at.table)),
  clear: (at) =>
    withClient(at.database, async (client) => {
      if (!(await storeExists(client, at.table))) return 'no-table';
      return { deleted: await clearStore(client, at.table) };
    }),
  drop: (at) => withClient(at.database, async (client) => ((await dropStore(client, at.table)) ? 'dropped' : 'no-table')),
  stats: (at) =>
    withClient(at.database, async (client) => {
      await requireStore(client, at.table, at.database);
      const { sha, script } = scriptFor(at);
      let live = 0;
      let dead = 0;
      let keysSeen = 0;
      let sampledBytes = 0;
      let sampled = 0;
      const k = keys(at.table);
      for (const pattern of [k.sessions, k.owners, k.directories]) {
        await eachPage(client, pattern, async (page) => {
          keysSeen += page.length;
          if (pattern === k.sessions) {
            for (const [l, d] of (await evalBySlot(client, sha, script, page, ['page', 'stats'], at.table)) as number[][]) {
              live += Number(l);
              dead += Number(d);
            }
          }
          for (const key of page) {
            if (sampled >= SAMPLED) break;
            const bytes = await client.send(key, ['MEMORY', 'USAGE', key]);
            if (bytes !== null) {
              sampledBytes += Number(bytes);
              sampled++;
            }
          }
        });
      }
      const bytes = sampled === 0 ? 0 : Math.round((sampledBytes / sampled) * keysSeen);
      return { live, dead, bytes };
    }),
  sessions: (at, owner) =>
    withClient(at.database, async (client) => {
      await requireStore(client, at.table, at.database);
      const { sha, script } = scriptFor(at);
      const rows: string[][] = [];
      for (const ownerKey of await ownerKeys(client, at.table, owner)) {
        rows.push(...((await evalScript(client, sha, script, [ownerKey], ['sessionsOf', owner])) as string[][]));
      }
      return rows
        .map((row) => ({ handle: `h${row[0]}`, createdAt: Number(row[1]), touchedAt: Number(row[2]), expiresAt: Number(row[3]) }))
        .sort((a, b) => b.touchedAt - a.touchedAt);
    }),
  revoke: (at, owner, handle) =>
    withClient(at.database, async (client) => {
      await requireStore(client, at.table, at.database);
      const { sha, script } = scriptFor(at);
      const digest = handle === undefined ? null : digestFromHandle(handle);
      if (handle !== undefined && digest === null) return 0;
      let ended = 0;
      for (const ownerKey of await ownerKeys(client, at.table, owner)) {
        const args = digest === null ? ['revokeAll', owner, '', '0'] : ['revoke', owner, digest.toString('base64url')];
        ended += Number(await evalScript(client, sha, script, [ownerKey], args));
      }
      return ended;
    }),
  async sweep(at) {
    await withClient(at.database, (client) => requireStore(client, at.table, at.database));
    try {
      const { deleted, skipped } = await sweepRedis({
        database: at.database,
        table: at.table,
        policy: at.policy,
        timeoutMs: 10_000,
        abort: new Int32Array(new SharedArrayBuffer(4)),
      });
      return { deleted, skipped };
    } finally {
      await closeRedis();
    }
  },
};
