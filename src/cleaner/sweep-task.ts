// The cleaner's work, run by piscina in the cleaner's single long-lived
// thread, on a connection of its own (never the store owner's).
import { threadId } from 'node:worker_threads';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase } from '../store/connection.ts';
import type { ExpiryPolicy } from '../store/expiry.ts';
import { requireTable } from '../store/schema.ts';
import { sweepBatch } from '../store/sweep.ts';
import { liveThresholds } from '../store/expiry.ts';

export interface SweepTask {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  busyTimeoutMs: number;
  /** Int32Array over a SharedArrayBuffer: slot 0 set to 1 asks the sweep to stop between batches. */
  abort: SharedArrayBuffer;
}

let db: DatabaseSync | null = null;
let opened = '';

function connection(task: Omit<SweepTask, 'abort' | 'policy'>): DatabaseSync {
  const key = `${task.database}\0${task.table}`;
  if (!db || opened !== key) {
    db?.close();
    db = openDatabase({ database: task.database, busyTimeoutMs: task.busyTimeoutMs });
    opened = key;
  }
  return db;
}

/** Opens the connection and checks the table: a cleaner that cannot sweep fails its start. */
export function ready(task: Omit<SweepTask, 'abort' | 'policy' | 'database'> & { database: string | null }): number {
  if (task.database === null) return threadId;
  requireTable(connection({ ...task, database: task.database }), task.table, task.database);
  return threadId;
}

/**
 * Deletes dead sessions in batches that adapt to take about 4 ms each, and
 * pauses as long as a batch took between batches, so the store owner waits
 * for the write lock for at most one short batch.
 */
export async function sweep(task: SweepTask): Promise<{ deleted: number }> {
  const flag = new Int32Array(task.abort);
  const database = connection(task);
  // One `now` for the whole sweep: what dies during it waits for the next one.
  const live = liveThresholds(task.policy, Date.now());
  let batchSize = 200;
  let total = 0;
  while (Atomics.load(flag, 0) === 0) {
    const started = performance.now();
    const deleted = sweepBatch(database, task.table, live, batchSize);
    const took = performance.now() - started;
    total += deleted;
    if (deleted < batchSize) break;
    if (took < 2) batchSize = Math.min(batchSize * 2, 5000);
    else if (took > 8) batchSize = Math.max(Math.floor(batchSize / 2), 50);
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.round(took))));
  }
  return { deleted: total };
}

export function close(): void {
  db?.close();
  db = null;
  opened = '';
}
