// The SQLite engine (node:sqlite): a file path, or ':memory:'. Its store's
// actor and its cleaner are threads of one process sharing the write gate.
import type { Engine } from '../engine.ts';
import { moduleUrl } from '../engine.ts';
import { CLEANER, createGateBuffer, ACTOR, releaseDeadHolder } from './write-gate.ts';

export const sqlite: Engine = {
  name: 'sqlite',
  form: "a non-empty file path, ':memory:'",
  // The fallback: any other value is a file path.
  recognizes: () => true,
  problem: () => null,
  durabilityRefusal: null,
  redact: (database) => database,
  redactIn: (text) => text,
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
