// The store actor on Redis: one incarnation per Worker, holding the one
// request-path client. A lost connection is not a crash: calls wait and are
// sent again within requestTimeout (engine.ts). Only an unsound actor
// crashes, and the supervisor restarts it with fresh state.
import { workerData, type MessagePort } from 'node:worker_threads';
import { runActor } from '../../runtime/actor.ts';
import { serveMailboxAsync, type Request } from '../../runtime/mailbox-server.ts';
import { READS, sessionsOf } from '../../store/protocol.ts';
import type { ResolvedConfig } from '../../config.ts';
import { expiryPolicy } from '../../store/expiry.ts';
import { crashAfterCommit } from '../../store/fault-hook.ts';
import { backoffMs, closeClient, connect, isConnectionLoss, unavailableError, type Conn } from './connection.ts';
import { RedisEngine } from './engine.ts';
import { requireStore, setupStore } from './schema.ts';
import { parseRedisUrl } from './url.ts';
import { lingerMs } from './script.ts';
import { durabilityWarning } from './durability.ts';

const { port, config, started } = workerData as { port: MessagePort; config: ResolvedConfig; started: SharedArrayBuffer };
const startedOnce = new Int32Array(started);
let engine: RedisEngine | null = null;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The first connection: retried with backoff within requestTimeout. */
async function firstConnection(): Promise<Conn> {
  const deadline = Date.now() + config.requestTimeout;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect({
        database: config.database,
        timeoutMs: Math.max(250, deadline - Date.now()),
        commandTimeoutMs: config.requestTimeout + 5000,
      });
    } catch (error) {
      if (!isConnectionLoss(error) || Date.now() + backoffMs(attempt) >= deadline) {
        throw unavailableError(error, config.database, 'cannot connect to the Redis server');
      }
      await sleep(backoffMs(attempt));
    }
  }
}

await runActor({
  async init() {
    const target = parseRedisUrl(config.database);
    const store = new RedisEngine({
      database: config.database,
      table: config.table,
      policy: expiryPolicy(config),
      maxSessionBytes: config.maxSessionBytes,
      maxPerOwner: config.maxSessionsPerOwner,
      timeoutMs: config.requestTimeout,
      waitReplicas: typeof target === 'string' ? 0 : target.waitReplicas,
      cluster: typeof target !== 'string' && target.cluster,
      lingerMs: lingerMs(config.cleanerInterval),
      reconnect: () =>
        connect({ database: config.database, timeoutMs: config.requestTimeout, commandTimeoutMs: config.requestTimeout + 5000 }),
    });
    let created = false;
    let warning: { message: string; code: string } | undefined;
    let client: Conn | null = null;
    try {
      client = await firstConnection();
      if (config.autoSetup) created = (await setupStore(client, config.table)) === 'missing';
      else await requireStore(client, config.table, config.database);
      // Warned once per app, by its first incarnation (the app emits it on its own thread: app.ts).
      if (Atomics.load(startedOnce, 0) === 0) {
        const message = await durabilityWarning(client, typeof target === 'string' ? 0 : target.waitReplicas);
        if (message) warning = { message, code: 'SUPERVISED_SESSIONS_REDIS_DURABILITY' };
      }
      store.adopt(client);
    } catch (error) {
      await closeClient(client);
      if (isConnectionLoss(error)) throw unavailableError(error, config.database, 'cannot connect to the Redis server');
      throw error;
    }
    engine = store;
    const run = async (requests: Request[]) => {
      const outcomes = await store.runBatch(requests);
      crashAfterCommit(requests);
      return outcomes;
    };
    // The connection pipelines: a read batch is sent on it at once, behind
    // the write batch in flight, instead of waiting for that batch's replies.
    serveMailboxAsync(port, run, undefined, { sessionsOf, reads: ({ op }) => READS.has(op), run });
    Atomics.store(startedOnce, 0, 1);
    return { created, warning };
  },
  async stop() {
    port.close();
    await engine?.close();
  },
});
