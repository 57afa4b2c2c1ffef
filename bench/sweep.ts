// A sweep of a large backlog beside live sessions: its speed, and the p50/p99
// of store calls made during it against the same calls with no sweep.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setupStore, startSessionApp, type SessionApp } from '../src/index.ts';
import pg from 'pg';
import { summarize } from './lib.ts';

export interface SweepResult {
  dead: number;
  live: number;
  deleted: number;
  seconds: number;
  rowsPerSecond: number;
  without: { p50: number; p99: number; n: number };
  during: { p50: number; p99: number; n: number };
  ratioP99: number;
  /** PostgreSQL: the table's bytes on the server (indexes included) per stored row, before the sweep. */
  bytesPerRow?: number;
  /** Mixed lifetimes: half of each population has a lifetime of its own (below). */
  mixed?: boolean;
}

const DAY = 86_400_000;

/**
 * `count` rows last used at `at`; `maxAge`: their own lifetime in ms (null:
 * the app's maxAge).
 */
function plant(database: string, count: number, at: number, maxAge: number | null = null): void {
  const db = new DatabaseSync(database);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
    INSERT INTO session (sid_hash, data, created_at, touched_at, max_age) SELECT randomblob(32), '{"planted":true}', ?, ?, ? FROM c`).run(
    count,
    at,
    at,
    maxAge,
  );
  db.close();
}

/**
 * get/patch loops over known live ids until `until()` says stop; returns the
 * latencies (ms): all of them, or a uniform sample of a million (reservoir
 * sampling) when there were more, so a long sweep is measured to its end.
 */
async function traffic(app: SessionApp, ids: string[], until: () => boolean, concurrency = 16): Promise<number[]> {
  const capacity = 1_000_000;
  const sample = new Float64Array(capacity);
  let seen = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!until() && seen < 50_000_000) {
        const id = ids[next++ % ids.length];
        const t0 = performance.now();
        if (next % 2) await app.store.get(id);
        else await app.store.patch(id, { set: { n: next } });
        const latency = performance.now() - t0;
        if (seen < capacity) sample[seen] = latency;
        else {
          const slot = Math.floor(Math.random() * (seen + 1));
          if (slot < capacity) sample[slot] = latency;
        }
        seen++;
      }
    }),
  );
  return Array.from(sample.subarray(0, Math.min(seen, capacity)));
}

/** The same rows planted on PostgreSQL, aged by the server's clock. */
async function plantPostgres(database: string, count: number, ageMs: number, maxAge: number | null = null): Promise<void> {
  const client = new pg.Client({ connectionString: database });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(
      `INSERT INTO session (sid_hash, data, created_at, touched_at, max_age)
      SELECT sha256(i::text::bytea || $3::bytea), '{"planted":true}', t, t, $4::bigint FROM generate_series(1, $1) AS i,
      (SELECT (extract(epoch from now()) * 1000)::bigint - $2::bigint AS t) AS at`,
      [count, ageMs, Buffer.from(`${ageMs}:${maxAge}`), maxAge],
    );
    await client.query('VACUUM ANALYZE session');
  } finally {
    await client.end();
  }
}

async function tableBytesPerRow(database: string): Promise<number> {
  const client = new pg.Client({ connectionString: database });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT pg_total_relation_size('session') AS bytes, (SELECT count(*) FROM session) AS n`);
    return Number(rows[0].bytes) / Number(rows[0].n);
  } finally {
    await client.end();
  }
}

/**
 * `postgres`: a database URL: the same benchmark on the PostgreSQL engine.
 * `mixed`: lifetimes of their own beside the app's maxAge (1 day): of the
 * dead, half on the app's maxAge and half 5-minute sessions, all last used 3
 * days ago; of the live, half used now and half "remember me" sessions (30
 * days) last used 3 days ago — live rows the app's maxAge alone would call
 * dead, which the sweep must step over without rescanning them per batch.
 */
export async function sweepBenchmark(options: {
  dir: string;
  dead: number;
  live: number;
  baselineSeconds: number;
  postgres?: string;
  mixed?: boolean;
}): Promise<SweepResult> {
  const database = options.postgres ?? join(options.dir, options.mixed ? 'sweep-mixed-bench.db' : 'sweep-bench.db');
  await setupStore({ database });
  const now = Date.now();
  const live = options.live - 1000;
  const populations: Array<[number, number, number | null]> = options.mixed
    ? [
        [Math.floor(options.dead / 2), 3 * DAY, null],
        [options.dead - Math.floor(options.dead / 2), 3 * DAY, 300_000],
        [Math.floor(live / 2), 0, null],
        [live - Math.floor(live / 2), 3 * DAY, 30 * DAY],
      ]
    : [
        [options.dead, 3 * DAY, null],
        [live, 0, null],
      ];
  for (const [count, ageMs, maxAge] of populations) {
    if (options.postgres) await plantPostgres(database, count, ageMs, maxAge);
    else plant(database, count, now - ageMs, maxAge);
  }
  const bytesPerRow = options.postgres ? await tableBytesPerRow(database) : undefined;
  const app = await startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600 });
  try {
    const ids = (await Promise.all(Array.from({ length: 1000 }, (_, i) => app.store.put(null, { i })))) as string[];
    const stopAt = performance.now() + options.baselineSeconds * 1000;
    const without = await traffic(app, ids, () => performance.now() > stopAt);
    let sweeping = true;
    const started = performance.now();
    const [report, during] = await Promise.all([
      app.sweep().finally(() => {
        sweeping = false;
      }),
      traffic(app, ids, () => !sweeping),
    ]);
    const seconds = (performance.now() - started) / 1000;
    const w = summarize(without);
    const d = summarize(during);
    return {
      dead: options.dead,
      live: options.live,
      deleted: report.deleted,
      seconds,
      rowsPerSecond: report.deleted / seconds,
      without: w,
      during: d,
      ratioP99: d.p99 / w.p99,
      bytesPerRow,
      mixed: options.mixed === true,
    };
  } finally {
    await app.stop();
  }
}
