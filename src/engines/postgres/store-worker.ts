// The store actor on PostgreSQL: one incarnation per Worker, holding the one
// request-path connection. A lost connection is not a crash: calls wait and
// the batch is replayed on a new connection (engine.ts). Only an unsound actor
// crashes, and the supervisor restarts it with fresh state.
import { workerData, type MessagePort } from 'node:worker_threads';
import { runActor } from '../../runtime/actor.ts';
import { serveMailboxAsync } from '../../runtime/mailbox-server.ts';
import type { ResolvedConfig } from '../../config.ts';
import { expiryPolicy } from '../../store/expiry.ts';
import { backoffMs, closeClient, connect, isConnectionLoss, unavailableError, type Client } from './connection.ts';
import { PostgresEngine } from './engine.ts';
import { requireMarksGrants, requireTable, setupTable } from './schema.ts';
import { crashAfterCommit } from '../../store/fault-hook.ts';

const { port, config, started } = workerData as { port: MessagePort; config: ResolvedConfig; started: SharedArrayBuffer };
// Set once the first incarnation is ready: a restart must not fail (and count
// against the restart intensity) because the server is down at that moment.
const startedOnce = new Int32Array(started);
let engine: PostgresEngine | null = null;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The first connection: retried with backoff within requestTimeout. */
async function firstConnection(): Promise<Client> {
  const deadline = Date.now() + config.requestTimeout;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect({
        database: config.database,
        timeoutMs: config.requestTimeout,
        connectTimeoutMs: Math.max(250, deadline - Date.now()),
        pipeline: true,
      });
    } catch (error) {
      if (!isConnectionLoss(error) || Date.now() + backoffMs(attempt) >= deadline) {
        throw unavailableError(error, config.database, 'cannot connect to the PostgreSQL server');
      }
      await sleep(backoffMs(attempt));
    }
  }
}

await runActor({
  async init() {
    const store = new PostgresEngine({
      database: config.database,
      table: config.table,
      policy: expiryPolicy(config),
      maxSessionBytes: config.maxSessionBytes,
      maxPerOwner: config.maxSessionsPerOwner,
      timeoutMs: config.requestTimeout,
    });
    let created = false;
    let client: Client | null = null;
    try {
      if (Atomics.load(startedOnce, 0) === 1) {
        // A restart while the server is away must not fail (and count against
        // the restart intensity): serve the mailbox anyway, and let each batch
        // wait for the connection within requestTimeout.
        client = await connect({ database: config.database, timeoutMs: config.requestTimeout, pipeline: true }).catch((error: unknown) => {
          if (isConnectionLoss(error)) return null;
          throw unavailableError(error, config.database, 'cannot connect to the PostgreSQL server');
        });
      } else {
        client = await firstConnection();
      }
      if (client) {
        if (config.autoSetup) {
          created = (await setupTable(client, config.table)) === 'missing';
          await requireMarksGrants(client, config.table, config.database);
        } else await requireTable(client, config.table, config.database);
        store.adopt(client);
      }
    } catch (error) {
      await closeClient(client);
      throw error;
    }
    engine = store;
    serveMailboxAsync(
      port,
      async (requests) => {
        const outcomes = await store.runBatch(requests);
        crashAfterCommit(requests);
        return outcomes;
      },
      () => store.afterReplies(),
    );
    Atomics.store(startedOnce, 0, 1);
    return { created };
  },
  async stop() {
    port.close();
    await engine?.close();
  },
});
