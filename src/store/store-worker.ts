// The store owner: the only connection on the request path. One incarnation
// per Worker; everything it owns is opened in init and closed in stop.
import { workerData, type MessagePort } from 'node:worker_threads';
import type { DatabaseSync } from 'node:sqlite';
import { runActor } from '../runtime/actor.ts';
import { serveMailbox } from '../runtime/mailbox-server.ts';
import type { ResolvedConfig } from '../config.ts';
import { openDatabase } from './connection.ts';
import { expiryPolicy } from './expiry.ts';
import { requireTable, setupTable } from './schema.ts';
import { SqliteEngine } from './sqlite-engine.ts';

const { port, config } = workerData as { port: MessagePort; config: ResolvedConfig };
let db: DatabaseSync | null = null;

await runActor({
  init() {
    db = openDatabase({
      database: config.database,
      durability: config.durability,
      // Waiting for another process's lock blocks this thread (and queues the
      // mailbox), so never wait longer than a caller would.
      busyTimeoutMs: Math.min(config.requestTimeout, 5000),
    });
    try {
      let created = false;
      if (config.autoSetup) created = setupTable(db, config.table);
      else requireTable(db, config.table, config.database);
      const engine = new SqliteEngine(db, { table: config.table, policy: expiryPolicy(config), maxSessionBytes: config.maxSessionBytes });
      serveMailbox(port, (requests) => engine.runBatch(requests));
      return { created };
    } catch (error) {
      db.close();
      db = null;
      throw error;
    }
  },
  stop() {
    port.close();
    db?.close();
  },
});
