// The SQLite engine (node:sqlite): a file path, or ':memory:'. Its store's
// actor and its cleaner are threads of one process sharing the write gate.
import type { Engine } from '../engine.ts';
import { moduleUrl } from '../engine.ts';
import { CLEANER, createGateBuffer, ACTOR, releaseDeadHolder } from './write-gate.ts';

/** `scheme://…`: a URL, never meant as a file name. */
const URL_LIKE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
/** The password of a URL-like value (`scheme://user:password@host`), if any. */
const passwordOf = (database: string) => /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^:/@]*:([^@/]*)@/.exec(database)?.[1] ?? null;

export const sqlite: Engine = {
  name: 'sqlite',
  form: "a non-empty file path, ':memory:'",
  // The fallback: any other value is a file path — but a URL of an engine
  // this release does not have (redis://) is refused, never a quiet file
  // named after it.
  recognizes: () => true,
  problem: (database) => {
    const scheme = URL_LIKE.exec(database)?.[1].toLowerCase();
    if (scheme === undefined) return null;
    if (/^rediss?(\+cluster)?$/.test(scheme))
      return 'is a Redis URL: the Redis engine is not in this release yet (it has SQLite, a file path, and PostgreSQL, postgres:// or postgresql://)';
    return `is a ${scheme}:// URL, which no engine of this release takes (postgres:// or postgresql:// for PostgreSQL; a file path for SQLite)`;
  },
  durabilityRefusal: null,
  // A file path holds no password; a refused URL may: it is never echoed.
  redact: (database) => {
    const password = passwordOf(database);
    return password ? database.replace(`:${password}@`, ':***@') : database;
  },
  redactIn: (text, database) => {
    const password = passwordOf(database);
    return password ? text.split(password).join('***') : text;
  },
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
