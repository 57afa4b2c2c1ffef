// The store actor: the only connection on the request path. One incarnation
// per Worker; everything it owns is opened in init and closed in stop.
import { workerData, type MessagePort } from 'node:worker_threads';
import type { DatabaseSync } from 'node:sqlite';
import { runActor } from '../../runtime/actor.ts';
import { serveMailbox } from '../../runtime/mailbox-server.ts';
import type { ResolvedConfig } from '../../config.ts';
import { openDatabase } from './connection.ts';
import { expiryPolicy } from '../../store/expiry.ts';
import { requireTable, setupTable } from './schema.ts';
import { SqliteEngine } from './engine.ts';
import { WriteGate } from './write-gate.ts';
import { Clock } from '../../runtime/clock.ts';
import { crashAfterCommit } from '../../store/fault-hook.ts';

const { port, config, gate, clock } = workerData as {
  port: MessagePort;
  config: ResolvedConfig;
  gate?: SharedArrayBuffer;
  clock: SharedArrayBuffer;
};
let db: DatabaseSync | null = null;

function open(): DatabaseSync {
  return openDatabase({
    database: config.database,
    durability: config.durability,
    // Waiting for another process's lock blocks this thread (and queues the
    // mailbox), so never wait longer than a caller would.
    busyTimeoutMs: Math.min(config.requestTimeout, 5000),
  });
}

await runActor({
  init() {
    const connection = open();
    db = connection;
    try {
      if (config.database !== ':memory:') {
        // Checkpoints copy the WAL back into the database and fsync: the
        // cleaner's thread runs them, once a second and between sweep batches,
        // so that no request's COMMIT pays for one. The actor's own
        // auto-checkpoint stays as a safety net, at 16384 pages (64 MiB),
        // should the cleaner be down; journal_size_limit then trims the file.
        connection.exec('PRAGMA wal_autocheckpoint = 16384');
        connection.exec('PRAGMA journal_size_limit = 67108864');
      }
      let created = false;
      if (config.autoSetup) created = setupTable(connection, config.table) === 'missing';
      else requireTable(connection, config.table, config.database);
      const engine = new SqliteEngine(connection, {
        table: config.table,
        policy: expiryPolicy(config),
        maxSessionBytes: config.maxSessionBytes,
        gate: gate ? new WriteGate(gate) : undefined,
        maxPerOwner: config.maxSessionsPerOwner,
        clock: new Clock(clock),
      });
      serveMailbox(
        port,
        (requests) => {
          const outcomes = engine.runBatch(requests);
          crashAfterCommit(requests);
          return outcomes;
        },
        () => engine.afterReplies(),
      );
      return { created };
    } catch (error) {
      connection.close();
      db = null;
      throw error;
    }
  },
  stop() {
    port.close();
    db?.close();
  },
});
