import { DatabaseSync } from 'node:sqlite';
import type { Durability } from '../config.ts';

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
  const db = new DatabaseSync(options.database);
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
