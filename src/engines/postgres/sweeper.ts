// The cleaner's work on PostgreSQL, in the cleaner's thread, on a connection
// of its own. One sweeper at a time across every process sharing the table:
// each short batch transaction starts with pg_try_advisory_xact_lock, which
// dies with the transaction (so it never outlives a dead node, survives no
// failover, and works through PgBouncer's transaction pooling).
import { isConnectionLoss, closeClient, connect, targetsOf, unavailableError, type Client } from './connection.ts';
import { lockKey, marksTable, requireTable } from './schema.ts';
import { liveSql, NOW, sweepStatements } from './statements.ts';
import { quoted } from '../../store/layout.ts';
import type { ExpiryPolicy } from '../../store/expiry.ts';
import type { SweepResult, SweepTask } from '../engine.ts';
import { toWire } from '../../errors.ts';

let client: Client | null = null;
let opened = '';
let openedAt = 0;

async function connection(database: string, timeoutMs: number): Promise<Client> {
  const maxLifetimeMs = targetsOf(database).maxLifetimeMs;
  if (client && opened === database && (maxLifetimeMs === null || Date.now() - openedAt <= maxLifetimeMs)) return client;
  await closeClient(client);
  client = null;
  client = await connect({ database, timeoutMs, pipeline: true, applicationName: 'supervised-sessions cleaner' });
  opened = database;
  openedAt = Date.now();
  client.on('end', () => {
    client = null;
  });
  return client;
}

