// Owners at scale: sessionsOf and revokeAll of one user's sessions among a
// large table, and logins (renew + owner, one call), through app.store, on
// SQLite and on PostgreSQL — the built package of this revision and, with
// --before=REV, of another one, taking turns round by round in one run (on
// PostgreSQL every owner operation holds the owner's advisory lock since
// "where sessions meet": its cost is the before/after difference).
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { median } from './lib.ts';

export interface OwnersRow {
  /** 'ours' (this revision) or 'before <rev>'. */
  build: string;
  engine: 'sqlite' | 'postgres';
  stored: number;
  owned: number;
  rounds: number;
  /** Medians over rounds, ms. */
  sessionsOfMs: number;
  revokeAllMs: number;
  /** Median of single logins (renew with an owner), ms. */
  loginMs: number;
  revoked: number;
}

/** Saved results of a run before logins and engines were measured: one SQLite row. */
export type OwnersResult = OwnersRow[] | Omit<OwnersRow, 'build' | 'engine' | 'loginMs'>;

/** The package's entry as `import()` gives it (this build's dist, or another revision's). */
interface Package {
  startSessionApp(config: Record<string, unknown>): Promise<{
    store: {
      put(sid: null, data: object, options?: { owner?: string }): Promise<string | null>;
      renew(sid: string, changes?: { owner?: string }): Promise<string | null>;
      sessionsOf(owner: string): Promise<unknown[]>;
      revokeAll(owner: string): Promise<number>;
    };
    stop(): Promise<void>;
  }>;
  setupStore(config: { database: string; table?: string }): Promise<void>;
}

/** `count` sessions of nobody, written straight into the table. */
async function plant(database: string, table: string, count: number): Promise<void> {
  if (database.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      await client.query(
        `INSERT INTO "${table}" (sid_hash, data, created_at, touched_at)
        SELECT sha256(gen_random_uuid()::text::bytea), '{"planted":true}', t, t - i
        FROM generate_series(1, $1) AS i, (SELECT (extract(epoch from now()) * 1000)::bigint AS t) AS at`,
        [count],
      );
      await client.query(`ANALYZE "${table}"`);
    } finally {
      await client.end();
    }
    return;
  }
  const db = new DatabaseSync(database);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  const now = Date.now();
  db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
    INSERT INTO "${table}" (sid_hash, data, created_at, touched_at) SELECT randomblob(32), '{"planted":true}', ?, ? - x FROM c`).run(
    count,
    now,
    now,
  );
  db.close();
}

interface Subject {
  build: string;
  engine: 'sqlite' | 'postgres';
  app: Awaited<ReturnType<Package['startSessionApp']>>;
  sessionsOf: number[];
  revokeAll: number[];
  login: number[];
  revoked: number;
}

/** One round on one subject: the user's sessions created, listed, revoked; then `owned` logins one after another. */
async function round(subject: Subject, owned: number): Promise<void> {
  const { store } = subject.app;
  await Promise.all(Array.from({ length: owned }, (_, i) => store.put(null, { device: i }, { owner: 'bench-user' })));
  let t0 = performance.now();
  const list = await store.sessionsOf('bench-user');
  subject.sessionsOf.push(performance.now() - t0);
  if (list.length !== owned) throw new Error(`sessionsOf listed ${list.length}, not ${owned}`);
  t0 = performance.now();
  subject.revoked = await store.revokeAll('bench-user');
  subject.revokeAll.push(performance.now() - t0);
  if (subject.revoked !== owned) throw new Error(`revokeAll ended ${subject.revoked}, not ${owned}`);
  const anonymous = await Promise.all(Array.from({ length: owned }, () => store.put(null, { cart: 1 })));
  for (const id of anonymous) {
    t0 = performance.now();
    if ((await store.renew(id!, { owner: 'bench-login' })) === null) throw new Error('a login found its session gone');
    subject.login.push(performance.now() - t0);
  }
  await store.revokeAll('bench-login');
}

export async function ownersBenchmark(options: {
  dir: string;
  stored: number;
  owned: number;
  rounds: number;
  /** dist/ URLs (ending in '/') by build label: this revision first. */
  builds: Array<{ label: string; dist: string }>;
  /** A PostgreSQL database per build label, when PostgreSQL is measured. */
  postgres?: (label: string) => Promise<string>;
}): Promise<OwnersRow[]> {
  const subjects: Subject[] = [];
  try {
    for (const { label, dist } of options.builds) {
      const lib = (await import(`${dist}index.js`)) as Package;
      const places: Array<['sqlite' | 'postgres', string]> = [['sqlite', join(options.dir, `owners-${label.replace(/\W/g, '_')}.db`)]];
      if (options.postgres) places.push(['postgres', await options.postgres(label)]);
      for (const [engine, database] of places) {
        await lib.setupStore({ database });
        await plant(database, 'session', options.stored);
        const app = await lib.startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600 });
        subjects.push({ build: label, engine, app, sessionsOf: [], revokeAll: [], login: [], revoked: 0 });
      }
    }
    // Builds and engines take turns, round by round: drift on the machine spreads over all of them.
    for (let n = 0; n < options.rounds; n++) for (const subject of subjects) await round(subject, options.owned);
  } finally {
    for (const subject of subjects) await subject.app.stop();
  }
  return subjects.map((s) => ({
    build: s.build,
    engine: s.engine,
    stored: options.stored,
    owned: options.owned,
    rounds: options.rounds,
    sessionsOfMs: median(s.sessionsOf),
    revokeAllMs: median(s.revokeAll),
    loginMs: median(s.login),
    revoked: s.revoked,
  }));
}
