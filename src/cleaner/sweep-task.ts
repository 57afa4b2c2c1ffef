// The cleaner's work, run by piscina in the cleaner's single long-lived
// thread, on a connection of its own (never the store owner's).
import { threadId } from 'node:worker_threads';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase } from '../store/connection.ts';
import type { ExpiryPolicy } from '../store/expiry.ts';
import { requireTable } from '../store/schema.ts';
import { countLive, sweepBatch } from '../store/sweep.ts';
import { liveThresholds } from '../store/expiry.ts';
import { CLEANER, WriteGate } from '../store/write-gate.ts';
import { isPostgresUrl } from '../store/postgres/url.ts';
import { toWire, type WireError } from '../errors.ts';

// The PostgreSQL sweep (and `pg` with it) is loaded only for a PostgreSQL URL.
let postgresSweep: typeof import('./postgres-sweep.ts') | null = null;
const postgres = async () => (postgresSweep ??= await import('./postgres-sweep.ts'));

export interface SweepTask {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  busyTimeoutMs: number;
  /** Int32Array over a SharedArrayBuffer: slot 0 set to 1 asks the sweep to stop between batches. */
  abort: SharedArrayBuffer;
  /** The write gate shared with the store owner of this process (write-gate.ts). */
  gate?: SharedArrayBuffer;
}

let db: DatabaseSync | null = null;
let opened = '';

function connection(task: Omit<SweepTask, 'abort' | 'policy'>): DatabaseSync {
  const key = `${task.database}\0${task.table}`;
  if (!db || opened !== key) {
    db?.close();
    db = openDatabase({ database: task.database, busyTimeoutMs: task.busyTimeoutMs });
    // The cleaner checkpoints explicitly, between batches and outside the
    // write gate (below), never inside a batch's COMMIT while it holds the gate.
    db.exec('PRAGMA wal_autocheckpoint = 0');
    opened = key;
  }
  return db;
}

/** Opens the connection and checks the table: a cleaner that cannot sweep fails its start. */
export async function ready(task: Omit<SweepTask, 'abort' | 'policy' | 'database'> & { database: string | null }): Promise<number> {
  if (task.database === null) return threadId;
  if (isPostgresUrl(task.database)) {
    await (await postgres()).readyPostgres(task.database, task.table, task.busyTimeoutMs);
    return threadId;
  }
  requireTable(connection({ ...task, database: task.database }), task.table, task.database);
  return threadId;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Deletes dead sessions in batches that adapt to hold the write lock for
 * about 0.25 ms each, and pauses twice as long as a batch took: the cleaner
 * takes at most a third of the lock's time and of a core. Through the write
 * gate it never starts a batch while the store owner waits for the lock, so
 * a request waits for at most one short batch. Housekeeping may be slow; a
 * request may not.
 */
export async function sweep(task: SweepTask): Promise<{ deleted: number; skipped: boolean; live: number | null; error?: WireError }> {
  const flag = new Int32Array(task.abort);
  if (isPostgresUrl(task.database)) {
    // Errors cross piscina's port as plain Errors: sent as { code, message }
    // data instead, so the app's sweepError is a StoreUnavailableError.
    try {
      return await (await postgres()).sweepPostgres({ database: task.database, table: task.table, policy: task.policy, timeoutMs: task.busyTimeoutMs, abort: flag });
    } catch (error) {
      return { deleted: 0, skipped: false, live: null, error: toWire(error) };
    }
  }
  const gate = task.gate ? new WriteGate(task.gate) : null;
  const database = connection(task);
  // One `now` for the whole sweep: what dies during it waits for the next one.
  const live = liveThresholds(task.policy, Date.now());
  let batchSize = 100;
  let total = 0;
  let batches = 0;
  while (Atomics.load(flag, 0) === 0) {
    if (gate && !gate.tryAcquireForCleaner()) {
      await sleep(1);
      continue;
    }
    const started = performance.now();
    let deleted: number;
    try {
      deleted = sweepBatch(database, task.table, live, batchSize);
    } finally {
      gate?.release(CLEANER);
    }
    const took = performance.now() - started;
    total += deleted;
    // A sweep writes many WAL pages: copying them back to the database here,
    // passively and off the gate, keeps that work (and its fsync) out of the
    // store owner's commits, which would otherwise hit the auto-checkpoint.
    if (++batches % 8 === 0 || deleted < batchSize) database.exec('PRAGMA wal_checkpoint(PASSIVE)');
    if (deleted < batchSize) break;
    if (took < 0.15) batchSize = Math.min(batchSize * 2, 5000);
    else if (took > 0.4) batchSize = Math.max(Math.floor(batchSize / 2), 20);
    await sleep(Math.max(1, Math.round(2 * took)));
  }
  // The live count after a sweep that ran to its end (a read: WAL readers
  // block no writer), for the live_sessions figure.
  if (Atomics.load(flag, 0) !== 0) return { deleted: total, skipped: false, live: null };
  let counted: number | null = null;
  try {
    counted = countLive(database, task.table, liveThresholds(task.policy, Date.now()));
  } catch {
    // The count never fails the sweep it follows: live_sessions waits for the next one.
  }
  return { deleted: total, skipped: false, live: counted };
}

/** A passive checkpoint on the cleaner's connection (see the store owner's wal_autocheckpoint). */
export function checkpoint(task: Omit<SweepTask, 'abort' | 'policy'>): void {
  connection(task).exec('PRAGMA wal_checkpoint(PASSIVE)');
}

export async function close(): Promise<void> {
  await postgresSweep?.closePostgres();
  db?.close();
  db = null;
  opened = '';
}