/** The cleaner's start: checks the table; a server away at a restart is not a failed start (the sweep retries). */
export async function readyPostgres(database: string, table: string, timeoutMs: number): Promise<void> {
  let c: Client;
  try {
    c = await connection(database, timeoutMs);
  } catch (error) {
    if (isConnectionLoss(error)) return;
    throw unavailableError(error, database, 'the cleaner cannot reach the PostgreSQL server');
  }
  await requireTable(c, table, database);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const POSTGRES_SWEEP_BATCH = 1000;

/**
 * Deletes dead sessions in batches of at most 1000 (about 5 ms each, research
 * note §4), each in its own transaction that first takes the sweep lock.
 * `skipped`: the lock was held by another process at the first batch, so
 * this sweep did nothing and that one covers it. A lock lost between two
 * batches ends this sweep early: the other process carries on.
 */
export async function sweepPostgres(task: {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  timeoutMs: number;
  abort: Int32Array;
  batchSize?: number;
}): Promise<{ deleted: number; skipped: boolean; live: number | null }> {
  const batchSize = task.batchSize ?? POSTGRES_SWEEP_BATCH;
  const statements = sweepStatements(task.table, task.policy);
  let deleted = 0;
  let batches = 0;
  try {
    for (let phase = 0; phase < statements.length; phase++) {
      while (Atomics.load(task.abort, 0) === 0) {
        const c = await connection(task.database, task.timeoutMs);
        const started = performance.now();
        let n: number;
        try {
          // BEGIN and the lock in one round trip (pipelined).
          const [, lock] = await Promise.all([
            c.query('BEGIN'),
            c.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(${lockKey('sweep')}) AS got`, [task.table]),
          ]);
          if (!lock.rows[0].got) {
            await c.query('ROLLBACK');
            return { deleted, skipped: batches === 0, live: null };
          }
          n = (await c.query({ name: `sweep_${phase}`, text: statements[phase], values: [batchSize] })).rowCount ?? 0;
          // Housekeeping may be slow, a request may not: pause as long as the
          // batch took, so the sweep takes at most half of what it competes
          // for. The pause is spent holding the lock (the rows it holds are
          // dead ones no request writes), so another process does not start
          // a sweep in the gap between two batches of this one.
          if (n === batchSize) await sleep(Math.max(1, Math.round(performance.now() - started)));
          const commit = await c.query('COMMIT');
          // A COMMIT after an error resolves as ROLLBACK: only COMMIT counts.
          if (commit.command !== 'COMMIT') throw new Error(`the sweep batch ended with ${commit.command}`);
        } catch (error) {
          await c.query('ROLLBACK').catch(() => {});
          throw error;
        }
        batches++;
        deleted += n;
        if (n < batchSize) break;
      }
    }
    if (Atomics.load(task.abort, 0) === 0) {
      await forgetMarks(await connection(task.database, task.timeoutMs), task.table, task.abort);
      return { deleted, skipped: false, live: await countLive(task) };
    }
  } catch (error) {
    if (isConnectionLoss(error)) {
      const lost = client;
      client = null;
      await closeClient(lost);
      throw unavailableError(error, task.database, 'the cleaner lost its PostgreSQL connection');
    }
    if ((error as { code?: unknown }).code?.toString().startsWith('ERR_SESSION')) throw error;
    throw unavailableError(error, task.database, 'the sweep failed');
  }
  return { deleted, skipped: false, live: null };
}

/**
 * The batch marks no replay can ask about any more: each row says when
 * (engine.ts: its batch's requestTimeout, twice, plus MARKS_KEPT_MS), by the
 * server's clock. In batches (no index on `at`: each batch reads the table,
 * which holds only the last minutes' marks); best effort: a failure here
 * fails no sweep, and the next sweep tries again.
 */
async function forgetMarks(c: Client, table: string, abort: Int32Array): Promise<void> {
  const marks = quoted(marksTable(table));
  try {
    for (let n = 0; n < 100 && Atomics.load(abort, 0) === 0; n++) {
      const done = await c.query(
        `DELETE FROM ${marks} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${marks} WHERE at < ${NOW} LIMIT ${MARKS_BATCH}))`,
      );
      if ((done.rowCount ?? 0) < MARKS_BATCH) break;
    }
  } catch (error) {
    // The connection is replaced at the next use.
    if (isConnectionLoss(error) && client === c) {
      client = null;
      void closeClient(c);
    }
  }
}

const MARKS_BATCH = 10_000;

/**
 * The live count after a sweep that ran to its end, for the live_sessions
 * figure: one read in the cleaner, bounded to 1 s (a table too large to
 * count in that time reports null, and live_sessions then comes from
 * count() alone). It never fails the sweep it follows.
 */
export async function countLive(task: {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  timeoutMs: number;
}): Promise<number | null> {
  try {
    const c = await connection(task.database, task.timeoutMs);
    const [, , counted] = await Promise.all(
      [
        c.query('BEGIN'),
        c.query(`SET LOCAL statement_timeout = ${LIVE_COUNT_TIMEOUT_MS}`),
        c.query<{ n: number }>({
          name: 'sweep_live',
          text: `SELECT count(*)::int8 AS n FROM ${quoted(task.table)} WHERE ${liveSql(task.policy)} AND renewed_to IS NULL`,
        }),
        c.query('COMMIT'),
      ].map((query) => query.catch((error: unknown) => error as Error)),
    );
    if (counted instanceof Error) {
      await c.query('ROLLBACK').catch(() => {});
      return null;
    }
    return Number(counted.rows[0].n);
  } catch {
    return null;
  }
}

export const LIVE_COUNT_TIMEOUT_MS = 1000;

export async function closePostgres(): Promise<void> {
  const c = client;
  client = null;
  opened = '';
  await closeClient(c);
}

// The cleaner's Sweeper (engines/engine.ts) on PostgreSQL.

export async function ready(task: Omit<SweepTask, 'abort' | 'policy'>): Promise<void> {
  await readyPostgres(task.database, task.table, task.busyTimeoutMs);
}

export async function sweep(task: SweepTask): Promise<SweepResult> {
  // Errors cross piscina's port as plain Errors: sent as { code, message }
  // data instead, so the app's sweepError is a StoreUnavailableError.
  try {
    return await sweepPostgres({
      database: task.database,
      table: task.table,
      policy: task.policy,
      timeoutMs: task.busyTimeoutMs,
      abort: new Int32Array(task.abort),
    });
  } catch (error) {
    return { deleted: 0, skipped: false, live: null, error: toWire(error) };
  }
}

export const close = closePostgres;
