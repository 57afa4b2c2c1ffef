// The PostgreSQL engine (pg): a postgres:// or postgresql:// URL. Loading
// this descriptor loads no `pg`: the worker, sweeper and admin do.
import type { Engine } from '../engine.ts';
import { moduleUrl } from '../engine.ts';
import { isPostgresUrl, postgresUrlProblem, redactIn, redactUrl } from './url.ts';

export const postgres: Engine = {
  name: 'postgres',
  form: 'a postgres:// URL',
  recognizes: isPostgresUrl,
  problem: (database) => {
    const problem = postgresUrlProblem(database);
    return problem && `is not a usable PostgreSQL URL: ${problem}`;
  },
  // PostgreSQL's durability is synchronous_commit, a setting of the server.
  durabilityRefusal:
    "applies to SQLite only; with a PostgreSQL database, durability is the server's synchronous_commit setting (leave durability out)",
  redact: redactUrl,
  redactIn,
  storeWorker: moduleUrl('./store-worker', import.meta.url),
  sweeper: moduleUrl('./sweeper', import.meta.url),
  // PostgreSQL checkpoints by itself.
  housekeeping: false,
  cleanerConnects: () => true,
  share: () => ({
    // Set by the first ready incarnation (store-worker.ts): a restart while
    // the server is down does not fail.
    store: { started: new SharedArrayBuffer(4) },
    cleaner: {},
    died: () => {},
  }),
  admin: async () => (await import('./admin.ts')).postgresAdmin,
};
