// The cleaner's work on Redis, in the cleaner's thread, on a client of its
// own. A dead session's key lingers after its expiry (script.ts, lingerMs)
// until the sweep deletes it (or Redis expires it, when no cleaner runs);
// the sweep also prunes the owners' indexes (members whose session expired,
// ended or changed owner — never relying on keyspace notifications) and
// counts the live sessions. One sweeper at a time across every process
// sharing the store: a lock key with a TTL (SET NX PX).
import { randomUUID, createHash } from 'node:crypto';
import type { ExpiryPolicy } from '../../store/expiry.ts';
import type { SweepResult, SweepTask } from '../engine.ts';
import { toWire } from '../../errors.ts';
import { closeClient, connect, isConnectionLoss, unavailableError, type Conn } from './connection.ts';
import { evalBySlot, eachPage, groupIn } from './engine.ts';
import { requireStore } from './schema.ts';
import { keys, storeScript } from './script.ts';
import { isClusterUrl } from './url.ts';

let client: Conn | null = null;
let opened = '';

async function connection(database: string, timeoutMs: number): Promise<Conn> {
  if (client && opened === database && client.isOpen) return client;
  await closeClient(client);
  client = null;
  client = await connect({ database, timeoutMs, name: 'supervised-sessions-cleaner' });
  opened = database;
  return client;
}

/** How long the lock outlives a sweeper that died holding it. */
export const LOCK_TTL_MS = 30_000;

// Deletes the lock only if it is still this sweep's.
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
// Extends the lock, page by page, while it is still this sweep's: 0 when another process holds it now.
const EXTEND = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

export async function sweepRedis(task: {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  timeoutMs: number;
  abort: Int32Array;
}): Promise<{ deleted: number; skipped: boolean; live: number | null }> {
  const k = keys(task.table);
  const script = storeScript(task.table, task.policy, { cluster: isClusterUrl(task.database) });
  const sha = createHash('sha1').update(script).digest('hex');
  const token = randomUUID();
  try {
    const c = await connection(task.database, task.timeoutMs);
    const got = await c.send(k.lock, ['SET', k.lock, token, 'NX', 'PX', String(LOCK_TTL_MS)]);
    if (got === null) return { deleted: 0, skipped: true, live: null };
    let deleted = 0;
    let live = 0;
    try {
      // Dead sessions first (each page one script: atomic, judged by the server's clock), then the owners' indexes.
      // A sweep longer than the lock's TTL keeps it; a lock lost meanwhile (a pause longer than the TTL) ends this sweep.
      let held = true;
      const keep = async () => {
        if (held) held = Number(await c.send(k.lock, ['EVAL', EXTEND, '1', k.lock, token, String(LOCK_TTL_MS)])) === 1;
        return held && Atomics.load(task.abort, 0) === 0;
      };
      await eachPage(c, k.sessions, async (page) => {
        if (!(await keep())) return;
        for (const [gone, counted] of (await evalBySlot(c, sha, script, page, ['sweep'], task.table)) as number[][]) {
          deleted += Number(gone);
          live += Number(counted);
        }
      });
      await eachPage(c, k.owners, async (page) => {
        if (!(await keep())) return;
        for (const removed of await evalBySlot(c, sha, script, page, ['prune'], task.table)) deleted += Number(removed);
        if (c.cluster) {
          // Each index's group is (back) in its owner's list — one a failover lost is found again by log-out-everywhere.
          await Promise.all(
            page.map((index) => {
              const group = groupIn(index, task.table);
              if (group === undefined) return null;
              const list = k.groups(index.slice(index.indexOf('}', task.table.length + 3) + 1));
              return c.send(list, ['ZADD', list, 'NX', '0', group]);
            }),
          );
        }
      });
      if (c.cluster) {
        // An owner's list of groups forgets a group whose index is gone, unless it was given lately (a login on its way).
        const margin = String(Math.max(60_000, 4 * task.timeoutMs));
        await eachPage(c, k.directories, async (page) => {
          if (!(await keep())) return;
          for (const listKey of page) {
            const owner = k.ownerOfList(listKey);
            const listed = (await c.send(listKey, ['ZRANGE', listKey, '0', '-1'])) as string[];
            const exists = await Promise.all(listed.map((group) => c.send(k.owner(owner, group), ['EXISTS', k.owner(owner, group)])));
            const gone = listed.filter((_, i) => Number(exists[i]) === 0);
            if (gone.length > 0) await evalBySlot(c, sha, script, [listKey], ['forget', margin, ...gone], task.table);
          }
        });
      }
      if (!held) return { deleted, skipped: false, live: null };
    } finally {
      await c.send(k.lock, ['EVAL', RELEASE, '1', k.lock, token]).catch(() => {});
    }
    return { deleted, skipped: false, live: Atomics.load(task.abort, 0) === 0 ? live : null };
  } catch (error) {
    if (isConnectionLoss(error)) {
      const lost = client;
      client = null;
      await closeClient(lost);
      throw unavailableError(error, task.database, 'the cleaner lost its Redis connection');
    }
    if ((error as { code?: unknown }).code?.toString().startsWith('ERR_SESSION')) throw error;
    throw unavailableError(error, task.database, 'the sweep failed');
  }
}

export async function closeRedis(): Promise<void> {
  const c = client;
  client = null;
  opened = '';
  await closeClient(c);
}

// The cleaner's Sweeper (engines/engine.ts) on Redis.

export async function ready(task: Omit<SweepTask, 'abort' | 'policy'>): Promise<void> {
  let c: Conn;
  try {
    c = await connection(task.database, task.busyTimeoutMs);
  } catch (error) {
    // A server away at a restart is not a failed start: the sweep retries.
    if (isConnectionLoss(error)) return;
    throw unavailableError(error, task.database, 'the cleaner cannot reach the Redis server');
  }
  await requireStore(c, task.table, task.database);
}

export async function sweep(task: SweepTask): Promise<SweepResult> {
  try {
    return await sweepRedis({
      database: task.database,
      table: task.table,
      policy: task.policy,
      timeoutMs: task.busyTimeoutMs,
      abort: new Int32Array(task.abort),
    });
  } catch (error) {
    return { deleted: 0, skipped: false, live: null, error: toWire(error) };
  }
}

export const close = closeRedis;
