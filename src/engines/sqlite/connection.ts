import { DatabaseSync } from 'node:sqlite';
import type { Durability } from '../../config.ts';
import { ConfigError } from '../../errors.ts';

export interface OpenOptions {
  database: string;
  durability?: Durability;
  /** How long a statement waits for another connection's lock, in ms. */
  busyTimeoutMs?: number;
}

/**
 * Opens a connection with the project's pragmas, set explicitly on every
 * connection (they are per connection, except journal_mode which the file keeps):
 * - WAL: readers never block the writer, and a commit is one append to the log;
 * - synchronous=NORMAL in WAL survives a process crash (only power loss can
 *   lose the last commits); FULL syncs the log on every commit;
 * - busy_timeout: another process or the cleaner holding the write lock makes
 *   us wait instead of failing with SQLITE_BUSY.
 */
export function openDatabase(options: OpenOptions): DatabaseSync {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(options.database);
  } catch (error) {
    // A path that cannot be opened (a missing folder, a directory, no
    // permission) is a config problem: say which key.
    throw new ConfigError(
      'database',
      `invalid config "database": cannot open ${JSON.stringify(options.database)}: ${(error as Error).message}`,
    );
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    if (options.database !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
    db.exec(`PRAGMA synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Whether a transaction is open on `db`. SQLite rolls a whole transaction
 * back on some errors (SQLITE_FULL, IOERR, ...): what the batch wrote before
 * is then gone. `DatabaseSync#isTransaction` says so, but only from Node
 * 22.16 / 24.0; before, a BEGIN tells: it fails inside a transaction.
 */
export function inTransaction(db: DatabaseSync): boolean {
  const known = (db as { isTransaction?: unknown }).isTransaction;
  if (typeof known === 'boolean') return known;
  try {
    db.exec('BEGIN');
  } catch {
    return true;
  }
  db.exec('ROLLBACK');
  return false;
}
