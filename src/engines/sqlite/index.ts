// The SQLite engine (node:sqlite): a file path, or ':memory:'. Its store's
// actor and its cleaner are threads of one process sharing the write gate.
import type { Engine } from '../engine.ts';
import { moduleUrl } from '../engine.ts';
import { CLEANER, createGateBuffer, ACTOR, releaseDeadHolder } from './write-gate.ts';

/** `scheme://…` (a scheme of two letters or more: `C://x` is a drive): a URL, never meant as a file name. */
const URL_LIKE = /^([A-Za-z][A-Za-z0-9+.-]+):\/\//;

/**
 * A refused URL as messages show it: everything before the last '@' of its
 * authority (user, password, an unencoded '@' or '/' in it) and the query
 * are masked, for every host of a cluster list alike.
 */
function redactRefused(database: string): string {
  const scheme = URL_LIKE.exec(database);
  if (!scheme) return database;
  const rest = database.slice(scheme[0].length);
  const query = rest.indexOf('?');
  const beforeQuery = query === -1 ? rest : rest.slice(0, query);
  const at = beforeQuery.lastIndexOf('@');
  const hosts = at === -1 ? beforeQuery : `***@${beforeQuery.slice(at + 1)}`;
  return `${scheme[0]}${hosts}${query === -1 ? '' : '?***'}`;
}

export const sqlite: Engine = {
  name: 'sqlite',
  form: "a non-empty file path, ':memory:'",
  // The fallback: any other value is a file path — but a URL no engine of
  // this release takes (mysql://; redis+cluster:// is the Redis engine's to
  // refuse) is refused, never a quiet file named after it.
  recognizes: () => true,
  problem: (database) => {
    const scheme = URL_LIKE.exec(database)?.[1].toLowerCase();
    if (scheme === undefined) return null;
    if (scheme === 'file' || scheme === 'sqlite')
      return 'is a URL: give the SQLite file as a plain path (sessions.db, /var/lib/app/sessions.db)';
    return `is a ${scheme}:// URL, which no engine of this release takes (postgres:// or postgresql:// for PostgreSQL, redis:// or rediss:// for Redis; a file path for SQLite)`;
  },
  durabilityRefusal: null,
  // A file path holds no password; a refused URL may: it is never echoed.
  redact: redactRefused,
  redactIn: (text, database) => (URL_LIKE.test(database) ? text.split(database).join(redactRefused(database)) : text),
  storeWorker: moduleUrl('./store-worker', import.meta.url),
  sweeper: moduleUrl('./sweeper', import.meta.url),
  housekeeping: true,
  // ':memory:' exists only inside the store's actor's connection.
  cleanerConnects: (database) => database !== ':memory:',
  share() {
    // One gate for every incarnation of both children (write-gate.ts).
    const gate = createGateBuffer();
    return {
      store: { gate },
      cleaner: { gate },
      // A thread killed while holding the write gate cannot release it.
      died: (child) => releaseDeadHolder(gate, child === 'store' ? ACTOR : CLEANER),
    };
  },
  admin: async () => (await import('./admin.ts')).sqliteAdmin,
};
