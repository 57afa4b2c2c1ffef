// The cleaner's work on SQLite, run by piscina in the cleaner's single
// long-lived thread, on a connection of its own (never the store's actor's).
import type { DatabaseSync } from 'node:sqlite';
import type { SweepResult, SweepTask } from '../engine.ts';
import { liveThresholds } from '../../store/expiry.ts';
import { Clock } from '../../runtime/clock.ts';
import { openDatabase } from './connection.ts';
import { requireTable } from './schema.ts';
import { countLive, sweepBatch } from './sweep.ts';
import { CLEANER, WriteGate } from './write-gate.ts';

type Target = Omit<SweepTask, 'abort' | 'policy'>;

let db: DatabaseSync | null = null;
let opened = '';

function connection(task: Target): DatabaseSync {
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

export async function ready(task: Target): Promise<void> {
  requireTable(connection(task), task.table, task.database);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Deletes dead sessions in batches that adapt to hold the write lock for
 * about 0.25 ms each, and pauses twice as long as a batch took: the cleaner
 * takes at most a third of the lock's time and of a core. Through the write
 * gate it never starts a batch while the store's actor waits for the lock, so
 * a request waits for at most one short batch. Housekeeping may be slow; a
 * request may not.
 */
export async function sweep(task: SweepTask): Promise<SweepResult> {
  const flag = new Int32Array(task.abort);
  const gate = task.shared.gate instanceof SharedArrayBuffer ? new WriteGate(task.shared.gate) : null;
  const database = connection(task);
  // One `now` for the whole sweep: what dies during it waits for the next one.
  // The app's clock (runtime/clock.ts), shared with the store actor.
  const clock = task.shared.clock instanceof SharedArrayBuffer ? new Clock(task.shared.clock) : new Clock();
  const live = liveThresholds(task.policy, clock.now());
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
    // store's actor's commits, which would otherwise hit the auto-checkpoint.
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
    counted = countLive(database, task.table, liveThresholds(task.policy, clock.now()));
  } catch {
    // The count never fails the sweep it follows: live_sessions waits for the next one.
  }
  return { deleted: total, skipped: false, live: counted };
}

/**
 * A passive checkpoint on the cleaner's connection, once a second between
 * sweeps: the WAL is copied back into the database from this thread, not in
 * a request's COMMIT (see the store's actor's wal_autocheckpoint).
 */
export function housekeep(task: Target): void {
  connection(task).exec('PRAGMA wal_checkpoint(PASSIVE)');
}

export async function close(): Promise<void> {
  db?.close();
  db = null;
  opened = '';
}
